"""Megatron-LM PTD-P: tensor, pipeline and data parallelism composed (Narayanan et al., SC'21, arXiv 2104.04473).

The training estimator already models PTD-P (``paraplan.train``: TP collectives in the scale-up domain, 1F1B and
interleaved pipeline schedules with their bubble, hierarchical data-parallel gradient reduction). This module puts
the paper's setups into the estimator and reads its outputs in the paper's own FLOP convention:

    F = 96 B s l h^2 (1 + s / (6 h) + V / (16 l h))     per iteration (eq. 3, includes the recompute forward)

Pipeline bubble (sec. 2.2): ``(p - 1) / m`` of the ideal time for 1F1B with ``m`` micro-batches per pipeline,
``(p - 1) / (v m)`` for the interleaved schedule with ``v`` model chunks per device, which pays ``v`` times the
point-to-point messages (:func:`paraplan.cost.pipeline.bubble_slots` is the one implementation). Sec. 5.3 compares
PTD-P with ZeRO-3 without model parallelism (Table 2): the same estimator prices the ZeRO-3 layout with DeepSpeed's
rules (parameter all-gathers and gradient reduce-scatters per micro-batch, overlapped with compute).
"""

from __future__ import annotations

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.pipeline import INTERLEAVED, ONE_F_ONE_B, bubble_slots
from ..specs import ModelSpec
from ..strategy import Strategy
from ..train import TrainingEstimate, Workload, estimate_training

#: Megatron-era workload: 2048-token sequences, dropout 0.1, unfused attention (before FlashAttention)
SEQ = 2048


def narayanan_flops_per_iteration(model: ModelSpec, global_batch: int, seq_len: int = SEQ) -> float:
    """The paper's eq. 3 (FLOPs per iteration, counting full activation recompute's extra forward)."""
    b, s, l_, h, v = global_batch, seq_len, model.n_layers, model.hidden, model.vocab
    return 96.0 * b * s * l_ * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l_ * h))


def ptdp_estimate(model: str, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1, vpp: int = 1,
                  cluster: str = "dgx-a100", recompute: str = "full") -> TrainingEstimate:
    """One PTD-P training step as the paper ran it (fp16 mixed precision, full recompute, no sequence parallelism)."""
    m = get_model(model)
    c = get_cluster(f"{cluster}:{gpus}")
    dp = gpus // (tp * pp)
    st = Strategy(tp=tp, pp=pp, dp=dp, vpp=vpp, schedule="interleaved" if vpp > 1 else "1f1b",
                  micro_batch=micro_batch, global_batch=global_batch, recompute=recompute,  # type: ignore[arg-type]
                  precision="fp16")
    return estimate_training(m, c, st, Workload(seq_len=SEQ, dropout=True, flash_attention=False))


def per_gpu_flops(model: str, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1,
                  vpp: int = 1) -> ClaimValue:
    """Achieved FLOP/s per GPU in the paper's convention (eq. 3 / step time / GPUs)."""
    est = ptdp_estimate(model, gpus, tp, pp, global_batch, micro_batch, vpp)
    f = narayanan_flops_per_iteration(get_model(model), global_batch) / est.step_time_s / gpus
    return ClaimValue(f, {"step_time_s": est.step_time_s, "mfu": est.mfu, "fits": est.fits,
                          "strategy": est.strategy.model_dump()})


def aggregate_flops(model: str, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1,
                    vpp: int = 1) -> ClaimValue:
    """Aggregate FLOP/s over all GPUs in the paper's convention."""
    one = per_gpu_flops(model, gpus, tp, pp, global_batch, micro_batch, vpp)
    return ClaimValue(one.value * gpus, one.details)


def bubble_fraction(pp: np.ndarray | int, n_micro: np.ndarray | int, vpp: np.ndarray | int = 1) -> np.ndarray:
    """Pipeline bubble as a fraction of the ideal step, ``(p - 1) / (v m)`` (``v = 1``: 1F1B), array-first."""
    v = np.asarray(vpp)
    sched = np.where(v > 1, INTERLEAVED, ONE_F_ONE_B)
    return bubble_slots(sched, np.asarray(pp), v) / np.asarray(n_micro, dtype=float)


def bubble(pp: int, global_batch: int, micro_batch: int, dp: int, vpp: int = 1) -> ClaimValue:
    """Bubble fraction of a PTD-P layout with ``m = B / (b d)`` micro-batches per pipeline."""
    m = global_batch // (micro_batch * dp)
    f = float(bubble_fraction(pp, m, vpp))
    return ClaimValue(f, {"n_micro": m, "pp": pp, "vpp": vpp})


def interleaved_gain(model: str, gpus: int, tp: int, pp: int, global_batch: int, vpp: int = 2,
                     micro_batch: int = 1) -> ClaimValue:
    """Throughput of the interleaved schedule (``vpp`` chunks) over 1F1B, same layout and batch."""
    base = per_gpu_flops(model, gpus, tp, pp, global_batch, micro_batch, 1)
    inter = per_gpu_flops(model, gpus, tp, pp, global_batch, micro_batch, vpp)
    return ClaimValue(inter.value / base.value, {"1f1b_flops": base.value, "interleaved_flops": inter.value})


def interleaved_gain_drop(model: str, gpus: int, tp: int, pp: int, small_batch: int, large_batch: int,
                          vpp: int = 2) -> ClaimValue:
    """Gain at ``small_batch`` minus gain at ``large_batch`` (> 0: the gap closes as the batch grows)."""
    a = interleaved_gain(model, gpus, tp, pp, small_batch, vpp).value
    b = interleaved_gain(model, gpus, tp, pp, large_batch, vpp).value
    return ClaimValue(a - b, {"gain_small": a, "gain_large": b})


def zero3_estimate(model: str, gpus: int, micro_batch: int, global_batch: int,
                   cluster: str = "dgx-a100") -> TrainingEstimate:
    """ZeRO-3 without model parallelism (DeepSpeed rules), the paper's Table 2 baseline: fp16, full recompute."""
    m = get_model(model)
    c = get_cluster(f"{cluster}:{gpus}")
    st = Strategy(dp=gpus, micro_batch=micro_batch, global_batch=global_batch, zero=3, recompute="full",
                  precision="fp16")
    return estimate_training(m, c, st, Workload(seq_len=SEQ, dropout=True, flash_attention=False),
                             framework="deepspeed")


def zero3_per_gpu_flops(model: str, gpus: int, micro_batch: int, global_batch: int) -> ClaimValue:
    """Achieved FLOP/s per GPU of the ZeRO-3 layout in the paper's convention (eq. 3)."""
    est = zero3_estimate(model, gpus, micro_batch, global_batch)
    f = narayanan_flops_per_iteration(get_model(model), global_batch) / est.step_time_s / gpus
    return ClaimValue(f, {"step_time_s": est.step_time_s, "fits": est.fits,
                          "dp_comm_s": est.time.components_s["dp_comm"]})


def ptdp_over_zero3(model: str, gpus: int, tp: int, pp: int, global_batch: int, zero3_micro_batch: int) -> ClaimValue:
    """PTD-P per-GPU throughput over ZeRO-3's on the same GPUs and batch."""
    a = per_gpu_flops(model, gpus, tp, pp, global_batch)
    b = zero3_per_gpu_flops(model, gpus, zero3_micro_batch, global_batch)
    return ClaimValue(a.value / b.value, {"ptdp_flops": a.value, "zero3_flops": b.value})
