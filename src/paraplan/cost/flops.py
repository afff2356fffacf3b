"""FLOP counts of a decoder-only transformer, as an inventory of GEMMs plus the attention core.

Everything is per token of one sequence position, per layer, forward pass, unless a name says otherwise.
A GEMM ``Y[m, n] = X[m, k] W[n, k]^T`` costs ``2 m n k`` FLOP forward and twice that backward
(``dX`` and ``dW``). ``m`` is the number of tokens, so per-token FLOPs are ``2 n k``.

Tensor parallelism (Megatron style) splits ``n`` of column-parallel GEMMs and ``k`` of row-parallel ones;
``replicated`` GEMMs (MLA down-projections, the router) are computed whole on every TP rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..specs import ModelSpec

Split = Literal["col", "row", "replicated"]


@dataclass(frozen=True)
class Gemm:
    """One weight GEMM of a layer: ``n`` outputs, ``k`` inputs, how TP splits it, and per-token multiplicity.

    ``tokens_factor`` scales the tokens that pass through it (``top_k / n_experts`` for one routed expert);
    ``count`` is how many identical GEMMs there are (routed experts).
    """

    name: str
    n: int
    k: int
    split: Split
    count: int = 1
    tokens_factor: float = 1.0
    expert: bool = False

    def flops_per_token(self) -> float:
        return 2.0 * self.n * self.k * self.count * self.tokens_factor


def attention_gemms(m: ModelSpec) -> list[Gemm]:
    h, nh = m.hidden, m.n_heads
    if m.mla is not None:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        out: list[Gemm] = []
        if a.q_lora_rank is None:
            out.append(Gemm("q_proj", nh * qk, h, "col"))
        else:
            out += [Gemm("q_down", a.q_lora_rank, h, "replicated"), Gemm("q_up", nh * qk, a.q_lora_rank, "col")]
        out += [
            Gemm("kv_down", a.kv_lora_rank + a.qk_rope_head_dim, h, "replicated"),
            Gemm("kv_up", nh * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, "col"),
            Gemm("o_proj", h, nh * a.v_head_dim, "row"),
        ]
        return out
    d = m.dim_head
    return [Gemm("qkv_proj", (nh + 2 * m.kv_heads) * d, h, "col"), Gemm("o_proj", h, nh * d, "row")]


def dense_ffn_gemms(m: ModelSpec, ffn_hidden: int | None = None, prefix: str = "ffn", count: int = 1,
                    tokens_factor: float = 1.0, expert: bool = False) -> list[Gemm]:
    f = ffn_hidden or m.ffn_hidden
    up = (2 if m.gated else 1) * f
    return [Gemm(f"{prefix}_up", up, m.hidden, "col", count, tokens_factor, expert),
            Gemm(f"{prefix}_down", m.hidden, f, "row", count, tokens_factor, expert)]


def moe_ffn_gemms(m: ModelSpec) -> list[Gemm]:
    assert m.moe is not None
    e = m.moe
    out = [Gemm("router", e.n_experts, m.hidden, "replicated")]
    out += dense_ffn_gemms(m, e.expert_ffn_hidden, "expert", e.n_experts, e.top_k / e.n_experts, True)
    if e.n_shared_experts:
        f_sh = (e.shared_expert_ffn_hidden or e.expert_ffn_hidden) * e.n_shared_experts
        out += dense_ffn_gemms(m, f_sh, "shared_expert")
    return out


def layer_gemms(m: ModelSpec, moe_layer: bool) -> list[Gemm]:
    return attention_gemms(m) + (moe_ffn_gemms(m) if moe_layer else dense_ffn_gemms(m))


def head_gemm(m: ModelSpec) -> Gemm:
    return Gemm("lm_head", m.vocab, m.hidden, "col")


def attention_dims(m: ModelSpec) -> tuple[int, int]:
    """(query/key head dim, value head dim) of the attention core."""
    if m.mla is not None:
        return m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim, m.mla.v_head_dim
    return m.dim_head, m.dim_head


def mean_attended(m: ModelSpec, seq_len: np.ndarray | float, causal: bool = True) -> np.ndarray:
    """Mean number of keys one query attends to, averaged over layers (sliding windows included)."""
    s = np.asarray(seq_len, dtype=float)
    full = s / 2.0 if causal else s
    if m.sliding_window is None:
        return full
    w = float(m.sliding_window)
    if causal:
        # positions < w attend i+1 keys, the rest w keys: mean = w - w^2/(2s) for s >= w
        win = np.where(s > w, w - w * w / (2.0 * s), s / 2.0)
    else:
        win = np.minimum(s, w)
    f = m.sliding_window_fraction
    return f * win + (1.0 - f) * full


def attention_core_flops_per_token(m: ModelSpec, seq_len: np.ndarray | float, causal: bool = True) -> np.ndarray:
    """Forward FLOPs of QK^T and AV per token per layer (all heads)."""
    dqk, dv = attention_dims(m)
    return 2.0 * m.n_heads * (dqk + dv) * mean_attended(m, seq_len, causal)


def weight_flops_per_token(m: ModelSpec) -> tuple[float, float, float]:
    """Forward weight-GEMM FLOPs per token: (all dense-layer, all MoE-layer, LM head), summed over layers."""
    l_moe = m.n_moe_layers
    l_dense = m.n_layers - l_moe
    dense = l_dense * sum(g.flops_per_token() for g in layer_gemms(m, False))
    moe = l_moe * sum(g.flops_per_token() for g in layer_gemms(m, True)) if l_moe else 0.0
    return dense, moe, head_gemm(m).flops_per_token()


def model_flops_per_token(m: ModelSpec, seq_len: np.ndarray | float, *, causal: bool = True,
                          include_head: bool = True) -> np.ndarray:
    """Model FLOPs (forward + backward = 3x forward, no recompute) per trained token.

    This is paraplan's MFU convention: weight GEMMs of the active parameters (embedding lookup excluded,
    LM head included) plus the attention core counted causally (halved) unless ``causal=False``.
    """
    dense, moe, head = weight_flops_per_token(m)
    attn = m.n_layers * attention_core_flops_per_token(m, seq_len, causal)
    return 3.0 * (dense + moe + (head if include_head else 0.0) + attn)


def narayanan_flops_per_step(batch: float, seq: float, layers: int, hidden: int, vocab: int) -> float:
    """Narayanan et al. 2021 eq. (3): FLOPs per iteration including full-recompute forward.

    ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))``.
    """
    return 96.0 * batch * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


def korthikanti_model_flops_per_step(batch: float, seq: float, layers: int, hidden: int, vocab: int) -> float:
    """Korthikanti et al. 2022 model FLOPs (no recompute): ``72 B s l h^2 (1 + s/(6h) + V/(12 l h))``."""
    return 72.0 * batch * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (12 * layers * hidden))


def foundry_flops_per_token(n_params: float, layers: int, hidden: int, seq: float) -> float:
    """MosaicML llm-foundry MFU convention: ``6 N + 12 l h s`` per token (attention not halved)."""
    return 6.0 * n_params + 12.0 * layers * hidden * seq
