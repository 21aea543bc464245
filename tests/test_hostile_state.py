"""Broken state files: each fault is one line naming the file and what to do, from every command that
opens the store; no traceback, within the time bound. Real files, real locks, a real full file system."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from monitor.alerting.condition import Matcher
from monitor.alerting.repository import AlertRepository
from monitor.alerting.silences import Silence
from monitor.store import StateStore
from hostile import assert_handled, run_in_process

T0 = datetime(2026, 11, 22, tzinfo=timezone.utc)
SILENCE_ADD = ["silence", "add", "--match", "service=ranker", "--for", "1h", "--comment", "deploy"]
DAMAGED = "restore it from a backup, or move it aside to start afresh"


def write_config(directory: Path, state_path: Path) -> Path:
    config = directory / "monitor.yaml"
    config.write_text(f"prometheus:\n  url: http://127.0.0.1:1/\n  timeout: 1s\nstate:\n  path: {state_path}\n")
    return config


def valid_state(path: Path, silences: int = 3) -> Path:
    """A state file written by this monitor, with some silences in it."""
    with StateStore(path) as store:
        repository = AlertRepository(store)
        for i in range(silences):
            repository.add_silence(Silence(f"s{i:04d}", (Matcher("service", "=", f"svc-{i}" + "x" * 200),),
                                           T0, T0 + timedelta(hours=1), "test", "c" * 300, T0))
    return path


def truncated(tmp: Path) -> Path:
    path = valid_state(tmp / "state.db", silences=400)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 3)
    return path


def random_bytes(tmp: Path) -> Path:
    path = tmp / "state.db"
    path.write_bytes(os.urandom(8192))
    return path


def text_file(tmp: Path) -> Path:
    path = tmp / "state.db"
    path.write_text("state:\n  path: this is a config, not a state file\n")
    return path


def other_program(tmp: Path) -> Path:
    path = tmp / "grafana.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, title TEXT)")
    return path


def newer_schema(tmp: Path) -> Path:
    path = valid_state(tmp / "state.db")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    return path


def dropped(table: str) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        path = valid_state(tmp / "state.db")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute(f"DROP TABLE {table}")
        return path
    return setup


def path_under_a_file(tmp: Path) -> Path:
    (tmp / "not-a-dir").write_text("x")
    return tmp / "not-a-dir" / "state.db"


def a_directory(tmp: Path) -> Path:
    path = tmp / "state.db"
    path.mkdir()
    return path


def immutable(path: Path) -> None:
    """Read-only even for root (tests run as root here): the immutable attribute."""
    subprocess.run(["chattr", "+i", str(path)], check=True)


def read_only_file(tmp: Path) -> Path:
    path = valid_state(tmp / "state.db")
    immutable(path)
    return path


def read_only_directory(tmp: Path) -> Path:
    directory = tmp / "ro"
    directory.mkdir()
    path = valid_state(directory / "state.db")
    immutable(directory)
    return path


CASES = [
    ("a truncated state file is named as damaged", truncated, ["silence", "list"], DAMAGED),
    ("random bytes instead of a state file are not a database", random_bytes, ["alerts"],
     "is not a monitor state file"),
    ("a text file given as the state file is not a database", text_file, ["silence", "list"],
     "is not a monitor state file"),
    ("an SQLite database of another program is refused, not written into", other_program, ["deliveries"],
     "is an SQLite database of another program"),
    ("a state file from a newer monitor is refused with both schema numbers", newer_schema, ["alerts"],
     re.compile(r"was written by a newer monitor \(schema 99 > \d+\); upgrade monitor or point state.path "
                r"elsewhere")),
    ("a dropped alerts table is named", dropped("alerts"), ["alerts"], "table(s) alerts missing"),
    ("a dropped deliveries table is named", dropped("deliveries"), ["deliveries"], "table(s) deliveries missing"),
    ("a dropped silences table is named to run --once", dropped("silences"), ["run", "--once"],
     "table(s) silences missing"),
    ("a state path under a regular file cannot be created", path_under_a_file, ["alerts"],
     "cannot create its directory"),
    ("a directory given as the state file cannot be opened", a_directory, ["silence", "list"],
     "cannot be opened"),
    ("a read-only state file refuses a new silence", read_only_file, SILENCE_ADD,
     "is read-only"),
    ("a state file in a read-only directory cannot be opened for writing", read_only_directory, SILENCE_ADD,
     re.compile(r"is read-only|cannot be opened")),
]


@pytest.fixture
def unlock_after(tmp_path):
    yield
    subprocess.run(["chattr", "-R", "-i", str(tmp_path)], check=False, capture_output=True)


@pytest.mark.parametrize("setup, command, says", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_state_file_is_one_clear_line(tmp_path, capsys, unlock_after, setup, command, says):
    path = setup(tmp_path)
    config = write_config(tmp_path, path)
    outcome = run_in_process([*command, "--config", config], capsys)
    assert_handled(outcome, str(path))
    assert_handled(outcome, says)


def test_a_newer_schema_is_refused_by_the_daemon_too(tmp_path, capsys):
    path = newer_schema(tmp_path)
    outcome = run_in_process(["run", "--config", write_config(tmp_path, path)], capsys)
    assert_handled(outcome, re.compile(re.escape(str(path)) + r" was written by a newer monitor"))


def test_a_state_file_locked_by_another_process_is_named_after_the_busy_timeout(tmp_path, capsys):
    path = valid_state(tmp_path / "state.db")
    locker = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
                               f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
                               "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        config = write_config(tmp_path, path)
        listed = run_in_process(["silence", "list", "--config", config], capsys)  # a reader is not blocked
        assert listed.code == 0, listed.stderr
        outcome = run_in_process([*SILENCE_ADD, "--config", config], capsys)
        assert_handled(outcome, f"state file {path} is locked by another process")
    finally:
        locker.kill()
        locker.wait()


@pytest.fixture
def small_file_system(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_disk_is_named_and_nothing_is_half_written(tmp_path, small_file_system, capsys):
    path = shutil.copy(valid_state(tmp_path / "seed.db"), small_file_system / "state.db")
    filler = os.open(small_file_system / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(filler, b"\0" * 4096):
            pass
    except OSError:  # ENOSPC: the file system is full
        pass
    finally:
        os.close(filler)
    config = write_config(tmp_path, Path(path))
    outcome = run_in_process([*SILENCE_ADD, "--config", config], capsys)
    assert_handled(outcome, f"state file {path}: the disk is full")
    os.remove(small_file_system / "filler")
    listed = run_in_process(["silence", "list", "--all", "--json", "--config", config], capsys)
    assert listed.code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 3  # the refused silence is not there, the others are
