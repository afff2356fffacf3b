"""Sequential gradient coding for straggler mitigation (Krishnan, Ebrahimi, Khisti; ICLR'23, "Sequential Gradient
Coding For Straggler Mitigation", ICLR 2023 on OpenReview; arXiv id not checked).

A master computes a sequence of gradients with ``n`` workers. Per-round time is an order statistic of the workers'
times, which this module simulates by Monte-Carlo under a documented straggler model:

* **straggler model**: each worker is a two-state Gilbert-Elliott Markov chain over rounds (good -> bad with
  probability ``p_gb``, bad -> good with ``p_bg``: bursts of mean length ``1 / p_bg`` rounds); a worker's time for
  load ``L`` (fraction of the data set) is ``L (1 + Exp(noise))`` when good and ``slowdown`` times that when bad.
* **gradient coding** GC(s) (Tandon et al. 2017): every worker computes ``(s + 1) / n`` of the data, the master
  decodes from the fastest ``n - s``: round time = the ``(n - s)``-th order statistic.
* **fractional repetition**: ``n / (s + 1)`` groups of ``s + 1`` workers share a partition; round time = max over
  groups of the fastest worker in the group.
* **sequential GC** (approximation of the paper's multiplexed scheme): job ``t`` may finish by round ``t + T``; a
  worker's tasks for a job can be completed over ``T + 1`` rounds, so a straggling burst shorter than the window is
  absorbed. Modelled as GC with a lower tolerance ``s_seq`` (load ``(s_seq + 1) / n``) whose order statistic is taken
  over the workers' times averaged over the ``T + 1``-round window.

Not modelled: the paper's exact task-to-worker multiplexing and its decoding conditions (the approximation above is
ours), and the AWS Lambda latency trace of its experiment (its straggler statistics are inputs here).
"""

from __future__ import annotations

import numpy as np

from ..claims import ClaimValue
from ..errors import ConfigError


def straggler_times(n: int, rounds: int, *, p_gb: float, p_bg: float, slowdown: float, noise: float = 0.1,
                    seed: int = 0) -> np.ndarray:
    """``[rounds, n]`` per-unit-load times from the Gilbert-Elliott straggler model (stationary start)."""
    if not (0 < p_gb < 1 and 0 < p_bg <= 1) or slowdown < 1 or n < 1 or rounds < 1:
        raise ConfigError("need 0 < p_gb < 1, 0 < p_bg <= 1, slowdown >= 1, n >= 1, rounds >= 1")
    rng = np.random.default_rng(seed)
    pi_bad = p_gb / (p_gb + p_bg)
    state = rng.random(n) < pi_bad
    out = np.empty((rounds, n))
    for r in range(rounds):
        base = 1.0 + rng.exponential(noise, n)
        out[r] = np.where(state, slowdown, 1.0) * base
        u = rng.random(n)
        state = np.where(state, u >= p_bg, u < p_gb)
    return out


def gc_runtime(times: np.ndarray, s: int) -> float:
    """Total runtime of GC(s) over the rounds: load (s + 1)/n, (n - s)-th fastest worker each round."""
    n = times.shape[1]
    if not 0 <= s < n:
        raise ConfigError(f"tolerance s must be in [0, n), got {s}")
    load = (s + 1) / n
    return float((np.sort(times, axis=1)[:, n - s - 1] * load).sum())


def repetition_runtime(times: np.ndarray, s: int) -> float:
    """Fractional repetition: groups of s + 1 workers; each round waits for every group's fastest worker."""
    n = times.shape[1]
    g = s + 1
    if n % g:
        raise ConfigError(f"repetition needs (s + 1) | n; {g} does not divide {n}")
    load = g / n
    per = times.reshape(times.shape[0], n // g, g).min(axis=2).max(axis=1)
    return float((per * load).sum())


def sgc_runtime(times: np.ndarray, s_seq: int, delay: int) -> float:
    """Sequential GC (approximation): load (s_seq + 1)/n; each worker's time averaged over a (delay + 1)-round
    window, (n - s_seq)-th fastest of those each round."""
    if delay < 0:
        raise ConfigError("delay T must be >= 0")
    n = times.shape[1]
    w = delay + 1
    c = np.cumsum(np.vstack([np.zeros((1, n)), times]), axis=0)
    smooth = (c[w:] - c[:-w]) / w
    load = (s_seq + 1) / n
    return float((np.sort(smooth, axis=1)[:, n - s_seq - 1] * load).sum() * times.shape[0] / smooth.shape[0])


def sgc_improvement_over_gc(n: int = 256, rounds: int = 400, s: int = 15, s_seq: int = 7, delay: int = 2,
                            p_gb: float = 0.02, p_bg: float = 0.5, slowdown: float = 3.0, noise: float = 0.1,
                            seed: int = 0) -> ClaimValue:
    """1 - runtime(sequential GC) / runtime(GC) under the same simulated stragglers."""
    t = straggler_times(n, rounds, p_gb=p_gb, p_bg=p_bg, slowdown=slowdown, noise=noise, seed=seed)
    gc = gc_runtime(t, s)
    sg = sgc_runtime(t, s_seq, delay)
    rep = repetition_runtime(t, s) if n % (s + 1) == 0 else float("nan")
    return ClaimValue(1.0 - sg / gc, {"gc_runtime": gc, "sgc_runtime": sg, "repetition_runtime": rep,
                                      "straggler_fraction": float((t > 1.0 + 5 * noise).mean())})
