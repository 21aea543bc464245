"""`monitor silence add|list|expire`: mute alerts by label matchers for a while."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from monitor.alerting.repository import AlertRepository
from monitor.alerting.silences import SilenceError, format_matcher, new_silence
from monitor.commands.arguments import parse_instant
from monitor.commands.state_file import add_state_arguments, open_state
from monitor.durations import parse_duration
from monitor.timeutil import iso_z, utc_now


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("silence", help="add, list or expire silences",
                                   description="Silences mute notifications for alerts whose labels match.")
    actions = parser.add_subparsers(dest="silence_action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add a silence")
    add.add_argument("--match", action="append", required=True, metavar="MATCHER",
                     help="label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable)")
    add.add_argument("--for", dest="duration", help="how long, e.g. 2h (or give --end)")
    add.add_argument("--start", type=parse_instant, help="start, ISO 8601 (default now)")
    add.add_argument("--end", type=parse_instant, help="end, ISO 8601")
    add.add_argument("--comment", required=True, help="why (shown to whoever sees the silence)")
    add.add_argument("--author", default=None, help="who (default: the current user)")
    add_state_arguments(add)
    add.set_defaults(func=run_add)

    listing = actions.add_parser("list", help="list silences")
    listing.add_argument("--all", action="store_true", help="include expired silences")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--at", type=parse_instant, help="judge active/expired at this time (default now)")
    add_state_arguments(listing)
    listing.set_defaults(func=run_list)

    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", help="silence id (or a unique prefix)")
    expire.add_argument("--at", type=parse_instant,
                        help="end it at this time instead of now (for stepping `run --once --at` scenarios)")
    add_state_arguments(expire)
    expire.set_defaults(func=run_expire)


def run_add(args: argparse.Namespace) -> int:
    now = utc_now()
    starts_at = args.start or now
    if (args.duration is None) == (args.end is None):
        raise SilenceError("give exactly one of --for DURATION or --end TIME")
    if args.duration is not None:
        try:
            ends_at = starts_at + parse_duration(args.duration)
        except ValueError as exc:
            raise SilenceError(f"--for: {exc}") from None
    else:
        ends_at = args.end
    silence = new_silence(args.match, starts_at=starts_at, ends_at=ends_at, created_by=args.author or _user(),
                          comment=args.comment, created_at=now)
    _config, store = open_state(args)
    with store:
        AlertRepository(store).add_silence(silence)
    print(silence.id)
    return 0


def run_list(args: argparse.Namespace) -> int:
    now = args.at or utc_now()
    _config, store = open_state(args)
    with store:
        silences = [s for s in AlertRepository(store).silences() if args.all or s.state(now) != "expired"]
    if args.json:
        json.dump([{"id": s.id, "matchers": [format_matcher(m) for m in s.matchers], "startsAt": iso_z(s.starts_at),
                    "endsAt": iso_z(s.ends_at), "createdBy": s.created_by, "comment": s.comment,
                    "status": s.state(now)} for s in silences], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not silences:
        print("no silences")
    for s in silences:
        print(f"{s.id}  {s.state(now):8s} {' '.join(format_matcher(m) for m in s.matchers)}  "
              f"{iso_z(s.starts_at)} .. {iso_z(s.ends_at)}  {s.created_by}: {s.comment}")
    return 0


def run_expire(args: argparse.Namespace) -> int:
    _config, store = open_state(args)
    with store:
        silence = AlertRepository(store).expire_silence(args.id, args.at or utc_now())
    print(f"expired {silence.id} at {iso_z(silence.ends_at)}")
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"
