"""The asymptotic two-sample KS p-value of `ks_2samp(method="asymp")`, fast for large samples.

scipy's value is `kstwo.sf(d, round(n*m/(n+m)))`. For the effective n of a
production window (10^4 to 10^6) scipy evaluates it through an exact sum with n
terms (`scipy.special.smirnov`), which costs 0.03-1 s per column and would dominate
a drift cycle. Above `EXACT_MAX_N` we use the Pelz-Good (1976) asymptotic series
instead, the one scipy itself uses for the KS CDF at large n, which agrees with
scipy's sf within 5e-9 absolute for n >= 2000 (checked in tests). In the far tail,
where 1 - CDF loses all digits (p < 1e-10), the Kolmogorov limit `kstwobign.sf`
gives the order of magnitude: it differs from scipy's value by less than 1e-10.

The exact small-n branch is scipy's own algorithm, ported (monitor.drift.kolmogorov_exact),
so no drift computation imports scipy.stats.
"""

from __future__ import annotations

import math

import numpy as np

# Up to this effective n scipy's exact computation takes about a millisecond.
EXACT_MAX_N = 2000
_TAIL = 1e-10
# sqrt(n) * D from which the p-value is always in that tail (Kolmogorov's sf(6) is 4e-31).
TAIL_Z = 6.0
_PI2, _PI4, _PI6 = math.pi ** 2, math.pi ** 4, math.pi ** 6
_SQRT2PI = math.sqrt(2 * math.pi)


def pelz_good_cdf(n: float, x: float) -> float:
    """Pelz-Good's approximation of P(D_n <= x) (ported from scipy.stats._ksstats, BSD-3)."""
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z ** 2, z ** 3, z ** 4, z ** 6
    qlog = -_PI2 / 8 / z2
    if qlog < -708:
        return 0.0
    q = math.exp(qlog)
    k1a, k1b = -z2, _PI2 / 4
    k2a, k2b, k2c = 6 * z6 + 2 * z4, (2 * z4 - 5 * z2) * _PI2 / 4, _PI4 * (1 - 2 * z2) / 16
    k3d = _PI6 * (5 - 30 * z2) / 64
    k3c = _PI4 * (-60 * z2 + 212 * z4) / 16
    k3b = _PI2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z ** 8
    # Plain floats, not a 4-element array: the loop runs up to a few hundred times per
    # p-value, and numpy's per-operation overhead made it a millisecond (same arithmetic).
    t0 = t1 = t2 = t3 = 0.0
    maxk = int(math.ceil(16 * z / math.pi))
    for k in range(maxk, 0, -1):  # Horner scheme over odd m = 2k - 1
        m2 = (2 * k - 1) ** 2
        scale = q ** (8 * k)
        t0 = t0 * scale + 1.0
        t1 = t1 * scale + (k1a + k1b * m2)
        t2 = t2 * scale + (k2a + k2b * m2 + k2c * m2 ** 2)
        t3 = t3 * scale + (k3a + k3b * m2 + k3c * m2 ** 2 + k3d * m2 ** 3)
    terms = np.array([t0, t1, t2, t3]) * (q * _SQRT2PI)
    terms /= (z, 6 * z4, 72 * z ** 7, 6480 * z ** 10)
    q = math.exp(-_PI2 / 2 / z2)
    ks = np.arange(maxk, 0, -1, dtype=np.float64)
    q_powers = q ** (ks ** 2)
    terms[2] += np.sum(ks ** 2 * q_powers) * _PI2 * _SQRT2PI / (-36 * z3)
    sqrt3z = math.sqrt(3) * z
    terms[3] += np.sum((sqrt3z + math.pi * ks) * (sqrt3z - math.pi * ks) * ks ** 2 * q_powers) \
        * _PI2 * _SQRT2PI / (216 * z6)
    terms /= np.power(float(n), np.arange(4) / 2.0)
    return float(terms.sum())


def kolmogorov_sf(x: float) -> float:
    """P(K > x) of the Kolmogorov distribution, `scipy.stats.kstwobign.sf(x)`, for x >= 1.

    The alternating series 2 sum (-1)^(k-1) exp(-2 k^2 x^2) converges after a few
    terms for x >= 1 (scipy's `kolmogorov` sums the same series there).
    """
    return 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * x * x) for k in range(1, 12))


def ks_asymptotic_pvalue(ks: float, n_reference: int, n_current: int) -> float | None:
    """`ks_2samp(method="asymp")`'s two-sided p-value; None where scipy's is NaN (n = m = 1)."""
    m, n = sorted([float(n_reference), float(n_current)], reverse=True)
    effective_n = float(np.round(m * n / (m + n)))
    # scipy.stats.kstwo's own computation, ported (monitor.drift.kolmogorov_exact):
    # importing scipy.stats would cost the daemon about 45 MiB of resident memory.
    if effective_n <= EXACT_MAX_N or not 0.0 < ks < 1.0:
        from monitor.drift.kolmogorov_exact import kstwo_sf

        with np.errstate(divide="ignore", invalid="ignore"):
            pvalue = kstwo_sf(int(effective_n), ks) if math.isfinite(effective_n) else math.nan
        return pvalue if math.isfinite(pvalue) else None
    if math.sqrt(effective_n) * ks >= TAIL_Z:
        # Far in the tail: Pelz-Good's 1 - CDF is under 1e-10 there (tests check it), so the
        # Kolmogorov limit below gives the value; its series needs ~5z terms (hundreds).
        return float(min(max(kolmogorov_sf(math.sqrt(effective_n) * ks), 0.0), 1.0))
    pvalue = 1.0 - pelz_good_cdf(effective_n, ks)
    if pvalue < _TAIL:
        pvalue = kolmogorov_sf(math.sqrt(effective_n) * ks)
    return float(min(max(pvalue, 0.0), 1.0))
