"""A cycle tells the server's faults (freeze everything) from a query's (isolate its definition).

Against a Prometheus API stand-in on loopback that answers each query as the test
says: a sample, nothing, a 400 `bad_data`, a 422 `execution` or a 503. The real
server's versions of these (and SLOs and models) are in test_definition_errors.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from monitor.alerting.definition_error_repository import DefinitionErrorRepository
from monitor.alerting.evaluate import evaluate_rules
from monitor.alerting.lifecycle import AlertState, advance
from monitor.alerting.rule_spec import load_rule_file
from monitor.config import Config
from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.log_format import current_cycle_id
from monitor.pipeline import freeze_broken, run_cycle
from monitor.signals import Signal
from monitor.sources.prometheus import PrometheusSource, QueryError
from monitor.store import StateStore
from standins.http_base import LoopbackServer, QuietHandler

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
RULES = """\
version: monitor/v1
groups:
  - name: g
    rules:
      - alert: A
        expr: a_up > 0
        labels: {severity: page}
      - alert: B
        expr: b_up > 0
        labels: {severity: page}
"""


class ScriptedPrometheus:
    """Answers `/api/v1/query` per query text: a number (one sample), None (empty), or an error name."""

    ERRORS = {"bad_data": (400, "bad_data", 'invalid parameter "query": 1:1: parse error: unknown function'),
              "execution": (422, "execution", "many-to-many matching not allowed"),
              "unavailable": (503, "unavailable", "TSDB not ready")}

    def __init__(self) -> None:
        self.answers: dict[str, float | str | None] = {}
        self.server = LoopbackServer(_Handler, self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


# The query engine folds queries of one instant into one, each part tagged by
# `label_replace(<query>, "<tag>", "<i>", "", "")`; as in Prometheus, one failing part
# fails the whole query (the engine then asks the parts one by one).
_TAGGED_PART = re.compile(r'label_replace\((.+?), "(\w+)", "(\d+)", "", ""\)')


class _Handler(QuietHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        query = parse_qs(self.read_body().decode())["query"][0]
        parts = [(m.group(1), {m.group(2): m.group(3)}) for m in _TAGGED_PART.finditer(query)] or [(query, {})]
        answers = [(self.server.standin.answers.get(part), tag) for part, tag in parts]  # type: ignore[attr-defined]
        failed = next((answer for answer, _ in answers if isinstance(answer, str)), None)
        if failed is not None:
            status, error_type, message = ScriptedPrometheus.ERRORS[failed]
            self.answer(status, json.dumps({"status": "error", "errorType": error_type, "error": message}).encode())
            return
        result = [{"metric": {"job": "x", **tag}, "value": [0, str(answer)]}
                  for answer, tag in answers if answer is not None]
        self.answer(200, json.dumps({"status": "success",
                                     "data": {"resultType": "vector", "result": result}}).encode())


@pytest.fixture
def scripted():
    standin = ScriptedPrometheus()
    standin.server.start()
    yield standin
    standin.server.stop()


@pytest.fixture
def rules(tmp_path):
    (tmp_path / "rules.yaml").write_text(RULES)
    return [*load_rule_file(tmp_path / "rules.yaml"), *load_rule_file(REPO / "monitor" / "default_rules" /
                                                                        "monitor.yaml")]


def cycle(scripted: ScriptedPrometheus, store: StateStore, rules, at: datetime, producers=()):
    with PrometheusSource(scripted.url, timeout=5, retries=0) as source:
        return run_cycle(Config(), store, source, at, rules=rules, producers=producers)


def states(report) -> dict[tuple[str, str], str]:
    return {(a.alertname, a.labels.get("name", "")): a.state.value for a in report.alerts.values()}


def test_a_rejected_rule_keeps_its_alerts_and_fires_the_self_alert_while_the_other_rule_resolves(
        scripted, rules, tmp_path, open_state):
    with open_state() as store:
        scripted.answers = {"a_up > 0": 1.0, "b_up > 0": 1.0}
        first = cycle(scripted, store, rules, T0)
        assert states(first) == {("A", ""): "firing", ("B", ""): "firing"}

        # A's query is now wrong; B's condition no longer holds.
        scripted.answers = {"a_up > 0": "bad_data", "b_up > 0": None}
        broken = cycle(scripted, store, rules, T0 + timedelta(minutes=1))
        assert broken.ok
        assert broken.definition_errors == [DefinitionError(DefinitionKind.RULE, "g/A",
                                                            "bad_data: 1:1: parse error: unknown function")]
        assert states(broken) == {("A", ""): "firing", ("B", ""): "resolved",
                                  ("MonitorDefinitionBroken", "g/A"): "firing"}
        # A is frozen as it was: not re-evaluated, no transition.
        assert broken.alerts[next(fp for fp, a in broken.alerts.items() if a.alertname == "A")].last_evaluated_at \
            == T0
        assert {t.alertname for t in broken.transitions} == {"B", "MonitorDefinitionBroken"}
        [recorded] = DefinitionErrorRepository(store).current()
        assert (recorded.error, recorded.since) == (broken.definition_errors[0], T0 + timedelta(minutes=1))

        # Fixed: A is evaluated again (and resolves), and the self-alert resolves with it.
        scripted.answers = {"a_up > 0": None, "b_up > 0": None}
        fixed = cycle(scripted, store, rules, T0 + timedelta(minutes=2))
        assert fixed.definition_errors == []
        assert states(fixed) == {("A", ""): "resolved", ("B", ""): "resolved",
                                 ("MonitorDefinitionBroken", "g/A"): "resolved"}
        assert DefinitionErrorRepository(store).current() == []
        counts = store.query("SELECT definition_errors FROM cycles ORDER BY id")
        assert [row[0] for row in counts] == [0, 1, 0]


def test_an_execution_error_is_the_querys_fault_too(scripted, rules, tmp_path, open_state):
    with open_state() as store:
        scripted.answers = {"a_up > 0": "execution", "b_up > 0": 1.0}
        report = cycle(scripted, store, rules, T0)
    assert report.ok and [e.name for e in report.definition_errors] == ["g/A"]
    assert report.definition_errors[0].message == "execution: many-to-many matching not allowed"
    assert states(report) == {("B", ""): "firing", ("MonitorDefinitionBroken", "g/A"): "firing"}


def test_a_server_error_on_one_rule_fails_the_cycle_and_changes_nothing(scripted, rules, tmp_path, open_state):
    with open_state() as store:
        scripted.answers = {"a_up > 0": 1.0, "b_up > 0": 1.0}
        before = cycle(scripted, store, rules, T0).alerts
        # B's condition no longer holds, but A's answer is a 503: nothing may resolve.
        scripted.answers = {"a_up > 0": "unavailable", "b_up > 0": None}
        failed = cycle(scripted, store, rules, T0 + timedelta(minutes=1))
        assert not failed.ok and "TSDB not ready" in failed.error
        assert failed.alerts == before and failed.definition_errors == [] and failed.transitions == []
        assert all(a.state is AlertState.FIRING for a in failed.alerts.values())
        assert [r["status"] for r in store.query("SELECT status FROM cycles ORDER BY id")] == ["ok", "failed"]


def test_a_rejected_query_that_no_definition_owns_fails_the_cycle(scripted, rules, tmp_path, open_state):
    def careless_producer(source, config, at, store):
        try:
            source.instant("orphan", at)
        except QueryError:
            pass  # swallowed without saying whose it was
        return []

    with open_state() as store:
        scripted.answers = {"a_up > 0": None, "b_up > 0": None, "orphan": "bad_data"}
        report = cycle(scripted, store, rules, T0, producers=[careless_producer])
    assert not report.ok
    assert report.error == "query failed (1 queries were rejected and no SLO, rule or model owns them): (producers)"


SIGNAL_RULES = """\
version: monitor/v1
groups:
  - name: s
    rules:
      - alert: Idle
        condition: gpu_utilization < 0.1
        labels: {severity: ticket}
      - alert: Burn
        condition: slo_page == 1
        labels: {severity: page}
"""


@pytest.mark.parametrize("error, frozen", [
    (DefinitionError(DefinitionKind.MODEL, "ranker", "bad_data: x"), {("Idle", "ranker")}),
    (DefinitionError(DefinitionKind.SLO, "recommender-availability", "bad_data: x"),
     {("Burn", "recommender-availability")}),
    (DefinitionError(DefinitionKind.MODEL, "tagger", "bad_data: x"), set()),
], ids=["a broken model keeps its signal alerts", "a broken SLO keeps its alerts",
        "a broken model keeps no other model's alerts"])
def test_a_broken_definitions_alerts_keep_their_state_when_its_signals_are_missing(tmp_path, error, frozen):
    (tmp_path / "rules.yaml").write_text(SIGNAL_RULES)
    rules = load_rule_file(tmp_path / "rules.yaml")
    firing = [Signal("gpu_utilization", {"model": "ranker"}, 0.01),
              Signal("slo_page", {"slo_id": "recommender-availability", "service": "r", "slo": "a"}, 1.0)]
    outcomes = evaluate_rules(rules, firing, {})
    previous, _ = advance({}, rules, outcomes.instances, T0, outcomes.absent_means)
    assert {a.state for a in previous.values()} == {AlertState.FIRING}
    # Next cycle: the broken definition produced nothing (and the other's condition no longer holds).
    healthy = [Signal("gpu_utilization", {"model": "ranker"}, 0.5),
               Signal("slo_page", {"slo_id": "recommender-availability", "service": "r", "slo": "a"}, 0.0)]
    healthy = [s for s in healthy if not (s.labels.get("model") == error.name or
                                          s.labels.get("slo_id") == error.name)]
    outcomes = evaluate_rules(rules, healthy, {})
    stepped, transitions = advance(previous, rules, outcomes.instances, T0 + timedelta(minutes=1),
                                   outcomes.absent_means)
    alerts, kept_transitions = freeze_broken(previous, stepped, transitions, rules, [error])
    for fp, alert in alerts.items():
        key = (alert.alertname, alert.labels.get("model") or alert.labels.get("slo_id"))
        if key in frozen:
            assert alert == previous[fp]  # as it was: still firing, last evaluated before
        else:
            assert alert.state is AlertState.RESOLVED
    assert {t.alertname for t in kept_transitions} == {"Idle", "Burn"} - {name for name, _ in frozen}


def test_the_producers_run_side_by_side_in_the_callers_context_and_keep_their_order(
        scripted, rules, tmp_path, open_state):
    # Each producer waits at a barrier for the other: one after the other, the first would
    # wait out the barrier's timeout and break it.
    both_running = threading.Barrier(2, timeout=10)
    seen_cycle_ids = []

    def producer(name: str, finish_after_s: float):
        def produce(source, config, at, store):
            both_running.wait()
            seen_cycle_ids.append(current_cycle_id.get())
            time.sleep(finish_after_s)
            return [Signal(name, {"model": name}, 1.0)]
        return produce

    scripted.answers = {"a_up > 0": None, "b_up > 0": None}
    token = current_cycle_id.set("c0ffee01")
    try:
        with open_state() as store:
            # The first producer finishes last; its signals still come first.
            report = cycle(scripted, store, rules, T0, producers=(producer("first", 0.3), producer("second", 0)))
    finally:
        current_cycle_id.reset(token)
    assert report.ok, report.error
    assert [s.name for s in report.signals if s.name in ("first", "second")] == ["first", "second"]
    assert seen_cycle_ids == ["c0ffee01", "c0ffee01"]  # log lines from a producer name the cycle
