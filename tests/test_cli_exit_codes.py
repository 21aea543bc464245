"""Exit codes scripts can rely on (README, "Exit codes"): slo and cost exit 1 when any query
failed, still printing what they have; check exits 0, 1 or 2."""

from __future__ import annotations

import json
import textwrap

from monitor.cli import main
from monitor.simulate.local_prometheus import free_port

BROKEN_SPEC = textwrap.dedent("""
    version: prometheus/v1
    service: broken
    slos:
      - name: typo
        objective: 99.9
        sli:
          events:
            error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}])
            total_query: sum(rate(http_requests_total[{{.window}}]))
    """).lstrip()


def _at(fleet_end) -> str:
    return fleet_end.isoformat().replace("+00:00", "Z")


def test_slo_exits_0_when_every_query_is_answered(fleet_end, fleet_config_path, capsys):
    assert main(["slo", "--config", str(fleet_config_path), "--at", _at(fleet_end), "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_slo_exits_1_when_one_slos_query_is_wrong_and_still_prints_every_slo(fleet_end, fleet_config_path,
                                                                             sim_dir, tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_SPEC)
    specs = sorted(str(p) for p in (sim_dir / "slos").glob("*.yaml"))
    code = main(["slo", "--config", str(fleet_config_path), "--at", _at(fleet_end), "--json",
                 "--spec", *specs, str(broken)])
    captured = capsys.readouterr()
    assert code == 1
    doc = json.loads(captured.out)
    by_id = {s["id"]: s for s in doc["slos"]}
    assert by_id["broken-typo"]["error_budget_remaining"] is None and by_id["broken-typo"]["problems"]
    healthy = [s for s in doc["slos"] if s["id"] != "broken-typo"]
    assert healthy and all(s["error_budget_remaining"] is not None for s in healthy if s["events"]["total"])
    [line] = captured.err.strip().splitlines()
    assert line.startswith("monitor: error: ") and "Prometheus queries failed" in line


def test_slo_exits_1_when_prometheus_is_down_and_prints_no_data(fleet_end, fleet_config_path, capsys):
    down = f"http://127.0.0.1:{free_port()}"
    code = main(["slo", "--config", str(fleet_config_path), "--at", _at(fleet_end), "--prometheus", down])
    captured = capsys.readouterr()
    assert code == 1
    assert "SLOs at" in captured.out and "no data" in captured.out  # the table is printed all the same
    [line] = captured.err.strip().splitlines()
    assert "Prometheus queries failed" in line


def test_cost_exits_0_when_answered_and_1_when_prometheus_is_down(fleet_end, fleet_config_path, capsys):
    window = ["--from", "2026-11-20T00:00:00Z", "--to", _at(fleet_end)]
    assert main(["cost", "--config", str(fleet_config_path), *window, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"]
    down = f"http://127.0.0.1:{free_port()}"
    assert main(["cost", "--config", str(fleet_config_path), *window, "--prometheus", down]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("monitor: error: ") and "127.0.0.1" in line


def test_check_exits_0_clean_1_on_problems_2_on_usage(fleet_config_path, tmp_path, capsys):
    assert main(["check", "--config", str(fleet_config_path)]) == 0
    bad = tmp_path / "monitor.yaml"
    bad.write_text("prometheus:\n  url: http://127.0.0.1:9090\nschedule:\n  evaluate_evry: 1m\n")
    assert main(["check", "--config", str(bad)]) == 1
    try:
        main(["check", "--no-such-flag"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("a usage error did not exit")
