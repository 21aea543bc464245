"""Progress bars appear on a terminal only: drawn under a pseudo-terminal, absent when piped,
in --json modes and in the daemon."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAR = "simulating services"


def run_on_a_terminal(argv: list[str], timeout: float = 180) -> tuple[int, str]:
    """`argv` with stdout and stderr on a pseudo-terminal; (exit code, everything it wrote)."""
    primary, secondary = pty.openpty()
    # A fresh pseudo-terminal is 0x0; a real one has a size, and tqdm fits the bar to it.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    os.close(secondary)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(primary)
    code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_simulate_draws_a_bar_on_a_terminal(tmp_path):
    code, text = run_on_a_terminal([sys.executable, "-m", "monitor", "simulate", "--out", str(tmp_path / "sim"),
                                    "--days", "1", "--end", "2026-11-20T12:00:00Z"])
    assert code == 0, text
    assert BAR in text and "writing metrics" in text
    assert "it/s" in text or "service/s" in text or "%|" in text  # tqdm's bar, not just our label


def test_simulate_draws_no_bar_when_stderr_is_piped(tmp_path):
    result = subprocess.run([sys.executable, "-m", "monitor", "simulate", "--out", str(tmp_path / "sim"),
                             "--days", "1", "--end", "2026-11-20T12:00:00Z"], capture_output=True, text=True,
                            timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert BAR not in result.stderr + result.stdout and "\r" not in result.stderr


_LIBRARY_PROBE = """
import sys
from monitor import progress
mode = sys.argv[1]
if mode == "json":
    with progress.suppressed():
        list(progress.progress(range(3), desc="PROBE-BAR"))
elif mode == "daemon":
    with progress.quiet_for_daemon():
        list(progress.progress(range(3), desc="PROBE-BAR"))
else:
    list(progress.progress(range(3), desc="PROBE-BAR"))
print("done")
"""


def test_json_modes_and_the_daemon_draw_no_bar_even_on_a_terminal():
    outputs = {mode: run_on_a_terminal([sys.executable, "-c", _LIBRARY_PROBE, mode], timeout=60)
               for mode in ("terminal", "json", "daemon")}
    assert all(code == 0 and "done" in text for code, text in outputs.values()), outputs
    assert "PROBE-BAR" in outputs["terminal"][1]  # the probe can see a bar when one is drawn
    assert "PROBE-BAR" not in outputs["json"][1] and "PROBE-BAR" not in outputs["daemon"][1]
