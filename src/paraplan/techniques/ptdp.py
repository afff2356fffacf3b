"""Megatron-LM PTD-P: tensor, pipeline and data parallelism composed (Narayanan et al., SC'21, arXiv 2104.04473).

The training estimator already models PTD-P (``paraplan.train``: TP collectives in the scale-up domain, 1F1B and
interleaved pipeline schedules with their bubble, hierarchical data-parallel gradient reduction). This module puts
the paper's setups into the estimator and reads its outputs in the paper's own FLOP convention:

    F = 96 B s l h^2 (1 + s / (6 h) + V / (16 l h))     per iteration (eq. 3, includes the recompute forward)
"""

from __future__ import annotations

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
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
