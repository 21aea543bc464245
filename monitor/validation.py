"""Validate a loaded config and every file it names, collecting all problems at once.

`monitor check` and SIGHUP reloads use this, so a config that passes `check` is
exactly one the daemon accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config import Config, load_config
from monitor.errors import ConfigError, Problem


@dataclass
class ValidationReport:
    config: Config | None
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(config_path: str) -> ValidationReport:
    """Load the config and each file it references; never raises ConfigError."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return ValidationReport(None, exc.problems)
    report = ValidationReport(config, counts={"models": len(config.models), "SLO files": len(config.slo_files),
                                              "rule files": len(config.rule_files)})
    for check in FILE_CHECKS:
        try:
            counts = check(config)
        except ConfigError as exc:
            report.problems.extend(exc.problems)
        else:
            report.counts.update(counts or {})
    return report


# Each check takes the loaded config, raises ConfigError with FILE:LINE problems,
# and may return counts for the summary line. SLO specs and rule files plug in here.
FILE_CHECKS: list = []

from monitor.cost.presets import check_model_metrics  # noqa: E402  (cost imports config, not us)

FILE_CHECKS.append(check_model_metrics)

from monitor.slo.loading import slo_spec_check  # noqa: E402  (slo imports config, not us)

FILE_CHECKS.append(slo_spec_check)

from monitor.alerting.rule_check import rule_check  # noqa: E402  (alerting imports config, not us)

FILE_CHECKS.append(rule_check)

from monitor.alerting.route_check import route_check  # noqa: E402  (alerting imports config, not us)

FILE_CHECKS.append(route_check)

from monitor.drift.log_check import prediction_log_check  # noqa: E402  (drift imports config, not us)

FILE_CHECKS.append(prediction_log_check)

from monitor.promql_syntax import model_promql_check, slo_promql_check  # noqa: E402  (offline PromQL parser)

FILE_CHECKS += [slo_promql_check, model_promql_check]
