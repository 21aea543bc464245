"""`monitor drift`: drift between a reference and a current Parquet or CSV log.

Exit codes: 0 when the report was printed (and, with `--fail-on-drift`, the dataset
did not drift), 3 with `--fail-on-drift` when it did, 1 on errors (2 for usage), so
a pipeline step can gate on it.

Start-up is part of what a user waits for: this module imports only what the command
uses (no scipy.stats, no Prometheus client), and the heavy modules on first use.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from monitor.config import DriftConfig, DriftThresholds

if TYPE_CHECKING:
    from monitor.drift.decision import DriftReport

DEFAULTS = DriftConfig()
EXIT_DRIFT = 3
# Inputs at least this large (bytes on storage) show a progress bar on a terminal.
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drift", help="compare a current data file with a reference file (Parquet or CSV)",
        description="Per-column drift of CURRENT against REFERENCE: PSI, Jensen-Shannon, KS, Wasserstein "
                    "for numeric columns; PSI, Jensen-Shannon and chi-square for categorical ones. A column "
                    "drifts at psi >= 0.2 or normed Wasserstein >= 0.1 (numeric), js >= 0.1 (categorical); "
                    "the dataset drifts when at least half its columns do. Columns missing from one file, or "
                    "without enough values, are reported as no data. FILE is a Parquet or CSV file, a glob "
                    "or a directory of Parquet files (Hive partitions included), local or s3://. "
                    f"Exit 0, or {EXIT_DRIFT} with --fail-on-drift when the dataset drifts; 1 on errors.")
    parser.add_argument("--reference", required=True, metavar="FILE", help="reference data (.parquet or .csv)")
    parser.add_argument("--current", required=True, metavar="FILE", help="current data (.parquet or .csv)")
    parser.add_argument("--columns", type=_column_list, default=None, metavar="A,B",
                        help="columns to compare (default: every column of either file)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--min-samples", type=int, default=DEFAULTS.min_samples, metavar="N",
                        help=f"fewer values than this on either side is no data (default {DEFAULTS.min_samples})")
    parser.add_argument("--fail-on-drift", action="store_true",
                        help=f"exit {EXIT_DRIFT} when the dataset drifts (the report is printed either way)")
    parser.set_defaults(func=run)


def _column_list(text: str) -> list[str]:
    columns = [c.strip() for c in text.split(",") if c.strip()]
    if not columns:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    return columns


class _NoSteps:
    def advance(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


def _steps(paths: list[str], show: bool):
    """A progress bar over the command's four steps, for large inputs on a terminal only."""
    from monitor import progress

    if not show or not progress.enabled():
        return _NoSteps()
    from monitor.sources.prediction_logs import input_bytes

    if sum(input_bytes(p) for p in paths) < PROGRESS_MIN_BYTES:
        return _NoSteps()
    return progress.Steps(4, "drift")


def compare_files(reference_path: str, current_path: str, columns: list[str] | None = None,
                  min_samples: int = DEFAULTS.min_samples, show_progress: bool = False) -> DriftReport:
    """The drift report of one file against another."""
    from monitor.drift.decision import decide
    from monitor.drift.profile import DriftError, fit_profile, frame_columns
    from monitor.drift.statistics import compare_to_profile
    from monitor.sources.prediction_logs import read_columns

    steps = _steps([reference_path, current_path], show_progress)
    try:
        reference = read_columns(reference_path)
        steps.advance(f"read {reference_path}")
        current = read_columns(current_path)
        steps.advance(f"read {current_path}")
        reference_names, current_names = frame_columns(reference), frame_columns(current)
        if columns is None:
            columns = list(dict.fromkeys([*reference_names, *current_names]))
        unknown = [c for c in columns if c not in reference_names and c not in current_names]
        if unknown:
            raise DriftError(f"no column {', '.join(map(repr, unknown))} in {reference_path} or {current_path}")
        profile = fit_profile(reference, [c for c in columns if c in reference_names], description=reference_path)
        steps.advance("fitted the reference")
        # One comparison per process: numpy's kernels, as numba's start-up would cost more than it saves.
        results = compare_to_profile(profile, current, columns, min_samples=min_samples, compiled=False)
        steps.advance("compared")
    finally:
        steps.close()
    return decide(results, DriftThresholds(), {}, DEFAULTS.dataset_drift_share)


def run(args: argparse.Namespace) -> int:
    if args.min_samples < 1:
        from monitor.drift.profile import DriftError

        raise DriftError("--min-samples must be at least 1")
    report = compare_files(args.reference, args.current, args.columns, args.min_samples,
                           show_progress=not args.json)
    if args.json:
        print(json.dumps(report.to_json(), indent=1, allow_nan=False))
    else:
        print(format_table(report))
    return EXIT_DRIFT if args.fail_on_drift and report.dataset_drift else 0


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
