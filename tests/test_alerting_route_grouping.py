"""Grouping per route (Alertmanager's model): each route an alert reaches groups it with its own settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from monitor.alerting.lifecycle import Alert, AlertState, fingerprint
from monitor.alerting.notifications import NotificationKind
from monitor.alerting.policy import GroupState, group_key_of, plan_group_notifications
from monitor.alerting.routes import RouteTree, route_tree
from monitor.config import AlertingConfig, OutputsConfig, RouteConfig

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc)
DEFAULTS = AlertingConfig(group_by=["alertname"], group_wait=timedelta(0), group_interval=timedelta(minutes=5),
                          repeat_interval=timedelta(hours=4))


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def alert(name: str, state: AlertState = AlertState.FIRING, **labels: str) -> Alert:
    full = {**labels, "alertname": name}
    return Alert(fingerprint(full), name, f"g/{name}", full, {"summary": name}, state, T0, active_since=T0,
                 fired_at=T0, resolved_at=T0 if state is AlertState.RESOLVED else None)


# The ranking team's pages go to its pager (grouped by service, fast), and, through
# `continue`, everything of the ranking services also to its chat (grouped by alertname, slow).
TREE = RouteTree(RouteConfig(receiver="default", routes=[
    RouteConfig(receiver="ranking-pager", matchers=["severity=page"], group_by=["service"],
                group_wait=timedelta(seconds=30), repeat_interval=timedelta(hours=1), continue_=True),
    RouteConfig(receiver="ranking-chat", matchers=["service=~rank.*"], group_wait=timedelta(minutes=2),
                group_interval=timedelta(minutes=10)),
]), DEFAULTS)


class Timeline:
    def __init__(self, tree: RouteTree | None, config: AlertingConfig = DEFAULTS):
        self.tree, self.config = tree, config
        self.groups: dict[str, GroupState] = {}

    def at(self, when: datetime, *alerts: Alert) -> list:
        notes, self.groups = plan_group_notifications({a.fingerprint: a for a in alerts}, self.groups,
                                                      self.config, when, self.tree)
        return notes


def test_an_alert_reaching_two_routes_through_continue_is_two_groups_each_with_its_own_timing():
    timeline = Timeline(TREE)
    page = alert("SLOBudgetBurnPage", severity="page", service="ranker")
    assert timeline.at(T0, page) == []                      # both routes still in group_wait
    [pager] = timeline.at(minutes(1), page)                 # 30s passed: the pager's group goes
    assert (pager.payload.receiver, pager.payload.group_labels) == ("ranking-pager", {"service": "ranker"})
    assert timeline.at(minutes(1.5), page) == []
    [chat] = timeline.at(minutes(2), page)                  # 2m passed: the chat's group goes
    assert (chat.payload.receiver, chat.payload.group_labels) == ("ranking-chat",
                                                                  {"alertname": "SLOBudgetBurnPage"})
    assert pager.kind is chat.kind is NotificationKind.FIRING
    assert pager.payload.route_id != chat.payload.route_id and "severity" in pager.payload.route_id
    assert pager.payload.group_key != chat.payload.group_key
    assert pager.idempotency_key != chat.idempotency_key
    # Repeats: the pager's after its 1h, the chat's only after the inherited 4h.
    repeats = [(n.payload.receiver, n.kind) for m in range(3, 60 * 5, 1) for n in timeline.at(minutes(m), page)]
    assert repeats.count(("ranking-pager", NotificationKind.REPEAT)) == 4   # at 1h01, 2h01, 3h01, 4h01
    assert repeats.count(("ranking-chat", NotificationKind.REPEAT)) == 1    # at 4h02
    # The resolve reaches both, each on its own group interval.
    resolved = replace(page, state=AlertState.RESOLVED, resolved_at=minutes(60 * 5))
    notes = {n.payload.receiver: n for m in range(60 * 5, 60 * 5 + 11) for n in timeline.at(minutes(m), resolved)}
    assert {r: n.kind for r, n in notes.items()} == {"ranking-pager": NotificationKind.RESOLVED,
                                                     "ranking-chat": NotificationKind.RESOLVED}
    assert timeline.groups == {}


def test_an_alert_no_child_route_matches_is_grouped_at_the_root_with_the_root_grouping():
    [note] = Timeline(TREE).at(T0, alert("CostTicket", severity="ticket", team="finance"))
    assert note.payload.receiver == "default" and note.payload.route_id == "{}"
    assert note.payload.group_key == group_key_of({"alertname": "CostTicket"})


def test_without_routes_grouping_is_exactly_the_legacy_grouping():
    alerts = [alert("A", service="a"), alert("A", service="b"), alert("B", service="a")]
    config = replace(DEFAULTS, group_by=["service"])
    legacy, with_tree = Timeline(None, config), Timeline(route_tree(OutputsConfig(), config), config)
    for m in (0, 1, 6, 60 * 5):
        assert legacy.at(minutes(m), *alerts) == with_tree.at(minutes(m), *alerts)
    assert legacy.groups == with_tree.groups
    assert set(legacy.groups) == {group_key_of({"service": "a"}), group_key_of({"service": "b"})}
    assert {(g.route_id, g.receiver) for g in legacy.groups.values()} == {("{}", "default")}


def test_a_group_whose_route_a_reload_removed_resolves_to_the_receiver_it_paged():
    timeline = Timeline(TREE)
    page = alert("SLOBudgetBurnPage", severity="page", service="ranker")
    timeline.at(T0, page)
    assert [n.payload.receiver for n in timeline.at(minutes(1), page)] == ["ranking-pager"]
    timeline.tree = RouteTree(RouteConfig(receiver="default"), DEFAULTS)   # the routes are gone
    resolved = replace(page, state=AlertState.RESOLVED, resolved_at=minutes(10))
    notes = timeline.at(minutes(10), resolved)
    assert [(n.kind, n.payload.receiver) for n in notes] == [(NotificationKind.RESOLVED, "ranking-pager")]
