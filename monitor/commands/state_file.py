"""The `--config`/`--state` pair of the commands that read or write the state, and `monitor state migrate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands.arguments import add_config_argument
from monitor.config import Config, config_path_from, load_config
from monitor.store import Store, open_store


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--state", type=Path, default=None,
                        help="state file (default: the config's state.url or state.path)")


def open_state(args: argparse.Namespace) -> tuple[Config, Store]:
    config = load_config(config_path_from(args.config))
    return config, open_store(config, args.state)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("state", help="the state store: copy an SQLite state into PostgreSQL",
                                   description="Operations on the daemon's state store.")
    actions = parser.add_subparsers(dest="state_action", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate", help="copy an SQLite state file into an empty PostgreSQL database",
        description="Copy every alert, silence, model version, queued notification and pending delivery (and "
                    "the history) of an SQLite state file into an empty PostgreSQL database, ids included, in "
                    "one transaction. Stop the daemon first. The password comes from --password-env, "
                    "--password-file, or libpq's PGPASSWORD / ~/.pgpass; never from the URL.")
    migrate.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE",
                         help="the SQLite state file (state.path)")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL",
                         help="postgresql://user@host:5432/database (state.url)")
    migrate.add_argument("--password-env", metavar="NAME", help="environment variable holding the password")
    migrate.add_argument("--password-file", metavar="FILE", help="file holding the password")
    migrate.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from monitor.config import postgres_url_problem
    from monitor.errors import MonitorError
    from monitor.outputs.report import open_state_file
    from monitor.secrets import read_secret
    from monitor.store_copy import copy_state
    from monitor.store_postgres import PostgresStore, display_url

    problem = postgres_url_problem(args.target)
    if problem:
        raise MonitorError(f"--to {display_url(args.target)}: {problem}")
    password = None
    if args.password_env or args.password_file:
        password = read_secret(args.password_env, args.password_file, "--password")
    with open_state_file(args.source) as source, PostgresStore(args.target, password) as target:
        report = copy_state(source, target)
    tables = ", ".join(f"{table} {n}" for table, n in report.rows.items() if n)
    print(f"copied {report.total} rows from {args.source} to {target.path}: {tables or 'no rows'}")
    return 0
