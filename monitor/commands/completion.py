"""`monitor completion bash|zsh`: a shell completion script generated from the argument parser."""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "completion", help="print a bash or zsh completion script",
        description="Print a completion script for every command and flag. Load it with "
                    "'source <(monitor completion bash)' (bash) or put 'monitor completion zsh' output in a "
                    "file named _monitor on your $fpath (zsh).")
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shtab

    from monitor.cli import build_parser

    # The full parser imports every command module: slow (a second or two) but
    # generated once, at install time, not per keystroke.
    sys.stdout.write(shtab.complete(build_parser(full=True), shell=args.shell))
    return 0
