"""Memory per accelerator for training (array-first).

Model states follow Rajbhandari et al. 2020 (ZeRO): with mixed precision and Adam each parameter costs
2 bytes of 16-bit weights, 2 bytes of 16-bit gradients and K = 12 bytes of optimizer state (fp32 master
weights, momentum and variance). ZeRO stage 1 shards the optimizer state over the data-parallel group,
stage 2 also the gradients, stage 3 (FSDP FULL_SHARD) also the weights.

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
Models", sec. 4), generalised to GQA/MLA, gated FFNs and no-dropout models: per layer and token, in bytes,

* attention: QKV input ``2h``, Q and K ``2 q + 2 kv``, V ``2 kv``, output-projection input ``2 q``,
  dropout mask ``h`` (only with dropout), and without flash attention the ``s``-sized scores:
  softmax output ``2 a s`` (+ mask ``a s`` and dropout output ``2 a s`` with dropout);
* MLP: input ``2h``, activation input ``2 f`` (``4 f`` gated), activation output ``2 f``, mask ``h``;
* two layer norms: ``4h``.

For GPT with dropout and ``f = 4h`` this is Korthikanti's ``34 h + 5 a s``. With tensor parallelism
and no sequence parallelism the layer-norm inputs, dropout masks and the QKV/MLP inputs (``10 h``)
are replicated and the rest divided by ``t``; with sequence parallelism everything is divided by ``t``.
Selective recompute drops the ``s``-sized attention terms; full recompute keeps only each layer's
input (``2 h``, divided by ``t`` under sequence parallelism) plus one layer's activations being rebuilt.
"""

from __future__ import annotations

import numpy as np

from ..specs import ModelSpec
from .flops import attention_dims

#: bytes per parameter: (weights, gradients, optimizer states) per precision/optimizer
WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 2.0, "fp32": 4.0}
GRAD_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 2.0, "fp32": 4.0}
#: optimizer bytes per parameter: Adam keeps fp32 master + m + v (12 B) in mixed precision, m + v (8 B) in fp32
OPT_BYTES_MIXED = {"adamw": 12.0, "adam": 12.0, "sgd": 8.0}
OPT_BYTES_FP32 = {"adamw": 8.0, "adam": 8.0, "sgd": 4.0}

#: CUDA context, NCCL buffers, allocator slack: a documented constant (PyTorch + NCCL typically 1-3 GB).
FRAMEWORK_OVERHEAD_BYTES = 2.0e9

#: bytes of host memory traffic per parameter of a CPU Adam step (DeepSpeed CPU-Adam, ZeRO-Offload sec. 4.2):
#: read the fp32 gradient, master weight, momentum and variance (16 B), write the last three (12 B) and the
#: 16-bit weight copy (2 B); vectorised CPU-Adam runs near the host's memory bandwidth
CPU_OPTIMIZER_BYTES = 30.0
#: share of a node's host memory kept for the OS, the data loader and pinned staging buffers
HOST_RESERVE_FRACTION = 0.1


def activation_terms(m: ModelSpec, moe_layer: bool, dropout: bool) -> tuple[float, float, float]:
    """Per-token, per-layer activation bytes: (split by TP, replicated without SP, attention scores per key).

    The third term is multiplied by the sequence length and heads-per-rank: bytes per token per key per head.
    """
    h = float(m.hidden)
    dqk, dv = attention_dims(m)
    q = m.n_heads * dqk
    kv = (m.kv_heads if m.mla is None else m.n_heads) * dqk
    v_all = (m.kv_heads if m.mla is None else m.n_heads) * dv
    o_in = m.n_heads * dv
    if moe_layer and m.moe is not None:
        e = m.moe
        f = e.expert_ffn_hidden * e.top_k + (e.shared_expert_ffn_hidden or e.expert_ffn_hidden) * e.n_shared_experts
    else:
        f = float(m.ffn_hidden)
    gate = 2.0 if m.gated else 1.0
    mask = 1.0 if dropout else 0.0
    split = 2 * q + 2 * kv + 2 * v_all + 2 * o_in + 2 * gate * f + 2 * f
    replicated = 2 * h + 2 * h + 4 * h + 2 * mask * h  # qkv input, mlp input, 2 norms, 2 dropout masks
    scores = 2.0 + (3.0 if dropout else 0.0)  # softmax out (+ mask + dropout out), per head per key
    return split, replicated, scores


def activation_bytes_per_layer(m: ModelSpec, tokens: np.ndarray, seq: np.ndarray, tp: np.ndarray,
                               sp: np.ndarray, recompute: np.ndarray, *, flash: bool, dropout: bool,
                               moe_layer: bool = False) -> np.ndarray:
    """Activation bytes one layer keeps for one micro-batch of ``tokens`` tokens (per CP rank) on one rank."""
    split, repl, scores = activation_terms(m, moe_layer, dropout)
    t = np.asarray(tp, dtype=float)
    sp = np.asarray(sp, dtype=bool)
    T = np.asarray(tokens, dtype=float)
    s = np.asarray(seq, dtype=float)
    heads_per_rank = m.n_heads / t
    keys = s if m.sliding_window is None else (
        m.sliding_window_fraction * np.minimum(s, m.sliding_window) + (1 - m.sliding_window_fraction) * s)
    score_bytes = 0.0 if flash else 1.0
    base = T * (split / t + np.where(sp, repl / t, repl))
    attn = T * heads_per_rank * keys * scores * score_bytes
    full = T * 2.0 * m.hidden / np.where(sp, t, 1.0)
    return np.where(recompute == 0, base + attn, np.where(recompute == 1, base, full))


def recompute_working_bytes(m: ModelSpec, tokens: np.ndarray, seq: np.ndarray, tp: np.ndarray, sp: np.ndarray,
                            recompute: np.ndarray, *, flash: bool, dropout: bool) -> np.ndarray:
    """Extra memory while one layer is being recomputed under full recompute (its whole activation set)."""
    one = activation_bytes_per_layer(m, tokens, seq, tp, sp, np.zeros_like(np.asarray(recompute)),
                                     flash=flash, dropout=dropout, moe_layer=m.is_moe)
    return np.where(recompute == 2, one, 0.0)
