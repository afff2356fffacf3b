"""C4: communication-driven fault diagnosis (C4D) and traffic planning (C4P) for large training jobs
(Dong et al., Alibaba; HPCA'25, arXiv 2406.04594: "Enhancing Large-Scale AI Training Efficiency: The C4 Solution
for Real-Time Anomaly Detection and Communication Optimization").

Two mechanisms, each on paraplan's resilience model (:mod:`paraplan.techniques.resilience`):

* **C4D.** Every failure costs detection and diagnosis, restart, and the work since the last checkpoint. Before
  C4, finding the faulty node took "hours to days"; C4D compares per-rank collective timestamps and isolates it in
  minutes. The error-induced overhead (share of the job's wall time not spent on useful work because of failures)
  is simulated by Monte-Carlo (:func:`~paraplan.techniques.resilience.simulate_goodput`) with the failure rate set so
  that the pre-C4 overhead matches the paper's production observation (input), then re-run with C4D's detection.
* **C4P.** Collective traffic is a few long-lived elephant flows. ECMP hashes them onto ``u`` equal uplinks at
  random (balls into bins), the most loaded link sets the collective's time; C4P plans paths so each link carries
  ``ceil(k / u)`` flows. Collective time is proportional to the maximum link load; the expected maximum under ECMP is
  computed by Monte-Carlo.

Not modelled: the ACCL implementation, slow-node (non-crash) anomalies, the bonded-port balancing and the
multi-tenant background traffic of the production cluster.
"""

from __future__ import annotations

import math

import numpy as np

from ..claims import ClaimValue
from ..errors import ConfigError
from .resilience import simulate_goodput


def _overhead(mtbf_s: float, per_failure_s: float, interval_s: float, stall_s: float, work_s: float, runs: int,
              seed: int) -> float:
    r = simulate_goodput(work_s, interval_s=interval_s, stall_s=stall_s, mtbf_s=mtbf_s, restart_s=per_failure_s,
                         runs=runs, seed=seed)
    # error-induced overhead: wall time lost to failures (restart + lost work), as a share of the wall time
    failure_free = work_s * (1.0 + stall_s / interval_s)
    return max(r["mean_wall_s"] - failure_free, 0.0) / r["mean_wall_s"]


def mtbf_for_overhead(overhead: float, per_failure_s: float, interval_s: float, stall_s: float,
                      work_s: float = 30 * 86400.0) -> float:
    """Job MTBF (s) at which failures cost ``overhead`` of the wall time (closed form, bisection on log MTBF)."""
    from .resilience import expected_wall_time

    if not 0.0 < overhead < 0.95:
        raise ConfigError(f"overhead must be in (0, 0.95), got {overhead}")
    ff = work_s * (1.0 + stall_s / interval_s)
    lo, hi = math.log(60.0), math.log(1e9)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        t = float(expected_wall_time(work_s, interval_s, stall_s, math.exp(mid), per_failure_s))
        if (t - ff) / t > overhead:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def c4d_overhead(overhead_before: float, diagnose_before_h: tuple[float, float], detect_after_min: float,
                 restart_min: float, checkpoint_interval_min: float, checkpoint_stall_s: float,
                 work_days: float = 30.0, runs: int = 400, seed: int = 0) -> dict[str, float]:
    """Error-induced overhead before and after C4D. The pre-C4 diagnosis time is a range ("hours to days"): the
    failure rate is set from ``overhead_before`` at its log-midpoint, and the after-C4D overhead is simulated at
    the same failure rate."""
    lo_h, hi_h = diagnose_before_h
    mid_h = math.sqrt(lo_h * hi_h)
    work = work_days * 86400.0
    tau = checkpoint_interval_min * 60.0
    out: dict[str, float] = {"diagnose_before_h": mid_h}
    for tag, diag_h in (("", mid_h), ("_low", lo_h), ("_high", hi_h)):
        before_s = diag_h * 3600.0 + restart_min * 60.0
        mtbf = mtbf_for_overhead(overhead_before, before_s, tau, checkpoint_stall_s, work)
        after_s = (detect_after_min + restart_min) * 60.0
        b = _overhead(mtbf, before_s, tau, checkpoint_stall_s, work, runs, seed)
        a = _overhead(mtbf, after_s, tau, checkpoint_stall_s, work, runs, seed + 1)
        out[f"mtbf_h{tag}"] = mtbf / 3600.0
        out[f"overhead_before{tag}"] = b
        out[f"overhead_after{tag}"] = a
        out[f"reduction_pp{tag}"] = b - a
    return out


def fault_overhead_reduction(overhead_before: float = 0.30, diagnose_before_h: tuple[float, float] = (2.0, 48.0),
                             detect_after_min: float = 5.0, restart_min: float = 20.0,
                             checkpoint_interval_min: float = 30.0, checkpoint_stall_s: float = 60.0) -> ClaimValue:
    """Percentage points of wall time C4D gives back (simulated)."""
    r = c4d_overhead(overhead_before, tuple(diagnose_before_h), detect_after_min, restart_min,  # type: ignore[arg-type]
                     checkpoint_interval_min, checkpoint_stall_s)
    return ClaimValue(r["reduction_pp"], r)


def ecmp_max_load(flows: int, links: int, subflows: int = 1, trials: int = 4000, seed: int = 0) -> float:
    """Expected maximum link load (in flows) when ``flows`` flows, each split evenly into ``subflows`` independently
    hashed sub-flows, go onto ``links`` equal links at random (ECMP)."""
    if flows < 1 or links < 1 or subflows < 1:
        raise ConfigError("flows, links and subflows must be >= 1")
    rng = np.random.default_rng(seed)
    k = flows * subflows
    idx = rng.integers(0, links, size=(trials, k))
    loads = np.zeros((trials, links))
    np.add.at(loads, (np.repeat(np.arange(trials), k), idx.ravel()), 1.0 / subflows)
    return float(loads.max(axis=1).mean())


def planned_max_load(flows: int, links: int) -> float:
    """C4P: flows placed deterministically, ``ceil(flows / links)`` per link."""
    return float(math.ceil(flows / links))


def comm_cost_reduction(flows: int, links: int, subflows: int = 1) -> ClaimValue:
    """1 - (planned collective time / ECMP collective time), collective time proportional to the max link load."""
    e = ecmp_max_load(flows, links, subflows)
    p = planned_max_load(flows, links)
    return ClaimValue(1.0 - p / e, {"ecmp_max_load": e, "planned_max_load": p, "flows": flows, "links": links,
                                    "subflows": subflows})
