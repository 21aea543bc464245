"""The `--config`/`--state` pair of the commands that read or write the state file."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.commands.arguments import add_config_argument
from monitor.config import Config, config_path_from, load_config
from monitor.store import StateStore


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--state", type=Path, default=None,
                        help="state file (default: the config's state.path)")


def open_state(args: argparse.Namespace) -> tuple[Config, StateStore]:
    config = load_config(config_path_from(args.config))
    path = args.state or config.resolve_path(config.state.path)
    return config, StateStore(path)
