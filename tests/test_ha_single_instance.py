"""One daemon per SQLite state file: a second is refused at start, naming the holder's PID.

The lock is the kernel's (`flock` on `<state file>.lock`), so a daemon killed with -9
leaves no stale lock behind, and commands that only read the state are never blocked.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from monitor.ha.single_instance import InstanceLock, SingleInstanceError, lock_path_for
from monitor.simulate.local_prometheus import free_port
from tests.hostile import assert_handled, run_process

HOLD = textwrap.dedent("""
    import sys, time
    from monitor.ha.single_instance import InstanceLock
    InstanceLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def hold_lock(state: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_held_lock_is_refused_naming_the_holders_pid_and_a_killed_holder_leaves_none(tmp_path):
    state = tmp_path / "state.db"
    holder = hold_lock(state)
    try:
        with pytest.raises(SingleInstanceError) as refused:
            InstanceLock(state).acquire()
        message = str(refused.value)
        assert f"PID {holder.pid}" in message and str(state) in message and "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    # kill -9: the file stays, with the dead PID in it, but the kernel dropped the lock.
    assert lock_path_for(state).read_text().strip() == str(holder.pid)
    with InstanceLock(state):
        assert lock_path_for(state).read_text().strip() == str(os.getpid())


def daemon_config(tmp_path: Path) -> Path:
    """A daemon that starts without any source: its cycles fail (nothing listens), which is enough here."""
    path = tmp_path / "monitor.yaml"
    path.write_text(textwrap.dedent(f"""
        prometheus:
          url: http://127.0.0.1:{free_port()}
          timeout: 1s
        state:
          path: {tmp_path / "state.db"}
        schedule:
          evaluate_every: 1s
        http:
          listen: 127.0.0.1:{free_port()}
        reports:
          dir: {tmp_path / "reports"}
    """))
    return path


def test_a_second_daemon_on_the_same_state_file_is_refused_and_readers_are_not(tmp_path):
    config = daemon_config(tmp_path)
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "monitor running" not in (tmp_path / "first.log").read_text():
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.1)

        listen = re.search(r"listen: (\S+)", config.read_text()).group(1)
        scraped = requests.get(f"http://{listen}/metrics", timeout=10).text
        assert "\nmonitor_leader 1.0\n" in scraped  # a sole daemon always leads
        assert "\nmonitor_leader_changes_total 0.0\n" in scraped

        second = run_process(["run", "--config", config], timeout=30)
        # One line, naming the state file and the first daemon's PID; it never got as far as the port.
        assert_handled(second, f"PID {first.pid}")
        assert str(tmp_path / "state.db") in second.stderr and "already in use" not in second.stderr

        alerts = run_process(["alerts", "--config", config])
        assert alerts.code == 0, alerts.stderr
        silences = run_process(["silence", "list", "--config", config])
        assert silences.code == 0, silences.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)

    # The first was killed with -9: a new daemon starts at once.
    with open(tmp_path / "third.log", "wb") as log:
        third = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "monitor running" not in (tmp_path / "third.log").read_text():
            assert third.poll() is None and time.monotonic() < deadline, (tmp_path / "third.log").read_text()
            time.sleep(0.1)
        third.send_signal(signal.SIGTERM)
        assert third.wait(30) == 0
    finally:
        if third.poll() is None:
            third.kill()
            third.wait()
