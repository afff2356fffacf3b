"""Training LLMs on Frontier's AMD MI250X (Dash et al. 2023, arXiv 2312.12705).

"Optimizing Distributed Training on Frontier for Large Language Models" ports Megatron-DeepSpeed to ROCm and tunes
3D parallelism (tensor, pipeline, ZeRO-1 sharded data parallelism) for 22B, 175B and 1T GPT models on Frontier:
nodes of 4 MI250X = 8 Graphics Compute Dies (GCDs, each programmed as one GPU with 64 GB HBM2e and 191.5 TFLOP/s
fp16), joined inside a node by Infinity Fabric (the two GCDs of one package at 200 GB/s, GCDs of different
packages at 50-100 GB/s) and across nodes by 4 Slingshot-11 NICs (25 GB/s each, 12.5 GB/s per GCD).

The cost model is Megatron's (:mod:`paraplan.techniques.ptdp`, :func:`paraplan.train.estimate_training`) on the
``frontier-node`` cluster, with one topology refinement the flat catalog cannot express: a tensor-parallel group
of 2 GCDs stays on one MI250X package and rings over its 200 GB/s link; larger groups cross the 50 GB/s
inter-package links (the paper's porting section ranks TP=2 fastest and TP=4/8 second, which is this rule).
Throughput is reported in the paper's convention: Megatron's eq. 3 FLOPs (with the recompute forward) over the
step time, as a fraction of the 191.5 TFLOP/s fp16 peak of a GCD.

* weak scaling: efficiency = per-GCD throughput at ``N`` over that at ``N0``, global batch grown with ``N``;
* strong scaling: efficiency = ``T(N0) N0 / (T(N) N)`` at a fixed global batch (more data-parallel replicas,
  fewer micro-batches each, so the pipeline bubble grows).
"""

from __future__ import annotations

from typing import Any

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..specs import ClusterSpec, LinkTier
from ..strategy import Strategy
from ..train import TrainingEstimate, Workload, estimate_training
from .ptdp import narayanan_flops_per_iteration

SEQ = 2048
#: Infinity Fabric bandwidth per direction between the two GCDs of one MI250X (4 links x 50 GB/s), and between
#: GCDs of different packages (the slowest hop of a ring over more than 2 GCDs: one 50 GB/s link) [OLCF guide]
SAME_PACKAGE_BW = 200e9
CROSS_PACKAGE_BW = 50e9


def tp_link_bandwidth(tp: int) -> float:
    """Per-direction ring bandwidth of a tensor-parallel group of ``tp`` GCDs on one Frontier node."""
    return SAME_PACKAGE_BW if tp <= 2 else CROSS_PACKAGE_BW


def frontier_cluster(gcds: int, tp: int, cluster: str = "frontier-node") -> ClusterSpec:
    """``frontier-node`` scaled to ``gcds`` with the scale-up tier set to the TP group's ring bandwidth."""
    c = get_cluster(f"{cluster}:{gcds}")
    up = LinkTier(name=f"{c.scaleup.name} (TP={tp} ring)", bw=tp_link_bandwidth(tp), latency_s=c.scaleup.latency_s)
    return c.model_copy(update={"scaleup": up})


def frontier_estimate(model: str, gcds: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1,
                      recompute: str = "full", zero: int = 1) -> TrainingEstimate:
    """One Megatron-DeepSpeed step on Frontier: fp16, ZeRO-1, 1F1B, flash attention (ROCm FA2), seq 2048."""
    m = get_model(model)
    c = frontier_cluster(gcds, tp)
    st = Strategy(tp=tp, pp=pp, dp=gcds // (tp * pp), micro_batch=micro_batch, global_batch=global_batch,
                  zero=zero, recompute=recompute, precision="fp16")  # type: ignore[arg-type]
    return estimate_training(m, c, st, Workload(seq_len=SEQ, flash_attention=True), framework="deepspeed")


def per_gcd_flops(model: str, gcds: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1) -> float:
    """Achieved FLOP/s per GCD in Megatron's eq.-3 convention."""
    est = frontier_estimate(model, gcds, tp, pp, global_batch, micro_batch)
    return narayanan_flops_per_iteration(get_model(model), global_batch, SEQ) / est.step_time_s / gcds


def fraction_of_peak(model: str, gcds: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1) -> ClaimValue:
    """Achieved throughput per GCD as a fraction of the GCD's fp16 peak (191.5 TFLOP/s)."""
    est = frontier_estimate(model, gcds, tp, pp, global_batch, micro_batch)
    f = narayanan_flops_per_iteration(get_model(model), global_batch, SEQ) / est.step_time_s / gcds
    peak = get_cluster("frontier-node").accelerator.peak("fp16")
    return ClaimValue(f / peak, {"flops_per_gcd": f, "peak": peak, "step_time_s": est.step_time_s,
                                 "fits": est.fits, "memory_gb": est.memory.total_bytes / 1e9,
                                 "components_s": est.time.components_s})


def weak_scaling(model: str, gcds_small: int, gcds_large: int, tp: int, pp: int, batch_small: int,
                 micro_batch: int = 1) -> ClaimValue:
    """Per-GCD throughput at ``gcds_large`` over that at ``gcds_small``, global batch scaled with the GCDs."""
    batch_large = batch_small * gcds_large // gcds_small
    a = per_gcd_flops(model, gcds_small, tp, pp, batch_small, micro_batch)
    b = per_gcd_flops(model, gcds_large, tp, pp, batch_large, micro_batch)
    return ClaimValue(b / a, {"flops_small": a, "flops_large": b, "batch_large": batch_large})


def strong_scaling(model: str, gcds_small: int, gcds_large: int, tp: int, pp: int, global_batch: int,
                   micro_batch: int = 1) -> ClaimValue:
    """``T(N0) N0 / (T(N) N)`` at a fixed global batch (``T`` = step time)."""
    a = frontier_estimate(model, gcds_small, tp, pp, global_batch, micro_batch)
    b = frontier_estimate(model, gcds_large, tp, pp, global_batch, micro_batch)
    eff = a.step_time_s * gcds_small / (b.step_time_s * gcds_large)
    return ClaimValue(eff, {"step_small_s": a.step_time_s, "step_large_s": b.step_time_s,
                            "bubble_small_s": a.time.components_s["pipeline_bubble"],
                            "bubble_large_s": b.time.components_s["pipeline_bubble"]})


def peak_fraction_drop(big: dict[str, Any], small: dict[str, Any]) -> ClaimValue:
    """Fraction of peak of the ``small`` model's setup minus that of the ``big`` one (> 0: bigger is less efficient).
    Each dict holds :func:`fraction_of_peak` arguments."""
    a = fraction_of_peak(**small).value
    b = fraction_of_peak(**big).value
    return ClaimValue(a - b, {"small": a, "big": b})
