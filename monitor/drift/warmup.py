"""Compile the numba drift kernels ahead of time (container build, package install).

The kernels are `cache=True`: once compiled, later processes load machine code from
numba's cache (NUMBA_CACHE_DIR, else __pycache__ beside the module) instead of
spending seconds in LLVM during the daemon's first cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.drift.profile import fit_profile
from monitor.drift.statistics import compare_to_profile


def warm_kernels() -> int:
    """Run every kernel once on a small numeric and categorical sample; returns the columns compared."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"numeric": rng.normal(size=500), "category": rng.choice(["a", "b", "c"], 500)})
    current = pd.DataFrame({"numeric": rng.normal(0.5, size=300), "category": rng.choice(["a", "b"], 300)})
    profile = fit_profile(reference, ["numeric", "category"])
    return len(compare_to_profile(profile, current, ["numeric", "category"], min_samples=10))
