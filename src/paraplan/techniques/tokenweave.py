"""TokenWeave: token-split overlap of tensor-parallel all-reduce with compute (Gond, Kwatra, Ramjee; MLSys'26,
arXiv 2505.11329).

"TokenWeave: Efficient Compute-Communication Overlap for Distributed LLM Inference". In tensor-parallel inference
every layer does two all-reduces of ``tokens x hidden`` activations, each followed by residual-add + RMSNorm.
TokenWeave splits the batch's tokens into two wave-aware halves and runs the all-reduce (+ norm) of one half while
the other half computes; the all-reduce and the RMSNorm are fused into one kernel that uses NVLink SHARP
(multimem, in-switch reduction) on a few SMs (``comm_sms``), leaving the rest to the GEMMs.

Per layer and iteration of ``n`` tokens (``G`` GEMMs + attention + other elementwise, ``N`` the two
residual-add+norms, ``R`` the two all-reduces):

    baseline   = G(n) + N(n) + R(n)        (R: NCCL ring all-reduce, or the multimem/NVLS all-reduce of the paper's
                                            artifact baseline, ``baseline_ar="nvls"``; then the norm)
    tokenweave = 2 max(G'(n/2), R_nvls(n/2)) + min(G'(n/2), R_nvls(n/2))   (two halves in a 2-stage pipeline)

with ``G' = G x SMs / (SMs - comm_sms)`` (compute loses the communication SMs) and the GEMMs of each half rounded up
to a whole 128-token tile (wave quantisation). ``R_nvls`` moves each byte once through the switch
(``S / bw`` instead of the ring's ``2 (N-1)/N S / bw``) and the fused norm rides along with it. The component
times come from :func:`paraplan.infer.linear_time` and :func:`paraplan.infer.prefill_attention_time`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.efficiency import memory_time
from ..infer import InferenceConfig, linear_time, prefill_attention_time

#: GEMM tile quantum for the wave-aware split (tokens)
TILE = 128
H100_SMS = 132


def _compute(model: str, cluster: str, tp: int, tokens: np.ndarray, seq_len: float) -> dict[str, np.ndarray]:
    m = get_model(model)
    c = get_cluster(f"{cluster}:{tp}")
    cfg = InferenceConfig(tp=tp)
    lt = linear_time(m, c, cfg, tokens, 0.0)
    n_seqs = np.maximum(tokens / seq_len, 1.0)
    q = np.minimum(tokens, seq_len)
    attn = prefill_attention_time(m, c, cfg, n_seqs, q, q)
    h = float(m.hidden)
    # the two residual-add + RMSNorm passes per layer (read 2h, write 2h bf16 each)
    norm = 2.0 * m.n_layers * memory_time(c.accelerator, tokens * 8.0 * h)
    other = lt["gemm"] + attn + lt["elementwise"] + lt["overhead"] - norm
    # NVLS all-reduce: each byte crosses the switch once: S / bw plus one hop of latency, 2 per layer
    nbytes = tokens * h * 2.0
    nvls = 2.0 * m.n_layers * (c.scaleup.latency_s + nbytes / c.scaleup.bw)
    return {"compute": other, "norm": norm, "ring_ar": lt["tp_comm"], "nvls_ar": nvls}


def iteration_times(model: str, tokens: ArrayLike, *, tp: int = 8, cluster: str = "dgx-h100",
                    seq_len: float = 2048.0, comm_sms: int = 8, sms: int = H100_SMS,
                    baseline_ar: str = "ring") -> dict[str, np.ndarray]:
    """Baseline and TokenWeave time of one prefill iteration of ``tokens`` tokens (array-first). ``baseline_ar``:
    the baseline's all-reduce, ``ring`` (NCCL) or ``nvls`` (multimem through the switch, unfused with the norm)."""
    if baseline_ar not in ("ring", "nvls"):
        raise ValueError(f"baseline_ar must be 'ring' or 'nvls', not {baseline_ar!r}")
    n = np.asarray(tokens, dtype=float)
    full = _compute(model, cluster, tp, n, seq_len)
    half_tokens = np.ceil(n / 2.0 / TILE) * TILE
    half = _compute(model, cluster, tp, half_tokens, seq_len)
    base_ar = full["ring_ar"] if baseline_ar == "ring" else full["nvls_ar"]
    base = full["compute"] + full["norm"] + base_ar
    g = half["compute"] * sms / (sms - comm_sms)
    r = half["nvls_ar"]
    weave = 2.0 * np.maximum(g, r) + np.minimum(g, r)
    # TokenWeave falls back to the plain path when splitting does not pay (small batches)
    return {"baseline_s": base, "tokenweave_s": np.minimum(weave, base + full["nvls_ar"] - base_ar),
            "comm_share": base_ar / base, "compute_s": full["compute"], "ring_ar_s": full["ring_ar"]}


def max_speedup(model: str, token_grid: list[int], **kw: float) -> ClaimValue:
    """Largest latency speedup (baseline / TokenWeave) over a sweep of token counts ("up to")."""
    t = np.asarray(token_grid, dtype=float)
    r = iteration_times(model, t, **kw)  # type: ignore[arg-type]
    sp = r["baseline_s"] / r["tokenweave_s"]
    i = int(np.argmax(sp))
    curve = {int(a): float(b) for a, b in zip(t, sp, strict=True)}
    return ClaimValue(float(sp[i]), {"tokens": float(t[i]), "speedups": curve})


def comm_share(model: str, tokens: int, **kw: float) -> ClaimValue:
    """Share of the baseline iteration spent in the TP all-reduces."""
    r = iteration_times(model, tokens, **kw)  # type: ignore[arg-type]
    return ClaimValue(float(r["comm_share"]), {"baseline_s": float(r["baseline_s"])})


def speedup_at(model: str, tokens: int, **kw: float) -> float:
    """Latency speedup at one token count."""
    r = iteration_times(model, tokens, **kw)  # type: ignore[arg-type]
    return float(r["baseline_s"] / r["tokenweave_s"])


def gain_small_vs_large(model: str, small_tokens: int = 256, large_tokens: int = 8192, **kw: float) -> ClaimValue:
    """Speedup at ``large_tokens`` minus speedup at ``small_tokens`` (> 0: the gain appears only at larger batches)."""
    a = speedup_at(model, small_tokens, **kw)
    b = speedup_at(model, large_tokens, **kw)
    return ClaimValue(b - a, {"small": a, "large": b})
