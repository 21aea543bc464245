"""`monitor alerts`: the current alerts in the state file."""

from __future__ import annotations

import argparse
import json
import sys

from monitor.alerting.definition_error_repository import DefinitionErrorRepository
from monitor.alerting.lifecycle import AlertState
from monitor.alerting.notifications import alert_event, iso
from monitor.alerting.repository import AlertRepository
from monitor.commands.state_file import add_state_arguments, open_state


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("alerts", help="list current alerts",
                                   description="List pending, firing and no-data alerts (with --all, "
                                               "recently resolved ones too), with silences and inhibition, "
                                               "and the SLOs, rules and models whose query Prometheus "
                                               "rejected in the last successful cycle (their alerts keep "
                                               "their state until fixed).")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--all", action="store_true", help="include resolved alerts")
    add_state_arguments(parser)
    parser.set_defaults(func=run)


_ORDER = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.NO_DATA: 2, AlertState.RESOLVED: 3}


def run(args: argparse.Namespace) -> int:
    _config, store = open_state(args)
    with store:
        repository = AlertRepository(store)
        alerts = [a for a in repository.alerts().values() if args.all or a.state is not AlertState.RESOLVED]
        counts = repository.cycle_counts()
        broken = DefinitionErrorRepository(store).current()
    alerts.sort(key=lambda a: (_ORDER.get(a.state, 9), a.alertname, sorted(a.labels.items())))
    if args.json:
        out = {"alerts": [{**alert_event(a).to_dict(), "silenced_by": list(a.silenced_by), "inhibited": a.inhibited,
                           "lastEvaluatedAt": iso(a.last_evaluated_at)} for a in alerts],
               "definition_errors": [{**b.error.to_json(), "since": iso(b.since), "cycle_id": b.cycle_id}
                                     for b in broken],
               "cycles": {"ok": counts.get("ok", 0), "failed": counts.get("failed", 0)}}
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not alerts:
        print("no alerts")
    for a in alerts:
        labels = ",".join(f"{k}={v}" for k, v in sorted(a.labels.items()) if k != "alertname")
        muted = " [silenced]" if a.silenced_by else " [inhibited]" if a.inhibited else ""
        since = iso(a.fired_at if a.state is AlertState.FIRING else a.resolved_at
                    if a.state is AlertState.RESOLVED else a.active_since) or "-"
        print(f"{a.state.value:8s} {a.alertname}{{{labels}}} since {since}{muted}")
        if a.annotations.get("summary"):
            print(f"         {a.annotations['summary']}")
    for b in broken:
        print(f"error    {b.error.kind.value} {b.error.name} since {iso(b.since)}: query rejected, "
              f"not evaluated (its alerts keep their state): {b.error.message}")
    print(f"cycles: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed")
    return 0
