"""The two-sided one-sample Kolmogorov-Smirnov distribution's survival function for small n.

`kstwo_sf(n, x)` is `scipy.stats.kstwo.sf(x, n)`, computed the same way (Simard and
L'Ecuyer 2011: Ruben-Gambino at the ends, the Durbin matrix as computed by Marsaglia,
Tsang and Wang, Pomeranz's recursion, and `scipy.special.smirnov`), ported from
scipy.stats._ksstats (BSD-3-Clause, Copyright (c) 2001-2002 Enthought, Inc. and
2003-2024 SciPy Developers). Only the survival function is ported.

Why a port: `monitor.drift.ks_pvalue` needs this exact value where the effective n
is small (an hour of a quiet version's rows), and importing scipy.stats for it costs
the daemon about 45 MiB of resident memory; scipy.special (which holds `smirnov`) is
a few MiB. tests/test_drift_statistics.py holds it to scipy across the branches.
"""

from __future__ import annotations

import math

import numpy as np

_E128 = 128
_EP128 = np.ldexp(np.longdouble(1), _E128)
_EM128 = np.ldexp(np.longdouble(1), -_E128)
_LOG_2PI = math.log(2 * math.pi)
# Bernoulli numbers B_2j / (2j) / (2j - 1) for j = 8..1 (Stirling's series).
_STIRLING_COEFFS = [-2.955065359477124183e-2, 6.4102564102564102564e-3,
                    -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                    -5.952380952380952381e-4, 7.9365079365079365079e-4,
                    -2.7777777777777777778e-3, 8.3333333333333333333e-2]


def kstwo_sf(n: int, x: float) -> float:
    """P(D_n > x) for the two-sided one-sample KS statistic D_n (NaN for n < 1 or a NaN x)."""
    if n <= 0 or int(n) != n:
        return math.nan
    n = int(n)
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            cdf = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            cdf = math.exp(_log_nfactorial_div_n_pow_n(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - cdf)
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:  # exact: 2 * smirnov
        return _clip(2 * _smirnov(n, x))
    nx_squared = t * x
    if n <= 140:
        if nx_squared <= 0.754693:
            return _clip(1.0 - _durbin_matrix_cdf(n, x))
        if nx_squared <= 4:
            return _clip(1.0 - _pomeranz_cdf(n, x))
        return _clip(2 * _smirnov(n, x))  # Miller's approximation
    if nx_squared >= 370.0:
        return 0.0
    if nx_squared >= 2.2:
        return _clip(2 * _smirnov(n, x))
    if n <= 100000 and n * x ** 1.5 <= 1.4:
        cdf = _durbin_matrix_cdf(n, x)
    else:
        from monitor.drift.ks_pvalue import pelz_good_cdf

        cdf = pelz_good_cdf(n, x)
    return _clip(1.0 - cdf)


def _smirnov(n: int, x: float) -> float:
    from scipy.special import smirnov

    return float(smirnov(n, x))


def _clip(p: float) -> float:
    return float(np.clip(p, 0.0, 1.0))


def _log_nfactorial_div_n_pow_n(n: int) -> float:
    # log(n! / n**n) by Stirling's series, with n log(n) removed up front (no cancellation).
    rn = 1.0 / n
    return math.log(n) / 2 - n + _LOG_2PI / 2 + rn * float(np.polyval(_STIRLING_COEFFS, rn / n))


def _durbin_matrix_cdf(n: int, d: float) -> float:
    """P(D_n <= d) by the Durbin matrix (Durbin 1968; Marsaglia, Tsang and Wang 2003)."""
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h ** intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h ** m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        H[i - 1:, i] = w[:m - i + 1]
    H[:, 0] = v
    H[-1, :] = np.flip(v, axis=0)
    power = np.eye(m)
    remaining = n
    exponent = 0
    h_exponent = 0
    while remaining > 0:
        if remaining % 2:
            power = np.matmul(power, H)
            exponent += h_exponent
        H = np.matmul(H, H)
        h_exponent *= 2
        if np.abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            h_exponent += _E128
        remaining //= 2
    p = power[k - 1, k - 1]
    for i in range(1, n + 1):
        p = i * p / n
        if np.abs(p) < _EM128:
            p *= _EP128
            exponent -= _E128
    if exponent != 0:
        p = np.ldexp(p, exponent)
    return float(np.clip(p, 0.0, 1.0))


def _pomeranz_bounds(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        half, odd = divmod(i + 1, 2)
        if odd == 0:
            if half == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1
        else:
            j1, j2 = half - 1 - ll - 1, half + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _pomeranz_cdf(n: int, x: float) -> float:
    """P(D_n <= x) by Pomeranz's recursion (Pomeranz 1974)."""
    t = n * x
    ll = int(np.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)
    twogpower = np.empty(npwrs)
    onem2gpower = np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    exponent = 0
    g_over_n, two_g_over_n, one_minus_two_g_over_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_over_n / m
        twogpower[m] = twogpower[m - 1] * two_g_over_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / m
    V0 = np.zeros([npwrs])
    V1 = np.zeros([npwrs])
    V1[0] = 1
    V0s, V1s = 0, 0
    j1, j2 = _pomeranz_bounds(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        V0, V1 = V1, V0
        V0s, V1s = V1s, V0s
        V1.fill(0.0)
        j1, j2 = _pomeranz_bounds(i, n, ll, ceilf, roundf)
        if i == 1 or i == 2 * n + 1:
            pwrs = gpower
        else:
            pwrs = twogpower if i % 2 else onem2gpower
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(V0[k1 - V0s:k1 - V0s + ln2], pwrs[:ln2])
            conv_start = j1 - k1
            conv_len = j2 - j1 + 1
            V1[:conv_len] = conv[conv_start:conv_start + conv_len]
            if 0 < np.max(V1) < _EM128:
                V1 *= _EP128
                exponent -= _E128
            V1s = V0s + j1 - k1
    answer = V1[n - V1s]
    for m in range(1, n + 1):
        if np.abs(answer) > _EP128:
            answer *= _EM128
            exponent += _E128
        answer *= m
    if exponent != 0:
        answer = np.ldexp(answer, exponent)
    return float(np.clip(answer, 0.0, 1.0))
