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

Sec. 5.4-5.6 sweep alternatives to one layout, the question the planner answers: (t, p) splits of 64 GPUs
(Fig. 13), pipeline or tensor against data parallelism (Figs. 14-15), the micro-batch size (Fig. 16) and
recompute (Fig. 17); sec. 5.8 measures operator fusion (:func:`fusion_gain`, priced with
``Workload(fused_kernels=False)``). :func:`split_advantage`, :func:`falls_with_degree`, :func:`best_micro_batch`,
:func:`recompute_cost` and :func:`recompute_batch_gain` price those sweeps with the same estimator; the models,
not named in the captions, come from :func:`paper_gpt` with dimensions inferred from the parameter counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.pipeline import INTERLEAVED, ONE_F_ONE_B, bubble_slots
from ..rules import get_framework
from ..specs import ModelSpec
from ..strategy import Strategy
from ..train import TrainingEstimate, Workload, estimate_training

#: Megatron-era workload: 2048-token sequences, dropout 0.1, unfused attention (before FlashAttention)
SEQ = 2048


def narayanan_flops_per_iteration(model: ModelSpec, global_batch: int, seq_len: int = SEQ) -> float:
    """The paper's eq. 3 (FLOPs per iteration, counting full activation recompute's extra forward)."""
    b, s, l_, h, v = global_batch, seq_len, model.n_layers, model.hidden, model.vocab
    return 96.0 * b * s * l_ * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l_ * h))


#: a model named by the catalog, or the paper's GPT family given by its dimensions ({hidden, layers, heads})
ModelArg = str | Mapping[str, Any] | ModelSpec


def paper_gpt(hidden: int, layers: int, heads: int, vocab: int = 51200) -> ModelSpec:
    """One of the paper's GPT models from its dimensions: GeLU FFN of 4h, learned positions, tied embeddings,
    biases, vocabulary 51,200 and 2048-token context, as the catalog's Megatron entries (``gpt-1t``)."""
    return ModelSpec(name=f"gpt-h{hidden}-l{layers}", family="gpt", n_layers=layers, hidden=hidden, n_heads=heads,
                     ffn_hidden=4 * hidden, ffn_kind="gelu", vocab=vocab, tied_embeddings=True, learned_pos_emb=True,
                     max_seq_len=SEQ, bias=True, source="Narayanan et al. 2021 (dimensions given by the claim)")


def _model(model: ModelArg) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return get_model(model)
    return paper_gpt(**model)


def ptdp_estimate(model: ModelArg, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1,
                  vpp: int = 1, cluster: str = "dgx-a100", recompute: str = "full",
                  tp_across_nodes: bool = False, fused_kernels: bool = True,
                  scatter_gather: bool = True) -> TrainingEstimate:
    """One PTD-P training step as the paper ran it (fp16 mixed precision, full recompute, no sequence parallelism).

    ``tp_across_nodes``: skip the rule that keeps tensor parallelism inside a node (sec. 5.4 ran t = 16 and 32 on
    DGX A100s to show why it should); the collectives are then priced on the inter-node links."""
    m = _model(model)
    c = get_cluster(f"{cluster}:{gpus}")
    dp = gpus // (tp * pp)
    st = Strategy(tp=tp, pp=pp, dp=dp, vpp=vpp, schedule="interleaved" if vpp > 1 else "1f1b",
                  micro_batch=micro_batch, global_batch=global_batch, recompute=recompute,  # type: ignore[arg-type]
                  precision="fp16")
    fw = get_framework("megatron")
    if not scatter_gather:
        fw = fw.model_copy(update={"pp_scatter_gather": False})
    return estimate_training(m, c, st, Workload(seq_len=SEQ, dropout=True, flash_attention=False,
                                                fused_kernels=fused_kernels), framework=fw,
                             check=not tp_across_nodes)


def per_gpu_flops(model: ModelArg, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1,
                  vpp: int = 1, tp_across_nodes: bool = False) -> ClaimValue:
    """Achieved FLOP/s per GPU in the paper's convention (eq. 3 / step time / GPUs)."""
    est = ptdp_estimate(model, gpus, tp, pp, global_batch, micro_batch, vpp, tp_across_nodes=tp_across_nodes)
    f = narayanan_flops_per_iteration(_model(model), global_batch) / est.step_time_s / gpus
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


# --- sec. 5.4-5.5: the paper's own sweeps of parallel configurations, micro-batch size and recompute ---------------

def _tflops(model: ModelArg, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1) -> float:
    return per_gpu_flops(model, gpus, tp, pp, global_batch, micro_batch, tp_across_nodes=True).value


def split_advantage(model: ModelArg, gpus: int, splits: Sequence[Sequence[int]], best: Sequence[int],
                    global_batch: int) -> ClaimValue:
    """Throughput of the ``best`` (t, p) split over the fastest of the other ``splits`` (> 1: ``best`` wins)."""
    got = {(int(t), int(p)): _tflops(model, gpus, int(t), int(p), global_batch) for t, p in splits}
    mine = got[(int(best[0]), int(best[1]))]
    other = max(v for k, v in got.items() if k != (int(best[0]), int(best[1])))
    return ClaimValue(mine / other, {f"t{t}_p{p}_tflops": v / 1e12 for (t, p), v in got.items()})


def falls_with_degree(model: ModelArg, gpus: int, axis: str, degrees: Sequence[int],
                      global_batches: Sequence[int]) -> ClaimValue:
    """Smallest ratio of throughput at one degree of ``axis`` (tp or pp, the rest data parallel) over the next
    larger degree, over all ``global_batches`` (> 1: throughput falls as the degree grows, at every batch)."""
    ratios, details = [], {}
    for b in global_batches:
        vals = [_tflops(model, gpus, d if axis == "tp" else 1, d if axis == "pp" else 1, b) for d in degrees]
        details[f"B{b}_tflops"] = [round(v / 1e12, 1) for v in vals]
        ratios += [a / c for a, c in zip(vals, vals[1:], strict=False)]
    return ClaimValue(min(ratios), details)


def best_micro_batch(model: ModelArg, gpus: int, tp: int, pp: int, global_batch: int,
                     micro_batches: Sequence[int]) -> ClaimValue:
    """The micro-batch size with the highest throughput for a fixed layout and batch."""
    vals = {int(b): _tflops(model, gpus, tp, pp, global_batch, int(b)) for b in micro_batches}
    return ClaimValue(float(max(vals, key=lambda b: vals[b])), {f"b{b}_tflops": v / 1e12 for b, v in vals.items()})


def _seq_per_s(model: ModelArg, gpus: int, tp: int, pp: int, global_batch: int, recompute: str) -> tuple[float, bool]:
    est = ptdp_estimate(model, gpus, tp, pp, global_batch, recompute=recompute)
    return global_batch / est.step_time_s, est.fits


def recompute_cost(model: ModelArg, gpus: int, tp: int, pp: int, global_batches: Sequence[int]) -> ClaimValue:
    """Largest throughput loss of full recompute against none, over the batch sizes where both fit."""
    loss, details = 0.0, {}
    for b in global_batches:
        (full, f_fits), (none, n_fits) = (_seq_per_s(model, gpus, tp, pp, b, rc) for rc in ("full", "none"))
        details[f"B{b}"] = {"full_seq_per_s": full, "none_seq_per_s": none, "none_fits": n_fits}
        if f_fits and n_fits:
            loss = max(loss, 1.0 - full / none)
    return ClaimValue(loss, details)


def recompute_batch_gain(model: ModelArg, gpus: int, tp: int, pp: int, global_batches: Sequence[int]) -> ClaimValue:
    """Best throughput with full recompute over the best without it, each over the batch sizes where it fits
    (the paper: recompute enables larger batches, whose smaller bubble wins)."""
    best = {"full": 0.0, "none": 0.0}
    for rc in best:
        for b in global_batches:
            v, fits = _seq_per_s(model, gpus, tp, pp, b, rc)
            if fits:
                best[rc] = max(best[rc], v)
    return ClaimValue(best["full"] / best["none"] if best["none"] else float("inf"), best)


def fusion_gain(model: ModelArg, gpus: int, tp: int, pp: int, global_batch: int) -> ClaimValue:
    """Throughput with Megatron's fused element-wise kernels over one kernel per op (sec. 4.2, 5.8)."""
    fused = ptdp_estimate(model, gpus, tp, pp, global_batch)
    unfused = ptdp_estimate(model, gpus, tp, pp, global_batch, fused_kernels=False)
    return ClaimValue(unfused.step_time_s / fused.step_time_s,
                      {"fused_step_s": fused.step_time_s, "unfused_step_s": unfused.step_time_s,
                       "elementwise_unfused_s": unfused.time.components_s["elementwise"],
                       "elementwise_fused_s": fused.time.components_s["elementwise"]})


def scatter_gather_gain(model: ModelArg, gpus: int, tp: int, pp: int, global_batches: Sequence[int],
                        vpp: int = 2) -> ClaimValue:
    """Largest throughput gain of the scatter/gather pipeline sends over whole-activation sends, over the batch
    sizes (interleaved schedule with ``vpp`` chunks: ``vpp`` times the sends), sec. 4.1 and Fig. 18."""
    gains = {}
    for b in global_batches:
        on = ptdp_estimate(model, gpus, tp, pp, b, vpp=vpp)
        off = ptdp_estimate(model, gpus, tp, pp, b, vpp=vpp, scatter_gather=False)
        gains[f"B{b}"] = off.step_time_s / on.step_time_s
    return ClaimValue(max(gains.values()), gains)
