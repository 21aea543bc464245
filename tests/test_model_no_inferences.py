"""No data is not silence: a model whose inference series vanish pages ModelNoInferences.

The simulated fleet's series end at `fleet_end`, as when every pod is gone: after the
last sample, `rate(nv_inference_count[5m])` still answers until the 5-minute window
holds fewer than two samples, then returns nothing, which is no data (never 0). The
default rule's no-data alert must then page within the rule's `for` (30 minutes) of
the last inference. Each step is `monitor run --once --at` against the real
Prometheus, with a state file carried between them, as a daemon's cycles would.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitor.cli import main
from monitor.simulate.writers import fleet_config

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RULES = REPO / "monitor" / "default_rules" / "*.yaml"
RATE_WINDOW = timedelta(minutes=5)
RULE_FOR = timedelta(minutes=30)


def rate_answers(fleet, series_list, at: datetime) -> bool:
    """Whether Prometheus 2.x answers sum(rate(x[5m])) at `at`: some series has two or more
    samples in [at-5m, at] (a NaN value is a minute the series was not written)."""
    end = at.timestamp()
    in_window = (fleet.timestamps >= end - RATE_WINDOW.total_seconds()) & (fleet.timestamps <= end)
    return any(int((in_window & np.isfinite(s.values)).sum()) >= 2 for s in series_list)


class Cycles:
    def __init__(self, fleet_config_path: Path, tmp_path: Path, capsys):
        config = yaml.safe_load(fleet_config_path.read_text())
        config["rules"] = [str(DEFAULT_RULES)]
        config["state"] = {"path": str(tmp_path / "state.db")}
        self.config = fleet_config_path.parent / "scenario-no-inferences.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.capsys = capsys

    def cli(self, *args: str) -> str:
        code = main([*args, "--config", str(self.config)])
        captured = self.capsys.readouterr()
        assert code == 0, captured.err
        return captured.out

    def run(self, at: datetime) -> dict:
        return json.loads(self.cli("run", "--once", "--at", at.isoformat(), "--json"))

    def no_inferences(self, model: str) -> dict[str, str]:
        """State of ModelNoInferences for `model`: of the alert itself and of its no-data alert."""
        out: dict[str, str] = {}
        for alert in json.loads(self.cli("alerts", "--json", "--all"))["alerts"]:
            labels = alert["labels"]
            if labels["alertname"] == "ModelNoInferences" and labels.get("model") == model:
                kind = "nodata" if labels.get("alertstate") == "nodata" else "alert"
                assert kind not in out
                out[kind] = alert["state"]
                if kind == "nodata":
                    out["summary"] = alert["annotations"]["summary"]
        return out


def test_a_model_whose_inference_series_vanish_pages_within_the_rules_for(fleet, fleet_end, fleet_config_path,
                                                                          tmp_path, capsys):
    model = "ranker"
    series = fleet.find("nv_inference_count", model=model)
    assert series
    last_sample = max(datetime.fromtimestamp(float(fleet.timestamps[np.isfinite(s.values)][-1]), tz=fleet_end.tzinfo)
                      for s in series)
    assert last_sample == fleet_end  # one sample a minute up to fleet_end, then none
    # Independently of the daemon: the first minute Prometheus has no rate, and the cycle
    # after which no data has lasted the rule's no_data_for (25m), given one cycle a minute.
    minutes = [fleet_end + timedelta(minutes=m) for m in range(0, 60)]
    first_silent = next(at for at in minutes if not rate_answers(fleet, series, at))
    assert rate_answers(fleet, series, first_silent - timedelta(minutes=1))
    pages_at = first_silent + timedelta(minutes=25)
    assert pages_at - last_sample <= RULE_FOR

    cycles = Cycles(fleet_config_path, tmp_path, capsys)
    expected = [
        (fleet_end - timedelta(minutes=1), {}),                                        # serving
        (first_silent - timedelta(minutes=1), {}),                                     # the rate still answers
        (first_silent, {"alert": "no_data"}),                                          # no data, not 0, not paged
        (pages_at - timedelta(minutes=1), {"alert": "no_data"}),                       # 24 minutes: still waiting
        (pages_at, {"alert": "no_data", "nodata": "firing"}),                          # pages
    ]
    for at, states in expected:
        cycle = cycles.run(at)
        found = cycles.no_inferences(model)
        summary = found.pop("summary", None)
        assert found == states, at
    assert summary == f"ModelNoInferences for model={model}: no data since {first_silent:%Y-%m-%dT%H:%M:%SZ}"

    # The page is notified in the cycle it fires, with the rule's severity and the nodata label.
    paged = [n for n in cycle["notifications"] if '"alertstate": "nodata"' in json.dumps(n)
             and '"ModelNoInferences"' in json.dumps(n)]
    assert paged, cycle["notifications"]
    assert '"severity": "page"' in json.dumps(paged[0])
    # Every model's series vanished at once: each pages, and no other rule makes a no-data alert
    # (the SLO, drift and cost rules keep their state when their data is gone).
    alerts = json.loads(cycles.cli("alerts", "--json"))["alerts"]
    nodata = sorted(a["labels"]["model"] for a in alerts if a["labels"].get("alertstate") == "nodata")
    assert nodata == sorted(m["name"] for m in fleet_config("x")["models"])
    assert {a["labels"]["alertname"] for a in alerts if a["labels"].get("alertstate") == "nodata"} == {
        "ModelNoInferences"}
