"""ZeRO-Infinity: model states offloaded to CPU memory and NVMe (Rajbhandari et al., SC'21, arXiv 2104.07857).

"ZeRO-Infinity: Breaking the GPU Memory Wall for Extreme Scale Deep Learning". ZeRO stage 3 partitions the
parameters, gradients and optimizer states over all data-parallel ranks; ZeRO-Infinity places each partition in
GPU memory, CPU memory or NVMe and streams it back when needed:

* bandwidth-centric partitioning: each rank reads only its 1/dp shard over its own PCIe link and the full
  parameter is all-gathered over the GPU fabric, so the aggregate PCIe/NVMe bandwidth grows with dp (the source of
  the paper's superlinear scaling: per-rank offload traffic shrinks as 1/dp at a fixed batch per GPU);
* overlap-centric design: the next parameters are prefetched while the current layer computes;
* the optimizer step runs on the CPU next to the states (ZeRO-Offload's CPU Adam).

The memory, traffic and bandwidth-efficiency formulas live in :mod:`paraplan.cost.offload`; the compute, the
ZeRO-3 collectives and their overlap come from :func:`paraplan.train.estimate_training` (DeepSpeed rules). This
module composes the two for the paper's setups (DGX-2 nodes of 16 V100-32GB, sec. 8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost import offload as O
from ..strategy import Strategy
from ..train import Workload, estimate_training

#: ZeRO-Infinity's experiments use 1024-token sequences [mem: sec. 8 setup; verify]
SEQ = 1024
TIB = 2.0**40


def model_state_bytes(model: str, convention: O.Convention = "zero-infinity") -> ClaimValue:
    """Model-state bytes of a catalog model in the paper's accounting (20 B/param; 16 B/param with ``"zero"``)."""
    m = get_model(model)
    n = float(m.n_params())
    b = float(O.model_state_bytes(n, convention))
    return ClaimValue(b, {"n_params": n, "bytes_per_param": O.bytes_per_param(convention), "TiB": b / TIB})


def smallest_tier(model: str, cluster: str = "dgx-2", cpu_memory_bytes: float = 1.5e12,
                  nvme_bytes: float = 30.0e12, activation_ckpt_bytes: float = 0.0,
                  convention: O.Convention = "zero-infinity") -> ClaimValue:
    """The smallest memory tier of one node (0 GPU, 1 +CPU, 2 +NVMe, 3 none) that holds the model states
    (plus ``activation_ckpt_bytes`` kept in CPU memory) of ``model``; the node's GPU memory is from the catalog."""
    c = get_cluster(cluster)
    m = get_model(model)
    states = float(O.model_state_bytes(float(m.n_params()), convention))
    gpu = c.per_node * c.accelerator.memory_bytes
    # checkpoints take CPU memory first: only the rest is free for model states
    tier = int(O.smallest_tier_that_fits(states, gpu, max(cpu_memory_bytes - activation_ckpt_bytes, 0.0),
                                         nvme_bytes))
    return ClaimValue(float(tier), {"model_state_bytes": states, "gpu_bytes": gpu, "cpu_bytes": cpu_memory_bytes,
                                    "nvme_bytes": nvme_bytes, "tier": (*O.TIERS, "none")[tier]})


def zero_infinity_step(model: str, gpus: int, micro_batch: int, *, seq_len: int = SEQ, offload_params: int = O.CPU,
                       offload_grads: int = O.CPU, offload_optimizer: int = O.CPU, pcie_bw: float = 12e9,
                       nvme_bw_node: float = 25e9, cpu_bw_node: float = 256e9, cluster: str = "dgx-2",
                       overlap: float = 1.0) -> dict[str, Any]:
    """One ZeRO-Infinity step (ZeRO-3 over all GPUs, full recompute, fp16) with the given offload targets.

    GPU compute and the ZeRO-3 gathers come from :func:`estimate_training`; the offload traffic from
    :func:`paraplan.cost.offload.offload_traffic` over ``pcie_bw`` per GPU and ``nvme_bw_node / GPUs per node``;
    the CPU Adam step moves 32 B per parameter shard at ``cpu_bw_node / GPUs per node``."""
    m = get_model(model)
    c = get_cluster(f"{cluster}:{gpus}")
    st = Strategy(dp=gpus, micro_batch=micro_batch, global_batch=micro_batch * gpus, zero=3, recompute="full",
                  precision="fp16")
    est = estimate_training(m, c, st, Workload(seq_len=seq_len), framework="deepspeed", check=False)
    comps = est.time.components_s
    n = float(m.n_params())
    per_node = c.per_node
    gpu_opt = comps["optimizer"] if offload_optimizer == O.DEVICE else 0.0
    compute = est.step_time_s - comps["dp_comm"] - comps["optimizer"]
    traffic = O.offload_traffic(n, 3, gpus, offload_params=offload_params, offload_grads=offload_grads,
                                offload_optimizer=offload_optimizer, n_micro=est.n_micro_batches, param_loads=3)
    cpu_step = 0.0
    if offload_optimizer != O.DEVICE:
        cpu_step = 2.0 * O.STATE_BYTES["zero-infinity"]["optimizer"] * n / gpus / (cpu_bw_node / per_node)
    off = O.offload_step_time(traffic, compute, pcie_bw, nvme_bw_node / per_node, overlap=overlap,
                              cpu_step_s=cpu_step)
    step = est.step_time_s - comps["optimizer"] + gpu_opt + float(off["total"])
    tokens = micro_batch * gpus * seq_len
    flops = 2.0 * 4.0 * tokens * n  # the paper's count: 2 x 4 x bsz x seq x params (4 = fwd + recompute + 2 bwd)
    placement = O.state_placement(n, 3, gpus, offload_params=offload_params, offload_grads=offload_grads,
                                  offload_optimizer=offload_optimizer)
    return {"step_time_s": step, "flops_per_gpu": flops / step / gpus, "compute_s": compute,
            "dp_comm_s": comps["dp_comm"], "offload_exposed_s": float(off["total"]),
            "offload_overlappable_s": float(off["transfer_overlappable"]), "cpu_step_s": cpu_step,
            "device_state_bytes": float(placement["device"]), "cpu_state_bytes": float(placement["cpu"]),
            "nvme_state_bytes": float(placement["nvme"])}


def aggregate_flops(model: str, gpus: int, micro_batch: int, **kw: Any) -> ClaimValue:
    """Sustained FLOP/s over all GPUs, in the paper's FLOP count."""
    r = zero_infinity_step(model, gpus, micro_batch, **kw)
    return ClaimValue(r["flops_per_gpu"] * gpus, r)


def per_gpu_flops(model: str, gpus: int, micro_batch: int, **kw: Any) -> ClaimValue:
    r = zero_infinity_step(model, gpus, micro_batch, **kw)
    return ClaimValue(r["flops_per_gpu"], r)


def scaling_ratio(model: str, gpus_small: int, gpus_large: int, micro_batch: int, **kw: Any) -> ClaimValue:
    """Per-GPU FLOP/s at ``gpus_large`` over that at ``gpus_small`` at a fixed batch per GPU (> 1: superlinear)."""
    a = zero_infinity_step(model, gpus_small, micro_batch, **kw)
    b = zero_infinity_step(model, gpus_large, micro_batch, **kw)
    return ClaimValue(b["flops_per_gpu"] / a["flops_per_gpu"], {"small": a, "large": b})


def bandwidth_for_efficiency(state: str, efficiency: float, peak: float = 70e12, seq: int = SEQ,
                             batch_per_gpu: float = 1, hidden: int = 8192, ci: int = 1) -> ClaimValue:
    """B/s per GPU that keeps ``efficiency`` of ``peak`` for one kind of traffic (sec. 4.1):
    ``state`` is ``params_grads``, ``optimizer`` or ``activation_ckpt``."""
    ait = {"params_grads": O.ait_params_grads(seq, batch_per_gpu), "optimizer": O.ait_optimizer(seq, batch_per_gpu),
           "activation_ckpt": O.ait_activation_checkpoints(hidden, ci)}[state]
    bw = float(O.bandwidth_for_efficiency(efficiency, ait, peak))
    return ClaimValue(bw, {"ait_flops_per_byte": float(ait), "efficiency_at_bw": float(
        O.bandwidth_efficiency(ait, bw, peak))})


def bandwidth_ratio(efficiency: float = 0.5, seq: int = SEQ, batch_per_gpu: float = 1) -> float:
    """How many times more bandwidth optimizer states need than params/grads for the same efficiency."""
    a = bandwidth_for_efficiency("optimizer", efficiency, seq=seq, batch_per_gpu=batch_per_gpu).value
    b = bandwidth_for_efficiency("params_grads", efficiency, seq=seq, batch_per_gpu=batch_per_gpu).value
    return a / b


def efficiency_at(state: str, bw: float, peak: float = 70e12, seq: int = SEQ, batch_per_gpu: float = 1,
                  hidden: int = 8192, ci: int = 1) -> float:
    """Bandwidth efficiency of one traffic kind at ``bw`` B/s per GPU."""
    ait = {"params_grads": O.ait_params_grads(seq, batch_per_gpu), "optimizer": O.ait_optimizer(seq, batch_per_gpu),
           "activation_ckpt": O.ait_activation_checkpoints(hidden, ci)}[state]
    return float(np.asarray(O.bandwidth_efficiency(ait, bw, peak)))
