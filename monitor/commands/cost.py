"""`monitor cost`: cost per 1,000 inferences, GPU-hours, utilisation and idle cost per model."""

from __future__ import annotations

import argparse
import json
import sys

from monitor.config import config_path_from, load_config
from monitor.commands.arguments import add_config_argument, parse_instant
from monitor.cost.allocation import CostReport
from monitor.cost.collect import WEEK, CostWindowError, compute_costs
from monitor.cost.fleet import fleet_figures
from monitor.secrets import redact
from monitor.sources.prometheus import PrometheusSource
from monitor.timeutil import utc_now


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cost", help="cost per 1k inferences, GPU-hours, utilisation and idle cost per model",
        description="Join GPU time and prices with inference counts per model and version over a window "
                    "(default: the last 7 days). Shared GPUs are split by inference share; versions share "
                    "their model's GPUs, split by inference share.")
    add_config_argument(parser)
    parser.add_argument("--prometheus", help="Prometheus URL (overrides the config's prometheus.url)")
    parser.add_argument("--from", dest="start", type=parse_instant, help="window start, ISO 8601 (default: --to - 7d)")
    parser.add_argument("--to", dest="end", type=parse_instant, help="window end, ISO 8601 (default: now)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(config_path_from(args.config))
    end = args.end or utc_now().replace(second=0, microsecond=0)
    start = args.start or end - WEEK
    if end <= start:
        raise CostWindowError(f"--to must be after --from ({start.isoformat()} .. {end.isoformat()})")
    with PrometheusSource.from_config(config.prometheus, url=args.prometheus) as source:
        report = compute_costs(source, config, start, end)
        failed = source.stats.errors
    if args.json:
        print(redact(json.dumps({**report.as_dict(), "fleet": fleet_figures(report).as_dict()}, indent=2)))
    else:
        print(redact(format_table(report)))
    # On stderr in both forms (and in --json's `warnings`): a figure that may be wrong
    # must not pass silently through a script that reads only stdout.
    for warning in report.warnings:
        print(redact(f"monitor: warning: {warning}"), file=sys.stderr)
    if failed:
        # Printed, but a script must not read partial figures as complete.
        print(f"monitor: error: {failed} of {source.stats.queries + source.stats.skipped} Prometheus queries "
              f"failed; the figures above may be incomplete", file=sys.stderr)
        return 1
    return 0


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(report: CostReport) -> str:
    """A plain-text table, one row per model and version, with the splits applied listed below."""
    d = report.as_dict()
    header = (f"{'model':<20} {'version':<8} {'inferences':>14} {'gpu_h':>9} {'util':>6} {'cost_usd':>11} "
              f"{'idle_usd':>10} {'usd/1k':>10}  price  charged_by")
    lines = [f"cost from {d['from']} to {d['to']}", header, "-" * len(header)]
    notes = []
    for m in report.models:
        lines.append(f"{m.model:<20} {(m.version if m.version is not None else '(all)'):<8} "
                     f"{_number(m.inferences, ',.0f'):>14} {_number(m.gpu_hours, ',.1f'):>9} "
                     f"{_number(m.gpu_utilization, '.0%'):>6} {_number(m.cost_usd, ',.2f'):>11} "
                     f"{_number(m.idle_cost_usd, ',.2f'):>10} {_number(m.cost_per_1k, '.5f'):>10}  "
                     f"{m.price_source.value if m.price_source else '-'}  {m.allocation.value}")
        if m.version is None and m.gpus and any(g.shared_with or g.sharing.value != "exclusive" for g in m.gpus):
            notes.append(f"{m.model}: {m.allocation_detail}")
    by_share = sorted({m.model for m in report.models
                       if m.version is not None and m.allocation.value == "inference_share"})
    if by_share:
        notes.append(f"versions of {', '.join(by_share)} share their model's GPUs (no placement): each version's "
                     f"cost is the model's cost times its share of the model's inferences")
    if any(m.version is not None and m.allocation.value == "placement" for m in report.models):
        notes.append("placement: each version of a model with `placement` is charged the GPUs its own pods held")
    tokens = [m for m in report.models if m.prompt_tokens is not None or m.generation_tokens is not None]
    if tokens:
        lines += ["", f"{'tokens':<20} {'version':<8} {'prompt':>16} {'generation':>16} {'usd/1M tokens':>14}"]
        lines += [f"{m.model:<20} {(m.version if m.version is not None else '(all)'):<8} "
                  f"{_number(m.prompt_tokens, ',.0f'):>16} {_number(m.generation_tokens, ',.0f'):>16} "
                  f"{_number(m.cost_per_1m_tokens, ',.4f'):>14}" for m in tokens]
        notes.append("usd/1M tokens: cost per 1,000,000 prompt + generation tokens")
    fleet = fleet_figures(report)
    lines.append(f"fleet: {fleet.gpus} GPU(s), {_number(fleet.gpu_hours, ',.1f')} GPU-hours, "
                 f"utilisation {_number(fleet.gpu_utilization, '.0%')} (weighted by GPU-hours), "
                 f"idle cost {_number(fleet.idle_cost_usd, ',.2f')} USD")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
