"""Inference estimator: prefill and decode step times, memory, latency, throughput, cost, speculative decoding.

One cost model, built on :mod:`paraplan.cost` (the GEMM inventory of :mod:`paraplan.cost.flops`, the fitted
kernel curves of :mod:`paraplan.cost.efficiency`, the collectives of :mod:`paraplan.cost.comm`):

* :func:`linear_time` prices everything of one iteration whose cost depends on the number of tokens in it
  (weight GEMMs, elementwise ops, TP/EP/PP communication, the LM head on the sampled sequences, the engine's
  fixed costs), array-first over token and sequence counts;
* :func:`decode_attention_time` prices the attention of decoding sequences from the sum of their contexts
  (a paged-attention kernel reads every cached token once), :func:`prefill_attention_time` the attention of
  prompt chunks (flash attention over ``q`` new tokens attending ``kv`` cached plus new ones);
* :func:`iteration_time` adds them up (pipeline micro-batching included). :func:`estimate_inference` prices a
  static batch with these functions; the serving simulator (:mod:`paraplan.sim`) calls the same functions through
  :class:`StepCost`, which tabulates :func:`linear_time` once over the integer token counts.

Shared fitted parameters (per engine kind, a handful in all) live in ``catalog/curves/inference.yaml``
(``scripts/fit_infer.py``); forms and caveats in ``docs/serving.md``.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import _yaml
from .breakdown import MemoryBreakdown, TimeBreakdown
from .cost import flops as F
from .cost.comm import collective_time
from .cost.efficiency import BYTES_PER_ELEMENT, Layer, attention_time, curves_provenance, gemm_time, memory_time
from .cost.memory import FRAMEWORK_OVERHEAD_BYTES
from .errors import ParaplanError
from .specs import AcceleratorSpec, ClusterSpec, ModelSpec

ArrayLike = np.ndarray | float | int

TIME_COMPONENTS = ("gemm", "attention", "elementwise", "tp_comm", "ep_comm", "pp_comm", "overhead")
MEMORY_COMPONENTS = ("weights", "kv_cache", "draft", "workspace", "overhead")
#: engine kinds with their own shared parameters (``vllm-0.5``: vLLM before 0.6, whose Python scheduler and API
#: server ran on the critical path; newer vLLM, SGLang and unknown engines use ``default``)
ENGINES = ("default", "trtllm", "vllm", "vllm-0.5", "sglang", "deepspeed", "hf")

#: multi-token decode kernels (speculative verification, q <= this many tokens per sequence) run at the
#: decode kernel's memory rate, not the prefill kernel's
MAX_DECODE_Q = 64


class ServingInputError(ParaplanError, ValueError):
    """An inference/serving input that cannot be priced (lengths beyond the context, a batch that does not
    fit, a bit width out of range, ...); the message names the value."""


# ===================================================================== configuration
class InferenceConfig(BaseModel):
    """How one replica serves: parallelism, precisions, KV cache layout and the engine kind.

    Bit widths: ``weight_bits`` 1-16 (any value; ``group_size`` adds one ``scale_bits`` scale per group),
    ``act_bits`` 16 (bf16/fp16 GEMMs; lower weight bits are weight-only quantization), 8 (FP8, or INT8 where
    the accelerator has no FP8) or 4 (FP4, e.g. NVFP4 with 16-element groups of FP8 scales); ``kv_bits`` 1-16
    (``kv_group_size`` adds a 16-bit scale and zero point per group; below 8 bits a 128-group is assumed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    weight_bits: float = 16.0
    act_bits: int = 16
    kv_bits: float = 16.0
    group_size: int | None = Field(None, ge=1)
    scale_bits: int | None = Field(None, ge=1, le=32)
    kv_group_size: int | None = Field(None, ge=1)
    block_size: int = Field(16, ge=1)
    kv_fraction: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(8192, ge=1)
    engine: str = "default"

    @field_validator("weight_bits", "kv_bits")
    @classmethod
    def _bits(cls, v: float, info: Any) -> float:
        if not (1.0 <= float(v) <= 16.0) or not math.isfinite(float(v)):
            raise ValueError(f"{info.field_name} must be within 1-16, got {v}")
        return float(v)

    @field_validator("act_bits")
    @classmethod
    def _act(cls, v: int) -> int:
        if v not in (4, 8, 16, 32):
            raise ValueError(f"act_bits must be 4, 8, 16 or 32, got {v}")
        return v

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        v = v.lower()
        if v not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> InferenceConfig:
        if self.ep > self.tp or self.tp % self.ep:
            raise ValueError(f"ep={self.ep} must divide tp={self.tp} (experts are spread over the TP ranks)")
        if self.act_bits < 16 and self.weight_bits > self.act_bits:
            raise ValueError(f"act_bits={self.act_bits} needs weight_bits <= {self.act_bits}, got {self.weight_bits}")
        return self

    @property
    def weight_bytes(self) -> float:
        """Bytes per quantized weight, group scales included."""
        meta = 0.0
        if self.group_size:
            meta = (self.scale_bits or (8 if self.act_bits == 4 else 16)) / self.group_size
        return (self.weight_bits + meta) / 8.0

    @property
    def kv_bytes(self) -> float:
        """Bytes per cached K or V element, group scale and zero point included."""
        g = self.kv_group_size or (128 if self.kv_bits < 8 else None)
        return (self.kv_bits + (32.0 / g if g else 0.0)) / 8.0

    @property
    def accelerators(self) -> int:
        return self.tp * self.pp


def compute_dtype(acc: AcceleratorSpec, act_bits: int) -> str:
    """GEMM dtype for an activation width: 16 -> bf16, 8 -> fp8 (int8 without FP8 units), 4 -> fp4."""
    if act_bits >= 32:
        return "fp32"
    if act_bits == 16:
        return "bf16"
    if act_bits == 8:
        return "fp8" if "fp8" in acc.peak_flops else "int8"
    return "fp4"


def _scaled_bw(acc: AcceleratorSpec, factor: float) -> AcceleratorSpec:
    """The same accelerator with its DRAM bandwidth scaled: streams ``factor`` x fewer bytes per element."""
    if factor == 1.0:
        return acc
    return acc.model_copy(update={"memory_bw": acc.memory_bw * factor})


# ===================================================================== shared parameters
@cache
def inference_params() -> dict[str, Any]:
    """Fitted shared parameters per engine kind (``catalog/curves/inference.yaml``); empty if absent."""
    path = resources.files("paraplan.catalog").joinpath("curves/inference.yaml")
    try:
        return _yaml.load_text(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}


PARAM_DEFAULTS: dict[str, float] = {
    "step_overhead_s": 0.0,  # per iteration: scheduling, sampling, launch of the whole step
    "layer_overhead_s": 0.0,  # per layer per iteration: kernel launches and gaps not in the kernel curves
    "seq_overhead_s": 0.0,  # per sequence per iteration: per-request bookkeeping on the host
    "compute_derate": 1.0,  # multiplies GEMM and attention kernel time
    "spec_step_overhead_s": 0.0,  # host work per speculative step (candidate trees, acceptance, cache update)
}


def engine_params(engine: str, layer: Layer = "curves",
                  calibration: dict[str, float] | None = None) -> dict[str, float]:
    """Shared parameters of an engine kind (``default`` for unknown ones); the spec layer uses none."""
    out = dict(PARAM_DEFAULTS)
    if layer != "spec":
        engines = inference_params().get("engines", {})
        src = engines.get(engine) or engines.get("default") or {}
        out.update({k: float(v) for k, v in src.items() if k in PARAM_DEFAULTS})
    if calibration:
        out.update({k: float(v) for k, v in calibration.items() if k in PARAM_DEFAULTS})
    return out


def engine_error_band(engine: str, layer: Layer = "curves") -> tuple[float | None, str | None]:
    """(p90 APE in percent, the engine kind it was measured on) of the published rows after the fit. An engine
    kind without fitted rows gets the band of the kind whose parameters it uses (``default``: the compiled
    engine's); the spec layer has none."""
    if layer == "spec":
        return None, None
    doc = inference_params()
    fit, engines = doc.get("fit") or {}, doc.get("engines") or {}
    if engine not in fit:
        engine = next((k for k, v in engines.items() if k != "default" and v == engines.get("default")), engine)
    band = (fit.get(engine) or {}).get("p90_ape_pct")
    return (None, None) if band is None else (float(band), engine)


# ===================================================================== resolved context
class _Setup:
    """Everything derived once from (model, cluster, config): dtypes, scaled accelerators, per-rank shapes."""

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, layer: Layer,
                 calibration: dict[str, float] | None) -> None:
        self.model, self.cluster, self.cfg, self.layer = model, cluster, cfg, layer
        acc = cluster.accelerator
        self.acc = acc
        self.cdt = compute_dtype(acc, cfg.act_bits)
        # weight GEMMs stream weights at cfg.weight_bytes instead of the compute dtype's width
        self.acc_w = _scaled_bw(acc, BYTES_PER_ELEMENT[self.cdt] / cfg.weight_bytes)
        kv_dt = "bf16" if cfg.kv_bits > 8 else "fp8"
        self.kv_dtype = kv_dt
        self.acc_kv = _scaled_bw(acc, BYTES_PER_ELEMENT[kv_dt] / cfg.kv_bytes)
        # prompt attention runs the 16-bit flash kernel (FP8 context attention is not assumed)
        self.prefill_dtype = "bf16"
        self.params = engine_params(cfg.engine, layer, calibration)
        self.L = model.n_layers
        self.L_moe = model.n_moe_layers
        tp = cfg.tp
        self.tp = tp
        self.dqk, self.dv = F.attention_dims(model)
        self.heads_rank = model.n_heads / tp
        if model.mla is not None:
            # latent cache (compressed KV + rope key), replicated on every TP rank, read once per token
            self.kv_elems_token_layer = float(model.mla.kv_lora_rank + model.mla.qk_rope_head_dim)
        else:
            self.kv_elems_token_layer = 2.0 * math.ceil(model.kv_heads / tp) * self.dqk
        self.kv_heads_rank = max(model.kv_heads / tp, 1.0)


def _split(g: F.Gemm, tp: int) -> tuple[float, float]:
    if g.split == "col":
        return g.n / tp, float(g.k)
    if g.split == "row":
        return float(g.n), g.k / tp
    return float(g.n), float(g.k)


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _layer_gemms(s: _Setup, T: np.ndarray, moe: bool) -> np.ndarray:
    """Weight-GEMM seconds of one layer on one rank for ``T`` tokens (array)."""
    m = s.model
    t = np.zeros(T.shape)
    gemms = F.attention_gemms(m) + ([] if moe else F.dense_ffn_gemms(m))
    for g in gemms:
        n, k = _split(g, s.tp)
        t = t + gemm_time(s.acc_w, s.cdt, T, n, k, layer=s.layer)
    if moe and m.moe is not None:
        e = m.moe
        ep, mtp = s.cfg.ep, s.cfg.tp // s.cfg.ep
        t = t + gemm_time(s.acc, "bf16", T, float(e.n_experts), float(m.hidden), layer=s.layer)  # router, 16-bit
        # expert loading at the batch: of the E/ep local experts, E/ep (1 - (1 - k/E)^T) are hit by T tokens
        local = e.n_experts / ep
        p_miss = (1.0 - e.top_k / e.n_experts) ** T
        active = local * (1.0 - p_miss)
        pairs = T * e.top_k / ep
        with np.errstate(divide="ignore", invalid="ignore"):
            m_e = np.where(active > 0, pairs / np.where(active > 0, active, 1.0), 0.0)
        m_e = np.where(T > 0, np.maximum(m_e, 1.0), 0.0)
        for g in F.dense_ffn_gemms(m, e.expert_ffn_hidden, "expert"):
            n, k = _split(g, mtp)
            t = t + active * gemm_time(s.acc_w, s.cdt, m_e, n, k, layer=s.layer)
        if e.n_shared_experts:
            f_sh = (e.shared_expert_ffn_hidden or e.expert_ffn_hidden) * e.n_shared_experts
            for g in F.dense_ffn_gemms(m, f_sh, "shared_expert"):
                n, k = _split(g, s.tp)
                t = t + gemm_time(s.acc_w, s.cdt, T, n, k, layer=s.layer)
    return t


def _layer_elementwise(s: _Setup, T: np.ndarray, moe: bool) -> np.ndarray:
    """Streaming-op seconds of one layer on one rank, one kernel (one fixed cost) each, as serving engines fuse
    them: two fused residual-add + norm (read 2h, write 2h), the activation (gated: read 2f, write f), RoPE on
    q/k plus the KV-cache append, and for MoE the token permutation and router softmax. Activation quantization
    is fused into the norm/activation kernels (no extra pass)."""
    m, tp = s.model, s.tp
    h = float(m.hidden)
    if moe and m.moe is not None:
        f_r = m.moe.expert_ffn_hidden * m.moe.top_k / tp
    else:
        f_r = m.ffn_hidden / tp
    ops = [
        8.0 * h,
        8.0 * h,
        (6.0 if m.gated else 4.0) * f_r,
        (0.0 if m.learned_pos_emb else 4.0 * (s.heads_rank + s.kv_heads_rank) * s.dqk)
        + s.kv_elems_token_layer * s.cfg.kv_bytes,
    ]
    if moe and m.moe is not None:
        ops.append(8.0 * m.moe.top_k * h + 12.0 * m.moe.n_experts)
    t = np.zeros(T.shape)
    for b in ops:
        t = t + memory_time(s.acc, T * b, layer=s.layer)
    return t


def _coll(cluster: ClusterSpec, op: str, nbytes: np.ndarray, n: int, stride: int, layer: Layer) -> np.ndarray:
    """A collective that costs nothing when there is nothing to send or nobody to send it to."""
    if n <= 1:
        return np.zeros(np.shape(nbytes))
    return np.where(nbytes > 0, collective_time(cluster, op, nbytes, n, stride, layer=layer), 0.0)


def linear_time(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, tokens: ArrayLike,
                sampled: ArrayLike, *, layer: Layer = "curves", calibration: dict[str, float] | None = None,
                _setup: _Setup | None = None) -> dict[str, np.ndarray]:
    """Seconds of one iteration (one pipeline micro-batch through every layer) that scale with its tokens.

    ``tokens``: tokens computed in the iteration (prompt-chunk tokens plus decode tokens), ``sampled``: sequences
    whose logits are computed (decoding ones plus prompts finishing their prefill). Returns the components
    ``gemm``, ``elementwise``, ``tp_comm``, ``ep_comm``, ``pp_comm``, ``overhead`` (arrays, broadcast).
    Attention is separate (:func:`decode_attention_time`, :func:`prefill_attention_time`).
    """
    s = _setup or _Setup(model, cluster, cfg, layer, calibration)
    T, S = np.broadcast_arrays(_f(tokens), _f(sampled))
    L, L_moe = s.L, s.L_moe
    L_dense = L - L_moe
    p = s.params
    gemm = L_dense * _layer_gemms(s, T, False)
    ew = L_dense * _layer_elementwise(s, T, False)
    if L_moe:
        gemm = gemm + L_moe * _layer_gemms(s, T, True)
        ew = ew + L_moe * _layer_elementwise(s, T, True)
    # LM head (16-bit, vocab split over TP) + logits to fp32 and sampling (read/write)
    head = F.head_gemm(model)
    gemm = gemm + gemm_time(s.acc, "bf16", S, head.n / s.tp, float(head.k), layer=layer)
    ew = ew + memory_time(s.acc, S * model.vocab / s.tp * 8.0, layer=layer)
    gemm = gemm * p["compute_derate"]
    act_msg = T * model.hidden * 2.0
    ar = _coll(cluster, "all_reduce", act_msg, cfg.tp, 1, layer)
    ep_on = cfg.ep > 1
    # two all-reduces per layer; in MoE layers under expert parallelism the second one is the expert combine
    tp_comm = (2.0 * L_dense + (1.0 if ep_on else 2.0) * L_moe) * ar
    tp_comm = tp_comm + _coll(cluster, "all_gather", S * model.vocab * 4.0, cfg.tp, 1, layer)
    ep_comm = (L_moe * ar) if ep_on else np.zeros(T.shape)
    pp_comm = (cfg.pp - 1) * _coll(cluster, "send_recv", act_msg, cfg.pp, cfg.tp, layer)
    active = (T > 0) | (S > 0)
    overhead = np.where(active, p["step_overhead_s"] + L * p["layer_overhead_s"] + S * p["seq_overhead_s"], 0.0)
    return {"gemm": gemm, "elementwise": ew, "tp_comm": tp_comm, "ep_comm": ep_comm, "pp_comm": pp_comm,
            "overhead": overhead + np.zeros(T.shape)}


def _window_frac(model: ModelSpec, kv: np.ndarray, q: np.ndarray | float = 1.0) -> np.ndarray:
    """Share of the attended keys a sliding-window model really reads (1 without a window)."""
    if model.sliding_window is None:
        return np.ones(np.shape(kv))
    span = np.maximum(kv - 0.5 * np.asarray(q, dtype=float) + 0.5, 1.0)
    w = float(model.sliding_window)
    f = model.sliding_window_fraction
    return f * np.minimum(span, w) / span + (1.0 - f)


def decode_attention_time(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, n_seqs: ArrayLike,
                          ctx_sum: ArrayLike, *, q_per_seq: int = 1, window_ctx_sum: ArrayLike | None = None,
                          layer: Layer = "curves", calibration: dict[str, float] | None = None,
                          _setup: _Setup | None = None) -> np.ndarray:
    """Attention seconds (all layers, one rank) of ``n_seqs`` decoding sequences whose contexts sum to
    ``ctx_sum`` tokens: one paged-attention kernel per layer reads every cached token once (KV at
    ``cfg.kv_bits``). ``q_per_seq`` > 1 prices speculative verification (the same KV read serves all of them).
    Linear in ``ctx_sum`` (the simulator relies on it). Sliding-window layers read ``window_ctx_sum``
    (the sum of ``min(context, window)``; default ``min(ctx_sum, n_seqs * window)``)."""
    s = _setup or _Setup(model, cluster, cfg, layer, calibration)
    n, c = np.broadcast_arrays(_f(n_seqs), _f(ctx_sum))
    if model.mla is not None:
        kvh, d = 1.0, s.kv_elems_token_layer / 2.0
    else:
        kvh, d = s.kv_heads_rank, float(s.dqk)

    def one(ctx: np.ndarray) -> np.ndarray:
        return attention_time(s.acc_kv, s.kv_dtype, 1.0, s.heads_rank, 1.0, ctx, d, kvh, layer=layer)

    full = one(c)
    if model.sliding_window is not None:
        wsum = np.minimum(c, n * float(model.sliding_window)) if window_ctx_sum is None else _f(window_ctx_sum)
        f = model.sliding_window_fraction
        per_layer = f * one(np.broadcast_to(wsum, c.shape)) + (1.0 - f) * full
    else:
        per_layer = full
    t = s.L * per_layer * s.params["compute_derate"]
    if q_per_seq > 1:  # the query tokens' compute, at the prefill kernel's peak share (small next to the KV read)
        flops = 4.0 * c * q_per_seq * s.heads_rank * (s.dqk + s.dv) / 2.0
        t = t + s.L * flops / (s.acc.peak(s.prefill_dtype) * 0.5)
    return np.where((n > 0) & (c > 0), t, 0.0)


def prefill_attention_time(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, n_seqs: ArrayLike,
                           q: ArrayLike, kv: ArrayLike, *, layer: Layer = "curves",
                           calibration: dict[str, float] | None = None, _setup: _Setup | None = None) -> np.ndarray:
    """Attention seconds (all layers, one rank) of ``n_seqs`` prompt chunks of ``q`` new tokens each attending
    ``kv`` tokens (cached prefix plus the chunk; causal inside the chunk), by the flash-attention curve;
    sliding windows and MLA's value width scale it."""
    s = _setup or _Setup(model, cluster, cfg, layer, calibration)
    n, q_, kv_ = np.broadcast_arrays(_f(n_seqs), _f(q), _f(kv))
    kv_ = np.maximum(kv_, q_)
    t = attention_time(s.acc, s.prefill_dtype, n, s.heads_rank, q_, kv_, float(s.dqk), s.kv_heads_rank,
                       causal=True, layer=layer)
    t = t * _window_frac(model, kv_, q_) * (0.5 * (s.dqk + s.dv) / s.dqk)
    return s.L * t * s.params["compute_derate"]


def _micro(cfg: InferenceConfig, seqs: np.ndarray) -> np.ndarray:
    """Micro-batches kept in flight by pipeline parallelism: min(pp, sequences), at least 1."""
    return np.maximum(np.minimum(float(cfg.pp), seqs), 1.0)


def iteration_time(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, *, decode_seqs: ArrayLike = 0,
                   decode_ctx_sum: ArrayLike = 0, prefill_seqs: ArrayLike = 0, prefill_q: ArrayLike = 0,
                   prefill_kv: ArrayLike = 0, sampled: ArrayLike | None = None, decode_q: int = 1,
                   layer: Layer = "curves", calibration: dict[str, float] | None = None,
                   _setup: _Setup | None = None) -> dict[str, np.ndarray]:
    """One iteration in which every decoding sequence advances ``decode_q`` tokens and ``prefill_seqs`` prompt
    chunks of ``prefill_q`` tokens (attending ``prefill_kv``) are computed. Named components and ``total``.

    Pipeline parallelism keeps ``m = min(pp, sequences)`` micro-batches in flight: each stage runs ``max(m, pp)``
    micro-batch slots of its ``L / pp`` layers per round, i.e. the time of all ``L`` layers on a ``1/m`` share of the
    work, plus ``pp - 1`` activation transfers. Memory-bound decode gains nothing (every micro-batch re-reads the
    stage's weights); compute-bound work runs ``m`` times faster per round."""
    s = _setup or _Setup(model, cluster, cfg, layer, calibration)
    nd, ctx, npf, q, kv = np.broadcast_arrays(_f(decode_seqs), _f(decode_ctx_sum), _f(prefill_seqs), _f(prefill_q),
                                              _f(prefill_kv))
    seqs = nd + npf
    smp = seqs if sampled is None else np.broadcast_to(_f(sampled), seqs.shape)
    m = _micro(cfg, seqs)
    tokens = nd * decode_q + npf * q
    lin = linear_time(model, cluster, cfg, tokens / m, smp / m, layer=layer, _setup=s)
    att = decode_attention_time(model, cluster, cfg, nd / m, ctx / m, q_per_seq=decode_q, layer=layer, _setup=s) \
        + prefill_attention_time(model, cluster, cfg, npf / m, q, kv, layer=layer, _setup=s)
    # a round: every stage runs max(m, pp) micro-batch slots of its L/pp layers = all L layers on a 1/m share
    out = {k: lin[k] for k in ("gemm", "elementwise", "tp_comm", "ep_comm", "overhead", "pp_comm")}
    out["attention"] = att
    out = {k: out[k] for k in TIME_COMPONENTS}
    out["total"] = sum(out.values())  # type: ignore[assignment]
    return out


# ===================================================================== memory
def _stage_weight_params(model: ModelSpec, cfg: InferenceConfig) -> dict[str, float]:
    """Parameters held by one rank of the largest stage, split by how they are stored."""
    L, pp, tp, ep = model.n_layers, cfg.pp, cfg.tp, cfg.ep
    h = model.hidden
    layers = math.ceil(L / pp)
    l_moe = model.n_moe_layers
    moe_share = l_moe / L
    attn = model.attention_params() / tp
    dense_ffn = model.dense_ffn_params() / tp
    quant = layers * (attn + (1 - moe_share) * dense_ffn)
    expert = 0.0
    router = 0.0
    if model.moe is not None:
        expert = layers * moe_share * model.moe.n_experts * model.expert_ffn_params() / ep / (tp // ep)
        quant += layers * moe_share * model.shared_ffn_params() / tp
        router = layers * moe_share * h * model.moe.n_experts
    emb = model.vocab * h / tp + (model.max_seq_len * h if model.learned_pos_emb else 0)
    head = model.vocab * h / tp
    ends = max(emb, head) if pp > 1 else emb + (0 if model.tied_embeddings else head)
    norms = layers * 2 * h
    return {"quantized": quant + expert, "sixteen_bit": router + ends + norms}


def weight_bytes_per_accelerator(model: ModelSpec, cfg: InferenceConfig) -> float:
    """Weights on one rank of the largest pipeline stage: transformer weights at ``cfg.weight_bytes``; embeddings,
    LM head, norms and the router in 16 bits (the usual practice of quantized checkpoints)."""
    p = _stage_weight_params(model, cfg)
    return p["quantized"] * cfg.weight_bytes + p["sixteen_bit"] * 2.0


def kv_bytes_per_token(model: ModelSpec, cfg: InferenceConfig) -> float:
    """KV-cache bytes one token occupies on one rank (its stage's layers, at ``cfg.kv_bits``; MLA: the latent)."""
    tp = cfg.tp
    layers = math.ceil(model.n_layers / cfg.pp)
    if model.mla is not None:
        per_layer = float(model.mla.kv_lora_rank + model.mla.qk_rope_head_dim)
    else:
        per_layer = 2.0 * math.ceil(model.kv_heads / tp) * model.dim_head
    return layers * per_layer * cfg.kv_bytes


def kv_tokens_per_sequence(model: ModelSpec, cfg: InferenceConfig, seq_len: ArrayLike) -> np.ndarray:
    """Cache slots one sequence of ``seq_len`` tokens holds: whole blocks of ``cfg.block_size`` tokens; sliding-
    window layers keep at most window + one block (averaged over the layers by their share)."""
    sl = _f(seq_len)
    bs = cfg.block_size
    full = np.ceil(sl / bs) * bs
    if model.sliding_window is None:
        return full
    win = np.minimum(full, (math.ceil(model.sliding_window / bs) + 1) * bs)
    f = model.sliding_window_fraction
    return f * win + (1.0 - f) * full


def workspace_bytes(model: ModelSpec, cfg: InferenceConfig, max_seqs: int) -> float:
    """Activation workspace of the largest iteration (``cfg.max_tokens`` tokens): hidden states, QKV, the FFN
    intermediate (16-bit) and fp32 logits of ``max_seqs`` sequences, on one rank."""
    h = model.hidden
    tp = cfg.tp
    dqk, _ = F.attention_dims(model)
    if model.moe is not None:
        f = max(model.ffn_hidden, model.moe.expert_ffn_hidden * model.moe.top_k) / tp
    else:
        f = model.ffn_hidden / tp
    qkv = (model.n_heads + 2 * model.kv_heads) * dqk / tp
    per_token = 2.0 * (3 * h + qkv + (3 if model.gated else 2) * f)
    return cfg.max_tokens * per_token + max_seqs * model.vocab / tp * 4.0


def kv_budget_bytes(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, max_seqs: int = 256) -> float:
    """KV-cache bytes one rank can hold: ``kv_fraction`` of what is left after weights, workspace and the
    framework overhead (TensorRT-LLM's ``kv_cache_free_gpu_mem_fraction`` convention)."""
    free = cluster.accelerator.memory_bytes - weight_bytes_per_accelerator(model, cfg) \
        - workspace_bytes(model, cfg, max_seqs) - FRAMEWORK_OVERHEAD_BYTES
    return max(free, 0.0) * cfg.kv_fraction


def max_batch_for(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, seq_len: ArrayLike,
                  max_seqs: int = 256) -> np.ndarray:
    """Largest number of sequences of ``seq_len`` tokens whose KV cache fits (paged blocks, per replica)."""
    per_seq = kv_tokens_per_sequence(model, cfg, seq_len) * kv_bytes_per_token(model, cfg)
    return np.floor(kv_budget_bytes(model, cluster, cfg, max_seqs) / per_seq)


# ===================================================================== checks
def check_inference(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig) -> None:
    """Raise :class:`ServingInputError` for parallelism the model or cluster cannot take."""
    if model.n_heads % cfg.tp:
        raise ServingInputError(f"tp={cfg.tp} does not divide the {model.n_heads} attention heads of {model.name}")
    if model.mla is None and cfg.tp > model.kv_heads and cfg.tp % model.kv_heads:
        raise ServingInputError(f"tp={cfg.tp} is neither a divisor nor a multiple of the {model.kv_heads} KV heads")
    if cfg.pp > model.n_layers:
        raise ServingInputError(f"pp={cfg.pp} exceeds the {model.n_layers} layers of {model.name}")
    if cfg.ep > 1 and (model.moe is None or model.moe.n_experts % cfg.ep):
        what = "is not a mixture of experts" if model.moe is None else f"has {model.moe.n_experts} experts"
        raise ServingInputError(f"ep={cfg.ep}: {model.name} {what}")
    if cfg.accelerators > cluster.n_accelerators:
        raise ServingInputError(f"tp*pp = {cfg.accelerators} accelerators per replica, but the cluster has "
                                f"{cluster.n_accelerators}")


def check_lengths(model: ModelSpec, input_len: int, output_len: int) -> None:
    if input_len < 1:
        raise ServingInputError(f"input length must be >= 1 token, got {input_len}")
    if output_len < 1:
        raise ServingInputError(f"output length must be >= 1 token, got {output_len}")
    if input_len + output_len - 1 > model.max_seq_len:  # the last output token is never cached
        raise ServingInputError(f"input {input_len} + output {output_len} = {input_len + output_len} tokens exceeds "
                                f"the {model.max_seq_len}-token context of {model.name}")


# ===================================================================== speculative decoding
class SpeculativeConfig(BaseModel):
    """Speculative decoding: a draft proposes ``draft_len`` tokens per step, the target verifies them (and
    ``tree_size`` candidate tokens in all, for tree methods) in one pass and keeps ``mean_accepted`` of them
    (accepted drafts plus the target's own token). Give ``acceptance_rate`` (per draft token, i.i.d.: Leviathan
    et al. 2023 eq. 1) or ``mean_accepted`` directly.

    ``method``: ``draft_model`` (a smaller model, ``draft_len`` autoregressive steps), ``heads`` (self-drafting
    heads or a small autoregressive head on the target's features: ``draft_steps`` passes of ``head_params``
    parameters plus, per pass, the LM head when ``head_uses_lm_head``), ``lookup`` (n-gram/retrieval drafts: no
    accelerator work, ``lookup_overhead_s`` of host time per step).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    method: Literal["draft_model", "heads", "lookup"] = "draft_model"
    draft_len: int = Field(4, ge=1, le=256)
    acceptance_rate: float | None = Field(None, ge=0.0, le=1.0)
    mean_accepted: float | None = Field(None, ge=1.0)
    tree_size: int | None = Field(None, ge=1, le=1024)
    draft_model: ModelSpec | None = None
    draft_steps: int | None = Field(None, ge=0)
    head_params: float = Field(0.0, ge=0.0)
    head_uses_lm_head: bool = True
    lookup_overhead_s: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> SpeculativeConfig:
        if self.acceptance_rate is None and self.mean_accepted is None:
            raise ValueError("speculative decoding needs acceptance_rate or mean_accepted")
        if self.mean_accepted is not None and self.mean_accepted > self.draft_len + 1:
            raise ValueError(f"mean_accepted={self.mean_accepted} exceeds draft_len + 1 = {self.draft_len + 1}")
        if self.method == "draft_model" and self.draft_model is None:
            raise ValueError("method 'draft_model' needs draft_model")
        return self

    @property
    def tau(self) -> float:
        """Expected tokens produced per verification step."""
        if self.mean_accepted is not None:
            return float(self.mean_accepted)
        a, g = float(self.acceptance_rate or 0.0), self.draft_len
        return float(g + 1) if a >= 1.0 else (1.0 - a ** (g + 1)) / (1.0 - a)

    @property
    def verified_tokens(self) -> int:
        return self.tree_size or (self.draft_len + 1)


class SpeculativeEstimate(BaseModel):
    model_config = ConfigDict(frozen=True)
    method: str
    mean_accepted: float
    verified_tokens: int
    plain_step_s: float
    draft_s: float
    verify_s: float
    step_s: float  # draft + verify: one speculative step
    tpot_s: float  # step / mean_accepted
    speedup: float  # plain step / tpot


# ===================================================================== results
class InferenceEstimate(BaseModel):
    """Static batch served by one replica of ``tp * pp`` accelerators, replicated over the cluster.

    ``prefill`` components add up to the prefill time (= TTFT); ``decode`` components add up to the time of all
    ``output_len - 1`` decode steps (``tpot_s`` is their mean); ``e2e_s = ttft_s + decode.total_s``."""

    model_config = ConfigDict(frozen=True)
    model: str
    cluster: str
    accelerator: str
    config: InferenceConfig
    replicas: int
    accelerators_per_replica: int
    n_accelerators: int
    batch: int
    input_len: int
    output_len: int
    ttft_s: float
    tpot_s: float
    e2e_s: float
    prefill: TimeBreakdown
    decode: TimeBreakdown
    output_tokens_per_s: float  # all replicas
    output_tokens_per_s_per_accelerator: float
    total_tokens_per_s: float  # input + output, all replicas
    memory: MemoryBreakdown
    max_batch: int  # largest batch the KV cache holds at input_len + output_len
    fits: bool
    price_per_hour: float
    cost_per_million_output_tokens: float | None
    cost_per_million_tokens: float | None
    speculative: SpeculativeEstimate | None = None
    assumptions: list[str] = []
    provenance: str = ""
    #: p90 APE of published rows after the fit (catalog/curves/inference.yaml, in-sample), measured on the
    #: engine kind ``error_band_engine`` (None for the spec layer)
    error_band_pct: float | None = None
    error_band_engine: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model, "cluster": self.cluster, "n_accelerators": self.n_accelerators,
            "replicas": self.replicas, "batch": self.batch, "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s, "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_accelerator": self.output_tokens_per_s_per_accelerator,
            "memory_gb": self.memory.total_bytes / 1e9, "max_batch": self.max_batch, "fits": self.fits,
            "cost_per_million_output_tokens": self.cost_per_million_output_tokens,
            "speedup": self.speculative.speedup if self.speculative else None,
        }


def _sum_components(d: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.sum(d[k])) for k in TIME_COMPONENTS}


def _draft_time(spec: SpeculativeConfig, model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, batch: int,
                ctx: float, s: _Setup, layer: Layer) -> float:
    """Seconds the draft needs for one speculative step of ``batch`` sequences at context ``ctx``."""
    if spec.method == "lookup":
        return spec.lookup_overhead_s
    if spec.method == "draft_model":
        dm = spec.draft_model
        assert dm is not None
        dcfg = cfg.model_copy(update={"tp": 1, "pp": 1, "ep": 1, "weight_bits": 16.0, "act_bits": 16,
                                      "kv_bits": 16.0, "group_size": None})
        steps = spec.draft_steps if spec.draft_steps is not None else spec.draft_len
        it = iteration_time(dm, cluster, dcfg, decode_seqs=batch, decode_ctx_sum=batch * ctx, layer=layer)
        return steps * float(it["total"])
    # heads: draft_steps passes of head_params (16-bit) on the growing candidate set, plus the LM head
    steps = spec.draft_steps if spec.draft_steps is not None else spec.draft_len
    if steps == 0:
        return 0.0
    width = max(spec.verified_tokens / max(steps, 1), 1.0)  # candidate tokens per pass
    m = batch * width
    h = float(model.hidden)
    t = 0.0
    if spec.head_params > 0:
        t += float(gemm_time(s.acc, "bf16", m, spec.head_params / h / cfg.tp, h, layer=layer))
    if spec.head_uses_lm_head:
        t += float(gemm_time(s.acc, "bf16", m, model.vocab / cfg.tp, h, layer=layer))
    p = s.params
    t = t * p["compute_derate"] + p["step_overhead_s"] + p["layer_overhead_s"]
    return steps * t


def speculative_step(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, spec: SpeculativeConfig,
                     batch: int, ctx: float, *, layer: Layer = "curves", calibration: dict[str, float] | None = None,
                     ) -> SpeculativeEstimate:
    """One speculative step at decode batch ``batch`` and context ``ctx`` against one plain decode step."""
    s = _Setup(model, cluster, cfg, layer, calibration)
    plain = float(iteration_time(model, cluster, cfg, decode_seqs=batch, decode_ctx_sum=batch * ctx, layer=layer,
                                 _setup=s)["total"])
    v = spec.verified_tokens
    verify = float(iteration_time(model, cluster, cfg, decode_seqs=batch, decode_ctx_sum=batch * ctx, decode_q=v,
                                  sampled=batch * v, layer=layer, _setup=s)["total"])
    draft = _draft_time(spec, model, cluster, cfg, batch, ctx, s, layer) + s.params["spec_step_overhead_s"]
    step = draft + verify
    tau = spec.tau
    tpot = step / tau
    return SpeculativeEstimate(method=spec.method, mean_accepted=tau, verified_tokens=v, plain_step_s=plain,
                               draft_s=draft, verify_s=verify, step_s=step, tpot_s=tpot, speedup=plain / tpot)


def estimate_inference(model: ModelSpec, cluster: ClusterSpec, config: InferenceConfig | None = None, *,
                       batch: int = 1, input_len: int = 1024, output_len: int = 256,
                       speculative: SpeculativeConfig | None = None, layer: Layer = "curves",
                       price_per_hour: float | None = None, strict: bool = True,
                       calibration: dict[str, float] | None = None) -> InferenceEstimate:
    """Estimate a static batch: ``batch`` prompts of ``input_len`` tokens prefilled together, then ``output_len - 1``
    decode steps (the first output token comes from the prefill). ``strict``: raise when the batch's KV cache does
    not fit (otherwise report ``fits = False``)."""
    cfg = config or InferenceConfig()
    if batch < 1:
        raise ServingInputError(f"batch must be >= 1, got {batch}")
    check_lengths(model, input_len, output_len)
    check_inference(model, cluster, cfg)
    acc = cluster.accelerator
    s = _Setup(model, cluster, cfg, layer, calibration)
    seq_total = input_len + output_len
    mb = int(max_batch_for(model, cluster, cfg, seq_total, max_seqs=batch))
    w = weight_bytes_per_accelerator(model, cfg)
    ws = workspace_bytes(model, cfg, batch)
    kv = float(batch * kv_tokens_per_sequence(model, cfg, seq_total) * kv_bytes_per_token(model, cfg))
    draft = 0.0
    if speculative is not None:
        if speculative.draft_model is not None:  # 16-bit draft weights and its KV cache, on every TP rank
            dm = speculative.draft_model
            dcfg = InferenceConfig()
            draft = weight_bytes_per_accelerator(dm, dcfg) + float(
                batch * kv_tokens_per_sequence(dm, dcfg, seq_total) * kv_bytes_per_token(dm, dcfg))
        draft += 2.0 * speculative.head_params / cfg.tp
    mem = {"weights": w, "kv_cache": kv, "draft": draft, "workspace": ws,
           "overhead": float(FRAMEWORK_OVERHEAD_BYTES)}
    total_mem = sum(mem.values())
    fits = total_mem <= acc.memory_bytes and batch <= max(mb, 0)
    if strict and not fits:
        if w + ws + FRAMEWORK_OVERHEAD_BYTES > acc.memory_bytes:
            raise ServingInputError(
                f"the weights of {model.name} ({w / 1e9:.1f} GB per accelerator at {cfg.weight_bits:g} bits, tp="
                f"{cfg.tp} pp={cfg.pp}) plus workspace and overhead do not fit in {acc.memory_bytes / 1e9:.0f} GB")
        raise ServingInputError(f"batch {batch} does not fit: the KV cache holds at most {max(mb, 0)} sequences of "
                                f"{seq_total} tokens on {acc.name} (tp={cfg.tp}, pp={cfg.pp}, kv_bits={cfg.kv_bits:g})")

    # prefill: the whole batch in one iteration
    pre = iteration_time(model, cluster, cfg, prefill_seqs=batch, prefill_q=input_len, prefill_kv=input_len,
                         layer=layer, _setup=s)
    ttft = float(pre["total"])
    pre_c = {k: float(pre[k]) for k in TIME_COMPONENTS}
    # decode: output_len - 1 steps, step j attends input_len + j + 1 tokens per sequence
    n_dec = output_len - 1
    if n_dec > 0:
        ctx = input_len + np.arange(1, n_dec + 1, dtype=float)
        dec = iteration_time(model, cluster, cfg, decode_seqs=batch, decode_ctx_sum=batch * ctx, layer=layer,
                             _setup=s)
        dec_c = _sum_components(dec)
        dec_total = float(np.sum(dec["total"]))
        tpot = dec_total / n_dec
    else:
        dec_c = dict.fromkeys(TIME_COMPONENTS, 0.0)
        dec_total = 0.0
        tpot = 0.0
    spec_est = None
    assumptions: list[str] = list(model.caveats)
    if speculative is not None:
        spec_est = speculative_step(model, cluster, cfg, speculative, batch, input_len + output_len / 2.0,
                                    layer=layer, calibration=calibration)
        if n_dec > 0:
            scale = 1.0 / spec_est.speedup
            dec_c = {k: v * scale for k, v in dec_c.items()}
            dec_total *= scale
            tpot *= scale
        assumptions.append(f"speculative decoding ({speculative.method}): {spec_est.mean_accepted:.2f} tokens per "
                           f"step, {spec_est.verified_tokens} verified; decode time scaled by 1/speedup at the mean "
                           "context")
    e2e = ttft + dec_total
    replicas = max(cluster.n_accelerators // cfg.accelerators, 1)
    out_tps = replicas * batch * output_len / e2e
    tot_tps = replicas * batch * (input_len + output_len) / e2e
    n_acc = replicas * cfg.accelerators
    price = acc.price_per_hour if price_per_hour is None else price_per_hour
    usd_s = price * n_acc / 3600.0
    assumptions += [
        f"static batch of {batch} per replica, {replicas} replica(s) of tp={cfg.tp} pp={cfg.pp} ep={cfg.ep}",
        f"weights {cfg.weight_bits:g} bits ({cfg.weight_bytes:.3f} B incl. group scales), GEMMs in "
        f"{s.cdt}, KV cache {cfg.kv_bits:g} bits ({cfg.kv_bytes:.3f} B), paged blocks of {cfg.block_size}",
        "embeddings, LM head, norms and router kept in 16 bits",
        f"KV budget = {cfg.kv_fraction:g} x (memory - weights - workspace - {FRAMEWORK_OVERHEAD_BYTES / 1e9:g} GB "
        "framework overhead)",
        f"engine kind '{cfg.engine}': shared overheads {engine_params(cfg.engine, layer, calibration)}",
        f"price {price} USD per accelerator-hour (override it)",
    ]
    if acc.kind == "cpu":
        assumptions.append("CPU inference: the default (GPU-derived) efficiency curves apply to the CPU's peaks")
    band, band_engine = engine_error_band(cfg.engine, layer)
    return InferenceEstimate(
        model=model.name, cluster=cluster.name, accelerator=acc.name, config=cfg, replicas=replicas,
        accelerators_per_replica=cfg.accelerators, n_accelerators=n_acc, batch=batch, input_len=input_len,
        output_len=output_len, ttft_s=ttft, tpot_s=tpot, e2e_s=e2e,
        prefill=TimeBreakdown(components_s=pre_c, total_s=ttft),
        decode=TimeBreakdown(components_s=dec_c, total_s=dec_total),
        output_tokens_per_s=out_tps, output_tokens_per_s_per_accelerator=out_tps / n_acc,
        total_tokens_per_s=tot_tps,
        memory=MemoryBreakdown(components_bytes=mem, total_bytes=total_mem, capacity_bytes=acc.memory_bytes,
                               fits=fits),
        max_batch=max(mb, 0), fits=fits, price_per_hour=price,
        cost_per_million_output_tokens=usd_s / out_tps * 1e6 if price > 0 else None,
        cost_per_million_tokens=usd_s / tot_tps * 1e6 if price > 0 else None,
        speculative=spec_est, assumptions=assumptions, error_band_pct=band, error_band_engine=band_engine,
        provenance=f"layer={layer}: spec sheet ({acc.source or 'catalog'})"
        + ("" if layer == "spec" else f" + {curves_provenance(acc, layer)} + shared engine parameters "
           "(catalog/curves/inference.yaml)"),
    )


# ===================================================================== step cost for the simulator
class StepCost:
    """The iteration-time function of one replica, ready for a simulator: :func:`linear_time` tabulated over
    integer token counts ``0..max_tokens`` (and sampled sequences ``0..max_seqs``); attention from
    :func:`decode_attention_time` (linear in the context sum: two points define it) and
    :func:`prefill_attention_time` (called per chunk). ``time`` equals :func:`iteration_time` for pp = 1."""

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, *, max_tokens: int,
                 max_seqs: int, layer: Layer = "curves", calibration: dict[str, float] | None = None) -> None:
        self.model, self.cluster, self.cfg, self.layer = model, cluster, cfg, layer
        self._s = _Setup(model, cluster, cfg, layer, calibration)
        self.max_tokens = int(max_tokens)
        self.max_seqs = int(max_seqs)
        T = np.arange(self.max_tokens + 1, dtype=float)
        lin_t = linear_time(model, cluster, cfg, T, 0.0, layer=layer, _setup=self._s)
        S = np.arange(self.max_seqs + 1, dtype=float)
        lin_s = linear_time(model, cluster, cfg, 0.0, S, layer=layer, _setup=self._s)
        # linear_time(T, S) = token part + sequence part (the head/sampling/seq overhead depend on S only; the
        # per-step/per-layer overhead, counted in both, is subtracted once)
        const = self._s.params["step_overhead_s"] + self._s.L * self._s.params["layer_overhead_s"]
        tok = sum(lin_t[k] for k in lin_t)
        seq = sum(lin_s[k] for k in lin_s)
        self._tok = [float(x) for x in np.asarray(tok)]
        self._seq = [float(x) for x in np.asarray(seq) - const * (np.arange(self.max_seqs + 1) > 0)]
        self._tok[0] = 0.0
        a0 = float(decode_attention_time(model, cluster, cfg, 1, 1.0, layer=layer, _setup=self._s))
        a1 = float(decode_attention_time(model, cluster, cfg, 1, 1.0 + 1e6, layer=layer, _setup=self._s))
        self.dec_attn_fixed = a0 - (a1 - a0) / 1e6
        self.dec_attn_per_token = (a1 - a0) / 1e6
        self._window = model.sliding_window
        self._pp = cfg.pp
        #: the iteration time is exactly ``time(n, n, n, C) + dec_attn_per_token * dC`` along a decode run
        self.linear_ok = cfg.pp == 1 and model.sliding_window is None

    def linear(self, tokens: int, sampled: int) -> float:
        if tokens > self.max_tokens or sampled > self.max_seqs:
            raise ServingInputError(f"iteration of {tokens} tokens / {sampled} sequences exceeds the tabulated "
                                    f"{self.max_tokens} / {self.max_seqs}")
        t = self._tok[tokens] + self._seq[sampled]
        if tokens == 0 and sampled > 0:
            t += self._s.params["step_overhead_s"] + self._s.L * self._s.params["layer_overhead_s"]
        return t

    def decode_attention(self, n_seqs: int, ctx_sum: float) -> float:
        if n_seqs <= 0:
            return 0.0
        if self._window is not None:
            return float(decode_attention_time(self.model, self.cluster, self.cfg, n_seqs, ctx_sum,
                                               layer=self.layer, _setup=self._s))
        return self.dec_attn_fixed + self.dec_attn_per_token * ctx_sum

    def prefill_attention(self, q: np.ndarray, kv: np.ndarray) -> float:
        if len(q) == 0:
            return 0.0
        return float(np.sum(prefill_attention_time(self.model, self.cluster, self.cfg, 1.0, q, kv,
                                                   layer=self.layer, _setup=self._s)))

    def time(self, tokens: int, sampled: int, n_decode: int, ctx_sum: float, prefill_attn: float = 0.0) -> float:
        """Seconds of one iteration: ``tokens`` computed, ``sampled`` sequences sampled, ``n_decode`` decoding
        sequences with contexts summing to ``ctx_sum``, plus ``prefill_attn`` seconds of prompt-chunk attention
        (from :meth:`prefill_attention`). Pipeline micro-batching as in :func:`iteration_time`."""
        if self._pp == 1:
            return self.linear(tokens, sampled) + self.decode_attention(n_decode, ctx_sum) + prefill_attn
        return float(iteration_time(self.model, self.cluster, self.cfg, decode_seqs=n_decode,
                                    decode_ctx_sum=ctx_sum, prefill_seqs=max(sampled - n_decode, 0),
                                    prefill_q=(tokens - n_decode) / max(sampled - n_decode, 1),
                                    prefill_kv=(tokens - n_decode) / max(sampled - n_decode, 1),
                                    sampled=sampled, layer=self.layer, _setup=self._s)["total"])
