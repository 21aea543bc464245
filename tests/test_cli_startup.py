"""`monitor --version` and `--help` start light; completion scripts come from the full parser."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import build_parser, command_in
from monitor.commands import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "pandas", "scipy", "numba", "matplotlib", "pyarrow", "requests", "jinja2", "apscheduler",
         "slack_sdk", "prometheus_client", "prometheus_api_client", "yaml", "tqdm", "shtab")


# Runs `monitor ARGV` as `python -m monitor` would, then prints its exit code and
# sys.modules as stderr's last two lines, whatever the command printed or however it exited.
_PROBE = """
import contextlib, io, runpy, sys
sys.argv = ["monitor", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("monitor", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
print(code, file=sys.stderr)
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def imported_modules(*argv: str) -> set[str]:
    """Every module in sys.modules after `python -m monitor ARGV` (exit 0) has run."""
    result = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    *_, code, modules = result.stderr.splitlines()
    assert code in ("0", "None"), result.stderr[-2000:]
    names = set(modules.split())
    assert "monitor.cli" in names  # the probe really ran monitor
    return names


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["--log-level", "DEBUG", "--help"]],
                         ids=["--version imports no command module and nothing heavy",
                              "--help imports no command module and nothing heavy",
                              "--help after a global option is as light"])
def test_version_and_help_import_nothing_heavy(argv):
    names = imported_modules(*argv)
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    commands = sorted(n for n in names if n.startswith("monitor.commands."))
    assert heavy == [] and commands == [], (heavy, commands)


def test_a_command_imports_its_own_module_only():
    names = imported_modules("completion", "--help")
    commands = sorted(n for n in names if n.startswith("monitor.commands."))
    assert commands == ["monitor.commands.completion"]


def _subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_the_light_table_lists_each_command_with_its_modules_own_help():
    full = _subcommand_help(build_parser(full=True))
    light = _subcommand_help(build_parser())
    assert list(full) == [c.name for c in COMMANDS] == list(light)
    assert light == full


@pytest.mark.parametrize("argv, expected", [
    (["slo", "--json"], "slo"),
    (["--log-level", "INFO", "run", "--once"], "run"),
    (["--log-level=INFO", "report"], "report"),
    (["--version"], None),
    (["nonsense"], None),
], ids=["the first positional argument names the command", "a global option's value is skipped",
        "a global option written with = is skipped", "no command", "an unknown word is no command"])
def test_the_command_is_found_without_parsing(argv, expected):
    assert command_in(argv) == expected


def test_log_level_is_accepted_before_and_after_the_command():
    before = build_parser("run").parse_args(["--log-level", "debug", "run", "--once"])
    after = build_parser("run").parse_args(["run", "--once", "--log-level", "error"])
    neither = build_parser("run").parse_args(["run", "--once"])
    assert (before.log_level, after.log_level, neither.log_level) == ("DEBUG", "ERROR", None)


def test_an_unknown_log_level_is_a_usage_error(capsys):
    from hostile import assert_handled, run_in_process

    assert_handled(run_in_process(["--log-level", "LOUD", "alerts"], capsys), "--log-level", codes=(2,),
                   max_lines=2)


def _completion(shell: str) -> str:
    result = subprocess.run([sys.executable, "-m", "monitor", "completion", shell], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bash_completion_parses_and_completes_commands_and_flags(tmp_path):
    script = tmp_path / "monitor.bash"
    script.write_text(_completion("bash"))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    probe = (f"source {script}\n"
             "COMP_WORDS=(monitor ch); COMP_CWORD=1; _shtab_monitor; echo \"commands: ${COMPREPLY[*]}\"\n"
             "COMP_WORDS=(monitor run --log-f); COMP_CWORD=2; _shtab_monitor; echo \"flags: ${COMPREPLY[*]}\"\n")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30).stdout
    assert "commands: check" in out and "flags: --log-format" in out


def test_zsh_completion_parses(tmp_path):
    zsh = shutil.which("zsh")
    assert zsh, "zsh is not installed (apt-get install zsh)"
    script = tmp_path / "_monitor"
    script.write_text(_completion("zsh"))
    assert script.read_text().startswith("#compdef monitor")
    result = subprocess.run([zsh, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_daemon_loads_no_chart_or_compiler_module_until_it_draws_or_compiles():
    # matplotlib is for reports (drawn weekly), numba and scipy.stats not needed by a cycle's drift
    # (numpy's kernels, the ported KS distribution): together over 200 MiB of resident memory.
    code = "import sys, monitor.daemon, monitor.pipeline; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    names = set(result.stdout.split())
    assert "monitor.pipeline" in names
    assert sorted(n for n in names if n.split(".")[0] in ("matplotlib", "numba", "llvmlite")
                  or n.startswith("scipy.stats")) == []


def test_the_daemon_command_gives_arrow_the_system_allocator():
    # Set before pyarrow is imported, or it has no effect: `monitor run` imports its own module first.
    code = "import monitor.commands.run, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                            env={**env, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "system"
