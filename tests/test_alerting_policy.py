"""Notification policy: grouping, waits, repeats, resolved, silences, inhibition and rollbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from monitor.alerting.condition import Matcher
from monitor.alerting.lifecycle import Alert, AlertState, alert_labels, fingerprint
from monitor.alerting.notifications import NotificationKind
from monitor.alerting.policy import apply_inhibition, apply_silences, plan_group_notifications, plan_rollbacks
from monitor.alerting.rule_spec import Action, Rule
from monitor.alerting.silences import Silence, SilenceError, parse_matcher
from monitor.alerting.versions import ModelVersion, last_known_good, observe_serving
from monitor.config import AlertingConfig
from monitor.durations import parse_duration
from monitor.signals import Signal

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def alert(name: str, state: AlertState = AlertState.FIRING, at: datetime = T0, **labels: str) -> Alert:
    full = {**labels, "alertname": name}
    return Alert(fingerprint(full), name, f"g/{name}", full, {"summary": f"{name} summary"}, state, at,
                 active_since=at, fired_at=at if state in (AlertState.FIRING, AlertState.RESOLVED) else None,
                 resolved_at=at if state is AlertState.RESOLVED else None)


def by_fp(*alerts: Alert) -> dict[str, Alert]:
    return {a.fingerprint: a for a in alerts}


class Timeline:
    """Feeds alert sets to the planner at successive times, carrying the group state."""

    def __init__(self, config: AlertingConfig):
        self.config = config
        self.groups: dict = {}

    def at(self, when: datetime, *alerts: Alert) -> list:
        notes, self.groups = plan_group_notifications(by_fp(*alerts), self.groups, self.config, when)
        return notes


def test_a_group_waits_group_wait_then_sends_every_alert_of_the_group_at_once():
    timeline = Timeline(AlertingConfig(group_by=["service"], group_wait=timedelta(seconds=30)))
    a = alert("HighErrors", service="checkout")
    b = alert("HighLatency", service="checkout")
    assert timeline.at(T0, a) == []
    [note] = timeline.at(minutes(1), a, b)
    assert note.kind is NotificationKind.FIRING
    assert {x.alertname for x in note.payload.alerts} == {"HighErrors", "HighLatency"}
    assert note.payload.group_labels == {"service": "checkout"}


def test_groups_are_separate_per_group_by_value_and_not_duplicated():
    timeline = Timeline(AlertingConfig(group_by=["service"]))
    notes = timeline.at(T0, alert("E", service="a"), alert("E", service="b"))
    assert sorted(n.payload.group_labels["service"] for n in notes) == ["a", "b"]
    assert timeline.at(minutes(1), alert("E", service="a"), alert("E", service="b")) == []


def test_a_new_alert_in_a_notified_group_waits_for_group_interval():
    timeline = Timeline(AlertingConfig(group_by=["service"], group_interval=timedelta(minutes=5)))
    a, b = alert("A", service="s"), alert("B", service="s", at=minutes(2))
    assert len(timeline.at(T0, a)) == 1
    assert timeline.at(minutes(2), a, b) == []
    [note] = timeline.at(minutes(5), a, b)
    assert note.kind is NotificationKind.FIRING and note.payload.firing_count == 2


@pytest.mark.parametrize("repeat, expected_repeats", [
    pytest.param("4h", 2, id="an unchanged firing group is repeated every repeat_interval (default 4h)"),
    pytest.param("12h", 0, id="no repeat before the repeat interval"),
])
def test_repeat_interval(repeat, expected_repeats):
    timeline = Timeline(AlertingConfig(repeat_interval=parse_duration(repeat)))
    a = alert("A")
    kinds = [n.kind for hour in range(0, 10) for n in timeline.at(minutes(60 * hour), a)]
    assert kinds.count(NotificationKind.FIRING) == 1
    assert kinds.count(NotificationKind.REPEAT) == expected_repeats


def test_the_default_repeat_interval_is_four_hours():
    assert AlertingConfig().repeat_interval == timedelta(hours=4)


def test_resolved_alerts_are_notified_once_and_only_if_they_were_notified_firing():
    timeline = Timeline(AlertingConfig())
    a = alert("A")
    timeline.at(T0, a)
    resolved = replace(a, state=AlertState.RESOLVED, resolved_at=minutes(10))
    [note] = timeline.at(minutes(10), resolved)
    assert note.kind is NotificationKind.RESOLVED and note.payload.status == "resolved"
    assert note.payload.alerts[0].ends_at == "2026-11-22T00:10:00Z"
    assert timeline.at(minutes(20), resolved) == []
    assert timeline.groups == {}
    never_told = alert("B", AlertState.RESOLVED)
    assert timeline.at(minutes(30), never_told) == []


def test_no_data_is_not_notified_as_resolved():
    timeline = Timeline(AlertingConfig())
    a = alert("A")
    timeline.at(T0, a)
    assert timeline.at(minutes(10), replace(a, state=AlertState.NO_DATA)) == []


def test_idempotency_keys_are_stable_for_the_same_cycle():
    first = Timeline(AlertingConfig()).at(T0, alert("A"))
    again = Timeline(AlertingConfig()).at(T0, alert("A"))
    assert [n.idempotency_key for n in first] == [n.idempotency_key for n in again]


def silence(*matchers: str, start: datetime = T0, hours: float = 2) -> Silence:
    return Silence("s1", tuple(parse_matcher(m) for m in matchers), start, start + timedelta(hours=hours),
                   "sre", "deploying", start)


@pytest.mark.parametrize("matchers, labels, silenced", [
    pytest.param(["service=ranker"], {"service": "ranker"}, True, id="an equality matcher silences"),
    pytest.param(["service=ranker"], {"service": "recommender"}, False, id="other label values are not silenced"),
    pytest.param(["service=ranker", "severity=page"], {"service": "ranker", "severity": "ticket"}, False,
                 id="every matcher must match"),
    pytest.param(['model=~"rank.*"'], {"model": "ranker"}, True, id="a regex matcher silences"),
    pytest.param(["severity!=page"], {"severity": "ticket"}, True, id="a negative matcher silences"),
])
def test_silence_matching(matchers, labels, silenced):
    marked = apply_silences(by_fp(alert("A", **labels)), [silence(*matchers)], minutes(30))
    assert bool(next(iter(marked.values())).silenced_by) == silenced


def test_a_silence_only_mutes_within_its_time_range_and_a_silenced_alert_is_not_notified():
    s = silence("service=ranker", start=minutes(60))
    a = alert("A", service="ranker")
    assert not apply_silences(by_fp(a), [s], minutes(30))[a.fingerprint].silenced_by
    muted = apply_silences(by_fp(a), [s], minutes(90))
    assert muted[a.fingerprint].silenced_by == ("s1",)
    assert Timeline(AlertingConfig()).at(minutes(90), *muted.values()) == []
    assert not apply_silences(by_fp(a), [s], minutes(181))[a.fingerprint].silenced_by


@pytest.mark.parametrize("text", ["service", "=ranker", 'model=~"("'])
def test_invalid_silence_matchers_are_rejected(text):
    with pytest.raises(SilenceError):
        parse_matcher(text)


def test_a_page_inhibits_the_ticket_of_the_same_slo_only():
    page = alert("SLOPage", slo_id="checkout/avail", severity="page")
    ticket = alert("SLOTicket", slo_id="checkout/avail", severity="ticket")
    other_ticket = alert("SLOTicket", slo_id="search/latency", severity="ticket")
    marked = apply_inhibition(by_fp(page, ticket, other_ticket), AlertingConfig().inhibit)
    assert marked[ticket.fingerprint].inhibited
    assert not marked[page.fingerprint].inhibited and not marked[other_ticket.fingerprint].inhibited
    [note] = Timeline(AlertingConfig(group_by=["..."])).at(T0, marked[ticket.fingerprint],
                                                           marked[page.fingerprint]) or [None]
    assert [a.alertname for a in note.payload.alerts] == ["SLOPage"]


def test_a_page_without_the_equal_labels_inhibits_nothing():
    drift_page = alert("ModelPredictionDrift", model="ranker", severity="page")
    gpu_ticket = alert("GPUIdle", model="churn-scorer", severity="ticket")
    marked = apply_inhibition(by_fp(drift_page, gpu_ticket), AlertingConfig().inhibit)
    assert not marked[gpu_ticket.fingerprint].inhibited


def test_a_pending_page_does_not_inhibit():
    page = alert("SLOPage", AlertState.PENDING, slo_id="x", severity="page")
    ticket = alert("SLOTicket", slo_id="x", severity="ticket")
    assert not apply_inhibition(by_fp(page, ticket), AlertingConfig().inhibit)[ticket.fingerprint].inhibited


# -- model versions and rollbacks ------------------------------------------------------

def serving(model: str, version: str, rate: float = 10.0) -> Signal:
    return Signal("model_inference_rate", {"model": model, "version": version}, rate)


def test_versions_record_first_and_last_seen_serving():
    versions = observe_serving({}, [serving("ranker", "v1"), serving("ranker", "", 5.0)], T0)
    versions = observe_serving(versions, [serving("ranker", "v1"), serving("ranker", "v2", 0.0)], minutes(60))
    assert list(versions) == [("ranker", "v1")]  # whole-model and idle signals are not versions
    assert versions[("ranker", "v1")].first_seen_at == T0 and versions[("ranker", "v1")].last_seen_at == minutes(60)


@pytest.mark.parametrize("v2_served_hours, v2_rolled_back, expected", [
    pytest.param(30, False, "v2", id="the newest version that served long enough is last-known-good"),
    pytest.param(2, False, "v1", id="a version that has not served long enough is not yet last-known-good"),
    pytest.param(30, True, "v1", id="a version that had a rollback alert fire is never last-known-good"),
])
def test_last_known_good(v2_served_hours, v2_rolled_back, expected):
    versions = {("m", "v1"): ModelVersion("m", "v1", T0, minutes(60 * 48)),
                ("m", "v2"): ModelVersion("m", "v2", minutes(60 * 10), minutes(60 * (10 + v2_served_hours)),
                                          minutes(60 * 11) if v2_rolled_back else None)}
    assert last_known_good(versions, "m", timedelta(hours=24)).version == expected


def drift_rule() -> Rule:
    return Rule("Drift", "drift", "rules.yaml", 3, timedelta(0), timedelta(0), {"severity": "page"}, {},
                frozenset({Action.ROLLBACK}), expr="x")


def drift_alert(version: str, state: AlertState = AlertState.FIRING, **extra) -> Alert:
    labels = alert_labels(drift_rule(), {"model": "ranker", "version": version, "column": "prediction"})
    return replace(alert("Drift", state, at=minutes(60 * 30), **{k: v for k, v in labels.items()
                                                                 if k != "alertname"}), **extra)


VERSIONS = {("ranker", "v1"): ModelVersion("ranker", "v1", T0, minutes(60 * 31)),
            ("ranker", "v2"): ModelVersion("ranker", "v2", minutes(60 * 29), minutes(60 * 31))}


def test_a_firing_rollback_alert_on_a_newer_version_requests_a_rollback_to_last_known_good():
    a = drift_alert("v2", evidence={"drift_psi": 0.4})
    plan = plan_rollbacks(by_fp(a), {"Drift": drift_rule()}, VERSIONS, AlertingConfig(), minutes(60 * 31))
    [note] = plan.notifications
    assert note.kind is NotificationKind.ROLLBACK_REQUESTED
    assert {k: getattr(note.payload, k) for k in ("model", "bad_version", "last_known_good_version")} == \
        {"model": "ranker", "bad_version": "v2", "last_known_good_version": "v1"}
    assert note.payload.evidence == {"drift_psi": 0.4}
    assert note.payload.alert.starts_at == "2026-11-23T06:00:00Z"
    assert plan.versions[("ranker", "v2")].rollback_fired_at is not None
    # Requested once per episode, then cancelled when it resolves.
    again = plan_rollbacks(plan.alerts, {"Drift": drift_rule()}, plan.versions, AlertingConfig(), minutes(60 * 32))
    assert again.notifications == []
    resolved = {fp: replace(x, state=AlertState.RESOLVED, resolved_at=minutes(60 * 33)) for fp, x in
                again.alerts.items()}
    [cancel] = plan_rollbacks(resolved, {"Drift": drift_rule()}, again.versions, AlertingConfig(),
                              minutes(60 * 33)).notifications
    assert cancel.kind is NotificationKind.ROLLBACK_CANCELLED and cancel.payload.bad_version == "v2"


@pytest.mark.parametrize("alert_args, why", [
    pytest.param(("v1",), "the last-known-good version itself", id="no rollback from the last-known-good version"),
    pytest.param(("v2", AlertState.PENDING), "pending", id="no rollback while pending"),
    pytest.param(("v2",), "silenced", id="no rollback while silenced"),
    pytest.param(("v2",), "no data", id="no rollback for a no-data alert: no data says nothing about a version"),
])
def test_no_rollback_request(alert_args, why):
    a = drift_alert(*alert_args, silenced_by=("s1",) if why == "silenced" else ())
    if why == "no data":
        a = replace(a, labels={**a.labels, "alertstate": "nodata"})
        assert a.is_no_data_alert
    plan = plan_rollbacks(by_fp(a), {"Drift": drift_rule()}, VERSIONS, AlertingConfig(), minutes(60 * 31))
    assert plan.notifications == []


def test_no_rollback_without_a_last_known_good_version():
    young = {k: replace(v, first_seen_at=minutes(60 * 29)) for k, v in VERSIONS.items()}
    plan = plan_rollbacks(by_fp(drift_alert("v2")), {"Drift": drift_rule()}, young, AlertingConfig(),
                          minutes(60 * 31))
    assert plan.notifications == []


def test_matcher_regex_is_anchored():
    assert not Matcher("model", "=~", "rank").matches({"model": "ranker"})


def _inhibited_by_pairs(alerts: dict[str, Alert], rules) -> set[str]:
    """The reference: every (target, firing source) pair compared, as the rule reads in words."""
    def matches(labels, match):
        return all(labels.get(k, "") == v for k, v in match.items())

    out = set()
    for fp, target in alerts.items():
        if target.state not in (AlertState.PENDING, AlertState.FIRING):
            continue
        for rule in rules:
            for source in alerts.values():
                if (source.state is AlertState.FIRING and source.fingerprint != fp
                        and matches(target.labels, rule.target_match) and matches(source.labels, rule.source_match)
                        and not matches(source.labels, rule.target_match)
                        and all(source.labels.get(k) and source.labels.get(k) == target.labels.get(k)
                                for k in rule.equal)):
                    out.add(fp)
    return out


def test_inhibition_through_its_index_equals_every_pair_compared():
    """The indexed inhibition (one lookup per alert and rule) marks exactly the alerts the
    pairwise reading of the rule does, over random fleets of pages, tickets and missing labels."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from monitor.config import InhibitRule

    states = st.sampled_from([AlertState.FIRING, AlertState.PENDING, AlertState.RESOLVED, AlertState.NO_DATA])
    one_alert = st.builds(
        lambda name, state, severity, slo, model: alert(name, state, **{k: v for k, v in
                                                                         (("severity", severity), ("slo_id", slo),
                                                                          ("model", model)) if v is not None}),
        st.sampled_from(["Burn", "Budget", "Drift"]), states, st.sampled_from(["page", "ticket", None]),
        st.sampled_from(["a", "b", "", None]), st.sampled_from(["m1", "m2", None]))
    rules = [*AlertingConfig().inhibit,
             InhibitRule(source_match={"alertname": "Drift"}, target_match={"severity": "ticket"},
                         equal=["model"]),
             InhibitRule(source_match={"severity": "page"}, target_match={"alertname": "Budget"}, equal=[])]

    @settings(max_examples=300, deadline=None)
    @given(st.lists(one_alert, max_size=30))
    def check(fleet):
        alerts = by_fp(*fleet)
        marked = apply_inhibition(alerts, rules)
        assert {fp for fp, a in marked.items() if a.inhibited} == _inhibited_by_pairs(alerts, rules)

    check()


def test_a_listed_silence_matcher_reads_back_exactly():
    """`monitor silence list` prints matchers the way `silence add` and routes parse them: any
    value, quotes and backslashes included, comes back unchanged (it used to lose its quotes)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from monitor.alerting.silences import format_matcher

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(["=", "!="]), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
    def check(op, value):
        matcher = Matcher("service", op, value)
        assert parse_matcher(format_matcher(matcher)) == matcher

    check()
