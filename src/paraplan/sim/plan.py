"""Serving capacity planning with the simulator: the largest request rate one replica sustains under an SLO, and
the cheapest accelerator / TP / replica count for a target rate.

"Meets the SLO" means at least ``attainment`` (default 90 %) of the requests finish with TTFT <= ``slo_ttft_s``
and mean TPOT <= ``slo_tpot_s`` (goodput at an attainment target, as in DistServe, Zhong et al. 2024). Replicas are
independent, so a replica that sustains rate ``r`` gives ``ceil(R / r)`` replicas for rate ``R``; the plan is
checked by simulating all replicas behind the router at ``R``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from .. import catalog
from ..errors import ParaplanError
from ..infer import InferenceConfig, check_inference, weight_bytes_per_accelerator
from ..specs import ClusterSpec, ModelSpec
from .engine import SimConfig, simulate_serving
from .workload import make_requests

#: accelerators tried by default (priced catalog GPUs)
DEFAULT_ACCELERATORS = ("l4", "a10", "l40s", "a100-sxm-80gb", "h100-sxm", "h200-sxm", "b200", "mi300x")


class RatePoint(BaseModel):
    model_config = ConfigDict(frozen=True)
    rate: float
    attainment: float
    ttft_p90_s: float | None
    tpot_p90_s: float | None


class CapacityResult(BaseModel):
    """Largest rate one replica sustains under the SLO (bisection over simulated rates)."""

    model_config = ConfigDict(frozen=True)
    accelerator: str
    tp: int
    max_rate: float  # requests/s per replica meeting the SLO (0 if even a trickle misses it)
    points: list[RatePoint]


class PlanCandidate(BaseModel):
    model_config = ConfigDict(frozen=True)
    accelerator: str
    tp: int
    replicas: int
    n_accelerators: int
    max_rate_per_replica: float
    usd_per_hour: float
    usd_per_million_output_tokens: float | None
    verified_attainment: float | None = None
    note: str = ""


class ServingPlan(BaseModel):
    model_config = ConfigDict(frozen=True)
    model: str
    rate: float
    slo_ttft_s: float
    slo_tpot_s: float
    attainment: float
    best: PlanCandidate | None
    candidates: list[PlanCandidate]
    skipped: dict[str, str]
    assumptions: list[str]


def _attain(model: ModelSpec, cluster: ClusterSpec, icfg: InferenceConfig, scfg: SimConfig, rate: float,
            n_requests: int, input_dist: str, output_dist: str | None, slo_ttft_s: float, slo_tpot_s: float,
            seed: int) -> RatePoint:
    req = make_requests("poisson", rate, n=n_requests, input_dist=input_dist, output_dist=output_dist, seed=seed,
                        max_input=model.max_seq_len // 2, max_output=model.max_seq_len // 2)
    res = simulate_serving(model, cluster, req, scfg, icfg, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s)
    return RatePoint(rate=rate, attainment=res.slo_attainment or 0.0, ttft_p90_s=res.ttft_s.p90,
                     tpot_p90_s=res.tpot_s.p90)


def max_sustainable_rate(model: ModelSpec, cluster: ClusterSpec, icfg: InferenceConfig, scfg: SimConfig | None = None,
                         *, slo_ttft_s: float, slo_tpot_s: float, attainment: float = 0.9, n_requests: int = 600,
                         input_dist: str = "sharegpt", output_dist: str | None = None, seed: int = 0,
                         rel_tol: float = 0.05) -> CapacityResult:
    """Bisection on the Poisson rate of one replica for the largest rate meeting the SLO."""
    scfg = (scfg or SimConfig()).model_copy(update={"replicas": 1})
    pts: list[RatePoint] = []

    def ok(r: float) -> bool:
        p = _attain(model, cluster, icfg, scfg, r, n_requests, input_dist, output_dist, slo_ttft_s, slo_tpot_s, seed)
        pts.append(p)
        return p.attainment >= attainment

    lo, hi = 0.0, 1.0
    if not ok(0.05):
        return CapacityResult(accelerator=cluster.accelerator.name, tp=icfg.tp, max_rate=0.0, points=pts)
    lo = 0.05
    while ok(hi):
        lo, hi = hi, hi * 2.0
        if hi > 1e5:
            break
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return CapacityResult(accelerator=cluster.accelerator.name, tp=icfg.tp, max_rate=lo, points=pts)


def plan_serving(model: ModelSpec, rate: float, *, slo_ttft_s: float, slo_tpot_s: float, attainment: float = 0.9,
                 accelerators: list[str] | None = None, tps: list[int] | None = None,
                 inference: InferenceConfig | None = None, sim: SimConfig | None = None, n_requests: int = 600,
                 input_dist: str = "sharegpt", output_dist: str | None = None, verify: bool = True,
                 seed: int = 0) -> ServingPlan:
    """Cheapest (USD per hour) accelerator, TP and replica count whose replicas meet the SLO at ``rate``."""
    if not (rate > 0 and math.isfinite(rate)):
        raise ParaplanError(f"rate must be a positive number of requests per second, got {rate}")
    if slo_ttft_s <= 0 or slo_tpot_s <= 0:
        raise ParaplanError(f"SLOs must be positive (ttft {slo_ttft_s} s, tpot {slo_tpot_s} s)")
    base = inference or InferenceConfig()
    scfg = sim or SimConfig()
    cands: list[PlanCandidate] = []
    skipped: dict[str, str] = {}
    for name in accelerators or list(DEFAULT_ACCELERATORS):
        try:
            cl0 = catalog.get_cluster(name)
        except ParaplanError as exc:
            skipped[name] = str(exc)
            continue
        acc = cl0.accelerator
        for tp in tps or [1, 2, 4, 8]:
            key = f"{acc.name} tp={tp}"
            if tp > cl0.domain:
                skipped[key] = f"tp={tp} exceeds the {cl0.domain}-accelerator scale-up domain"
                continue
            icfg = base.model_copy(update={"tp": tp, "ep": 1})
            cl = cl0 if cl0.n_accelerators >= tp else cl0.with_accelerators(tp)
            try:
                check_inference(model, cl, icfg)
            except ParaplanError as exc:
                skipped[key] = str(exc)
                continue
            if weight_bytes_per_accelerator(model, icfg) + 4e9 > acc.memory_bytes:
                skipped[key] = "weights do not leave room for a KV cache"
                continue
            if acc.price_per_hour <= 0:
                skipped[key] = "no price in the catalog"
                continue
            cap = max_sustainable_rate(model, cl, icfg, scfg, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s,
                                       attainment=attainment, n_requests=n_requests, input_dist=input_dist,
                                       output_dist=output_dist, seed=seed)
            if cap.max_rate <= 0:
                skipped[key] = "misses the SLO even at a trickle of requests"
                continue
            reps = math.ceil(rate / cap.max_rate)
            usd = reps * tp * acc.price_per_hour
            cands.append(PlanCandidate(accelerator=acc.name, tp=tp, replicas=reps, n_accelerators=reps * tp,
                                       max_rate_per_replica=cap.max_rate, usd_per_hour=usd,
                                       usd_per_million_output_tokens=None))
    cands.sort(key=lambda c: (c.usd_per_hour, c.n_accelerators))
    best = cands[0] if cands else None
    if best is not None:
        out_tok = _mean_output(input_dist, output_dist)
        usd_m = best.usd_per_hour / 3600.0 / (rate * out_tok) * 1e6
        best = best.model_copy(update={"usd_per_million_output_tokens": usd_m})
        if verify:
            cl = catalog.get_cluster(best.accelerator)  # replicas beyond one node are independent copies
            if cl.n_accelerators < best.tp:
                cl = cl.with_accelerators(best.tp)
            icfg = base.model_copy(update={"tp": best.tp, "ep": 1})
            n = max(n_requests, 200 * best.replicas)
            req = make_requests("poisson", rate, n=n, input_dist=input_dist, output_dist=output_dist, seed=seed + 1,
                                max_input=model.max_seq_len // 2, max_output=model.max_seq_len // 2)
            res = simulate_serving(model, cl, req, scfg.model_copy(update={"replicas": best.replicas}), icfg,
                                   slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s)
            best = best.model_copy(update={"verified_attainment": res.slo_attainment,
                                           "note": f"all {best.replicas} replicas simulated behind the "
                                                   f"{scfg.router} router at {rate:g} req/s"})
        cands[0] = best
    return ServingPlan(model=model.name, rate=rate, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s,
                       attainment=attainment, best=best, candidates=cands, skipped=skipped,
                       assumptions=[f"SLO met when >= {attainment:.0%} of requests have TTFT <= {slo_ttft_s:g} s and "
                                    f"TPOT <= {slo_tpot_s:g} s", f"Poisson arrivals, lengths {input_dist} / "
                                    f"{output_dist or input_dist}, {n_requests} requests per trial",
                                    f"scheduler {scfg.scheduler}, max batch {scfg.max_batch}",
                                    "price = catalog USD per accelerator-hour"])


def _mean_output(input_dist: str, output_dist: str | None) -> float:
    import numpy as np

    from .workload import sample_lengths

    return float(np.mean(sample_lengths(output_dist or input_dist, 4000, np.random.default_rng(0), role="output")))


def plan_json(plan: ServingPlan) -> dict[str, Any]:
    return plan.model_dump(mode="json")
