"""KV-cache quantization at low bit widths (KIVI-style), priced by the serving estimator.

KIVI -- Liu, Yuan, Jin, Zhong, Xu, Braverman, Chen, Hu, "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV
Cache", ICML 2024, arXiv 2402.02750. Keys are quantized per channel and values per token, both in groups of ``G``
elements with a 16-bit scale and zero point each; the most recent ``R`` tokens (the residual window) stay in FP16
until a full group forms. Bits per cached element::

    bits(L) = ((L - R) (b + 32 / G) + R 16) / L             for a sequence of L cached tokens (R <= L)

What the paper reports (peak memory with weights, the largest batch, throughput) follows from the memory model of
:mod:`paraplan.infer`: KV bytes per token (``kv_bytes_per_token`` at ``kv_bits`` / ``kv_group_size``), the KV
budget left after weights and workspace (``kv_budget_bytes``), and the static-batch estimator
(``estimate_inference``) at the largest batch each precision fits.
"""

from __future__ import annotations

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..infer import (
    InferenceConfig,
    estimate_inference,
    kv_budget_bytes,
    kv_bytes_per_token,
    kv_tokens_per_sequence,
    weight_bytes_per_accelerator,
    workspace_bytes,
)
from ..specs import ClusterSpec, ModelSpec

ArrayLike = np.ndarray | float | int

__all__ = ["effective_kv_bits", "kv_bytes_per_sequence", "kivi_max_batch", "kivi_peak_memory_ratio",
           "kivi_batch_ratio", "kivi_throughput_ratio"]


def effective_kv_bits(seq_len: ArrayLike, kv_bits: float = 2.0, group_size: int = 32, residual: int = 128,
                      meta_bits: float = 32.0) -> np.ndarray:
    """Mean stored bits per K/V element of a sequence of ``seq_len`` tokens (residual window in FP16)."""
    L = np.maximum(np.asarray(seq_len, dtype=float), 1.0)
    r = np.minimum(float(residual), L)
    q = kv_bits + (meta_bits / group_size if kv_bits < 16 else 0.0)
    return ((L - r) * q + r * 16.0) / L


def _cfg(kv_bits: float, group_size: int | None, **kw: object) -> InferenceConfig:
    return InferenceConfig(kv_bits=kv_bits, kv_group_size=group_size if kv_bits < 16 else None, **kw)  # type: ignore[arg-type]


def kv_bytes_per_sequence(model: ModelSpec, seq_len: ArrayLike, *, kv_bits: float = 2.0, group_size: int = 32,
                          residual: int = 128, tp: int = 1) -> np.ndarray:
    """Cache bytes of one sequence on one rank: quantized tokens at ``kv_bits`` (+ group metadata, from
    :func:`paraplan.infer.kv_bytes_per_token`) plus the FP16 residual window."""
    L = np.asarray(seq_len, dtype=float)
    per_q = kv_bytes_per_token(model, _cfg(kv_bits, group_size, tp=tp))
    per_16 = kv_bytes_per_token(model, _cfg(16.0, None, tp=tp))
    r = np.minimum(float(residual), L) if kv_bits < 16 else np.zeros_like(L)
    return (L - r) * per_q + r * per_16


def kivi_max_batch(model: ModelSpec, cluster: ClusterSpec, seq_len: int, *, kv_bits: float = 2.0,
                   group_size: int = 32, residual: int = 128) -> int:
    """Largest batch whose KV cache (paged blocks, residual window included) fits the budget of
    :func:`paraplan.infer.kv_budget_bytes`."""
    cfg = _cfg(kv_bits, group_size)
    slots = float(kv_tokens_per_sequence(model, cfg, seq_len))
    per_seq = float(kv_bytes_per_sequence(model, slots, kv_bits=kv_bits, group_size=group_size, residual=residual))
    lo, hi = 1, 1
    while kv_budget_bytes(model, cluster, cfg, max_seqs=hi) >= hi * per_seq and hi < 1 << 20:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # the workspace grows with the batch (logits), so search
        mid = (lo + hi) // 2
        if kv_budget_bytes(model, cluster, cfg, max_seqs=mid) >= mid * per_seq:
            lo = mid
        else:
            hi = mid
    return lo


def kivi_peak_memory_ratio(model: str, accelerator: str, batch: int, input_len: int, output_len: int,
                           kv_bits: float = 2.0, group_size: int = 32, residual: int = 128) -> ClaimValue:
    """Peak memory (weights + KV + workspace + runtime) of FP16 KV over KIVI at the same batch and lengths."""
    m = get_model(model)
    seq = input_len + output_len
    common = weight_bytes_per_accelerator(m, InferenceConfig()) + workspace_bytes(m, InferenceConfig(), batch)
    kv16 = batch * float(kv_bytes_per_sequence(m, seq, kv_bits=16.0))
    kvq = batch * float(kv_bytes_per_sequence(m, seq, kv_bits=kv_bits, group_size=group_size, residual=residual))
    ratio = (common + kv16) / (common + kvq)
    return ClaimValue(ratio, {"weights_and_workspace_gb": common / 1e9, "kv_fp16_gb": kv16 / 1e9,
                              "kv_kivi_gb": kvq / 1e9, "accelerator": accelerator})


def kivi_batch_ratio(model: str, accelerator: str, input_len: int, output_len: int, kv_bits: float = 2.0,
                     group_size: int = 32, residual: int = 128) -> ClaimValue:
    """Largest batch with KIVI over the largest with FP16 KV, same memory."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:1")
    seq = input_len + output_len
    b16 = kivi_max_batch(m, c, seq, kv_bits=16.0)
    bq = kivi_max_batch(m, c, seq, kv_bits=kv_bits, group_size=group_size, residual=residual)
    return ClaimValue(bq / b16, {"max_batch_fp16": b16, "max_batch_kivi": bq})


def kivi_throughput_ratio(model: str, accelerator: str, input_len: int, output_len: int, kv_bits: float = 2.0,
                          group_size: int = 32, residual: int = 128, engine: str = "hf") -> ClaimValue:
    """Output tokens/s at each precision's largest batch (``estimate_inference``), KIVI over FP16. The 2-bit
    cache is read at ``kv_bits`` + metadata (the residual window's FP16 reads are not separated)."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:1")
    seq = input_len + output_len
    b16 = kivi_max_batch(m, c, seq, kv_bits=16.0)
    bq = kivi_max_batch(m, c, seq, kv_bits=kv_bits, group_size=group_size, residual=residual)
    e16 = estimate_inference(m, c, InferenceConfig(engine=engine), batch=b16, input_len=input_len,
                             output_len=output_len, strict=False)
    eq = estimate_inference(m, c, _cfg(kv_bits, group_size, engine=engine), batch=bq, input_len=input_len,
                            output_len=output_len, strict=False)
    return ClaimValue(eq.output_tokens_per_s / e16.output_tokens_per_s,
                      {"batch_fp16": b16, "batch_kivi": bq, "tok_s_fp16": e16.output_tokens_per_s,
                       "tok_s_kivi": eq.output_tokens_per_s})
