"""SLOs: Sloth, OpenSLO and Pyrra specs, and preset models' default SLOs -> burn rates,
error budgets, page/ticket decisions, signals.

The daemon's cycle calls `load_slo_specs(config)` once per (re)load, then per cycle
`evaluate_slos(source, specs, at)` and `slo_signals(results)`.
"""

from monitor.slo.evaluate import EvaluationMode, SloResult, evaluate_slos
from monitor.slo.loading import load_slo_specs, load_spec_files, slo_spec_check
from monitor.slo.signals import slo_signals
from monitor.slo.spec import SloSpec

__all__ = ["EvaluationMode", "SloResult", "SloSpec", "evaluate_slos", "load_slo_specs", "load_spec_files",
           "slo_signals", "slo_spec_check"]
