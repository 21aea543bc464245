"""The alerting commands' arguments, output and errors (no Prometheus needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.simulate.local_prometheus import free_port


@pytest.fixture
def config(tmp_path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("""version: monitor/v1
groups:
  - name: g
    rules:
      - alert: Stale
        expr: time() - last_success > 3600
        labels: {severity: ticket}
""")
    path = tmp_path / "monitor.yaml"
    path.write_text(f"prometheus: {{url: 'http://127.0.0.1:{free_port()}', timeout: 2s}}\n"
                    f"rules: ['rules/*.yaml']\nstate: {{path: state.db}}\n")
    return path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_silences_are_added_listed_and_expired(config, capsys):
    code, out, err = cli(capsys, "silence", "add", "--match", "service=ranker", "--match", 'model=~"rank.*"',
                         "--for", "2h", "--comment", "deploying v3", "--author", "ana", "--config", str(config))
    assert code == 0, err
    silence_id = out.strip()
    code, out, _ = cli(capsys, "silence", "list", "--json", "--config", str(config))
    [listed] = json.loads(out)
    assert listed == {**listed, "id": silence_id, "matchers": ['service="ranker"', 'model=~"rank.*"'],
                      "createdBy": "ana", "comment": "deploying v3", "status": "active"}
    code, out, _ = cli(capsys, "silence", "expire", silence_id, "--config", str(config))
    assert code == 0 and out.startswith(f"expired {silence_id}")
    assert json.loads(cli(capsys, "silence", "list", "--json", "--config", str(config))[1]) == []
    [expired] = json.loads(cli(capsys, "silence", "list", "--json", "--all", "--config", str(config))[1])
    assert expired["status"] == "expired"


@pytest.mark.parametrize("args, message", [
    pytest.param(["--match", "service", "--for", "2h"], "invalid matcher 'service'", id="a matcher without a value"),
    pytest.param(["--match", "a=b", "--for", "2 hours"], "--for: invalid duration", id="a bad duration"),
    pytest.param(["--match", "a=b"], "give exactly one of --for DURATION or --end TIME", id="no end"),
    pytest.param(["--match", "a=b", "--start", "2026-11-22T10:00Z", "--end", "2026-11-22T09:00Z"],
                 "must end after it starts", id="an end before the start"),
])
def test_bad_silences_are_one_clear_error_line(config, capsys, args, message):
    code, _out, err = cli(capsys, "silence", "add", *args, "--comment", "x", "--config", str(config))
    assert code == 1
    assert err.count("\n") == 1 and message in err


def test_expiring_an_unknown_silence_fails_clearly(config, capsys):
    code, _out, err = cli(capsys, "silence", "expire", "nope", "--config", str(config))
    assert code == 1 and "no silence with id 'nope'" in err


def test_run_once_with_prometheus_down_fails_counts_the_cycle_and_lists_no_alerts(config, capsys):
    code, out, err = cli(capsys, "run", "--once", "--at", "2026-11-22T10:00Z", "--json", "--config", str(config))
    assert code == 1
    report = json.loads(out)
    assert report["cycle"]["status"] == "failed" and "connection refused" in report["cycle"]["error"]
    assert report["cycle"]["evaluated_at"] == "2026-11-22T10:00:00Z"
    code, out, _ = cli(capsys, "alerts", "--config", str(config))
    assert code == 0 and out == "no alerts\ncycles: 0 ok, 1 failed\n"


def test_a_bad_at_time_is_an_argument_error(config, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--once", "--at", "yesterday", "--config", str(config)])
    assert "not an ISO 8601 time: 'yesterday'" in capsys.readouterr().err
