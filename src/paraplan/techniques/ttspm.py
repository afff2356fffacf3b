"""Scaling over Scaling: the Test-Time Scaling Performance Model (TTSPM) and its saturation points.

Wang, Zhu, Leong, Li, Li, *Scaling over Scaling: Exploring Test-Time Scaling Plateau in Large Reasoning
Models*, arXiv 2505.20522. Two paradigms for spending more test-time compute on a reasoning model:

* **parallel** scaling: ``N`` independent samples, each correct (after the selection strategy) with
  probability ``p_sample``; the number correct is Binomial(N, p), and at least one is right with
  ``F_par(N) = 1 - (1 - p_sample)^N``;
* **sequential** scaling: ``N`` rounds of rethinking, an absorbing Markov chain that reaches the correct state
  with ``p_rethink`` per round; the first success is Geometric, so ``F_seq(N) = 1 - (1 - p_rethink)^N``.

Both share one form. The marginal gain of one more unit is ``F(N+1) - F(N) = p (1 - p)^N``; the
**saturation point** is the smallest ``N`` whose marginal gain falls below ``epsilon``:
``N* = ceil(ln(epsilon / p) / ln(1 - p))`` (clipped at 0).

Accuracy over a benchmark is the mean over problems: with per-problem probabilities ``p_i``
(:func:`benchmark_accuracy`) the curve saturates below 1, which is what real curves show; with a single ``p``
it tends to 1. :func:`fit_p` fits a single ``p`` to an observed curve (least squares in ``N``).
The cost of each ``N`` comes from :mod:`paraplan.testtime` (serving estimator + Kinetics eFLOPs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..claims import ClaimValue

ArrayLike = np.ndarray | float | int


def scaling_curve(p: ArrayLike, n: ArrayLike) -> np.ndarray:
    """``1 - (1 - p)^N`` (parallel Hit@N or sequential success within N rounds), broadcast."""
    p_, n_ = np.broadcast_arrays(np.asarray(p, dtype=float), np.asarray(n, dtype=float))
    return 1.0 - (1.0 - p_) ** n_


def marginal_gain(p: ArrayLike, n: ArrayLike) -> np.ndarray:
    """``F(N+1) - F(N) = p (1 - p)^N``."""
    p_ = np.asarray(p, dtype=float)
    return p_ * (1.0 - p_) ** np.asarray(n, dtype=float)


def saturation_point(p: float, epsilon: float) -> int:
    """Smallest ``N >= 0`` with marginal gain ``p (1-p)^N < epsilon``."""
    if not (0.0 < p <= 1.0):
        raise ValueError(f"p must be within (0, 1], got {p}")
    if epsilon <= 0.0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if p >= 1.0 or epsilon > p:
        return 0
    n = int(np.ceil(np.log(epsilon / p) / np.log(1.0 - p)))
    while marginal_gain(p, n) >= epsilon:  # guard the float ceiling at exact powers
        n += 1
    return max(n, 0)


def benchmark_accuracy(p_problems: Sequence[float], n: ArrayLike) -> np.ndarray:
    """Mean of ``1 - (1 - p_i)^N`` over the problems of a benchmark."""
    p = np.asarray(p_problems, dtype=float)[:, None]
    return np.mean(1.0 - (1.0 - p) ** np.atleast_1d(np.asarray(n, dtype=float))[None, :], axis=0)


def fit_p(ns: Sequence[float], acc: Sequence[float]) -> float:
    """Single ``p`` minimising the squared error of ``1 - (1-p)^N`` against an observed curve (grid + refine)."""
    n_arr, a_arr = np.asarray(ns, dtype=float), np.asarray(acc, dtype=float)
    grid = np.linspace(1e-4, 1.0 - 1e-4, 2001)
    err = ((1.0 - (1.0 - grid[:, None]) ** n_arr[None, :] - a_arr[None, :]) ** 2).sum(axis=1)
    i = int(np.argmin(err))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    fine = np.linspace(lo, hi, 401)
    err = ((1.0 - (1.0 - fine[:, None]) ** n_arr[None, :] - a_arr[None, :]) ** 2).sum(axis=1)
    return float(fine[int(np.argmin(err))])


# ----------------------------------------------------------------------------- claims
def predicted_accuracy(p_sample: float, n: int) -> ClaimValue:
    """Claim: ``F_par(N)`` at the paper's N for a single per-sample probability."""
    return ClaimValue(float(scaling_curve(p_sample, n)), {"p_sample": p_sample, "n": n})
