"""A state in PostgreSQL (`state.url`) that cannot be used: each fault is one line naming the URL (never its
password) or the config's file:line and field, from the commands that open the store; no traceback,
within the time bound. A real private PostgreSQL cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import psycopg
import pytest

from monitor.secrets import redact
from monitor.simulate.local_prometheus import free_port
from monitor.store_postgres import PostgresStore
from hostile import assert_handled, run_in_process

SILENCE_ADD = ["silence", "add", "--match", "service=ranker", "--for", "1h", "--comment", "deploy"]
ALERTS = ["alerts", "--json"]


def config(directory: Path, state_yaml: str) -> Path:
    path = directory / "monitor.yaml"
    path.write_text(f"prometheus:\n  url: http://127.0.0.1:1/\n  timeout: 1s\nstate:\n{state_yaml}")
    return path


def url_config(url: str, extra: str = "") -> Callable[[Path, str], tuple[Path, str | re.Pattern]]:
    def setup(tmp: Path, _: str) -> tuple[Path, str | re.Pattern]:
        return config(tmp, f"  url: {url}\n{extra}"), url
    return setup


def unreachable(tmp: Path, _: str):
    url = f"postgresql://monitor@127.0.0.1:{free_port()}/monitor"
    return config(tmp, f"  url: {url}\n"), re.compile(re.escape(redact(url)) + ": unreachable")


def missing_database(tmp: Path, postgres_url: str):
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    return config(tmp, f"  url: {url}\n"), re.compile(re.escape(redact(url)) + ": the database does not exist")


def newer_schema(tmp: Path, postgres_url: str):
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    return config(tmp, f"  url: {postgres_url}\n"), re.compile(
        re.escape(redact(postgres_url)) + r" was written by a newer monitor \(schema 99")


def other_program(tmp: Path, postgres_url: str):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, title TEXT)")
    return config(tmp, f"  url: {postgres_url}\n"), re.compile(
        re.escape(redact(postgres_url)) + " holds tables of another program")


def dropped_table(tmp: Path, postgres_url: str):
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE silences")
    return config(tmp, f"  url: {postgres_url}\n"), re.compile(
        re.escape(redact(postgres_url)) + r" is damaged: table\(s\) silences missing")


def password_in_url(tmp: Path, _: str):
    return config(tmp, "  url: postgresql://monitor:hunter2-in-url@db:5432/monitor\n"), re.compile(
        r"monitor\.yaml:5: state\.url: must not contain a password")


def path_and_url(tmp: Path, _: str):
    return config(tmp, "  path: state.db\n  url: postgresql://monitor@db:5432/monitor\n"), re.compile(
        r"monitor\.yaml:6: state\.url: give either state\.path .* or state\.url")


def not_postgresql(tmp: Path, _: str):
    return config(tmp, "  url: mysql://monitor@db:3306/monitor\n"), re.compile(
        r"monitor\.yaml:5: state\.url: must start with postgresql://")


def no_database(tmp: Path, _: str):
    return config(tmp, "  url: postgresql://monitor@db:5432\n"), re.compile(
        r"monitor\.yaml:5: state\.url: names no database")


def bad_port(tmp: Path, _: str):
    return config(tmp, "  url: postgresql://monitor@db:99999/monitor\n"), re.compile(
        r"monitor\.yaml:5: state\.url: is not a valid URL")


def password_without_url(tmp: Path, _: str):
    return config(tmp, "  path: state.db\n  password_env: PGPASS\n"), re.compile(
        r"monitor\.yaml:6: state\.password_env: is for state\.url")


def missing_password_env(tmp: Path, postgres_url: str):
    return config(tmp, f"  url: {postgres_url}\n  password_env: MONITOR_TEST_UNSET_PASSWORD\n"), \
        "environment variable MONITOR_TEST_UNSET_PASSWORD is not set"


CASES = [
    ("an unreachable server is named by its URL", unreachable, SILENCE_ADD),
    ("a database that does not exist is named", missing_database, ALERTS),
    ("a schema written by a newer monitor is refused", newer_schema, ALERTS),
    ("a database holding another program's tables is refused", other_program, SILENCE_ADD),
    ("a database missing one of monitor's tables is damaged", dropped_table, ALERTS),
    ("a password inside the URL is refused at its line, and never echoed", password_in_url, ALERTS),
    ("both state.path and state.url is refused at its line", path_and_url, ALERTS),
    ("a URL that is not PostgreSQL's is refused at its line", not_postgresql, ALERTS),
    ("a URL naming no database is refused at its line", no_database, ALERTS),
    ("a URL with an impossible port is refused at its line", bad_port, ALERTS),
    ("a password for an SQLite path is refused at its line", password_without_url, ALERTS),
    ("an unset password variable is named", missing_password_env, SILENCE_ADD),
]


@pytest.mark.parametrize("setup, command", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_unusable_state_database_is_one_clear_line(tmp_path, capsys, postgres_url, setup, command):
    path, says = setup(tmp_path, postgres_url)
    outcome = run_in_process([*command, "--config", path], capsys)
    assert_handled(outcome, says)
    assert "hunter2" not in outcome.stdout + outcome.stderr
