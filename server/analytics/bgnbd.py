"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting your customers
the easy way"), fit by maximum likelihood.

Each customer is summarised by x (repeat purchases), t_x (time of the last purchase since
the first) and T (time since the first purchase), all in one time unit. Identical
summaries are fit once with a weight, which keeps a fit over many customers cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BgNbdParameters:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int


def _log_likelihood_terms(params: Array, x: Array, t_x: Array, big_t: Array) -> Array:
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + big_t)
    repeat = x > 0
    # ln(a / (b + x - 1)) - (r + x) ln(alpha + t_x), only defined for repeat buyers.
    a4 = np.where(
        repeat,
        np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    result: Array = a1 + a2 + np.logaddexp(a3, a4)
    return result


def fit(x: Array, t_x: Array, big_t: Array, weights: Array | None = None) -> BgNbdParameters:
    """Maximum-likelihood r, alpha, a, b; optimised on log-parameters so they stay positive."""
    if len(x) == 0:
        raise ValueError("no purchase histories to fit")
    w = np.ones_like(x) if weights is None else weights
    # Scale time so alpha starts near its optimum whatever the time unit.
    scale = float(max(np.max(big_t), 1e-9))
    xs, txs, ts = x, t_x / scale, big_t / scale

    def negative(log_params: Array) -> float:
        # Far-off trial points overflow; they are simply very unlikely, not errors.
        with np.errstate(all="ignore"):
            params = np.exp(log_params)
            value = -float(np.sum(w * _log_likelihood_terms(params, xs, txs, ts)))
        return value if np.isfinite(value) else 1e300

    start = np.zeros(4)
    # Log-parameters are bounded so a degenerate data set cannot run one off to infinity.
    # Quasi-Newton from the unit start converges on real data; a derivative-free pass is
    # the fallback when it does not.
    bounds = [(-20.0, 20.0)] * 4
    result = minimize(negative, start, method="L-BFGS-B", bounds=bounds)
    if not result.success:
        result = minimize(
            negative,
            start,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-8},
        )
        result = minimize(negative, result.x, method="L-BFGS-B", bounds=bounds)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    alpha *= scale
    ll = float(np.sum(w * _log_likelihood_terms(np.array([r, alpha, a, b]), x, t_x, big_t)))
    return BgNbdParameters(r, alpha, a, b, ll, int(np.sum(w)))


def probability_alive(p: BgNbdParameters, x: Array, t_x: Array, big_t: Array) -> Array:
    """P(alive | x, t_x, T): 1 for customers who never bought again (x = 0 has no death)."""
    repeat = x > 0
    log_ratio = (
        np.log(p.a)
        - np.log(np.where(repeat, p.b + x - 1, 1.0))
        + (p.r + x) * (np.log(p.alpha + big_t) - np.log(p.alpha + t_x))
    )
    result: Array = np.where(repeat, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)
    return result


def expected_purchases(
    p: BgNbdParameters, horizon: float, x: Array, t_x: Array, big_t: Array
) -> Array:
    """Expected purchases in the next `horizon` time units given the history (FHL eq. 10)."""
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    # The closed form holds for any a != 1 (for a < 1 both factors are negative).
    z = horizon / (alpha + big_t + horizon)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - np.power((alpha + big_t) / (alpha + big_t + horizon), r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    repeat = x > 0
    denominator = 1 + np.where(
        repeat,
        a / np.where(repeat, b + x - 1, 1.0) * np.power((alpha + big_t) / (alpha + t_x), r + x),
        0.0,
    )
    result: Array = head * tail / denominator
    return result
