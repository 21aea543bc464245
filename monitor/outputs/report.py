"""The weekly report as an output: build it for a period, write it under `reports.dir`.

`write_weekly_report(config, now)` is the daemon's `report_writer`: on its weekly
schedule (`reports.weekly`, local time) it reports on the last complete ISO week
in UTC, so the file a scheduled run writes is the file `monitor report --week`
writes for that week later.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from monitor.config import Config
from monitor.errors import MonitorError
from monitor.report.build import build_report
from monitor.report.period import ReportPeriod, last_complete_week
from monitor.report.render import WrittenReport, write_report
from monitor.sources.prometheus import PrometheusSource
from monitor.store import StateStore, open_store
from monitor.timeutil import utc_now


class StateFileMissing(MonitorError):
    """A state file named on the command line does not exist."""


def open_state_file(path: Path) -> StateStore:
    """An existing state file (never creates one: a new file would read as "no incidents")."""
    if not Path(path).exists():
        raise StateFileMissing(f"{path}: state file not found")
    return StateStore(path)


def report_directory(config: Config, out_dir: str | Path | None = None) -> Path:
    """`--out` when given, else the config's `reports.dir` (relative to the config file)."""
    return Path(out_dir) if out_dir is not None else config.resolve_path(config.reports.dir)


def write_period_report(config: Config, period: ReportPeriod, *, out_dir: str | Path | None = None,
                        prometheus_url: str | None = None, store: StateStore | None = None,
                        generated_at: datetime | None = None) -> WrittenReport:
    """Build and write the report for `period`; the state store defaults to the config's."""
    generated_at = generated_at or utc_now()
    own_store = store is None
    if store is None:
        state_path = config.resolve_path(config.state.path)
        # No state file means the daemon never ran here: say so, don't create one.
        store = open_store(config) if config.state.url or state_path.exists() else None
    try:
        with PrometheusSource.from_config(config.prometheus, url=prometheus_url) as source:
            model = build_report(source, config, period, generated_at, store)
        return write_report(model, report_directory(config, out_dir))
    finally:
        if own_store and store is not None:
            store.close()


def write_weekly_report(config: Config, now: datetime) -> WrittenReport:
    """The daemon's weekly job: the last complete ISO week (UTC) before `now`."""
    return write_period_report(config, last_complete_week(now), generated_at=now)
