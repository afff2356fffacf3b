"""Fit microbenchmark timings into the curve forms of :mod:`paraplan.cost.efficiency` (same parameters, same
keys as ``catalog/curves/efficiency.yaml``), by least squares on log time (robust ``soft_l1`` loss).

* GEMM ``[m,k] x [k,n]``: ``t = t0 + max(2 (m + m_half)(n + n_half)(k + k_half) / (peak eff_max),
  (mk + nk + mn) b / (bw eff_mem))``.
* Attention prefill: ``t = t0 + max(F / (peak eff_max q / (q + l_half)), io_bytes / (bw eff_kv))``; decode:
  ``t = t0 + kv_bytes / (bw eff_kv)`` (the KV-cache read).
* Streaming memory ops: ``t = t0 + bytes / (bw eff)``, ``eff`` pooled over the ops (log-mean), ``eff_by_op``
  per op.
* Collectives: ``t = alpha + bus_bytes / (eff link_bw)`` per op.

``peak`` and ``bw`` are the profile accelerator's (spec-sheet peaks, STREAM bandwidth), so a fitted efficiency
reads as in the catalog: a fraction of the peak (it exceeds 1 where the CPU clocks above the base clock that
the peak assumes). Each fit reports its APE over the points it was fitted on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .device import CalibrationError

#: largest fitted fraction of the spec-sheet peak: a CPU whose peak assumes the base clock runs above it under turbo
#: (measured 1.2-1.3 on the development machine); a bound keeps shapes that cannot identify it from running away
EFF_MAX_BOUND = 2.0


def _least_squares(residual: Callable[[np.ndarray], np.ndarray], starts: Sequence[np.ndarray],
                   lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    try:
        from scipy.optimize import least_squares
    except ImportError:  # pragma: no cover - scipy comes with the calibrate extra
        raise CalibrationError("fitting needs scipy: pip install 'paraplan[calibrate]'") from None
    best = None
    for x0 in starts:
        x0 = np.clip(np.asarray(x0, dtype=float), lo + 1e-9, hi - 1e-9)
        r = least_squares(residual, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, max_nfev=2000)
        if best is None or r.cost < best.cost:
            best = r
    assert best is not None
    return best.x


def ape_stats(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    ape = np.abs(np.asarray(pred) - np.asarray(meas)) / np.asarray(meas)
    return {"ape_median_pct": round(100 * float(np.median(ape)), 2),
            "ape_p90_pct": round(100 * float(np.percentile(ape, 90)), 2), "rows": int(ape.size)}


def _need(points: Sequence[Any], n: int, what: str) -> None:
    if len(points) < n:
        raise CalibrationError(f"{what}: {len(points)} measurement(s), at least {n} needed for a fit")


# ------------------------------------------------------------------ GEMM
def gemm_time(p: dict[str, float], m: np.ndarray, n: np.ndarray, k: np.ndarray, peak: float, bw: float,
              bpe: float) -> np.ndarray:
    tc = (m + p["m_half"]) * (n + p["n_half"]) * (k + p["k_half"]) * (2.0 / (peak * p["eff_max"]))
    tm = (m * k + n * k + m * n) * bpe / (bw * p["eff_mem"])
    return p["t0_us"] * 1e-6 + np.maximum(tc, tm)


def fit_gemm(points: list[dict[str, Any]], peak: float, bw: float, bpe: float) -> dict[str, Any]:
    """``points``: dicts with ``m, n, k, t`` (seconds). Returns the curve (efficiency.yaml keys) with its APE."""
    _need(points, 8, "GEMM")
    m, n, k, t = (np.array([float(p[c]) for p in points]) for c in ("m", "n", "k", "t"))
    names = ("eff_max", "m_half", "n_half", "k_half", "eff_mem", "t0_us")

    def unpack(x: np.ndarray) -> dict[str, float]:
        return dict(zip(names, np.exp(x), strict=True))

    def residual(x: np.ndarray) -> np.ndarray:
        return np.log(gemm_time(unpack(x), m, n, k, peak, bw, bpe)) - np.log(t)

    best_eff = float(np.max(2 * m * n * k / t / peak))
    lo = np.log([1e-3, 1e-2, 1e-2, 1e-2, 1e-2, 1e-3])
    hi = np.log([EFF_MAX_BOUND, 1e5, 1e5, 1e5, 50.0, 1e5])
    t0 = max(float(np.min(t)) * 0.5e6, 0.01)
    starts = [np.log([best_eff * 1.1, h, h, h, 1.0, t0]) for h in (8.0, 64.0, 512.0)]
    p = unpack(_least_squares(residual, starts, lo, hi))
    pred = gemm_time(p, m, n, k, peak, bw, bpe)
    big = float(np.max([float(x) for x in (m.max(), n.max(), k.max())]))
    eff_big = float(2 * big**3 / (gemm_time(p, np.array(big), np.array(big), np.array(big), peak, bw, bpe)
                                  * peak))
    return {**{k_: round(float(v), 5) for k_, v in p.items()}, "bytes_per_element": bpe,
            f"eff_at_{int(big)}": round(eff_big, 4), **ape_stats(pred, t)}


# ------------------------------------------------------------------ streaming memory ops
def fit_memory(points: list[dict[str, Any]], bw: float) -> dict[str, Any]:
    """``points``: dicts with ``op, bytes, t``. One ``t0``, a pooled ``eff`` (log-mean of the per-op fits) and
    ``eff_by_op``."""
    _need(points, 4, "streaming memory ops")
    b = np.array([float(p["bytes"]) for p in points])
    t = np.array([float(p["t"]) for p in points])
    ops = sorted({str(p["op"]) for p in points})
    idx = np.array([ops.index(str(p["op"])) for p in points])

    def residual(x: np.ndarray) -> np.ndarray:
        t0, effs = np.exp(x[0]), np.exp(x[1:])
        return np.log(t0 + b / (bw * effs[idx])) - np.log(t)

    lo = np.log([1e-9] + [1e-3] * len(ops))
    hi = np.log([1e-2] + [50.0] * len(ops))
    x = _least_squares(residual, [np.log([max(float(np.min(t)) * 0.5, 1e-8)] + [1.0] * len(ops))], lo, hi)
    t0, effs = float(np.exp(x[0])), np.exp(x[1:])
    pred = t0 + b / (bw * effs[idx])
    return {"eff": round(float(np.exp(np.mean(np.log(effs)))), 4), "t0_us": round(t0 * 1e6, 3),
            "eff_by_op": {op: round(float(e), 4) for op, e in zip(ops, effs, strict=True)}, **ape_stats(pred, t)}


# ------------------------------------------------------------------ attention
def attention_flops_bytes(b: np.ndarray, h: np.ndarray, q: np.ndarray, kv: np.ndarray, d: np.ndarray,
                          kvh: np.ndarray, bpe: float,
                          causal: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FLOPs, io bytes, kv bytes) exactly as :func:`paraplan.cost.efficiency.attention_time` counts them."""
    kv = np.maximum(kv, q)
    pairs = q * kv - 0.5 * q * q if causal else q * kv
    flops = 4.0 * b * h * d * pairs
    kv_bytes = 2.0 * b * kv * kvh * d * bpe
    return flops, kv_bytes + 2.0 * b * q * h * d * bpe, kv_bytes


def _cols(points: list[dict[str, Any]], *names: str) -> list[np.ndarray]:
    return [np.array([float(p[c]) for p in points]) for c in names]


def fit_decode(points: list[dict[str, Any]], bw: float, bpe: float) -> dict[str, Any]:
    """``points``: dicts with ``b, h, kv, d, kvh, t`` of single-token (q = 1) attention over a KV cache."""
    _need(points, 3, "decode attention")
    b, h, kv, d, kvh, t = _cols(points, "b", "h", "kv", "d", "kvh", "t")
    _, _, kvb = attention_flops_bytes(b, h, np.ones_like(b), kv, d, kvh, bpe, causal=False)

    def residual(x: np.ndarray) -> np.ndarray:
        return np.log(np.exp(x[1]) + kvb / (bw * np.exp(x[0]))) - np.log(t)

    x = _least_squares(residual, [np.log([1.0, max(float(np.min(t)) * 0.5, 1e-7)])],
                       np.log([1e-3, 1e-9]), np.log([50.0, 1e-1]))
    eff_kv, t0 = float(np.exp(x[0])), float(np.exp(x[1]))
    pred = t0 + kvb / (bw * eff_kv)
    return {"eff_kv": round(eff_kv, 4), "t0_us": round(t0 * 1e6, 3), "bytes_per_element": bpe, **ape_stats(pred, t)}


def prefill_time(p: dict[str, float], flops: np.ndarray, io: np.ndarray, q: np.ndarray, peak: float, bw: float,
                 eff_kv: float) -> np.ndarray:
    return p["t0_us"] * 1e-6 + np.maximum(flops / (peak * p["eff_max"] * q / (q + p["l_half"])), io / (bw * eff_kv))


def fit_prefill(points: list[dict[str, Any]], peak: float, bw: float, bpe: float, eff_kv: float) -> dict[str, Any]:
    """``points``: dicts with ``b, h, q, kv, d, kvh, t`` of causal attention forward (``t``)."""
    _need(points, 4, "prefill attention")
    b, h, q, kv, d, kvh, t = _cols(points, "b", "h", "q", "kv", "d", "kvh", "t")
    flops, io, _ = attention_flops_bytes(b, h, q, kv, d, kvh, bpe)
    names = ("eff_max", "l_half", "t0_us")

    def unpack(x: np.ndarray) -> dict[str, float]:
        return dict(zip(names, np.exp(x), strict=True))

    def residual(x: np.ndarray) -> np.ndarray:
        return np.log(prefill_time(unpack(x), flops, io, q, peak, bw, eff_kv)) - np.log(t)

    best = float(np.max(flops / t / peak))
    t0 = max(float(np.min(t)) * 0.5e6, 0.01)
    p = unpack(_least_squares(residual, [np.log([best * 1.2, lh, t0]) for lh in (16.0, 256.0)],
                              np.log([1e-4, 1e-2, 1e-3]), np.log([EFF_MAX_BOUND, 1e6, 1e6])))
    pred = prefill_time(p, flops, io, q, peak, bw, eff_kv)
    return {**{k: round(float(v), 5) for k, v in p.items()}, "peak_dtype": "bf16", **ape_stats(pred, t)}


def attention_backward_derate(points: list[dict[str, Any]], curve: dict[str, float], peak: float, bw: float,
                              bpe: float, eff_kv: float, bwd_factor: float) -> dict[str, Any]:
    """Training attention (forward + backward, measured ``t_fb``) against ``(1 + bwd_factor)`` x the fitted
    forward curve: the median ratio is the ``attention_derate`` the training estimator multiplies by."""
    pts = [p for p in points if p.get("t_fb")]
    _need(pts, 2, "attention forward+backward")
    b, h, q, kv, d, kvh, tfb = _cols(pts, "b", "h", "q", "kv", "d", "kvh", "t_fb")
    flops, io, _ = attention_flops_bytes(b, h, q, kv, d, kvh, bpe)
    base = (1.0 + bwd_factor) * prefill_time(curve, flops, io, q, peak, bw, eff_kv)
    # ratio of sums: weighted by time, as attention time adds up in a step (small shapes' fixed costs, which one
    # factor cannot follow, matter little there)
    derate = float(np.sum(tfb) / np.sum(base))
    return {"attention_derate": round(derate, 4), "method": "sum of measured / sum of (1 + bwd) x forward curve",
            **ape_stats(derate * base, tfb)}


# ------------------------------------------------------------------ collectives
BUS_FACTOR: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "send_recv": lambda n: 1.0,
}


def fit_collectives(points: list[dict[str, Any]], link_bw: float | None = None) -> tuple[dict[str, Any], float, float]:
    """``points``: dicts with ``op, bytes, ranks, t``. Returns (scaleup section, link bandwidth B/s, latency s).
    ``eff`` is relative to ``link_bw`` (the spec-sheet link, so the curves apply to catalog clusters built on it);
    without one, to the best bus bandwidth measured (every ``eff`` <= 1). The latency is the smallest ``alpha``."""
    _need(points, 4, "collectives")
    bus = np.array([BUS_FACTOR[p["op"]](int(p["ranks"])) * float(p["bytes"]) for p in points])
    t = np.array([float(p["t"]) for p in points])
    link = float(link_bw) if link_bw else float(np.max(bus / t))
    out: dict[str, Any] = {}
    for op in sorted({p["op"] for p in points}):
        sel = np.array([p["op"] == op for p in points])
        if sel.sum() < 2:
            continue
        bo, to = bus[sel], t[sel]

        def residual(x: np.ndarray, bo: np.ndarray = bo, to: np.ndarray = to) -> np.ndarray:
            return np.log(np.exp(x[0]) + bo / (np.exp(x[1]) * link)) - np.log(to)

        x = _least_squares(residual, [np.log([max(float(np.min(to)) * 0.8, 1e-7), 0.5])],
                           np.log([1e-8, 1e-4]), np.log([1.0, 50.0]))
        alpha, eff = float(np.exp(x[0])), float(np.exp(x[1]))
        pred = alpha + bo / (eff * link)
        out[op] = {"alpha_us": round(alpha * 1e6, 3), "eff": round(eff, 4), "link_gbs": [round(link / 1e9, 4)],
                   "ranks_fitted": sorted({int(p["ranks"]) for p in points if p["op"] == op}), **ape_stats(pred, to)}
    if not out:
        raise CalibrationError("collectives: no operation has two or more message sizes")
    latency = min(v["alpha_us"] for v in out.values()) * 1e-6
    return out, link, latency
