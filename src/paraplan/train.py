"""Training step estimator: composes :mod:`paraplan.cost` into named time and memory components.

:func:`evaluate_training` is the one implementation: it takes columns of strategies
(:class:`~paraplan.strategy.StrategyArrays`) and returns arrays, so a planner prices a million
strategies in one call. :func:`estimate_training` wraps it for one strategy and returns a typed,
self-explaining :class:`TrainingEstimate` whose components add up to the totals.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import _yaml
from .breakdown import MemoryBreakdown, TimeBreakdown
from .cost import flops as F
from .cost import memory as M
from .cost.comm import collective_time
from .cost.efficiency import Layer, attention_time, curves_provenance, gemm_time, memory_time
from .cost.pipeline import bubble_slots, inflight_microbatches
from .rules import Framework, get_framework
from .specs import ClusterSpec, ModelSpec
from .strategy import OPTIMIZERS, PRECISIONS, Strategy, StrategyArrays, check_strategy

#: backward of flash attention does about 2.5x the forward FLOPs (Dao 2023, FlashAttention-2, sec. 3.1:
#: 5 matmuls against 2); we price it at the forward kernel's efficiency.
ATTN_BWD_FACTOR = 2.5
#: backward of elementwise/norm ops moves about twice the forward bytes (read grad + saved input, write grad)
ELEMENTWISE_BWD_FACTOR = 2.0
#: bytes moved per parameter by one optimizer step (read fp32 master/m/v/grad, write master/m/v + 16-bit copy)
OPTIMIZER_BYTES = {"adamw": 30.0, "adam": 30.0, "sgd": 14.0}

_FP8 = PRECISIONS.index("fp8")
_FP32 = PRECISIONS.index("fp32")

TIME_COMPONENTS = (
    "gemm", "attention", "elementwise", "recompute", "overhead", "tp_comm", "cp_comm", "ep_comm",
    "pp_comm", "pipeline_bubble", "dp_comm", "optimizer", "offload",
)
MEMORY_COMPONENTS = ("weights", "gradients", "optimizer_states", "activations", "zero3_buffers", "overhead")


class Workload(BaseModel):
    """What is trained: sequence length, and optionally how many tokens in total."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seq_len: int = Field(2048, ge=1)
    tokens: float | None = None  # total training tokens, for time- and cost-to-train
    dropout: bool = False  # whether the model trains with dropout (stores masks)
    flash_attention: bool | None = None  # None: the framework's default
    #: element-wise kernel fusion (bias + GeLU/SwiGLU, bias + dropout + residual add, scale + mask + softmax),
    #: Narayanan et al. 2021 sec. 4.2; False for frameworks before it (each op its own pass over memory)
    fused_kernels: bool = True


@cache
def training_params() -> dict[str, Any]:
    """Shared training parameters per accelerator family (``catalog/curves/training.yaml``)."""
    path = resources.files("paraplan.catalog").joinpath("curves/training.yaml")
    try:
        text = path.read_text(encoding="utf-8")
        return _yaml.load_text(text) or {}
    except FileNotFoundError:
        return {}


def family_params(family: str, layer: Layer, calibration: dict[str, float] | None = None) -> dict[str, float]:
    """Fitted derate/overheads for ``family``; the spec layer uses none of them; ``calibration`` overrides."""
    base = {"compute_derate": 1.0, "attention_derate": 1.0, "layer_overhead_s": 0.0, "step_overhead_s": 0.0}
    if calibration:
        return {**base, **{k: float(v) for k, v in calibration.items() if k in base}}
    if layer == "spec":
        return base
    fams = training_params().get("families", {})
    fp = fams.get(family) or fams.get("default") or {}
    return {**base, **{k: float(v) for k, v in fp.items() if k in base}}


def training_params_provenance(family: str, layer: Layer, calibration: dict[str, float] | None = None,
                               calibration_source: str | None = None) -> str:
    """Where :func:`family_params` takes the shared training parameters from, in words."""
    if calibration:
        return f"shared training parameters from {calibration_source or 'a caller-supplied calibration'}"
    if layer == "spec":
        return "no shared training parameters (spec layer)"
    fams = training_params().get("families", {})
    which = f"family '{family}'" if family in fams else f"'default' (no fit for family '{family}')"
    return f"shared training parameters (catalog/curves/training.yaml, {which})"


def tp_gemm_shape(g: F.Gemm, tp: np.ndarray) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(n, k) of a weight GEMM on one tensor-parallel rank: column-split GEMMs divide n, row-split divide k."""
    n: np.ndarray | float = float(g.n)
    k: np.ndarray | float = float(g.k)
    if g.split == "col":
        n = n / tp
    elif g.split == "row":
        k = k / tp
    return n, k


def gemm_rank_shape(g: F.Gemm, tokens: np.ndarray, tp: np.ndarray, ep: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray | float, np.ndarray | float, np.ndarray | float]:
    """(m, n, k, count) of one weight GEMM on one rank for ``tokens`` tokens of a micro-batch.

    Experts are not tensor-parallel (expert TP = 1; MoE parallel folding, Liu et al. 2024): each TP rank
    dispatches its 1/tp of the tokens; each of the E / ep local experts gets tokens / tp * top_k * ep / E of them.
    Dense GEMMs are split by TP (:func:`tp_gemm_shape`)."""
    if g.expert:
        return np.maximum(tokens / tp * g.tokens_factor * ep, 1.0), float(g.n), float(g.k), g.count / ep
    n, k = tp_gemm_shape(g, tp)
    return np.maximum(tokens * g.tokens_factor, 1.0), n, k, float(g.count)


def _gemms_time(acc, dtype: np.ndarray, gemms: list[F.Gemm], tokens: np.ndarray, tp: np.ndarray,
                ep: np.ndarray, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward time of a list of GEMMs on one rank for ``tokens`` tokens."""
    fwd = np.zeros(tokens.shape)
    bwd = np.zeros(tokens.shape)
    is_fp8 = dtype == _FP8
    any8 = bool(np.any(is_fp8))
    all8 = any8 and bool(np.all(is_fp8))
    for g in gemms:
        m, n, k, count = gemm_rank_shape(g, tokens, tp, ep)
        for fp8 in (False, True):
            if fp8:
                if not any8 or g.name == "router":
                    continue
                sel, everywhere = is_fp8, all8
            else:
                if all8:
                    continue
                sel, everywhere = ~is_fp8, not any8
            dt = "fp8" if fp8 else "bf16"
            f = gemm_time(acc, dt, m, n, k, layer=layer, quantize=False)
            b = (gemm_time(acc, dt, m, k, n, layer=layer, quantize=False)
                 + gemm_time(acc, dt, n, k, m, layer=layer, quantize=False))
            if everywhere:  # same values as np.where with an all-true mask, without the selects
                fwd = fwd + count * f
                bwd = bwd + count * b
            else:
                fwd = fwd + np.where(sel, count * f, 0.0)
                bwd = bwd + np.where(sel, count * b, 0.0)
    return fwd, bwd


def _shard_n(cluster: ClusterSpec, s: StrategyArrays, tp: np.ndarray, dp: np.ndarray, cp: np.ndarray) -> np.ndarray:
    """Ranks a ZeRO shard spans: the data-parallel group, or (HSDP) its part inside one scale-up domain."""
    if not bool(np.any(s.hsdp)):
        return dp
    return np.where(s.hsdp, np.minimum(dp, np.maximum(cluster.domain // (tp * cp), 1)), dp)


def _columns(s: StrategyArrays, seq_len: int) -> tuple[np.ndarray, ...]:
    """The float columns both estimators start from: tp, pp, dp, cp, ep, micro-batches per step, and tokens per
    micro-batch on one rank."""
    tp, pp, dp, cp, ep = (s.tp.astype(float), s.pp.astype(float), s.dp.astype(float), s.cp.astype(float),
                          s.ep.astype(float))
    n_micro = np.maximum(np.floor(s.global_batch / (s.micro_batch * s.dp)), 1.0)
    tokens = s.micro_batch.astype(float) * float(seq_len) / cp
    return tp, pp, dp, cp, ep, n_micro, tokens


def evaluate_memory(model: ModelSpec, cluster: ClusterSpec, s: StrategyArrays, workload: Workload,
                    framework: Framework | str = "megatron") -> dict[str, np.ndarray]:
    """Memory per accelerator of columns of strategies: the ``mem.*`` components, ``memory_bytes``,
    ``memory_capacity_bytes`` and ``fits`` exactly as :func:`evaluate_training` reports them (the same code),
    without pricing time. The planner uses it to time only the strategies that fit."""
    fw = get_framework(framework) if isinstance(framework, str) else framework
    flash = fw.flash_attention if workload.flash_attention is None else workload.flash_attention
    tp, pp, dp, cp, ep, n_micro, tokens = _columns(s, workload.seq_len)
    return _memory(model, cluster, s, workload, flash, n_micro, tokens, _shard_n(cluster, s, tp, dp, cp), tp, pp,
                   dp, cp, ep, fw.mixed_grad_bytes)


def evaluate_training(model: ModelSpec, cluster: ClusterSpec, s: StrategyArrays, workload: Workload,
                      framework: Framework | str = "megatron", *, layer: Layer = "curves",
                      calibration: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Price columns of strategies. Returns arrays: ``time.<component>``, ``mem.<component>`` (peak stage),
    totals, throughput and utilisation. Pure: no I/O beyond the cached catalog."""
    fw = get_framework(framework) if isinstance(framework, str) else framework
    acc = cluster.accelerator
    flash = fw.flash_attention if workload.flash_attention is None else workload.flash_attention
    fam = family_params(acc.family, layer, calibration)
    seq = float(workload.seq_len)
    L = model.n_layers
    h = float(model.hidden)

    tp, pp, dp, cp, ep, n_micro, tokens = _columns(s, workload.seq_len)
    mb = s.micro_batch.astype(float)
    n_acc = tp * pp * dp * cp
    layers_stage = L / pp
    moe_frac = model.n_moe_layers / L
    dense_frac = 1.0 - moe_frac

    # ---------------- compute per micro-batch on the bottleneck (last) stage
    g_dense_f, g_dense_b = _gemms_time(acc, s.precision, F.layer_gemms(model, False), tokens, tp, ep, layer)
    if model.is_moe:
        g_moe_f, g_moe_b = _gemms_time(acc, s.precision, F.layer_gemms(model, True), tokens, tp, ep, layer)
    else:
        g_moe_f = g_moe_b = np.zeros_like(tokens)
    g_layer_f = dense_frac * g_dense_f + moe_frac * g_moe_f
    g_layer_b = dense_frac * g_dense_b + moe_frac * g_moe_b
    head_f, head_b = _gemms_time(acc, s.precision, [F.head_gemm(model)], tokens, tp, ep, layer)

    dqk, dv = F.attention_dims(model)
    attn_full = attention_time(acc, "bf16", mb, model.n_heads / tp, seq, seq, float(dqk),
                               np.maximum(model.kv_heads / tp, 1.0), causal=True, layer=layer) / cp
    window_scale = F.mean_attended(model, seq) / (seq / 2.0)
    attn_f = attn_full * window_scale * (0.5 * (dqk + dv) / dqk)
    attn_b = ATTN_BWD_FACTOR * attn_f

    # elementwise bytes per token per layer, forward (bf16 activations)
    f_rank = (model.moe.expert_ffn_hidden * model.moe.top_k if model.is_moe and model.moe else model.ffn_hidden)
    f_layer = dense_frac * model.ffn_hidden + moe_frac * f_rank
    # two norms (read + write h: 4h B each), two residual adds (read 2h, write h: 6h B each); dropout is
    # fused into the bias-dropout-add kernels and only adds its 1-byte masks
    rep = 8.0 * h + 12.0 * h + (2.0 * h if workload.dropout else 0.0)
    act_bytes = (6.0 if model.gated else 4.0) * f_layer
    rope_bytes = 0.0 if model.learned_pos_emb else 4.0 * (model.n_heads * dqk + 2 * model.kv_heads * dqk)
    # MoE token permutation (dispatch gather + combine scatter: read and write top_k copies of each token)
    # and the router's softmax/top-k over the experts
    moe_bytes = moe_frac * (8.0 * model.moe.top_k * h + 12.0 * model.moe.n_experts) if model.moe else 0.0
    if not workload.fused_kernels:
        # each op its own kernel: the bias add before the activation (+ read and write f) or, gated, the SiLU
        # before the product (+ read and write f); at both residual sites the bias add and the dropout run
        # apart from the residual add (+ read and write h each)
        act_bytes = act_bytes + (4.0 * f_layer if model.gated or model.bias else 0.0)
        rep = rep + 2.0 * ((4.0 * h if model.bias else 0.0) + (4.0 * h if workload.dropout else 0.0))
    ew_bytes_tok = np.where(s.sp, rep / tp, rep) + (act_bytes + rope_bytes) / tp + moe_bytes
    ew_f = memory_time(acc, tokens * ew_bytes_tok, layer=layer)
    ew_b = ELEMENTWISE_BWD_FACTOR * ew_f
    if s.precision.size and np.any(s.precision == PRECISIONS.index("fp8")):
        # FP8 casts as Transformer Engine runs them (priced here, the GEMMs without a quantize pass): forward,
        # the norms and the activation write the FP8 copy and its transpose themselves (+1 B per element of
        # the qkv, fc1 and fc2 inputs), the attention output gets a cast + transpose of its own (read 2, write
        # 1 + 1); backward, every linear's output gradient gets a cast + transpose (4 B per element)
        is8 = s.precision == PRECISIONS.index("fp8")
        qkv_out = (model.n_heads * dqk + 2 * model.kv_heads * dqk) / tp
        attn_out = model.n_heads * dv / tp
        fwd_b = 2.0 * h + f_layer / tp + 4.0 * attn_out
        bwd_b = 4.0 * (qkv_out + h + f_layer * (1.0 + model.gated) / tp + h)
        ew_f = ew_f + np.where(is8, memory_time(acc, tokens * fwd_b, layer=layer), 0.0)
        ew_b = ew_b + np.where(is8, memory_time(acc, tokens * bwd_b, layer=layer), 0.0)
    loss_f = memory_time(acc, tokens * 12.0 * model.vocab / tp, layer=layer)

    derate = fam["compute_derate"]
    attn_kernel = fam["attention_derate"] * fw.attention_slowdown.get(acc.family, 1.0)
    attn_f = attn_f * attn_kernel
    attn_b = attn_b * attn_kernel
    if not flash:
        # unfused attention (Megatron before flash attention): batched GEMMs over the full s x s scores (no
        # causal skipping; priced as one GEMM with the batch and heads stacked into m, whose roofline counts
        # writing and reading the scores) plus the fused scale-mask-softmax pass (read + write, 4 B per
        # score; three passes, 12 B, without kernel fusion) and, with dropout, a dropout pass (read, write,
        # mask: 5 B). Backward: twice the GEMMs and about twice the traffic.
        heads_rank = model.n_heads / tp
        rows = mb * heads_rank * (seq / cp)
        qk = gemm_time(acc, "bf16", rows, seq, float(dqk), layer=layer)
        av = gemm_time(acc, "bf16", rows, float(dv), seq, layer=layer)
        softmax = 4.0 if workload.fused_kernels else 12.0
        traffic = memory_time(acc, rows * seq * (softmax + (5.0 if workload.dropout else 0.0)), layer=layer,
                              op="stream")
        attn_f = qk + av + traffic
        attn_b = 2.0 * attn_f
    layer_fwd = (g_layer_f + attn_f + ew_f) * derate
    # nested np.where: the values of np.select (first true condition wins) without its per-call overhead
    recompute = np.where(s.recompute == 2, layer_fwd,
                         np.where(s.recompute == 1, 0.0 if flash else attn_f * derate, 0.0))
    overhead_layer = fam["layer_overhead_s"] * (1.0 + (s.recompute == 2))

    # ---------------- communication per micro-batch (exposed part)
    ov = fw.overlap
    act_msg = tokens * h * 2.0
    n_tp_coll = 4.0 + 2.0 * (s.recompute == 2)  # AR (or AG+RS pairs) per layer: 2 fwd, 2 bwd, 2 recompute
    tp_ar = collective_time(cluster, "all_reduce", act_msg, tp, 1, layer=layer)
    tp_layer = n_tp_coll * tp_ar
    tp_layer = tp_layer * (1.0 - ov.tp)
    kv_msg = tokens * 2.0 * (model.kv_heads if model.mla is None else model.n_heads) * dqk * 2.0 / np.minimum(
        tp, model.kv_heads if model.mla is None else model.n_heads)
    cp_t = 3.0 * (cp - 1.0) * collective_time(cluster, "send_recv", kv_msg, cp, tp, layer=layer)
    cp_layer = np.maximum(cp_t - ov.cp * (attn_f + attn_b), 0.0) * (cp > 1)
    if model.is_moe and model.moe:
        a2a_msg = tokens / tp * model.moe.top_k * h * 2.0
        n_a2a = 4.0 + 2.0 * (s.recompute == 2)
        ep_layer = moe_frac * n_a2a * collective_time(cluster, "all_to_all", a2a_msg, ep, 1, layer=layer)
        ep_layer = ep_layer * (1.0 - ov.ep)
    else:
        ep_layer = np.zeros_like(tokens)
    # scatter/gather optimisation (Narayanan et al. 2021, sec. 4.1): each TP rank sends 1/tp of the
    # boundary activation over its own NIC (then an all-gather over the scale-up fabric, not priced); with
    # sequence parallelism the boundary activation is sharded anyway. Without it every TP rank sends it whole.
    p2p_msg = tokens * h * 2.0 / np.where(s.sp | fw.pp_scatter_gather, tp, 1.0)
    pp_mb = 2.0 * s.vpp * collective_time(cluster, "send_recv", p2p_msg, pp, tp * cp * dp, layer=layer) * (pp > 1)
    pp_mb = pp_mb * (1.0 - ov.pp)

    t_gemm = layers_stage * (g_layer_f + g_layer_b) * derate + (head_f + head_b) * derate
    t_attn = layers_stage * (attn_f + attn_b) * derate
    t_ew = layers_stage * (ew_f + ew_b) * derate + 3.0 * loss_f * derate
    t_rec = layers_stage * recompute
    t_ovh = layers_stage * overhead_layer
    t_tp = layers_stage * tp_layer
    t_cp = layers_stage * cp_layer
    t_ep = layers_stage * ep_layer
    t_mb = t_gemm + t_attn + t_ew + t_rec + t_ovh + t_tp + t_cp + t_ep + pp_mb
    fwd_mb = layers_stage * layer_fwd + head_f * derate
    bwd_mb = t_mb - fwd_mb

    bubble = bubble_slots(s.schedule, pp, s.vpp) * t_mb

    # ---------------- data parallel and optimizer (per step)
    p_stage_dense, p_stage_expert = _stage_params(model, pp)  # parameters per rank before DP sharding
    p_rank = p_stage_dense / tp + p_stage_expert / ep
    any_hsdp = bool(np.any(s.hsdp))
    shard_n = _shard_n(cluster, s, tp, dp, cp)
    grad_bytes = p_rank * 2.0
    n_dp = dp * cp
    zero = s.zero
    ar = collective_time(cluster, "all_reduce", grad_bytes, n_dp, tp, layer=layer)
    rs = collective_time(cluster, "reduce_scatter", grad_bytes, n_dp, tp, layer=layer)
    ag = collective_time(cluster, "all_gather", p_rank * 2.0, n_dp, tp, layer=layer)
    # ZeRO-3 per micro-batch: gather weights for forward and again for backward, reduce-scatter grads
    ag3 = collective_time(cluster, "all_gather", p_rank * 2.0, shard_n, tp, layer=layer)
    rs3 = collective_time(cluster, "reduce_scatter", grad_bytes, shard_n, tp, layer=layer)
    hsdp_ar = np.where(s.hsdp & (dp > shard_n),
                       collective_time(cluster, "all_reduce", grad_bytes / shard_n, dp / shard_n,
                                       tp * cp * shard_n, layer=layer), 0.0) if any_hsdp else np.zeros(dp.shape)
    fwd_c = fwd_mb
    bwd_c = np.maximum(bwd_mb, 0.0)
    z3_exposed = (np.maximum(ag3 - ov.zero3 * fwd_c, 0.0) + np.maximum(ag3 + rs3 - ov.zero3 * bwd_c, 0.0)
                  + (ag3 / L) * 2.0)
    dp_grad = np.where(zero >= 1, rs, ar)
    dp_exposed = np.where(
        dp <= 1, 0.0, np.where(
            zero == 3, n_micro * z3_exposed + hsdp_ar,
            np.maximum(dp_grad - ov.dp_grad * bwd_c, 0.0) + dp_grad / np.maximum(L / pp, 1.0)
            + np.where(zero >= 1, np.maximum(ag - ov.dp_param * fwd_c, 0.0), 0.0)),
    )
    opt_shard = np.where(zero >= 1, p_rank / n_dp, p_rank)
    opt_bytes = np.array([OPTIMIZER_BYTES[o] for o in OPTIMIZERS])[s.optimizer]
    t_opt = memory_time(acc, opt_shard * opt_bytes, layer=layer) + fam["step_overhead_s"]

    t_off = _offload_time(model, cluster, s, fw, n_micro, fwd_mb + bwd_c, p_rank, opt_shard, opt_bytes, shard_n,
                          n_acc)
    if t_off is not None:  # the optimizer step of offloaded states runs on the CPU (priced in t_off)
        t_opt = np.where(s.offload > 0, fam["step_overhead_s"], t_opt)
    else:
        t_off = np.zeros_like(t_opt)
    step = n_micro * t_mb + bubble + dp_exposed + t_opt + t_off

    # ---------------- throughput and utilisation
    tokens_step = s.global_batch * seq
    model_flops_tok = F.model_flops_per_token(model, seq)
    hw_flops_tok = model_flops_tok + np.where(s.recompute == 2, model_flops_tok / 3.0 - 2.0 * model.vocab * h, 0.0)
    peak = np.array([_peak_or_nan(acc, p) for p in PRECISIONS])[s.precision]
    peak16 = acc.peak("bf16")
    model_tflops = model_flops_tok * tokens_step / step / n_acc

    # ---------------- memory on each stage; report the worst
    mem = _memory(model, cluster, s, workload, flash, n_micro, tokens, shard_n, tp, pp, dp, cp, ep,
                  fw.mixed_grad_bytes)

    out: dict[str, np.ndarray] = {
        "time.gemm": n_micro * t_gemm,
        "time.attention": n_micro * t_attn,
        "time.elementwise": n_micro * t_ew,
        "time.recompute": n_micro * t_rec,
        "time.overhead": n_micro * t_ovh + fam["step_overhead_s"],
        "time.tp_comm": n_micro * t_tp,
        "time.cp_comm": n_micro * t_cp,
        "time.ep_comm": n_micro * t_ep,
        "time.pp_comm": n_micro * pp_mb,
        "time.pipeline_bubble": bubble,
        "time.dp_comm": dp_exposed,
        "time.optimizer": t_opt - fam["step_overhead_s"],
        "time.offload": t_off,
        "step_time_s": step,
        "n_micro": n_micro,
        "tokens_per_s": tokens_step / step,
        "tokens_per_s_per_accelerator": tokens_step / step / n_acc,
        "model_tflops_per_accelerator": model_tflops / 1e12,
        "mfu": model_tflops / peak,
        "mfu_bf16_peak": model_tflops / peak16,
        "hfu": hw_flops_tok * tokens_step / step / n_acc / peak,
        "model_flops_per_token": np.broadcast_to(model_flops_tok, step.shape),
        "n_accelerators": n_acc,
        "dp_comm_total": np.where(dp <= 1, 0.0, np.where(zero == 3, n_micro * (2 * ag3 + rs3) + hsdp_ar,
                                                          dp_grad + np.where(zero >= 1, ag, 0.0))),
        "tp_comm_total": n_micro * layers_stage * n_tp_coll * tp_ar,
    }
    out.update(mem)
    return out


def _peak_or_nan(acc, dtype: str) -> float:
    try:
        return acc.peak(dtype)
    except KeyError:
        return float("nan")


def _stage_params(model: ModelSpec, pp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(non-expert, expert) parameters of the largest pipeline stage (layers + embedding or head)."""
    L = model.n_layers
    h = model.hidden
    common = model.attention_params() + 2 * h
    l_moe = model.n_moe_layers
    dense_layer = common + model.dense_ffn_params()
    if model.moe:
        moe_common = common + h * model.moe.n_experts + model.shared_ffn_params()
        expert_layer = model.moe.n_experts * model.expert_ffn_params()
    else:
        moe_common = expert_layer = 0
    per_layer_dense = ((L - l_moe) * dense_layer + l_moe * moe_common) / L
    per_layer_expert = l_moe * expert_layer / L
    layers = L / pp
    emb = model.vocab * h + (model.max_seq_len * h if model.learned_pos_emb else 0)
    head = model.vocab * h
    # single stage holds both (once if tied); otherwise the first holds embedding, the last the head
    ends = np.where(pp > 1, np.maximum(emb, head), emb + (0 if model.tied_embeddings else head))
    return layers * per_layer_dense + ends, layers * per_layer_expert


def _ranks_per_node(cluster: ClusterSpec, n_acc: np.ndarray) -> np.ndarray:
    return np.minimum(float(cluster.per_node), n_acc)


def _offload_time(model: ModelSpec, cluster: ClusterSpec, s: StrategyArrays, fw: Framework, n_micro: np.ndarray,
                  compute_mb: np.ndarray, p_rank: np.ndarray, opt_shard: np.ndarray, opt_bytes: np.ndarray,
                  shard_n: np.ndarray, n_acc: np.ndarray) -> np.ndarray | None:
    """Seconds per step that offloading adds (None when no strategy offloads): ZeRO-Offload / ZeRO-Infinity.

    * optimizer offload: each step the rank's reduced gradient shard goes to the host and the updated 16-bit
      parameters come back over PCIe (exposed: after the backward); the optimizer step runs on the CPU at the
      node's memory bandwidth (:data:`~paraplan.cost.memory.CPU_OPTIMIZER_BYTES` per parameter, all the node's
      ranks sharing it); with NVMe the fp32 states are read and written around it;
    * parameter offload (ZeRO-3): every micro-batch fetches the rank's parameter shard for forward, backward and
      the recompute forward, hidden under that compute up to the framework's ``overlap.offload``.
    PCIe and NVMe stages are pipelined (:func:`paraplan.cost.offload.transfer_time`)."""
    off_o, off_p = s.offload, s.offload_params
    if not (np.any(off_o) or np.any(off_p)):
        return None
    from .cost import offload as O

    host = cluster.host_spec
    acc = cluster.accelerator
    per_node = _ranks_per_node(cluster, n_acc)
    nvme_bw = host.nvme_bw / per_node
    grad_b = np.where(s.precision == _FP32, 4.0, fw.mixed_grad_bytes)
    pcie_step = np.where(off_o > 0, (grad_b + 2.0) * opt_shard, 0.0)
    nvme_step = np.where(off_o == 2, 2.0 * opt_bytes * opt_shard, 0.0)
    cpu_step = np.where(off_o > 0, per_node * opt_shard * M.CPU_OPTIMIZER_BYTES / host.memory_bw, 0.0)
    loads = 2.0 + (s.recompute == 2)
    fetch = np.where(off_p > 0, n_micro * loads * 2.0 * p_rank / shard_n, 0.0)
    t_fetch = O.transfer_time(fetch, np.where(off_p == 2, fetch, 0.0), acc.pcie_bw, nvme_bw)
    exposed = O.exposed_time(t_fetch, n_micro * compute_mb, fw.overlap.offload)
    return exposed + O.transfer_time(pcie_step, nvme_step, acc.pcie_bw, nvme_bw) + cpu_step


def _memory(model: ModelSpec, cluster: ClusterSpec, s: StrategyArrays, w: Workload, flash: bool,
            n_micro: np.ndarray, tokens: np.ndarray, shard_n: np.ndarray, tp: np.ndarray, pp: np.ndarray,
            dp: np.ndarray, cp: np.ndarray, ep: np.ndarray, mixed_grad_bytes: float = 2.0) -> dict[str, np.ndarray]:
    """Memory per rank for the first and last pipeline stage (the two extremes); reports the larger.

    ``mixed_grad_bytes``: the framework's gradient-buffer bytes per parameter in mixed precision (Megatron
    accumulates and reduces fp32 main grads: 4)."""
    h = model.hidden
    p_dense, p_expert = _stage_params(model, pp)
    is32 = s.precision == _FP32
    wb = np.where(is32, 4.0, 2.0)
    gb = np.where(is32, 4.0, mixed_grad_bytes)
    mixed_opt = np.array([M.OPT_BYTES_MIXED[o] for o in OPTIMIZERS])[s.optimizer]
    fp32_opt = np.array([M.OPT_BYTES_FP32[o] for o in OPTIMIZERS])[s.optimizer]
    ob = np.where(is32, fp32_opt, mixed_opt)
    dense_rank = p_dense / tp
    expert_rank = p_expert / ep
    edp = np.maximum(tp * dp * cp / ep, 1.0)
    z = s.zero
    shard_d = np.where(z >= 1, shard_n * np.where(s.hsdp, 1.0, cp), 1.0)
    shard_e = np.where(z >= 1, np.where(s.hsdp, np.minimum(edp, shard_n), edp), 1.0)

    def states(nbytes: np.ndarray, stage_from: int) -> np.ndarray:
        sd = np.where(z >= stage_from, shard_d, 1.0)
        se = np.where(z >= stage_from, shard_e, 1.0)
        return nbytes * (dense_rank / sd + expert_rank / se)

    weights = states(wb, 3)
    grads = states(gb, 2)
    opt = states(ob, 1)
    # offloaded states leave the device: optimizer states (and gradients from ZeRO-2) to s.offload's tier,
    # ZeRO-3 parameter shards to s.offload_params' (ZeRO-Infinity puts all three on NVMe for a 1T model on one
    # DGX-2)
    off_o, off_p = s.offload, s.offload_params
    offloading = bool(np.any(off_o) or np.any(off_p))
    if offloading:
        g_off = np.where((off_o > 0) & (z >= 2), grads, 0.0)
        host_b = np.where(off_o == 1, opt + g_off, 0.0) + np.where(off_p == 1, weights, 0.0)
        nvme_b = np.where(off_o == 2, opt + g_off, 0.0) + np.where(off_p == 2, weights, 0.0)
        opt = np.where(off_o > 0, 0.0, opt)
        grads = np.where((off_o > 0) & (z >= 2), 0.0, grads)
        weights = np.where(off_p > 0, 0.0, weights)
    layer_full = (model.attention_params() + model.dense_ffn_params()) / tp * wb
    z3buf = np.where(z == 3, 2.0 * layer_full, 0.0)

    moe_frac = model.n_moe_layers / model.n_layers
    kw = {"flash": flash, "dropout": w.dropout}
    a_dense = M.activation_bytes_per_layer(model, tokens, w.seq_len, tp, s.sp, s.recompute, **kw)
    a_moe = M.activation_bytes_per_layer(model, tokens, w.seq_len, tp, s.sp, s.recompute, moe_layer=True, **kw) \
        if model.is_moe else a_dense
    a_layer = (1 - moe_frac) * a_dense + moe_frac * a_moe
    layers = model.n_layers / pp
    first = inflight_microbatches(s.schedule, pp, s.vpp, n_micro, 0)
    last = inflight_microbatches(s.schedule, pp, s.vpp, n_micro, pp - 1)
    work = M.recompute_working_bytes(model, tokens, w.seq_len, tp, s.sp, s.recompute, **kw)
    logits = tokens * model.vocab / tp * 6.0  # bf16 logits + fp32 softmax for the loss
    emb_out = tokens * h * 2.0
    act_first = layers * a_layer * first + work + emb_out + np.where(pp == 1, logits, 0.0)
    act_last = layers * a_layer * last + work + logits
    act = np.maximum(act_first, act_last)
    overhead = np.full(act.shape, M.FRAMEWORK_OVERHEAD_BYTES)
    total = weights + grads + opt + act + z3buf + overhead
    cap = cluster.accelerator.memory_bytes
    fits_device = total <= cap
    if offloading:
        host = cluster.host_spec
        per_node = _ranks_per_node(cluster, tp * pp * dp * cp)
        fits_host = (per_node * host_b <= host.memory_bytes * (1.0 - M.HOST_RESERVE_FRACTION)) \
            & (per_node * nvme_b <= host.nvme_bytes)
        fits = fits_device & fits_host
    else:
        host_b = nvme_b = np.zeros(act.shape)
        fits_host = np.ones(act.shape, dtype=bool)
        fits = fits_device
    return {
        "mem.weights": weights, "mem.gradients": grads, "mem.optimizer_states": opt, "mem.activations": act,
        "mem.zero3_buffers": z3buf, "mem.overhead": overhead, "memory_bytes": total,
        "memory_capacity_bytes": np.full(act.shape, cap), "fits": fits,
        "fits_device": fits_device, "fits_host": fits_host,
        "host_memory_bytes": host_b, "nvme_bytes": nvme_b,
        "mem.activations_first_stage": act_first, "mem.activations_last_stage": act_last,
    }


# ===================================================================== single-strategy API
class TrainingEstimate(BaseModel):
    """Prediction for one strategy. Components add up to ``step_time_s`` and ``memory.total_bytes``."""

    model_config = ConfigDict(frozen=True)
    model: str
    cluster: str
    accelerator: str
    n_accelerators: int
    strategy: Strategy
    seq_len: int
    framework: str
    step_time_s: float
    tokens_per_s: float
    tokens_per_s_per_accelerator: float
    model_tflops_per_accelerator: float
    mfu: float
    hfu: float
    model_flops_per_token: float
    time: TimeBreakdown
    memory: MemoryBreakdown
    fits: bool
    n_micro_batches: int
    time_to_train_s: float | None = None
    cost_usd: float | None = None
    assumptions: list[str] = []
    provenance: str = ""
    error_band_pct: float | None = None  # p90 APE on published runs, each source held out of the fit (None: spec)
    #: per accelerator: model states offloaded to host memory and to NVMe (``strategy.offload*``)
    host_memory_bytes: float = 0.0
    nvme_bytes: float = 0.0

    def records(self) -> list[dict[str, Any]]:
        """Flat rows (component, kind, value) for pandas."""
        rows = [{"kind": "time_s", "component": k, "value": v} for k, v in self.time.components_s.items()]
        rows += [{"kind": "memory_bytes", "component": k, "value": v} for k, v in self.memory.components_bytes.items()]
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model, "cluster": self.cluster, "n_accelerators": self.n_accelerators,
            "step_time_s": self.step_time_s, "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_accelerator": self.tokens_per_s_per_accelerator,
            "model_tflops_per_accelerator": self.model_tflops_per_accelerator, "mfu": self.mfu, "hfu": self.hfu,
            "memory_gb": self.memory.total_bytes / 1e9, "fits": self.fits,
        }


def estimate_training(model: ModelSpec, cluster: ClusterSpec, strategy: Strategy | None = None,
                      workload: Workload | None = None, *, framework: str | Framework = "megatron",
                      layer: Layer = "curves",
                      check: bool = True, calibration: dict[str, float] | None = None,
                      calibration_source: str | None = None) -> TrainingEstimate:
    """Estimate one training step. Raises :class:`~paraplan.errors.InvalidStrategyError` for an illegal strategy.

    ``calibration`` overrides the shared training parameters; ``calibration_source`` names where they came from
    (e.g. a ``paraplan calibrate`` profile) in the estimate's ``provenance``."""
    workload = workload or Workload()
    fw = get_framework(framework) if isinstance(framework, str) else framework
    assumptions: list[str] = list(model.caveats)
    if strategy is None:
        strategy = Strategy(dp=cluster.n_accelerators, global_batch=cluster.n_accelerators)
        assumptions.append(f"no strategy given: pure data parallel dp={cluster.n_accelerators}, micro-batch 1")
    if check:
        check_strategy(model, cluster, strategy, workload.seq_len, framework=fw)
    r = evaluate_training(model, cluster, strategy.to_arrays(), workload, fw, layer=layer, calibration=calibration)
    v = {k: float(np.asarray(a).reshape(-1)[0]) for k, a in r.items()}
    comps = {c: v[f"time.{c}"] for c in TIME_COMPONENTS}
    mems = {c: v[f"mem.{c}"] for c in MEMORY_COMPONENTS}
    cap = v["memory_capacity_bytes"]
    fits = bool(v["fits"])
    over_c = None if fits else max(mems, key=lambda c: mems[c])
    if not fits and v["fits_device"]:
        over_c = "host memory / NVMe (offloaded states)"
    flash = fw.flash_attention if workload.flash_attention is None else workload.flash_attention
    assumptions += [
        f"framework '{fw.name}' overlap rules: {fw.overlap.model_dump()}",
        f"flash attention: {flash}; dropout: {workload.dropout}"
        + ("" if workload.fused_kernels else "; element-wise kernels unfused (one pass per op)"),
        "gradients reduced in 16-bit; Adam states 12 B/param (fp32 master, m, v)",
        f"framework memory overhead {M.FRAMEWORK_OVERHEAD_BYTES / 1e9:.1f} GB per accelerator",
        "TP/CP/EP groups inside one scale-up domain when they fit; DP across domains is hierarchical",
        "stages balanced by layer count; the last stage also runs the LM head and loss",
    ]
    if strategy.offload != "none" or strategy.offload_params != "none":
        h = cluster.host_spec
        assumptions.append(
            f"offload: {v['host_memory_bytes'] / 1e9:.1f} GB host memory and {v['nvme_bytes'] / 1e9:.1f} GB NVMe per "
            f"accelerator; host {h.memory_bytes / 1e9:.0f} GB at {h.memory_bw / 1e9:.0f} GB/s, NVMe "
            f"{h.nvme_bytes / 1e12:.1f} TB at {h.nvme_bw / 1e9:.0f} GB/s per node ({h.source}); PCIe "
            f"{cluster.accelerator.pcie_bw / 1e9:.0f} GB/s per accelerator; CPU Adam at the host's memory bandwidth")
    if strategy.grad_accum * strategy.micro_batch * strategy.dp != strategy.global_batch:
        assumptions.append("global batch rounded down to a multiple of micro_batch * dp")
    tp_ = training_params()
    # the error band is the p90 APE of the published runs when each run's source is held out of the fit: the
    # honest figure for a framework or lab the fit has not seen (the in-sample p90 is smaller)
    val = tp_.get("validation", {})
    band = None if layer == "spec" else ((val.get("leave_one_source_out") or {}).get("p90_ape_pct")
                                         or val.get("p90_ape_pct"))
    if band is not None and cluster.accelerator.family not in (tp_.get("families") or {}):
        assumptions.append(
            f"no published training runs on {cluster.accelerator.family} accelerators in the validation data: the "
            "error band is that of held-out sources on other families and may be too narrow")
    ttt = cost = None
    if workload.tokens:
        ttt = workload.tokens / v["tokens_per_s"]
        cost = ttt / 3600.0 * cluster.accelerator.price_per_hour * v["n_accelerators"]
        assumptions.append(f"price {cluster.accelerator.price_per_hour} USD per accelerator-hour (override it)")
    return TrainingEstimate(
        model=model.name, cluster=cluster.name, accelerator=cluster.accelerator.name,
        n_accelerators=int(v["n_accelerators"]), strategy=strategy, seq_len=workload.seq_len, framework=fw.name,
        step_time_s=v["step_time_s"], tokens_per_s=v["tokens_per_s"],
        tokens_per_s_per_accelerator=v["tokens_per_s_per_accelerator"],
        model_tflops_per_accelerator=v["model_tflops_per_accelerator"], mfu=v["mfu"], hfu=v["hfu"],
        model_flops_per_token=v["model_flops_per_token"],
        time=TimeBreakdown(components_s=comps, total_s=v["step_time_s"]),
        memory=MemoryBreakdown(components_bytes=mems, total_bytes=v["memory_bytes"], capacity_bytes=cap, fits=fits,
                               overflow_component=over_c, overflow_bytes=max(v["memory_bytes"] - cap, 0.0)),
        fits=fits, n_micro_batches=int(v["n_micro"]), time_to_train_s=ttt, cost_usd=cost,
        assumptions=assumptions,
        provenance=f"layer={layer}: spec sheet ({cluster.accelerator.source or 'catalog'})"
        + ("" if layer == "spec" else " + " + curves_provenance(cluster.accelerator, layer))
        + ("" if layer == "spec" and not calibration else " + " + training_params_provenance(
            cluster.accelerator.family, layer, calibration, calibration_source)),
        error_band_pct=band, host_memory_bytes=v["host_memory_bytes"], nvme_bytes=v["nvme_bytes"],
    )
