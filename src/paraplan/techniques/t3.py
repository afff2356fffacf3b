"""T3: fine-grained overlap of a tensor-parallel GEMM with its reduce-scatter (Pati et al., ASPLOS'24, arXiv
2401.16677).

"T3: Transparent Tracking & Triggering for Fine-grained Overlap of Compute & Collectives". In a tensor-parallel
transformer the row-parallel GEMMs (attention output projection, FC2) are followed by a reduce-scatter (or the
reduce-scatter half of an all-reduce) of their output. The baseline runs them back to back:

    T_base = T_gemm + T_rs

T3 adds a track-and-trigger unit: as the producer GEMM finishes each output tile, the tile is sent by DMA to the
next ring neighbour, and near-memory compute (NMC) adds the incoming partial sums in DRAM, so the ring's
read-modify-write traffic disappears and the CUs stay with the GEMM:

    T_t3 = max(T_gemm, T_rs_dma, DRAM bytes / memory bandwidth) + T_rs / chunks     (the last chunk's tail)

DRAM traffic per reduce-scatter step and chunk of ``S / N`` bytes: the baseline writes the incoming chunk, reads it
and the local partial sum and writes the result (4 S/N); with NMC only the incoming (reducing) write is left
(1 S/N). The GEMM traffic (read activations and weights, write the output) is the same in both.

GEMM time comes from :func:`paraplan.cost.efficiency.gemm_time`; the ring reduce-scatter from
:func:`paraplan.cost.comm.collective_time` on the given cluster (the paper simulates MI210-class CDNA2 GPUs; the
catalog's CDNA2 part is the MI250X GCD, used as the stand-in).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.comm import collective_time
from ..cost.efficiency import gemm_time
from ..specs import ClusterSpec, LinkTier

#: the row-parallel sublayers T3 targets: (name, input width as a multiple of hidden)
SUBLAYERS = (("out_proj", 1.0), ("fc2", 4.0))


def sublayer_times(cluster: ClusterSpec, tokens: ArrayLike, hidden: ArrayLike, k_in: ArrayLike,
                   tp: int) -> dict[str, np.ndarray]:
    """Times (s) and DRAM bytes of one row-parallel GEMM ``[tokens, k_in/tp] x [k_in/tp, hidden]`` plus the
    reduce-scatter of its ``tokens x hidden`` bf16 output over ``tp`` ranks, baseline and T3 (array-first)."""
    acc = cluster.accelerator
    T, h, k = (np.asarray(x, dtype=float) for x in (tokens, hidden, k_in))
    k_rank = k / tp
    t_gemm = gemm_time(acc, "bf16", T, h, k_rank)
    S = T * h * 2.0
    t_rs = collective_time(cluster, "reduce_scatter", S, tp, 1)
    gemm_bytes = (T * k_rank + k_rank * h + T * h) * 2.0
    steps = tp - 1.0
    rs_bytes_base = steps * 4.0 * S / tp
    rs_bytes_t3 = steps * 1.0 * S / tp
    t_dram = (gemm_bytes + rs_bytes_t3) / acc.memory_bw
    base = t_gemm + t_rs
    # the runtime never does worse than running the two back to back
    t3 = np.minimum(np.maximum(np.maximum(t_gemm, t_rs), t_dram) + t_rs / tp, base)
    return {"gemm_s": t_gemm, "rs_s": t_rs, "baseline_s": base, "t3_s": t3, "ideal_s": np.maximum(t_gemm, t_rs),
            "bytes_baseline": gemm_bytes + rs_bytes_base, "bytes_t3": gemm_bytes + rs_bytes_t3}


def _cluster(cluster: str, tp: int, link_bw: float | None) -> ClusterSpec:
    c = get_cluster(f"{cluster}:{tp}")
    if link_bw is not None:
        c = c.model_copy(update={"scaleup": LinkTier(name="ring link", bw=link_bw, latency_s=c.scaleup.latency_s)})
    return c


def _sweep(models: list[str], tokens: int, tp: int, cluster: str, link_bw: float | None) -> list[dict[str, float]]:
    c = _cluster(cluster, tp, link_bw)
    rows = []
    for name in models:
        m = get_model(name)
        for sub, mult in SUBLAYERS:
            k_in = m.hidden * mult if sub == "out_proj" else m.ffn_hidden
            r = sublayer_times(c, tokens, m.hidden, k_in, tp)
            rows.append({"model": name, "sublayer": sub, **{k: float(v) for k, v in r.items()}})
    return rows


def geomean_speedup(models: list[str], tokens: int = 8192, tp: int = 8, cluster: str = "frontier-node",
                    link_bw: float | None = None) -> ClaimValue:
    """Geometric-mean speedup ``T_base / T_t3`` over the models' out-projection and FC2 sublayers."""
    rows = _sweep(models, tokens, tp, cluster, link_bw)
    sp = np.array([r["baseline_s"] / r["t3_s"] for r in rows])
    return ClaimValue(float(np.exp(np.mean(np.log(sp)))), {"per_sublayer": {
        f"{r['model']}/{r['sublayer']}": r["baseline_s"] / r["t3_s"] for r in rows}, "max": float(sp.max())})


def max_speedup(models: list[str], tokens: int = 8192, tp: int = 8, cluster: str = "frontier-node",
                link_bw: float | None = None) -> ClaimValue:
    """Largest sublayer speedup of the sweep."""
    g = geomean_speedup(models, tokens, tp, cluster, link_bw)
    return ClaimValue(g.details["max"], g.details)


def geomean_data_reduction(models: list[str], tokens: int = 8192, tp: int = 8, cluster: str = "frontier-node",
                           link_bw: float | None = None) -> ClaimValue:
    """Geometric mean of the DRAM-traffic reduction ``1 - bytes_t3 / bytes_base`` over the sublayers."""
    rows = _sweep(models, tokens, tp, cluster, link_bw)
    keep = np.array([r["bytes_t3"] / r["bytes_baseline"] for r in rows])
    return ClaimValue(float(1.0 - np.exp(np.mean(np.log(keep)))), {
        f"{r['model']}/{r['sublayer']}": 1.0 - r["bytes_t3"] / r["bytes_baseline"] for r in rows})


def ideal_bound_ratio(models: list[str], tokens: int = 8192, tp: int = 8, cluster: str = "frontier-node",
                      link_bw: float | None = None) -> ClaimValue:
    """Geomean T3 speedup over the geomean ideal-overlap bound ``(T_gemm + T_rs) / max(T_gemm, T_rs)`` (<= 1)."""
    rows = _sweep(models, tokens, tp, cluster, link_bw)
    sp = np.array([r["baseline_s"] / r["t3_s"] for r in rows])
    ideal = np.array([r["baseline_s"] / r["ideal_s"] for r in rows])
    g, gi = float(np.exp(np.mean(np.log(sp)))), float(np.exp(np.mean(np.log(ideal))))
    return ClaimValue(g / gi, {"geomean_speedup": g, "geomean_ideal": gi})
