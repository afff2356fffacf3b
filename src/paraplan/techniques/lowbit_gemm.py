"""Low-bit weight GEMM / GEMV by roofline, at any weight and activation bit width.

Three papers, one mechanism:

* **MARLIN** -- Frantar, Castro, Chen, Hoefler, Alistarh, "MARLIN: Mixed-Precision Auto-Regressive Parallel
  Inference on Large Language Models", PPoPP'25, arXiv 2408.11743 (code: IST-DASLab/marlin). An FP16 x INT4
  kernel that keeps the near-ideal 16/4.125 ~ 3.87x speedup over FP16 up to batch 16-32 and decays after it.
* **Tilus** -- Ding et al., "Tilus: A Tile-Level GPGPU Programming Language for Low-Precision Computation",
  ASPLOS'26, arXiv 2504.12984. Arbitrary 1-8 bit weights; its speedups over Triton/Ladder/QuantLLM/Marlin
  are implementation claims, so only the bound is modelled here.
* **bipolar-INT / APT-LLM** -- Ma, Fang, Shao, Wang, "Efficient Arbitrary Precision Acceleration for Large
  Language Models on GPU Tensor Cores", arXiv 2409.17870 (extended as APT-LLM, arXiv 2508.19087). A p-bit x
  q-bit matmul runs as p*q binary (1-bit) tensor-core MMAs on {-1,+1} bit planes.

The bound of ``Y[m,n] = X[m,k] W[n,k]^T`` with ``b_w``-bit weights (``g``-element groups with a
``scale_bits`` scale each) and ``b_a``-bit activations:

    bytes  = n k (b_w + scale_bits/g)/8 + m k b_a/8 + m n 2          (weights, activations, fp16 output)
    T_roof = max(bytes / BW, 2 m n k / R)                            R: the compute rate of the dtype path

so the speedup over FP16 approaches ``16 / (b_w + scale_bits/g)`` while the low-bit GEMM is memory-bound
(``m < R b_eff / (16 BW)``) and falls toward 1 (or toward ``R_lowbit / R_fp16``) after it. For bit-serial
tensor-core kernels ``R = R_1bit / (p q)``.

:func:`kernel_time` is paraplan's own prediction (the fitted GEMM curve of :mod:`paraplan.cost.efficiency` with
the weight stream scaled to its width, as :mod:`paraplan.infer` prices weight-only GEMMs); :func:`roofline_time`
is the bound (spec peaks). :func:`measured_fraction_of_bound` reads measured kernel rows (the
``shared/data/kernels/gemm.csv`` layout) and reports each as a fraction of the bound.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import get_accelerator, get_cluster, get_model
from ..claims import ClaimValue
from ..cost.efficiency import gemm_time
from ..infer import InferenceConfig, _scaled_bw, estimate_inference
from ..specs import AcceleratorSpec

ArrayLike = np.ndarray | float | int

__all__ = [
    "effective_weight_bits", "roofline_time", "roofline_speedup", "knee_batch", "kernel_time", "kernel_speedup",
    "bitserial_rate", "bitserial_roofline_time", "measured_fraction_of_bound", "load_kernel_rows",
    "marlin_peak_speedup", "marlin_knee_batch", "marlin_end_to_end_speedup", "tilus_headroom_over_marlin",
    "tilus_bound_speedup", "apt_matmul_speedup_bound", "apt_inference_speedup_bound",
]


def _acc(accelerator: str | AcceleratorSpec) -> AcceleratorSpec:
    return accelerator if isinstance(accelerator, AcceleratorSpec) else get_accelerator(accelerator)


def effective_weight_bits(weight_bits: ArrayLike, group_size: int | None = 128, scale_bits: float = 16.0) -> ArrayLike:
    """Stored bits per weight: ``b + scale_bits / g`` (no metadata when ``group_size`` is None or 16-bit)."""
    b = np.asarray(weight_bits, dtype=float)
    if group_size is None:
        return b
    return np.where(b >= 16.0, b, b + scale_bits / float(group_size))


def roofline_time(accelerator: str | AcceleratorSpec, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
                  weight_bits: ArrayLike = 16.0, group_size: int | None = 128, scale_bits: float = 16.0,
                  act_bits: float = 16.0, compute_dtype: str = "bf16", rate: float | None = None) -> np.ndarray:
    """Roofline seconds of ``Y[m,n] = X[m,k] W[n,k]^T`` (broadcasts): ``max(bytes / BW, 2mnk / R)`` with the
    spec-sheet bandwidth and the ``compute_dtype`` peak (or an explicit ``rate`` in FLOP/s)."""
    acc = _acc(accelerator)
    m, n, k = (np.asarray(x, dtype=float) for x in (m, n, k))
    bw = effective_weight_bits(weight_bits, group_size, scale_bits)
    nbytes = n * k * bw / 8.0 + m * k * act_bits / 8.0 + m * n * 2.0
    r = acc.peak(compute_dtype) if rate is None else rate
    return np.maximum(nbytes / acc.memory_bw, 2.0 * m * n * k / r)


def roofline_speedup(accelerator: str | AcceleratorSpec, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
                     weight_bits: ArrayLike = 4.0, group_size: int | None = 128,
                     scale_bits: float = 16.0) -> np.ndarray:
    """Bound on the speedup of a weight-only ``weight_bits`` GEMM (16-bit activations) over FP16."""
    fp16 = roofline_time(accelerator, m, n, k, weight_bits=16.0, group_size=None)
    low = roofline_time(accelerator, m, n, k, weight_bits=weight_bits, group_size=group_size, scale_bits=scale_bits)
    return fp16 / low


def knee_batch(accelerator: str | AcceleratorSpec, n: float, k: float, *, weight_bits: float = 4.0,
               group_size: int | None = 128, frac: float = 0.9, max_batch: int = 1 << 14) -> int:
    """Largest power-of-two batch whose bound speedup is still ``>= frac`` of the batch-1 speedup."""
    ms = 2.0 ** np.arange(0, int(math.log2(max_batch)) + 1)
    s = roofline_speedup(accelerator, ms, n, k, weight_bits=weight_bits, group_size=group_size)
    ok = ms[s >= frac * s[0]]
    return int(ok.max())


def kernel_time(accelerator: str | AcceleratorSpec, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
                weight_bits: float = 4.0, group_size: int | None = 128, scale_bits: int | None = None,
                layer: str = "curves") -> np.ndarray:
    """paraplan's predicted time of a weight-only GEMM: the fitted 16-bit GEMM curve with the weight stream at its
    stored width (exactly how :mod:`paraplan.infer` prices weight-only quantized GEMMs)."""
    acc = _acc(accelerator)
    cfg = InferenceConfig(weight_bits=weight_bits, group_size=group_size if weight_bits < 16 else None,
                          scale_bits=scale_bits)
    return gemm_time(_scaled_bw(acc, 2.0 / cfg.weight_bytes), "bf16", m, n, k, layer=layer)  # type: ignore[arg-type]


def kernel_speedup(accelerator: str | AcceleratorSpec, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
                   weight_bits: float = 4.0, group_size: int | None = 128, layer: str = "curves") -> np.ndarray:
    """paraplan's predicted weight-only speedup over FP16 (fitted curves, not the bound)."""
    return kernel_time(accelerator, m, n, k, weight_bits=16.0, group_size=None, layer=layer) / kernel_time(
        accelerator, m, n, k, weight_bits=weight_bits, group_size=group_size, layer=layer)


# ----------------------------------------------------------------------- bit-serial (bipolar-INT / APT)
def bitserial_rate(int1_ops: float, w_bits: ArrayLike, a_bits: ArrayLike) -> np.ndarray:
    """Effective MAC-pair rate (FLOP/s) of a ``a_bits x w_bits`` matmul run as ``p q`` binary MMAs."""
    return int1_ops / (np.asarray(w_bits, dtype=float) * np.asarray(a_bits, dtype=float))


def bitserial_roofline_time(accelerator: str | AcceleratorSpec, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
                            w_bits: float, a_bits: float, int1_ops: float) -> np.ndarray:
    """Roofline of a bit-serial ``a_bits x w_bits`` GEMM (weights and activations packed at their widths)."""
    return roofline_time(accelerator, m, n, k, weight_bits=w_bits, group_size=None, act_bits=a_bits,
                         rate=float(bitserial_rate(int1_ops, w_bits, a_bits)))


# ----------------------------------------------------------------------- measured kernels
def load_kernel_rows(path: str | Path, *, system: str | None = None,
                     dtypes: Iterable[str] = ("int4_wo", "int8_wo")) -> list[dict[str, Any]]:
    """Rows of a kernel-timing CSV (``source_id,system,framework,kernel,dtype,m,n,k,time_us``) of the given
    weight-only dtypes (and system)."""
    want = set(dtypes)
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["dtype"] in want and (system is None or r["system"] == system):
                out.append({"system": r["system"], "dtype": r["dtype"], "m": float(r["m"]), "n": float(r["n"]),
                            "k": float(r["k"]), "time_us": float(r["time_us"])})
    return out


_WO_BITS = {"int4_wo": 4.0, "int8_wo": 8.0, "bfloat16": 16.0}


def measured_fraction_of_bound(accelerator: str | AcceleratorSpec, rows: Iterable[dict[str, Any]], *,
                               group_size: int | None = 128) -> dict[str, np.ndarray]:
    """Each measured weight-only GEMM as a fraction of its roofline bound (``T_roof / T_measured``, 1 = at the
    bound). Returns arrays ``m``, ``n``, ``k``, ``bits``, ``fraction``."""
    rs = list(rows)
    m = np.array([r["m"] for r in rs])
    n = np.array([r["n"] for r in rs])
    k = np.array([r["k"] for r in rs])
    bits = np.array([_WO_BITS[r["dtype"]] for r in rs])
    t = np.array([r["time_us"] for r in rs]) * 1e-6
    roof = roofline_time(accelerator, m, n, k, weight_bits=bits, group_size=group_size)
    return {"m": m, "n": n, "k": k, "bits": bits, "fraction": roof / t}


# ----------------------------------------------------------------------- MARLIN claims
def marlin_peak_speedup(accelerator: str, m: int, n: int, k: int, group_size: int = 128) -> ClaimValue:
    """Bound on the FP16 x INT4 speedup at batch ``m`` (the paper claims Marlin sits at it up to batch 16-32)."""
    s = float(roofline_speedup(accelerator, m, n, k, weight_bits=4.0, group_size=group_size))
    pred = float(kernel_speedup(accelerator, m, n, k, weight_bits=4.0, group_size=group_size))
    return ClaimValue(s, {"bound_speedup": s, "paraplan_fitted_curve_speedup": pred,
                          "effective_bits": float(effective_weight_bits(4.0, group_size))})


def marlin_knee_batch(accelerator: str, n: int, k: int, group_size: int = 128, frac: float = 0.9) -> ClaimValue:
    """Largest power-of-two batch at which the INT4 bound speedup is within ``frac`` of its batch-1 value."""
    kb = knee_batch(accelerator, n, k, weight_bits=4.0, group_size=group_size, frac=frac)
    ms = [1, 8, 16, 32, 64, 128, 256]
    curve = roofline_speedup(accelerator, np.array(ms, dtype=float), n, k, weight_bits=4.0, group_size=group_size)
    return ClaimValue(float(kb), {"speedup_by_batch": dict(zip(ms, map(float, curve), strict=True))})


def marlin_end_to_end_speedup(model: str, accelerator: str, batch: int, input_len: int, output_len: int,
                              group_size: int = 128) -> ClaimValue:
    """TPOT speedup of INT4 (g128) weights over FP16 from :func:`paraplan.infer.estimate_inference`."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:1")
    fp = estimate_inference(m, c, InferenceConfig(), batch=batch, input_len=input_len, output_len=output_len)
    q = estimate_inference(m, c, InferenceConfig(weight_bits=4.0, group_size=group_size), batch=batch,
                           input_len=input_len, output_len=output_len)
    return ClaimValue(fp.tpot_s / q.tpot_s, {"tpot_fp16_s": fp.tpot_s, "tpot_int4_s": q.tpot_s})


# ----------------------------------------------------------------------- Tilus claims
def tilus_headroom_over_marlin(accelerator: str, m: int, n: int, k: int, marlin_fraction_of_bound: float,
                               group_size: int = 128) -> ClaimValue:
    """Most any INT4 kernel can gain over Marlin at this shape: ``bound / Marlin = 1 / fraction``; the roofline
    allows the paper's 1.03x only if this is at least 1.03."""
    bound = float(roofline_speedup(accelerator, m, n, k, weight_bits=4.0, group_size=group_size))
    return ClaimValue(1.0 / marlin_fraction_of_bound, {"bound_speedup_vs_fp16": bound,
                                                       "marlin_speedup_vs_fp16": bound * marlin_fraction_of_bound})


def tilus_bound_speedup(accelerator: str, m: int, n: int, k: int, weight_bits: float,
                        group_size: int = 128) -> ClaimValue:
    """Bound speedup over FP16 of a ``weight_bits`` GEMV/GEMM (any width 1-8)."""
    s = float(roofline_speedup(accelerator, m, n, k, weight_bits=weight_bits, group_size=group_size))
    return ClaimValue(s, {"ideal_16_over_bits": 16.0 / float(effective_weight_bits(weight_bits, group_size))})


# ----------------------------------------------------------------------- bipolar-INT / APT claims
def apt_matmul_speedup_bound(accelerator: str, m: int, n: int, k: int, w_bits: int, a_bits: int, int1_ops: float,
                             baseline_bits: int = 4, baseline_ops: float | None = None) -> ClaimValue:
    """Bound on a bit-serial ``a_bits x w_bits`` matmul's speedup over a ``baseline_bits`` x ``baseline_bits``
    CUTLASS integer GEMM (its own tensor-core rate ``baseline_ops``), both at their rooflines."""
    acc = get_accelerator(accelerator)
    ours = bitserial_roofline_time(acc, m, n, k, w_bits=w_bits, a_bits=a_bits, int1_ops=int1_ops)
    b_ops = baseline_ops if baseline_ops is not None else acc.peak(f"int{baseline_bits}")
    base = roofline_time(acc, m, n, k, weight_bits=baseline_bits, group_size=None, act_bits=baseline_bits,
                         rate=b_ops)
    return ClaimValue(float(base / ours), {"t_bitserial_s": float(ours), "t_baseline_s": float(base)})


def apt_inference_speedup_bound(model: str, accelerator: str, w_bits: int, a_bits: int, int1_ops: float,
                                batch: int = 1) -> ClaimValue:
    """Bound on the decode-step speedup over FP16 of a model whose weight GEMMs all run bit-serial at ``w_bits`` x
    ``a_bits`` (every linear layer of :func:`paraplan.cost.flops` shapes at batch ``batch``; attention and the
    rest not counted, so this overstates an end-to-end gain)."""
    from ..cost import flops as F

    mdl = get_model(model)
    acc = get_accelerator(accelerator)
    gemms = F.attention_gemms(mdl) + F.dense_ffn_gemms(mdl)
    t16 = sum(float(roofline_time(acc, batch, g.n, g.k, weight_bits=16.0, group_size=None)) for g in gemms)
    tq = sum(float(bitserial_roofline_time(acc, batch, g.n, g.k, w_bits=w_bits, a_bits=a_bits, int1_ops=int1_ops))
             for g in gemms)
    return ClaimValue(t16 / tq, {"fp16_layer_s": t16, "bitserial_layer_s": tq})
