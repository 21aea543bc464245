"""`monitor` command line: arguments in, one clear error line and a non-zero exit on failure.

Only the command being run is imported (see `monitor.commands.COMMANDS`): the others
are listed by name and help, so `monitor --version`, `--help` and light commands
start without numpy, pandas or the HTTP clients.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from monitor import __version__
from monitor.commands import COMMANDS

_GLOBAL_OPTIONS_WITH_VALUE = {"--log-level"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def add_log_level_argument(parser: argparse.ArgumentParser, *, on_subcommand: bool = False) -> None:
    """`--log-level`, defined once: on `monitor` itself, and again on commands that log a lot
    (`monitor run --log-level INFO`). Unset (None) means the command's own default."""
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
                        default=argparse.SUPPRESS if on_subcommand else None,
                        help="DEBUG, INFO, WARNING or ERROR (default: WARNING; INFO for the daemon)")


def build_parser(command: str | None = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The argument parser with `command`'s arguments (every command's with `full`,
    which imports every command module: for shell completion and tests)."""
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Observability and cost-analysis daemon for ML services.",
    )
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    add_log_level_argument(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in COMMANDS:
        if full or entry.name == command:
            importlib.import_module(entry.module).register(subparsers)
        else:
            subparsers.add_parser(entry.name, help=entry.help, add_help=False)
    return parser


def command_in(argv: list[str]) -> str | None:
    """The command named in `argv` (its first positional argument), if it is one of ours."""
    names = {entry.name for entry in COMMANDS}
    tokens = iter(argv)
    for token in tokens:
        if token in _GLOBAL_OPTIONS_WITH_VALUE:
            next(tokens, None)
        elif token == "--":
            return None
        elif not token.startswith("-"):
            return token if token in names else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_in(argv))
    args = parser.parse_args(argv)  # --version and --help exit here, before anything below is imported
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from monitor.errors import ConfigError, MonitorError
    from monitor.log_format import configure_cli_logging
    from monitor.secrets import redact

    configure_cli_logging(args.log_level or "WARNING")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(redact(str(problem)), file=sys.stderr)
        return 1
    except MonitorError as exc:
        print(f"monitor: error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
