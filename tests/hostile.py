"""The shared assertion of the hostile-input table tests (tests/test_hostile_*.py).

Every broken or hostile input must end as a user would want it to: exit 1 (bad
input) or 2 (usage), one clear line naming the file (and line, where there is one)
or the flag, no traceback, and within a time bound. The tables live next to the
code they exercise; this is the one place that says what "handled" means.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.cli import main as cli_main

TIME_BOUND_S = 10.0

# Label values a hostile rule file carries into every page, report and message: markup that
# would run (the browser tests watch the console for "pwned"), an attribute break-out, 10 KB.
SCRIPT_VALUE = "<script>console.error('pwned')</script>"
QUOTES_VALUE = "\"'><img src=x onerror=alert(1)>"
HUGE_VALUE = "H" * 10_000
# A rule that fires with the fleet's paging SLOs, carrying those values as labels and annotation.
HOSTILE_LABEL_RULES = f"""\
version: monitor/v1
groups:
  - name: hostile
    rules:
      - alert: HostileLabels
        condition: slo_page == 1
        labels:
          severity: ticket
          script: {json.dumps(SCRIPT_VALUE)}
          quotes: {json.dumps(QUOTES_VALUE)}
          huge: {HUGE_VALUE}
        annotations:
          summary: {json.dumps(SCRIPT_VALUE + QUOTES_VALUE)}
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


def run_in_process(argv: list[str], capsys) -> Outcome:
    """`monitor ARGV` in this process; an escaping exception is a traceback, so it fails the test."""
    started = time.monotonic()
    try:
        code = cli_main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Outcome(int(code), captured.out, captured.err, time.monotonic() - started)


def run_process(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = TIME_BOUND_S) -> Outcome:
    """`python -m monitor ARGV` as a child process, killed at `timeout` (a hang fails the test)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "monitor", *map(str, argv)], capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)
    return Outcome(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def assert_handled(outcome: Outcome, names: str | re.Pattern, *, codes: tuple[int, ...] = (1, 2),
                   max_lines: int = 1) -> None:
    """Exit 1 or 2, at most `max_lines` error lines naming `names` (a file, FILE:LINE or --flag),
    no traceback, within the time bound."""
    text = outcome.stderr + outcome.stdout
    assert "Traceback" not in text, text
    assert outcome.code in codes, f"exit {outcome.code}: {text}"
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= max_lines, f"expected {max_lines} error line(s), got {len(lines)}:\n{outcome.stderr}"
    pattern = names if isinstance(names, re.Pattern) else re.compile(re.escape(names))
    assert pattern.search(outcome.stderr), f"{pattern.pattern!r} not named in: {outcome.stderr}"
    assert outcome.seconds < TIME_BOUND_S, f"took {outcome.seconds:.1f}s"
