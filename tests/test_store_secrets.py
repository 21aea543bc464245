"""Nothing secret is stored in the state file, and a real (failing) cycle prunes what is past retention."""

from __future__ import annotations

from pathlib import Path

from monitor.alerting.repository import AlertRepository
from monitor.store import StateStore
from hostile import run_in_process


def state_bytes(path: Path) -> bytes:
    """The state file as it lies on disk, with its WAL and WAL index."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def write_config(directory: Path, url: str) -> Path:
    config = directory / "monitor.yaml"
    config.write_text(f"prometheus:\n  url: {url}\n  timeout: 1s\nstate:\n  path: state.db\n  retention: 1d\n")
    return config


def test_prometheus_url_credentials_of_a_failing_run_are_not_stored(tmp_path, capsys):
    config = write_config(tmp_path, "http://user:pass@127.0.0.1:1/")
    outcome = run_in_process(["run", "--once", "--at", "2026-11-01T00:00:00Z", "--config", config], capsys)
    assert outcome.code == 1
    with StateStore(tmp_path / "state.db") as store:
        [cycle] = AlertRepository(store).cycles()
    assert cycle.status == "failed" and "http://[redacted]@127.0.0.1:1" in cycle.error  # the error was stored
    assert b"pass" not in state_bytes(tmp_path / "state.db")


def test_a_failing_daemon_cycle_prunes_cycles_past_the_retention(tmp_path, capsys):
    config = write_config(tmp_path, "http://127.0.0.1:1/")
    for at in ("2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z", "2026-11-03T06:00:00Z"):
        assert run_in_process(["run", "--once", "--at", at, "--config", config], capsys).code == 1
    with StateStore(tmp_path / "state.db") as store:
        kept = [c.evaluated_at.isoformat() for c in AlertRepository(store).cycles()]
    # retention 1d at 11-03 06:00: older than 11-02 00:00 goes
    assert kept == ["2026-11-03T06:00:00+00:00"]
