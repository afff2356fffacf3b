"""Kinetics: the test-time cost model with attention and KV-cache memory terms (Sadhukhan et al., 2025).

*Kinetics: Rethinking Test-Time Scaling Laws*, arXiv 2506.05333 (code: ``Infini-AI-Lab/Kinetics``,
``cost_model/utils.py``). Prior test-time scaling laws price a generated token at ``2 P`` FLOPs. For long
chains of thought the attention over the growing context and, above all, the KV-cache reads dominate: each
generated token reads the whole cache, a memory access worth ``I`` FLOPs per byte-pair at the accelerator's
arithmetic intensity ``I = FLOP/s / (B/s)`` (the paper fixes ``I = 562.5`` for B200: 4.5 PFLOP/s / 8 TB/s).

Per problem, ``N`` samples of ``L_out`` tokens after a prompt of ``L_in`` (``H``/``K`` query/KV heads,
``d = head_dim x layers``; the prompt's KV cache is shared by the samples)::

    C_comp = N [2 P L_out + 2 (2 L_in + L_out) L_out H d]
    C_mem  = 2 (2 L_in + N L_out) L_out K d                     (KV bytes at 2 B/element; weights amortised)
    eFLOPs = C_comp + I C_mem

Block top-k sparse attention reads a budget ``B = local + block_size x topk`` of KV per token
(``kv = B L_out - (max(0, B - L_in))^2 / 2``) plus a block-search pass over ``1/block_size`` of the keys.

The paper's ``P`` is its own table (0.752e9 for Qwen3-0.6B, ...: it counts tied embeddings twice for the two
smallest models); :func:`model_shape` reads the shape from paraplan's catalog and ``params`` can be given.
:func:`kinetics_intensity` derives ``I`` for any catalog accelerator. Latency/cost in seconds and dollars for
a plan come from :mod:`paraplan.testtime`, which prices the same workloads with ``estimate_inference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..catalog import get_accelerator, get_model
from ..claims import ClaimValue
from ..specs import AcceleratorSpec, ModelSpec

ArrayLike = np.ndarray | float | int
#: the paper's hard-coded arithmetic intensity (B200, 4.5 PFLOP/s over 8 TB/s)
PAPER_INTENSITY = 562.5


@dataclass(frozen=True)
class Shape:
    """What the Kinetics cost model needs of a model."""

    params: float
    heads: int
    kv_heads: int
    d: float  # head_dim x layers


def model_shape(model: ModelSpec | str, params: float | None = None) -> Shape:
    """The cost-model shape of a catalog model; ``params`` overrides the parameter count (the paper's table)."""
    m = get_model(model) if isinstance(model, str) else model
    p = float(params) if params is not None else float(m.n_active_params())
    return Shape(params=p, heads=m.n_heads, kv_heads=m.kv_heads, d=float(m.dim_head * m.n_layers))


def kinetics_intensity(acc: AcceleratorSpec | str, dtype: str = "bf16") -> float:
    """FLOPs per byte at which memory access and compute cost the same: peak FLOP/s / DRAM B/s."""
    a = get_accelerator(acc) if isinstance(acc, str) else acc
    return a.peak(dtype) / a.memory_bw


def dense_cost(shape: Shape, input_len: ArrayLike, output_len: ArrayLike, n: ArrayLike = 1,
               intensity: float = PAPER_INTENSITY) -> tuple[np.ndarray, np.ndarray]:
    """``(C_comp, I C_mem)`` in FLOPs (arrays, broadcast) of ``n`` samples of ``output_len`` tokens each."""
    li, lo, nn = (np.asarray(x, dtype=float) for x in (input_len, output_len, n))
    comp = nn * (2.0 * shape.params * lo + 2.0 * (2.0 * li + lo) * lo * shape.heads * shape.d)
    mem = 2.0 * (2.0 * li + nn * lo) * lo * shape.kv_heads * shape.d
    return comp, intensity * mem


def block_sparse_cost(shape: Shape, input_len: ArrayLike, output_len: ArrayLike, n: ArrayLike = 1, *,
                      local: int = 0, block_size: int = 32, topk: int = 16,
                      intensity: float = PAPER_INTENSITY) -> tuple[np.ndarray, np.ndarray]:
    """Block top-k sparse attention: ``(C_comp, I C_mem)`` in FLOPs (the released code's form)."""
    li, lo, nn = (np.asarray(x, dtype=float) for x in (input_len, output_len, n))
    budget = float(local + block_size * topk)
    kv = budget * lo - 0.5 * np.maximum(0.0, budget - li) ** 2
    search_c = np.floor((2.0 * li + lo) / block_size) * lo * shape.heads * shape.d
    comp = nn * (2.0 * shape.params * lo + 4.0 * kv * shape.heads * shape.d + search_c)
    search_m = np.floor((2.0 * li + lo * nn) / block_size) * lo * shape.kv_heads * shape.d
    mem = 4.0 * kv * shape.kv_heads * shape.d * nn + search_m
    return comp, intensity * mem


def expected_cost(shape: Shape, input_len: float, output_lens: Sequence[float], n: int = 1, *,
                  sparse: dict[str, int] | None = None, intensity: float = PAPER_INTENSITY) -> tuple[float, float]:
    """Mean ``(C_comp, I C_mem)`` over sampled generation lengths (the paper's ``expected_cost``)."""
    lo = np.asarray(output_lens, dtype=float)
    if sparse:
        c, m = block_sparse_cost(shape, input_len, lo, n, intensity=intensity, **sparse)
    else:
        c, m = dense_cost(shape, input_len, lo, n, intensity=intensity)
    return float(np.mean(c)), float(np.mean(m))


def flops_only_cost(shape: Shape, output_len: ArrayLike, n: ArrayLike = 1) -> np.ndarray:
    """The prior laws' cost: ``2 P`` FLOPs per generated token (no attention, no memory)."""
    return 2.0 * shape.params * np.asarray(output_len, dtype=float) * np.asarray(n, dtype=float)


def best_of_n_vs_long_cot(shape: Shape, input_len: float, tokens: float, n: int,
                          intensity: float = PAPER_INTENSITY) -> float:
    """eFLOPs of ``n`` samples of ``tokens / n`` over one chain of ``tokens`` (same generated tokens).

    Below 1: splitting the budget into parallel samples is cheaper (quadratic attention/KV terms shrink)."""
    c1, m1 = dense_cost(shape, input_len, tokens / n, n, intensity)
    c2, m2 = dense_cost(shape, input_len, tokens, 1, intensity)
    return float((c1 + m1) / (c2 + m2))


# ----------------------------------------------------------------------------- claims
def row_cost(model: str, params: float, input_len: float, output_lens: list[float], n: int = 1,
             part: str = "total", sparse: dict[str, int] | None = None) -> ClaimValue:
    """Claim: one row of the released tradeoff CSVs (eFLOPs in units of 1e12, as the code reports them)."""
    sh = model_shape(model, params)
    c, m = expected_cost(sh, input_len, output_lens, n, sparse=sparse)
    v = {"compute": c, "memory": m, "total": c + m}[part] * 1e-12
    return ClaimValue(v, {"compute_T": c * 1e-12, "memory_T": m * 1e-12, "shape": sh.__dict__})


def memory_to_compute(model: str, params: float, input_len: float, output_lens: list[float], n: int = 1) -> ClaimValue:
    """Claim: I C_mem / C_comp of a released row (how much the KV reads outweigh the FLOPs)."""
    sh = model_shape(model, params)
    c, m = expected_cost(sh, input_len, output_lens, n)
    return ClaimValue(m / c, {"compute_T": c * 1e-12, "memory_T": m * 1e-12})


def cost_ratio(model: str, params: float, input_len: float, output_lens: list[float], n_hi: int, n_lo: int = 1,
               sparse: dict[str, int] | None = None) -> ClaimValue:
    """Claim: eFLOPs of ``n_hi`` samples over ``n_lo`` samples (sub-linear: the prompt KV is shared)."""
    sh = model_shape(model, params)
    hi = sum(expected_cost(sh, input_len, output_lens, n_hi, sparse=sparse))
    lo = sum(expected_cost(sh, input_len, output_lens, n_lo, sparse=sparse))
    return ClaimValue(hi / lo, {"hi_T": hi * 1e-12, "lo_T": lo * 1e-12})


def paper_intensity(accelerator: str, dtype: str) -> float:
    """Claim: the paper's I = 562.5 from a catalog accelerator's peaks (FLOP/s over B/s)."""
    return kinetics_intensity(accelerator, dtype)
