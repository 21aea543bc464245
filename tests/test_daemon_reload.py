"""SIGHUP reads the new config off the signal-handling thread: a config that takes
forever to parse is rejected, and SIGTERM always stops the daemon with exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from monitor.simulate.local_prometheus import free_port

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 120  # a cold process imports the whole stack; on a busy CI box that is slow
# A "billion laughs": nine levels of nine aliases, 9**9 leaves when expanded.
ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(ord('b') + i)}: &{chr(ord('b') + i)} [{', '.join(['*' + chr(ord('a') + i)] * 9)}]\n" for i in range(8))


# Constant arithmetic Jinja would fold at compile time: a hang without the sandbox's bounds.
TEMPLATE_BOMB_RULES = """\
version: monitor/v1
groups:
  - name: g
    rules:
      - alert: Bomb
        expr: vector(1) > 0
        annotations:
          summary: "{{ 9**9**9**9 }}"
"""


def _config(tmp_path: Path, listen: str) -> Path:
    path = tmp_path / "monitor.yaml"
    # Prometheus on a closed port: cycles fail (alert states unchanged), the daemon runs on.
    path.write_text(f"prometheus:\n  url: http://127.0.0.1:{free_port()}\nstate:\n  path: {tmp_path / 'state.db'}\n"
                    f"http:\n  listen: {listen}\nschedule:\n  evaluate_every: 2s\n")
    return path


class Daemon:
    def __init__(self, config: Path, log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config), "--log-format", "json"],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def lines(self) -> list[dict]:
        entries = []
        for line in self.log.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                entries.append({"msg": line, "raw": True})
        return entries

    def wait_for_log(self, text: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.lines() if text in e.get("msg", "")]
            if found:
                return found[0]
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"no log line with {text!r} after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def terminate(self, timeout: float = 15) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def daemon(tmp_path):
    config = _config(tmp_path, f"127.0.0.1:{free_port()}")
    running = Daemon(config, tmp_path / "daemon.log")
    running.config = config
    running.wait_for_log("monitor running", STARTUP_S)
    yield running
    running.kill()


def test_an_alias_bomb_sent_through_sighup_is_rejected_and_sigterm_still_exits_0(daemon):
    good = daemon.config.read_text()
    daemon.config.write_text(ALIAS_BOMB + good)
    sent = time.monotonic()
    daemon.process.send_signal(signal.SIGHUP)
    rejected = daemon.wait_for_log("config reload rejected", 30)
    assert time.monotonic() - sent < 20  # the reload's own bound (10 s) plus a busy machine's slack
    assert str(daemon.config) in rejected["msg"]
    started = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - started < 10
    assert not [e for e in daemon.lines() if e.get("raw") or "Traceback" in json.dumps(e)]


def _seconds_between(first: dict, second: dict) -> float:
    """Seconds between two of the daemon's own log lines (its clock, not this busy test runner's)."""
    return (datetime.fromisoformat(second["ts"]) - datetime.fromisoformat(first["ts"])).total_seconds()


@pytest.mark.parametrize("bomb", ["alias", "template"])
def test_a_bomb_through_sighup_is_refused_within_two_seconds_by_the_input_bounds(daemon, bomb):
    """The bounds (bounded YAML, the template sandbox) refuse it, not the reload's 10 s time limit."""
    good = daemon.config.read_text()
    if bomb == "alias":
        daemon.config.write_text(ALIAS_BOMB + good)
    else:
        (daemon.config.parent / "rules.yaml").write_text(TEMPLATE_BOMB_RULES)
        daemon.config.write_text(good + "rules: [rules.yaml]\n")
    daemon.process.send_signal(signal.SIGHUP)
    rejected = daemon.wait_for_log("config reload rejected", 30)
    started = daemon.wait_for_log("config reload: reading", 1)
    assert _seconds_between(started, rejected) < 2.0
    assert "took longer than" not in rejected["msg"]
    assert daemon.terminate() == 0


def test_sigterm_during_a_stuck_reload_exits_0_at_once(daemon):
    daemon.config.write_text(ALIAS_BOMB + daemon.config.read_text())
    daemon.process.send_signal(signal.SIGHUP)
    time.sleep(1.0)  # the reload thread is now deep in the bomb (or, with bounded YAML, already done)
    started = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - started < 10
    assert [e for e in daemon.lines() if e.get("msg") == "stopped"]


def test_a_good_config_after_a_rejected_one_is_applied(daemon):
    good = daemon.config.read_text()
    daemon.config.write_text(good + "schedule_typo: 1\n")
    daemon.process.send_signal(signal.SIGHUP)
    assert "schedule_typo" in daemon.wait_for_log("config reload rejected", 30)["msg"]
    daemon.config.write_text(good.replace("evaluate_every: 2s", "evaluate_every: 3s"))
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_log("config reloaded", 30)
    assert daemon.terminate() == 0


def test_a_listen_address_in_use_is_one_line_and_exit_1(tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    address = f"127.0.0.1:{taken.getsockname()[1]}"
    try:
        config = _config(tmp_path, address)
        result = subprocess.run([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                                capture_output=True, text=True, timeout=STARTUP_S,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        taken.close()
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"monitor: error: {config}: http.listen {address}: cannot listen: the address is already "
                      f"in use (is another monitor running?)"], result.stderr
    assert "Traceback" not in result.stderr
