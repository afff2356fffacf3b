"""Fine-tuning estimator: LoRA, QLoRA, bottleneck adapters and full fine-tuning as training workloads.

Built on the training estimator (:func:`paraplan.train.evaluate_training`): a fine-tuning step runs the same
forward, attention, elementwise, tensor/pipeline-parallel work as a full training step, with these changes
(the PEFT survey, Han et al. 2024, arXiv 2403.14608, sec. 2-3; LoRA, Hu et al. 2021, arXiv 2106.09685;
QLoRA, Dettmers et al. 2023, arXiv 2305.14314; adapters, Houlsby et al. 2019):

* **frozen base**: no weight-gradient GEMM (``dW = X^T dY``) for the base weights, only the input gradient
  (``dX``) to keep back-propagating; no base gradients, no base optimizer states, no base optimizer step, and the
  data-parallel all-reduce carries only the trainable parameters' gradients;
* **LoRA**: each adapted ``W [n, k]`` gets ``B [n, r] A [r, k]``: ``r (n + k)`` trainable parameters, forward
  ``2 r (n + k)`` FLOP per token, backward twice that (dX and dW);
* **QLoRA**: base weights stored at 4 bits (NF4 with double-quantised block constants: 4 + 0.127 bits per
  parameter, QLoRA sec. 3) and dequantised to bf16 before each base GEMM (forward and the backward dX GEMM):
  read the packed weights, write and read back 16-bit ones;
* **adapters** (Houlsby): two bottleneck MLPs (``h -> b -> h``) per layer, fully trainable;
* **full**: the training estimator as is.

The memory components follow :mod:`paraplan.cost.memory`: base weights at ``base_bits`` (sharded over TP and PP),
trainable weights, gradients and Adam states (2 + 2 + 12 B per trainable parameter), activations as for training
(every layer still stores its inputs for dX) plus the adapters' own, and the framework overhead.
:class:`FinetuneEstimate`'s time and memory components add up to its totals.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .breakdown import MemoryBreakdown, TimeBreakdown
from .cost import flops as F
from .cost import memory as M
from .cost.comm import collective_time
from .cost.efficiency import gemm_time, memory_time
from .errors import ConfigError
from .specs import ClusterSpec, ModelSpec
from .strategy import Strategy
from .train import OPTIMIZER_BYTES, estimate_training, evaluate_training, family_params, gemm_rank_shape
from .train import Workload as TrainWorkload

Method = Literal["lora", "qlora", "adapter", "full"]
#: QLoRA NF4 with double quantisation: 4 bits + 8/64 + 32/(64*256) bits of block constants (QLoRA sec. 3)
QLORA_BITS = 4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0)
#: GEMM names of paraplan.cost.flops and the LoRA target names that select them
TARGETS = {"q": "q", "k": "k", "v": "v", "o": "o_proj", "qkv": "qkv_proj", "up": "ffn_up", "gate": "ffn_up",
           "down": "ffn_down", "all": "all"}
TIME_COMPONENTS = ("base_forward", "base_backward_dx", "adapter", "dequantize", "attention", "elementwise",
                   "recompute", "overhead", "tp_comm", "pp_comm", "pipeline_bubble", "dp_comm", "optimizer")
MEMORY_COMPONENTS = ("base_weights", "trainable_weights", "gradients", "optimizer_states", "activations",
                     "overhead")


class FinetuneConfig(BaseModel):
    """What is fine-tuned and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: Method = "lora"
    rank: int = Field(8, ge=1)  # LoRA rank r
    targets: tuple[str, ...] = ("q", "v")  # LoRA: which matrices get adapters (q,k,v,o,up,gate,down or all)
    base_bits: float = Field(16.0, gt=0.0, le=32.0)  # storage of the frozen base (QLoRA: 4)
    adapter_size: int = Field(64, ge=1)  # bottleneck width of Houlsby adapters
    trainable_bytes: float = 2.0  # 16-bit trainable weights (and gradients)

    @field_validator("targets")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in v if t not in TARGETS]
        if bad:
            raise ValueError(f"unknown LoRA target(s) {bad}; known: {sorted(TARGETS)}")
        return v

    @property
    def effective_base_bits(self) -> float:
        return QLORA_BITS if self.method == "qlora" and self.base_bits == 4.0 else self.base_bits


def _adapted_shapes(model: ModelSpec, targets: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(name, n, k) of every matrix of one layer that gets a LoRA adapter (dense layers; MoE experts not adapted)."""
    h, d, nh, kv = model.hidden, model.dim_head, model.n_heads, model.kv_heads
    out: list[tuple[str, int, int]] = []
    want = set(targets)
    if "all" in want:
        want = {"q", "k", "v", "o", "up", "gate", "down"}
    if model.mla is None:
        shapes = {"q": (nh * d, h), "k": (kv * d, h), "v": (kv * d, h), "o": (h, nh * d), "qkv": ((nh + 2 * kv) * d, h)}
    else:
        g = {x.name: x for x in F.attention_gemms(model)}
        shapes = {"o": (h, g["o_proj"].k), "q": (g.get("q_proj", g.get("q_up")).n, g.get("q_proj", g.get("q_up")).k),
                  "k": (g["kv_up"].n // 2, g["kv_up"].k), "v": (g["kv_up"].n // 2, g["kv_up"].k),
                  "qkv": (g["kv_up"].n, g["kv_up"].k)}
    f = model.ffn_hidden if not model.is_moe or model.moe is None else model.moe.expert_ffn_hidden
    shapes.update({"up": (f, h), "gate": (f, h) if model.gated else (0, 0), "down": (h, f)})
    for t in ("qkv", "q", "k", "v", "o", "up", "gate", "down"):
        if t in want and shapes[t][0] > 0:
            out.append((t, *shapes[t]))
    return out


def trainable_params(model: ModelSpec, cfg: FinetuneConfig) -> float:
    """Trainable parameters: LoRA ``sum r (n + k)`` over adapted matrices and layers; adapters ``2 (2 h b + b + h)``
    per layer; full: all parameters."""
    if cfg.method == "full":
        return float(model.n_params())
    if cfg.method == "adapter":
        h, b = model.hidden, cfg.adapter_size
        return float(model.n_layers * 2 * (2 * h * b + b + h))
    return float(model.n_layers * sum(cfg.rank * (n + k) for _, n, k in _adapted_shapes(model, cfg.targets)))


class FinetuneEstimate(BaseModel):
    """One fine-tuning step. ``time`` components add up to ``step_time_s``; ``memory`` ones to its total."""

    model_config = ConfigDict(frozen=True)
    model: str
    cluster: str
    accelerator: str
    n_accelerators: int
    method: str
    config: FinetuneConfig
    strategy: Strategy
    seq_len: int
    total_params: float
    trainable_params: float
    trainable_fraction: float
    step_time_s: float
    tokens_per_s: float
    tokens_per_s_per_accelerator: float
    time: TimeBreakdown
    memory: MemoryBreakdown
    fits: bool
    model_states_bytes_total: float  # base + trainable weights + gradients + optimizer states over all accelerators
    checkpoint_bytes: float  # what a fine-tuning checkpoint must save (trainable weights; full: weights)
    full_step_time_s: float  # the same strategy trained fully (for the speedup)
    assumptions: list[str] = []

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "method": self.method, "trainable_params": self.trainable_params,
                "step_time_s": self.step_time_s, "tokens_per_s": self.tokens_per_s,
                "memory_gb": self.memory.total_bytes / 1e9, "fits": self.fits}


def _dw_time(model: ModelSpec, cluster: ClusterSpec, tokens: np.ndarray, tp: np.ndarray, ep: np.ndarray,
             dtype: str) -> np.ndarray:
    """Weight-gradient GEMM time of one layer (dense/MoE mix) for ``tokens`` tokens, as the training estimator
    prices it (the ``gemm_time(n, k, m)`` term of its backward)."""
    acc = cluster.accelerator
    moe_frac = model.n_moe_layers / model.n_layers
    total = np.zeros(tokens.shape)
    for frac, moe in ((1.0 - moe_frac, False), (moe_frac, True)):
        if frac <= 0.0:
            continue
        for g in F.layer_gemms(model, moe):
            m, n, k, count = gemm_rank_shape(g, tokens, tp, ep)
            total = total + frac * count * gemm_time(acc, dtype, n, k, m)
    return total


def estimate_finetune(model: ModelSpec, cluster: ClusterSpec, cfg: FinetuneConfig | None = None,
                      strategy: Strategy | None = None, seq_len: int = 2048, *, framework: str = "megatron",
                      layer: Literal["spec", "curves"] = "curves") -> FinetuneEstimate:
    """Estimate one fine-tuning step (see the module docstring for what changes against full training)."""
    cfg = cfg or FinetuneConfig()
    if strategy is None:
        strategy = Strategy(dp=cluster.n_accelerators, global_batch=cluster.n_accelerators)
    if cfg.method in ("lora", "qlora") and not _adapted_shapes(model, cfg.targets):
        raise ConfigError(f"no LoRA target of {model.name} matches {list(cfg.targets)}")
    if cfg.method == "qlora" and cfg.base_bits > 8:
        raise ConfigError("QLoRA keeps the base at 4 (or 8) bits: use --base-bits 4, or --method lora")
    wl = TrainWorkload(seq_len=seq_len)
    full = estimate_training(model, cluster, strategy, wl, framework=framework, layer=layer)
    s = strategy
    arrs = s.to_arrays()
    r = evaluate_training(model, cluster, arrs, wl, framework, layer=layer)
    v = {k: float(np.asarray(a).reshape(-1)[0]) for k, a in r.items()}
    acc = cluster.accelerator
    n_acc = s.tp * s.pp * s.dp * s.cp
    n_micro = v["n_micro"]
    layers_stage = model.n_layers / s.pp
    tokens = np.array([s.micro_batch * seq_len / s.cp], dtype=float)
    tp_a = np.array([float(s.tp)])
    ep_a = np.array([float(s.ep)])
    fam = family_params(acc.family, layer)
    derate = fam["compute_derate"]
    dtype = "fp8" if s.precision == "fp8" else "bf16"
    P = float(model.n_params())
    trainable = trainable_params(model, cfg)
    comps = {c: 0.0 for c in TIME_COMPONENTS}
    notes: list[str] = []

    if cfg.method == "full":
        c = full.time.components_s
        gemm_total = c["gemm"]
        dw = n_micro * layers_stage * float(_dw_time(model, cluster, tokens, tp_a, ep_a, dtype)[0]) * derate
        comps.update(base_forward=(gemm_total - dw) / 2.0, base_backward_dx=(gemm_total - dw) / 2.0 + dw,
                     attention=c["attention"], elementwise=c["elementwise"], recompute=c["recompute"],
                     overhead=c["overhead"], tp_comm=c["tp_comm"] + c["cp_comm"] + c["ep_comm"],
                     pp_comm=c["pp_comm"], pipeline_bubble=c["pipeline_bubble"], dp_comm=c["dp_comm"],
                     optimizer=c["optimizer"])
        notes.append("full fine-tuning: the training estimator's step (base_backward_dx includes the dW GEMMs)")
        mem = {"base_weights": 0.0, "trainable_weights": full.memory.components_bytes["weights"],
               "gradients": full.memory.components_bytes["gradients"],
               "optimizer_states": full.memory.components_bytes["optimizer_states"],
               "activations": full.memory.components_bytes["activations"]
               + full.memory.components_bytes["zero3_buffers"],
               "overhead": full.memory.components_bytes["overhead"]}
        states_total = P * (M.WEIGHT_BYTES["bf16"] + M.GRAD_BYTES["bf16"] + M.OPT_BYTES_MIXED[s.optimizer])
        ckpt = P * M.WEIGHT_BYTES["bf16"]
    else:
        # ---- time: the training step without base dW, plus the adapters
        c = full.time.components_s
        dw_mb = layers_stage * float(_dw_time(model, cluster, tokens, tp_a, ep_a, dtype)[0]) * derate
        gemm_mb = c["gemm"] / n_micro
        base_mb = gemm_mb - dw_mb  # forward + dX (head included)
        fwd_share = 0.5  # forward and dX GEMMs have the same FLOPs and shapes transposed
        m_tok = float(tokens[0])
        ad_mb = 0.0
        if cfg.method == "adapter":
            b = cfg.adapter_size
            h = model.hidden
            f1 = gemm_time(acc, "bf16", m_tok, b, h)  # down  [m, h] x [h, b]
            f2 = gemm_time(acc, "bf16", m_tok, h, b)  # up
            one = f1 + f2
            ad_mb = layers_stage * 2.0 * 3.0 * float(one) * derate  # two adapters; fwd + dX + dW
        else:
            for _, n, k in _adapted_shapes(model, cfg.targets):
                rr = cfg.rank
                a_f = gemm_time(acc, "bf16", m_tok, rr, k) + gemm_time(acc, "bf16", m_tok, n / s.tp, rr)
                ad_mb += layers_stage * 3.0 * float(a_f) * derate  # A and B: forward, dX and dW
        deq_mb = 0.0
        if cfg.method == "qlora" or cfg.base_bits < 16:
            # dequantise every base weight of the stage before its forward GEMM and its dX GEMM
            p_rank = P / (s.tp * s.pp)
            per = p_rank * (cfg.effective_base_bits / 8.0 + 2.0 + 2.0)  # read packed, write bf16, GEMM reads it back
            deq_mb = 2.0 * float(memory_time(acc, per, layer=layer))
            notes.append(f"base dequantised from {cfg.effective_base_bits:.3g} bits to bf16 before each base GEMM "
                         "(forward and dX)")
        comps.update(
            base_forward=n_micro * base_mb * fwd_share, base_backward_dx=n_micro * base_mb * (1 - fwd_share),
            adapter=n_micro * ad_mb, dequantize=n_micro * deq_mb, attention=c["attention"],
            elementwise=c["elementwise"], recompute=c["recompute"], overhead=c["overhead"],
            tp_comm=c["tp_comm"] + c["cp_comm"] + c["ep_comm"], pp_comm=c["pp_comm"])
        per_mb_old = (c["gemm"] + c["attention"] + c["elementwise"] + c["recompute"] + c["tp_comm"] + c["cp_comm"]
                      + c["ep_comm"] + c["pp_comm"] + c["overhead"] - (fam["step_overhead_s"])) / n_micro
        per_mb_new = (comps["base_forward"] + comps["base_backward_dx"] + comps["adapter"] + comps["dequantize"]
                      + comps["attention"] + comps["elementwise"] + comps["recompute"] + comps["tp_comm"]
                      + comps["pp_comm"] + comps["overhead"] - fam["step_overhead_s"]) / n_micro
        comps["pipeline_bubble"] = c["pipeline_bubble"] * (per_mb_new / per_mb_old if per_mb_old > 0 else 1.0)
        tr_rank = trainable / (s.tp * s.pp)
        if s.dp * s.cp > 1:
            comps["dp_comm"] = float(collective_time(cluster, "all_reduce", np.array([tr_rank * 2.0]),
                                                     np.array([float(s.dp * s.cp)]), np.array([float(s.tp)]),
                                                     layer=layer)[0])
        comps["optimizer"] = float(memory_time(acc, tr_rank * OPTIMIZER_BYTES[s.optimizer], layer=layer))
        notes.append("frozen base: no base weight-gradient GEMMs, gradients or optimizer states; dX still flows "
                     "through every layer")
        # ---- memory
        base_rank = P / (s.tp * s.pp)
        tr_bytes = cfg.trainable_bytes
        act = full.memory.components_bytes["activations"]
        if cfg.method in ("lora", "qlora"):
            n_t = len(_adapted_shapes(model, cfg.targets))
            act += layers_stage * m_tok * cfg.rank * 2.0 * n_t  # the r-wide intermediate of each adapter
        else:
            act += layers_stage * m_tok * 2.0 * (cfg.adapter_size * 2.0 + model.hidden * 2.0)
        mem = {"base_weights": base_rank * cfg.effective_base_bits / 8.0, "trainable_weights": tr_rank * tr_bytes,
               "gradients": tr_rank * tr_bytes, "optimizer_states": tr_rank * M.OPT_BYTES_MIXED[s.optimizer],
               "activations": act, "overhead": full.memory.components_bytes["overhead"]}
        states_total = P * cfg.effective_base_bits / 8.0 + trainable * (2 * tr_bytes + M.OPT_BYTES_MIXED[s.optimizer])
        ckpt = trainable * tr_bytes
    step = sum(comps.values())
    total_mem = sum(mem.values())
    cap = acc.memory_bytes
    tokens_step = s.global_batch * seq_len
    return FinetuneEstimate(
        model=model.name, cluster=cluster.name, accelerator=acc.name, n_accelerators=n_acc, method=cfg.method,
        config=cfg, strategy=s, seq_len=seq_len, total_params=P, trainable_params=trainable,
        trainable_fraction=trainable / P, step_time_s=step, tokens_per_s=tokens_step / step,
        tokens_per_s_per_accelerator=tokens_step / step / n_acc,
        time=TimeBreakdown(components_s=comps, total_s=step),
        memory=MemoryBreakdown(components_bytes=mem, total_bytes=total_mem, capacity_bytes=cap,
                               fits=total_mem <= cap),
        fits=total_mem <= cap, model_states_bytes_total=states_total, checkpoint_bytes=ckpt,
        full_step_time_s=full.step_time_s, assumptions=notes + list(full.assumptions),
    )
