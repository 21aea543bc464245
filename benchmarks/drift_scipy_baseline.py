"""The plain scipy script `monitor drift` is compared with: same files in, same statistics out.

    python benchmarks/drift_scipy_baseline.py REFERENCE.parquet CURRENT.parquet

What a data scientist would write without monitor: read both Parquet files, and per
numeric column `scipy.stats.ks_2samp(method="asymp")`, `wasserstein_distance`, the
reference's std, PSI and Jensen-Shannon over the reference's decile bins, and the
verdict (psi >= 0.2 or normed Wasserstein >= 0.1 drifts a column, half the columns
drift the dataset). It prints the same JSON keys as `monitor drift --json` for the
numeric columns, so drift_e2e_bench.py can check the two agree.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow.parquet as pq
from scipy import stats
from scipy.spatial.distance import jensenshannon

DECILES = np.arange(1, 10) / 10


def column_statistics(name: str, reference: np.ndarray, current: np.ndarray) -> dict:
    reference = reference[np.isfinite(reference)]
    current = current[np.isfinite(current)]
    ks = stats.ks_2samp(reference, current, method="asymp")
    wasserstein = stats.wasserstein_distance(reference, current)
    wasserstein_norm = wasserstein / max(float(np.std(reference)), 0.001)
    edges = np.unique(np.quantile(reference, DECILES))
    bins = edges.size + 1
    p = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins) / reference.size
    q = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins) / current.size
    pp, qq = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    psi = float(np.sum((qq - pp) * np.log(qq / pp)))
    return {"column": name, "kind": "numeric", "n_reference": int(reference.size), "n_current": int(current.size),
            "psi": psi, "js": float(jensenshannon(p, q, base=2)), "ks": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue), "wasserstein": float(wasserstein),
            "wasserstein_norm": float(wasserstein_norm), "drifted": bool(psi >= 0.2 or wasserstein_norm >= 0.1)}


def main(reference_path: str, current_path: str) -> None:
    reference = pq.read_table(reference_path)
    current = pq.read_table(current_path)
    columns = [column_statistics(name, reference.column(name).to_numpy().astype(np.float64),
                                 current.column(name).to_numpy().astype(np.float64))
               for name in reference.column_names]
    share = sum(c["drifted"] for c in columns) / len(columns)
    print(json.dumps({"columns": columns, "drift_share": share, "dataset_drift": share >= 0.5}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
