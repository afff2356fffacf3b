"""XQuant: cache the quantized layer input X and rematerialize K and V (memory traded for FLOPs).

Tomar, Hooper, Lee, Xi, Tiwari, Kang, Manolache, Mahoney, Keutzer, Gholami, "XQuant: Breaking the Memory Wall
for LLM Inference with KV Cache Rematerialization", arXiv 2508.10395 (2025).

Instead of K and V (``2 d_kv`` elements per token and layer) the cache holds the post-norm layer input X
(``d_x`` elements: the hidden size for MHA, an SVD down-projection for GQA) at ``b`` bits, and each decode step
recomputes ``K = X W_k``, ``V = X W_v`` for the cached tokens. Bit accounting per token and layer::

    KV (fp16)       2 d_kv 16
    XQuant          d_x (b + m / g)                     m: metadata bits per group of g (scale + zero = 32)
    XQuant-CL       layer 0 as XQuant, layers 1..L-1 as cross-layer deltas at b_delta (+ metadata)

    ratio = L 2 d_kv 16 / sum over layers of the stored bits

Rematerialization costs ``2 * d_x * 2 d_kv`` FLOPs per cached token per layer each step (two GEMMs of
``ctx`` rows); against reading the FP16 KV cache it pays when the accelerator's FLOP/byte exceeds
``4 d_x d_kv / (4 d_kv - d_x b / 8)`` (the memory-wall argument). :func:`remat_step` prices both sides with
paraplan's kernel curves (``gemm_time`` for the rematerialization, ``attention_time`` for the KV read,
``memory_time`` for the X read).
"""

from __future__ import annotations

import numpy as np

from ..catalog import get_accelerator, get_model
from ..claims import ClaimValue
from ..cost.efficiency import attention_time, gemm_time, memory_time
from ..specs import AcceleratorSpec, ModelSpec

ArrayLike = np.ndarray | float | int

__all__ = ["kv_bits_per_token_layer", "x_bits_per_token_layer", "xquant_memory_ratio", "xquant_cl_memory_ratio",
           "remat_flops_per_token", "breakeven_flops_per_byte", "remat_step", "memory_ratio", "cl_memory_ratio",
           "remat_slowdown"]


def kv_bits_per_token_layer(model: ModelSpec, kv_bits: float = 16.0, group_size: int | None = None,
                            meta_bits: float = 32.0) -> float:
    """Bits one token's K and V take in one layer."""
    q = kv_bits + (meta_bits / group_size if group_size else 0.0)
    return 2.0 * model.kv_heads * model.dim_head * q


def x_bits_per_token_layer(model: ModelSpec, x_bits: float, group_size: int | None = 128, meta_bits: float = 32.0,
                           x_dim: int | None = None) -> float:
    """Bits one token's cached X takes in one layer (``x_dim`` defaults to the hidden size)."""
    d = float(x_dim or model.hidden)
    q = x_bits + (meta_bits / group_size if group_size and x_bits < 16 else 0.0)
    return d * q


def xquant_memory_ratio(model: ModelSpec, x_bits: float, group_size: int | None = 128, meta_bits: float = 32.0,
                        x_dim: int | None = None) -> float:
    """FP16 KV cache bytes over XQuant cache bytes."""
    return kv_bits_per_token_layer(model) / x_bits_per_token_layer(model, x_bits, group_size, meta_bits, x_dim)


def xquant_cl_memory_ratio(model: ModelSpec, delta_bits: float, base_bits: float, group_size: int | None = 128,
                           meta_bits: float = 32.0) -> float:
    """FP16 KV over XQuant-CL: layer 0 stores X at ``base_bits``, every later layer a delta at ``delta_bits``."""
    L = model.n_layers
    stored = x_bits_per_token_layer(model, base_bits, group_size, meta_bits) \
        + (L - 1) * x_bits_per_token_layer(model, delta_bits, group_size, meta_bits)
    return L * kv_bits_per_token_layer(model) / stored


def remat_flops_per_token(model: ModelSpec, x_dim: int | None = None) -> float:
    """FLOPs to rematerialize one cached token's K and V in one layer (``2 d_x 2 d_kv``)."""
    d_kv = model.kv_heads * model.dim_head
    return 2.0 * float(x_dim or model.hidden) * 2.0 * d_kv


def breakeven_flops_per_byte(model: ModelSpec, x_bits: float, group_size: int | None = 128) -> float:
    """Accelerator FLOP/byte above which recomputing K, V from X beats reading the FP16 KV cache."""
    saved = (kv_bits_per_token_layer(model) - x_bits_per_token_layer(model, x_bits, group_size)) / 8.0
    return remat_flops_per_token(model) / saved if saved > 0 else float("inf")


def remat_step(model: ModelSpec, accelerator: AcceleratorSpec, ctx: ArrayLike, batch: ArrayLike = 1,
               x_bits: float = 4.0, group_size: int | None = 128, layer: str = "curves") -> dict[str, np.ndarray]:
    """Attention-side seconds of one decode step for all layers: FP16 KV read (``attention_time``) against
    XQuant's X read (``memory_time``) plus the K/V rematerialization GEMMs (``gemm_time``)."""
    m = model
    L = m.n_layers
    c, b = np.broadcast_arrays(np.asarray(ctx, dtype=float), np.asarray(batch, dtype=float))
    kv = L * attention_time(accelerator, "bf16", b, m.n_heads, 1.0, c, m.dim_head, m.kv_heads, layer=layer)  # type: ignore[arg-type]
    xbytes = b * c * x_bits_per_token_layer(m, x_bits, group_size) / 8.0
    d_kv = m.kv_heads * m.dim_head
    remat = gemm_time(accelerator, "bf16", b * c, 2.0 * d_kv, float(m.hidden), layer=layer)  # type: ignore[arg-type]
    # the rematerialized K, V then feed the attention core at FP16 from on-chip / L2: price its FLOPs only
    xq = L * (memory_time(accelerator, xbytes, layer=layer) + remat)  # type: ignore[arg-type]
    return {"kv_fp16_s": kv, "xquant_s": xq, "remat_flops": L * b * c * remat_flops_per_token(m)}


# ----------------------------------------------------------------------- claim functions
def memory_ratio(model: str, x_bits: float, group_size: int | None = 128, x_dim: int | None = None) -> ClaimValue:
    m = get_model(model)
    r = xquant_memory_ratio(m, x_bits, group_size, x_dim=x_dim)
    return ClaimValue(r, {"kv_bits_token_layer": kv_bits_per_token_layer(m),
                          "x_bits_token_layer": x_bits_per_token_layer(m, x_bits, group_size, x_dim=x_dim),
                          "breakeven_flop_per_byte": breakeven_flops_per_byte(m, x_bits, group_size)})


def cl_memory_ratio(model: str, delta_bits: float, base_bits: float, group_size: int | None = 128) -> ClaimValue:
    m = get_model(model)
    return ClaimValue(xquant_cl_memory_ratio(m, delta_bits, base_bits, group_size), {"layers": m.n_layers})


def remat_slowdown(model: str, accelerator: str, ctx: int, batch: int, x_bits: float = 4.0) -> ClaimValue:
    """XQuant attention-side time over the FP16 KV read (below 1: rematerialization pays on this accelerator)."""
    r = remat_step(get_model(model), get_accelerator(accelerator), ctx, batch, x_bits)
    return ClaimValue(float(r["xquant_s"] / r["kv_fp16_s"]), {k: float(v) for k, v in r.items()})
