"""Hostile and broken input at the daemon's and the CLI's edges: listen addresses, secrets,
output paths and flags. Each row must end as tests/hostile.py says: exit 1 or 2, one line
naming the file or flag, no traceback, within the time bound."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from hostile import assert_handled, run_in_process
from monitor.simulate.local_prometheus import free_port


@dataclass
class Case:
    """`setup(tmp_path, env)` writes what the row needs and returns (argv, what the error line must name)."""

    setup: Callable[[Path, dict], tuple[list, str | re.Pattern]]
    codes: tuple[int, ...] = (1, 2)


def _config(tmp: Path, *, listen: str = "127.0.0.1:0", extra: str = "") -> Path:
    path = tmp / "monitor.yaml"
    path.write_text(f"prometheus:\n  url: http://127.0.0.1:{free_port()}\nstate:\n  path: {tmp / 'state.db'}\n"
                    f"http:\n  listen: '{listen}'\n{extra}")
    return path


def _listen_flag(address: str) -> Callable:
    def setup(tmp, env):
        return ["run", "--config", _config(tmp), "--listen", address], "--listen"
    return setup


def _listen_in_config(address: str) -> Callable:
    def setup(tmp, env):
        config = _config(tmp, listen=address)
        return ["run", "--config", config], re.compile(re.escape(str(config)) + r".*http\.listen")
    return setup


def _listen_in_use(tmp, env):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env["keep-open"] = taken
    address = f"127.0.0.1:{taken.getsockname()[1]}"
    return ["run", "--config", _config(tmp), "--listen", address], re.compile(
        rf"--listen {re.escape(address)}: cannot listen: the address is already in use")


def _bearer_env(value: str) -> Callable:
    def setup(tmp, env):
        env["MONITOR_HOSTILE_TOKEN"] = value
        config = _config(tmp, extra="")
        config.write_text(config.read_text().replace(
            "prometheus:\n", "prometheus:\n  bearer_token_env: MONITOR_HOSTILE_TOKEN\n"))
        return ["run", "--once", "--config", config], "environment variable MONITOR_HOSTILE_TOKEN"
    return setup


def _bearer_file(content: bytes) -> Callable:
    def setup(tmp, env):
        secret = tmp / "prom-token"
        secret.write_bytes(content)
        config = _config(tmp)
        config.write_text(config.read_text().replace("prometheus:\n", f"prometheus:\n  bearer_token_file: {secret}\n"))
        return ["run", "--once", "--config", config], f"secret file {secret}"
    return setup


def _simulate_over_existing(tmp, env):
    out = tmp / "sim"
    out.mkdir()
    (out / "monitor.yaml").write_text("# my edited config\n")
    return ["simulate", "--out", out, "--days", "1"], f"{out / 'monitor.yaml'} already exists"


def _simulate_into_a_file(tmp, env):
    target = tmp / "not-a-dir"
    target.write_text("x")
    return ["simulate", "--out", target, "--days", "1"], f"--out {target}"


def _report_out_under_a_file(tmp, env):
    blocker = tmp / "blocker"
    blocker.write_text("a file where the report directory should go")
    # Checked before the build: no Prometheus is needed to hear that --out is unusable.
    return ["report", "--config", _config(tmp), "--week", "2026-W47", "--out", blocker / "reports"], re.compile(
        rf"cannot write the report to {re.escape(str(blocker))}")


def _reports_dir_under_a_file(tmp, env):
    blocker = tmp / "blocker"
    blocker.write_text("a file where reports.dir should go")
    config = _config(tmp, extra=f"reports:\n  dir: {blocker / 'reports'}\n")
    return ["report", "--config", config, "--week", "2026-W47"], re.compile(
        rf"cannot write the report to {re.escape(str(blocker))}")


CASES = {
    "a listen flag with no port is refused naming --listen": Case(_listen_flag("nonsense")),
    "a listen port past 65535 is refused naming --listen": Case(_listen_flag("127.0.0.1:99999")),
    "an IPv6 listen address without brackets is refused naming --listen": Case(_listen_flag("::1:9464")),
    "a listen host with a space is refused naming --listen": Case(_listen_flag("bad host:9464")),
    "an unparsable http.listen is refused naming the config and the key": Case(_listen_in_config("nonsense")),
    "a listen address already in use is one line saying so": Case(_listen_in_use),
    "a bearer token with an embedded newline is refused naming the variable": Case(_bearer_env("abc\ndef")),
    "a bearer token with an escape character is refused naming the variable": Case(_bearer_env("abc\x1b[2Jdef")),
    "an empty bearer token variable is refused naming the variable": Case(_bearer_env("")),
    "a bearer token file with two lines is refused naming the file": Case(_bearer_file(b"first\nsecond\n")),
    "a bearer token file that is not UTF-8 is refused naming the file": Case(_bearer_file(b"\xff\xfe\xfa")),
    "simulate refuses to overwrite an existing monitor.yaml": Case(_simulate_over_existing),
    "simulate into a path that is a file is refused naming --out": Case(_simulate_into_a_file),
    "simulate --days 0 is refused naming --days": Case(lambda tmp, env: (["simulate", "--out", tmp / "s", "--days",
                                                                         "0"], "--days")),
    "an unknown log level is a usage error naming --log-level": Case(
        lambda tmp, env: (["--log-level", "LOUD", "alerts"], "--log-level"), codes=(2,)),
    "completion for an unknown shell is a usage error naming the choice": Case(
        lambda tmp, env: (["completion", "fish"], "fish"), codes=(2,)),
    "the daemon refuses --at, which goes with --once": Case(
        lambda tmp, env: (["run", "--config", _config(tmp), "--at", "2026-11-20T00:00:00Z"], "--at")),
    "a report --out under a file is one line, before any work": Case(_report_out_under_a_file),
    "a reports.dir under a file is one line, before any work": Case(_reports_dir_under_a_file),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_hostile_input_at_the_daemon_and_cli_edges(case: Case, tmp_path, capsys, monkeypatch):
    env: dict = {}
    argv, names = case.setup(tmp_path, env)
    for key, value in env.items():
        if key.isupper():
            monkeypatch.setenv(key, value)
    try:
        outcome = run_in_process(argv, capsys)
    finally:
        if "keep-open" in env:
            env["keep-open"].close()
    # argparse prints its usage line above the error for usage errors: two lines there.
    assert_handled(outcome, names, codes=case.codes, max_lines=2 if case.codes == (2,) else 1)
