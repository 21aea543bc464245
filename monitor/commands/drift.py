"""`monitor drift`: drift between a reference and a current Parquet or CSV file."""

from __future__ import annotations

import argparse
import json

from monitor.config import DriftConfig, DriftThresholds
from monitor.drift.decision import DriftReport, decide
from monitor.drift.profile import DriftError, fit_profile
from monitor.drift.statistics import compare_to_profile
from monitor.sources.prediction_logs import read_table

DEFAULTS = DriftConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drift", help="compare a current data file with a reference file (Parquet or CSV)",
        description="Per-column drift of CURRENT against REFERENCE: PSI, Jensen-Shannon, KS, Wasserstein "
                    "for numeric columns; PSI, Jensen-Shannon and chi-square for categorical ones. A column "
                    "drifts at psi >= 0.2 or normed Wasserstein >= 0.1 (numeric), js >= 0.1 (categorical); "
                    "the dataset drifts when at least half its columns do. Columns missing from one file, or "
                    "without enough values, are reported as no data.")
    parser.add_argument("--reference", required=True, metavar="FILE", help="reference data (.parquet or .csv)")
    parser.add_argument("--current", required=True, metavar="FILE", help="current data (.parquet or .csv)")
    parser.add_argument("--columns", type=_column_list, default=None, metavar="A,B",
                        help="columns to compare (default: every column of either file)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--min-samples", type=int, default=DEFAULTS.min_samples, metavar="N",
                        help=f"fewer values than this on either side is no data (default {DEFAULTS.min_samples})")
    parser.set_defaults(func=run)


def _column_list(text: str) -> list[str]:
    columns = [c.strip() for c in text.split(",") if c.strip()]
    if not columns:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    return columns


def compare_files(reference_path: str, current_path: str, columns: list[str] | None = None,
                  min_samples: int = DEFAULTS.min_samples) -> DriftReport:
    """The drift report of one file against another."""
    reference = read_table(reference_path)
    current = read_table(current_path)
    if columns is None:
        columns = list(dict.fromkeys([*reference.columns, *current.columns]))
    unknown = [c for c in columns if c not in reference.columns and c not in current.columns]
    if unknown:
        raise DriftError(f"no column {', '.join(map(repr, unknown))} in {reference_path} or {current_path}")
    profile = fit_profile(reference, [c for c in columns if c in reference.columns], description=reference_path)
    results = compare_to_profile(profile, current, columns, min_samples=min_samples)
    return decide(results, DriftThresholds(), {}, DEFAULTS.dataset_drift_share)


def run(args: argparse.Namespace) -> int:
    if args.min_samples < 1:
        raise DriftError("--min-samples must be at least 1")
    report = compare_files(args.reference, args.current, args.columns, args.min_samples)
    if args.json:
        print(json.dumps(report.to_json(), indent=1, allow_nan=False))
    else:
        print(format_table(report))
    return 0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_table(report: DriftReport) -> str:
    """The report as an aligned text table, one line per column."""
    header = ("column", "kind", "n_ref", "n_cur", "psi", "js", "ks", "ks_p", "wass_norm", "chi2_p", "drifted")
    rows = [header]
    for c in report.columns:
        verdict = "no data: " + c.no_data if c.no_data else ("DRIFT" if c.drifted else "ok")
        rows.append((c.column, c.kind.value, str(c.n_reference), str(c.n_current), _number(c.psi), _number(c.js),
                     _number(c.ks), _number(c.ks_pvalue), _number(c.wasserstein_norm), _number(c.chi2_pvalue),
                     verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    share = "no data" if report.drift_share is None else f"{report.drift_share:.0%}"
    verdict = {True: "dataset drift", False: "no dataset drift", None: "no verdict"}[report.dataset_drift]
    lines.append(f"drift share {share}: {verdict}")
    return "\n".join(lines)
