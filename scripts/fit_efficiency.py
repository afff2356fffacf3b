#!/usr/bin/env python
"""Fit paraplan's efficiency curves from public, silicon-measured per-kernel timings.

Data: ``../shared/data/kernels`` (relative to the repository root; ``--data`` to change), i.e. the
ai-dynamo/aiconfigurator performance database (TensorRT-LLM module timings inside CUDA graphs,
nccl-tests collectives) and microsoft/vidur profiling data (PyTorch layer ops, torch.distributed
collectives). See that folder's README.md for provenance, licences and caveats.

Output: ``src/paraplan/catalog/curves/efficiency.yaml`` (``--out`` to change), read at run time by
:mod:`paraplan.cost.efficiency`. A few shared parameters are fitted per accelerator FAMILY and op kind,
never per row; each system is normalised by its own dense peak and DRAM bandwidth (catalog values when
:func:`paraplan.catalog.get_accelerator` resolves the system, else the documented table below).

Model forms (times in seconds; ``peak`` = dense FLOP/s for the dtype, ``bw`` = DRAM B/s):

* GEMM ``Y[m,n] = X[m,k] W[n,k]^T`` per family and dtype (bf16, fp8, fp8_block, fp4)::

      t = t0 + max(F / (peak * eff_c), bytes / (bw * eff_mem))
      F = 2 m n k,  bytes = (m k + n k + m n) * bytes_per_element
      eff_c = eff_max * s(m; m_half) * s(n; n_half) * s(k; k_half),  s(x; h) = x / (x + h)

  Parameters eff_max, m_half, n_half, k_half, eff_mem, t0 (one x_half per dimension: it clearly helps,
  see the fit report). Least squares on log time (scipy.optimize.least_squares, bounded, a few
  deterministic starting points, best cost kept), over all rows of the family/dtype; rows with
  2mnk >= 2^34 FLOP (the large GEMMs a training planner cares about) weigh 3x.
  bytes_per_element: bf16 2, fp8 / fp8_block 1, nvfp4 0.5 (block scales ignored).

* Attention prefill (causal flash attention, context phase, no cached tokens), per family and dtype::

      F = 2 * 2 * batch * heads * q_len^2 * head_dim / 2          (causal: half the score matrix)
      t = t0 + max(F / (peak * eff_max * q_len / (q_len + L_half)), kv_bytes / (bw * eff_kv))

  Parameters eff_max, L_half, t0 (least squares on log time). The memory floor uses eff_kv of the
  decode fit and is negligible for the measured rows; it keeps short-query calls bounded.
  bf16 rows are those with bf16 compute AND bf16 KV cache (bf16 compute with an fp8 KV cache runs
  noticeably faster in TRT-LLM and is left out); fp8 rows are the FP8 context-FMHA rows.

* Attention decode (1 new token per sequence), per family and KV-cache dtype::

      t = t0 + kv_bytes / (bw * eff_kv),  kv_bytes = 2 * batch * kv_len * kv_heads * head_dim * bytes

  with kv_len = kv_cached_len + 1. t0 = median time of rows with kv_bytes <= 1 MiB (launch floor);
  eff_kv by least squares on log time over rows with kv_bytes >= 256 MiB (larger than every L2 here;
  smaller footprints are partly served from L2 across graph replays and run faster than DRAM allows)
  and kv_len >= 512; (system, kv_heads) groups whose median implied bandwidth exceeds DRAM peak are
  dropped as cache-served (A100 GQA/MQA rows).

* Elementwise / norm ops (vidur_layer_ops.csv, fp16, A100-80GB -> ampere, H100 -> hopper)::

      t = t0 + bytes / (bw * eff_mem)

  Byte counts (2 bytes per element, N = num_tokens, H = n_embd, F = n_expanded_embd / tp,
  heads per GPU = n_head / tp and max(n_kv_head / tp, 1), d = n_embd / n_head):
  input_layernorm: read N H + write N H; add: read 2 N H + write N H; mlp_act (gated SiLU-and-mul):
  read 2 N F + write N F (non-gated: read N F + write N F); attn_rope: read + write of q and k,
  2 N (heads + kv_heads) d. eff_mem by least squares on log time, pooled over the four ops, on rows
  with >= 64 MiB moved; t0 = median time of rows with <= 1 MiB moved. Families without such data
  get eff_mem transferred from their decode eff_kv by the ampere/hopper ratio eff_mem / eff_kv
  (documented as "transferred", not fitted).

* Collectives (nccl-tests rows, fp16 buffers), per family and op::

      t = alpha + bus_bytes / (eff * link_bw)

  bus_bytes (nccl-tests convention, size = the nccl-tests "size"): all_reduce 2(n-1)/n size;
  all_gather, reduce_scatter, all_to_all (n-1)/n size. link_bw = the accelerator's per-direction
  scale-up bandwidth (NVLink), or its PCIe bandwidth for parts without NVLink. alpha = median time of
  messages <= 16 KiB (pooled over 2/4/8 ranks); eff = median of bus_bytes / (link_bw (t - alpha)) over
  messages >= 64 MiB (pooled over rank counts; per-rank-count values are stored for information).
  ada uses its 2-rank rows only (the L40S host's 4/8-rank PCIe numbers reflect that server); oneCCL
  all_gather sizes (b60) are per-rank inputs and are multiplied by n_ranks.
  send_recv (scale-up, ampere/hopper) from the Vidur DGX single-node rows (bus_bytes = size).
  Scale-out: Vidur 2-node rows, normalised by an ASSUMED per-GPU NIC bandwidth (DGX A100: 200 Gb/s
  HDR = 25 GB/s; DGX H100: 400 Gb/s NDR = 50 GB/s; the source does not state the fabric).

Families without data get ``default``: the per-parameter median of the fitted datacenter NVIDIA
families (ampere, hopper, blackwell) -- a spec-sheet-style assumption, not a fit.

Run: ``python scripts/fit_efficiency.py`` (about 25 s on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = "../shared/data/kernels"
DEFAULT_OUT = "src/paraplan/catalog/curves/efficiency.yaml"
MAX_ROWS = 60_000  # per fit; deterministic subsample above this
MIB = 2.0**20
#: decode eff_kv is fitted on KV footprints >= 256 MiB with contexts >= this many tokens: shorter
#: contexts at huge batch pay a per-sequence cost the memory-bound form does not model.
DECODE_MIN_KV = 512
#: collective rank counts to fit per family (others: all). The L40S host's 4/8-rank NCCL numbers
#: (1-5 GB/s bus bandwidth) reflect that server's PCIe topology, not the GPU (data README), so ada uses
#: its 2-rank rows; the per-rank-count values are stored anyway.
COLL_RANKS = {"ada": (2,)}
#: GEMM rows with 2mnk >= 2^34 FLOP (the planner-relevant large GEMMs) weigh this much in the fit;
#: with equal weights the many medium shapes pull Blackwell's large-shape fit ~10% optimistic.
GEMM_LARGE_FLOP = 2.0**34
GEMM_LARGE_WEIGHT = 3.0

# ----------------------------------------------------------------------------------- systems
#: data-set system label -> (family, catalog names to try).
SYSTEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "a100_sxm": ("ampere", ("a100-sxm-80gb",)),
    "h100_sxm": ("hopper", ("h100-sxm",)),
    "h200_sxm": ("hopper", ("h200-sxm", "h200")),
    "b200_sxm": ("blackwell", ("b200",)),
    "b300_sxm": ("blackwell", ("b300-sxm", "b300")),
    "gb200": ("blackwell", ("gb200",)),
    "gb300": ("blackwell", ("gb300",)),
    "l40s": ("ada", ("l40s",)),
    "rtx_pro_6000_server": ("blackwell_gddr", ("rtx-pro-6000-server", "rtx-pro-6000")),
    "b60": ("xe2", ("arc-pro-b60", "b60")),
}

#: Fallback spec table (used only where the catalog does not resolve a system or lacks a dtype).
#: Dense (no sparsity) TFLOP/s, DRAM GB/s, per-direction scale-up GB/s (NVLink, else PCIe).
#: Sources: NVIDIA A100/H100/H200 datasheets; HGX/DGX B200, B300 and GB200/GB300 NVL72 spec pages
#: (per-GPU dense = system sparse / 2 / GPUs: B300 FP4 dense ~13.5 PF, GB300 15 PF);
#: L40S datasheet (362 bf16, 733 fp8 dense, 864 GB/s, PCIe Gen4 x16);
#: RTX PRO 6000 Blackwell Server Edition (4000 AI TOPS FP4 sparse -> ~500 bf16 dense; 1.79 TB/s GDDR7
#: for the workstation card; PCIe Gen5 x16); Intel Arc Pro B60 (197 INT8 TOPS -> ~98 fp16 dense,
#: 456 GB/s, PCIe Gen5 x8; no fp8 matrix units, so fp8 = bf16 rate).
SPEC_TABLE: dict[str, dict[str, Any]] = {
    "a100_sxm": {"peak": {"bf16": 312}, "bw": 2039, "link": 300},
    "h100_sxm": {"peak": {"bf16": 989, "fp8": 1979}, "bw": 3350, "link": 450},
    "h200_sxm": {"peak": {"bf16": 989, "fp8": 1979}, "bw": 4800, "link": 450},
    "b200_sxm": {"peak": {"bf16": 2250, "fp8": 4500, "fp4": 9000}, "bw": 8000, "link": 900},
    "b300_sxm": {"peak": {"bf16": 2250, "fp8": 4500, "fp4": 13500}, "bw": 8000, "link": 900},
    "gb200": {"peak": {"bf16": 2500, "fp8": 5000, "fp4": 10000}, "bw": 8000, "link": 900},
    "gb300": {"peak": {"bf16": 2500, "fp8": 5000, "fp4": 15000}, "bw": 8000, "link": 900},
    "l40s": {"peak": {"bf16": 362, "fp8": 733}, "bw": 864, "link": 32},
    "rtx_pro_6000_server": {"peak": {"bf16": 500, "fp8": 1000, "fp4": 2000}, "bw": 1792, "link": 64},
    "b60": {"peak": {"bf16": 98, "fp8": 98}, "bw": 456, "link": 32},
}

#: data-set dtype -> (curve key, peak key, bytes per element)
GEMM_DTYPES = {"bfloat16": ("bf16", "bf16", 2.0), "fp8": ("fp8", "fp8", 1.0),
               "fp8_block": ("fp8_block", "fp8", 1.0), "nvfp4": ("fp4", "fp4", 0.5)}
ATTN_DTYPES = {"bfloat16": ("bf16", "bf16", 2.0), "fp8": ("fp8", "fp8", 1.0)}
COLL_OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")
DATACENTER_FAMILIES = ("ampere", "hopper", "blackwell")
FAMILY_ORDER = ("ampere", "hopper", "blackwell", "ada", "blackwell_gddr", "xe2")

#: Vidur node types (collectives) and accelerators (layer ops) -> family / system for normalisation.
VIDUR_NODES = {"vidur_a100_dgx": ("ampere", "a100_sxm", 25.0), "vidur_h100_dgx": ("hopper", "h100_sxm", 50.0)}
VIDUR_ACCS = {"A100-80GB": ("ampere", "a100_sxm"), "H100": ("hopper", "h100_sxm")}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_specs() -> dict[str, dict[str, Any]]:
    """Per system: peak FLOP/s per dtype, DRAM B/s, link B/s, and where each number came from."""
    try:
        from paraplan.catalog import get_accelerator
    except Exception:  # pragma: no cover - paraplan not importable
        get_accelerator = None  # type: ignore[assignment]
    out: dict[str, dict[str, Any]] = {}
    for system, (family, names) in SYSTEMS.items():
        table = SPEC_TABLE[system]
        acc = None
        if get_accelerator is not None:
            for name in names:
                try:
                    cand = get_accelerator(name)
                except Exception:
                    continue
                # guard against alias collisions (e.g. 'b300' resolving to 'gb300')
                if _norm(cand.name).startswith(_norm(name)):
                    acc = cand
                    break
        peak: dict[str, float] = {}
        src: dict[str, str] = {}
        for key, tv in table["peak"].items():
            cat = None
            if acc is not None:
                cat = acc.peak_flops.get(key) or (acc.peak_flops.get("fp16") if key == "bf16" else None)
            peak[key] = float(cat) if cat else float(tv) * 1e12
            src[key] = f"catalog:{acc.name}" if cat else "table"
        bw = float(acc.memory_bw) if acc is not None else table["bw"] * 1e9
        link = 0.0
        if acc is not None:
            link = float(acc.scaleup_bw or acc.pcie_bw)
        if not link:
            link = table["link"] * 1e9
        out[system] = {
            "family": family, "peak": peak, "bw": bw, "link": link,
            "source": f"catalog:{acc.name}" if acc is not None else "table (not in catalog)",
            "peak_source": src,
            "catalog_family": acc.family if acc is not None else None,
        }
    return out


# ----------------------------------------------------------------------------------- data
def load_csv(path: Path, numeric: tuple[str, ...]) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    out: dict[str, np.ndarray] = {}
    for name, col in zip(header, cols, strict=True):
        if name in numeric:
            out[name] = np.array([float(x) if x else np.nan for x in col])
        else:
            out[name] = np.array(col)
    return out


def subsample(mask: np.ndarray, cap: int = MAX_ROWS) -> np.ndarray:
    idx = np.flatnonzero(mask)
    if idx.size > cap:
        idx = np.sort(np.random.default_rng(0).choice(idx, cap, replace=False))
    return idx


def ape_stats(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    ape = np.abs(pred / meas - 1.0) * 100.0
    return {"ape_median_pct": round(float(np.median(ape)), 1),
            "ape_p90_pct": round(float(np.percentile(ape, 90)), 1)}


def fit_log(model: Callable[[np.ndarray], np.ndarray], t: np.ndarray, starts: list[list[float]],
            lo: list[float], hi: list[float], weight: np.ndarray | None = None) -> np.ndarray:
    """Bounded (weighted) least squares on log time, parameters in log space; best of several starts."""
    lt = np.log(t)
    sw = np.ones_like(t) if weight is None else np.sqrt(weight)
    best = None
    for x0 in starts:
        x0 = np.clip(np.log(x0), np.log(lo) + 1e-9, np.log(hi) - 1e-9)
        r = least_squares(lambda p: (np.log(model(np.exp(p))) - lt) * sw, x0, bounds=(np.log(lo), np.log(hi)),
                          x_scale=1.0, max_nfev=400)
        if best is None or r.cost < best.cost:
            best = r
    assert best is not None
    return np.exp(best.x)


def sig(x: float, n: int = 4) -> float:
    return float(f"{x:.{n}g}")


# ----------------------------------------------------------------------------------- GEMM
#: bytes per activation element the module's quantize kernel moves before a per-tensor FP8 GEMM (read the
#: 16-bit input, write the FP8 copy): the kernel timings are module-level (../shared/data/kernels/README.md),
#: so the fit separates that pass from the GEMM itself (the block-scaled fp8 and nvfp4 fits get worse with the
#: term: their activation quantization is fused into the kernels, so they keep module-level curves)
QUANTIZE_READ_BYTES = 2.0


def quantize_bytes(key: str, bpe: float) -> float:
    return QUANTIZE_READ_BYTES + bpe if key == "fp8" else 0.0


def gemm_model(p: np.ndarray, m, n, k, peak, bw, bpe, qb: float = 0.0) -> np.ndarray:
    eff_max, mh, nh, kh, eff_mem, t0 = p
    eff_c = eff_max * m / (m + mh) * n / (n + nh) * k / (k + kh)
    quant = m * k * qb / (bw * eff_mem)
    return t0 + quant + np.maximum(2.0 * m * n * k / (peak * eff_c), (m * k + n * k + m * n) * bpe / (bw * eff_mem))


def fit_gemm(g: dict[str, np.ndarray], specs: dict, report: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fam in FAMILY_ORDER:
        systems = [s for s, v in specs.items() if v["family"] == fam]
        for ds_dtype, (key, peak_key, bpe) in GEMM_DTYPES.items():
            if fam == "xe2" and key != "bf16":
                continue  # Xe2 has no fp8 matrix units: the b60 fp8 path runs at the bf16 rate
            mask = np.isin(g["system"], systems) & (g["dtype"] == ds_dtype)
            if not mask.any():
                continue
            idx = subsample(mask)
            sysv = g["system"][idx]
            m, n, k, t = g["m"][idx], g["n"][idx], g["k"][idx], g["time_us"][idx] * 1e-6
            peak = np.array([specs[s]["peak"][peak_key] for s in sysv])
            bw = np.array([specs[s]["bw"] for s in sysv])
            starts = [[0.8, h, h, h, 0.8, t0] for h in (16.0, 128.0, 1024.0) for t0 in (2e-6, 10e-6)]
            weight = np.where(2.0 * m * n * k >= GEMM_LARGE_FLOP, GEMM_LARGE_WEIGHT, 1.0)
            qb = quantize_bytes(key, bpe)
            p = fit_log(lambda q: gemm_model(q, m, n, k, peak, bw, bpe, qb), t, starts,  # noqa: B023
                        lo=[0.05, 1.0, 1.0, 1.0, 0.05, 1e-7], hi=[1.0, 1e5, 1e5, 1e5, 1.0, 1e-4],
                        weight=weight)
            pred = gemm_model(p, m, n, k, peak, bw, bpe, qb)
            stats = ape_stats(pred, t)
            big = (m >= 2048) & (n >= 2048) & (k >= 2048)
            per_sys = {s: ape_stats(pred[sysv == s], t[sysv == s])["ape_median_pct"] for s in systems
                       if (sysv == s).any()}
            ref = 8192.0
            eff_ref = p[0] * (ref / (ref + p[1])) * (ref / (ref + p[2])) * (ref / (ref + p[3]))
            entry = {
                "eff_at_8192": sig(eff_ref, 3),
                "eff_max": sig(p[0]), "m_half": sig(p[1]), "n_half": sig(p[2]), "k_half": sig(p[3]),
                "eff_mem": sig(p[4]), "t0_us": sig(p[5] * 1e6), "bytes_per_element": bpe,
                **({"quantize_bytes": qb} if qb else {}),
                "peak_dtype": peak_key, "rows": int(idx.size), **stats,
                "ape_median_pct_large": ape_stats(pred[big], t[big])["ape_median_pct"],
                "ape_median_pct_by_system": per_sys,
            }
            out.setdefault(fam, {})[key] = entry
            report.append(f"  gemm {fam:15s} {key:9s} eff(8192^3)={eff_ref:.3f} eff_max={p[0]:.3f} "
                          f"halves(m,n,k)=({p[1]:.0f},{p[2]:.0f},{p[3]:.0f}) eff_mem={p[4]:.3f} "
                          f"t0={p[5] * 1e6:.2f}us  rows={idx.size:6d}  "
                          f"APE med {stats['ape_median_pct']:.1f}% p90 {stats['ape_p90_pct']:.1f}% "
                          f"(m,n,k>=2048: {entry['ape_median_pct_large']:.1f}%)")
    return out


def gemm_one_half_check(g: dict[str, np.ndarray], specs: dict, report: list[str]) -> None:
    """Report: does one shared x_half do as well as one per dimension? (hopper bf16, fp8)."""
    systems = [s for s, v in specs.items() if v["family"] == "hopper"]
    for ds_dtype in ("bfloat16", "fp8"):
        key, peak_key, bpe = GEMM_DTYPES[ds_dtype]
        idx = subsample(np.isin(g["system"], systems) & (g["dtype"] == ds_dtype))
        m, n, k, t = g["m"][idx], g["n"][idx], g["k"][idx], g["time_us"][idx] * 1e-6
        peak = np.array([specs[s]["peak"][peak_key] for s in g["system"][idx]])
        bw = np.array([specs[s]["bw"] for s in g["system"][idx]])

        def one(q, m=m, n=n, k=k, peak=peak, bw=bw, bpe=bpe):
            return gemm_model(np.array([q[0], q[1], q[1], q[1], q[2], q[3]]), m, n, k, peak, bw, bpe)

        starts = [[0.8, h, 0.8, t0] for h in (16.0, 128.0, 1024.0) for t0 in (2e-6, 10e-6)]
        weight = np.where(2.0 * m * n * k >= GEMM_LARGE_FLOP, GEMM_LARGE_WEIGHT, 1.0)
        p = fit_log(one, t, starts, lo=[0.05, 1.0, 0.05, 1e-7], hi=[1.0, 1e5, 1.0, 1e-4], weight=weight)
        s = ape_stats(one(p), t)
        report.append(f"  gemm hopper {key} with ONE shared x_half={p[1]:.0f}: "
                      f"APE med {s['ape_median_pct']:.1f}% p90 {s['ape_p90_pct']:.1f}% "
                      "(compare the per-dimension fit above)")


# ----------------------------------------------------------------------------------- attention
def kv_bytes(batch, kv_len, kv_heads, head_dim, bpe):
    return 2.0 * batch * kv_len * kv_heads * head_dim * bpe


def fit_attention(a: dict[str, np.ndarray], specs: dict, report: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fam in FAMILY_ORDER:
        systems = [s for s, v in specs.items() if v["family"] == fam]
        insys = np.isin(a["system"], systems)
        # ---- decode, per KV-cache dtype
        dec: dict[str, Any] = {}
        for ds_dtype, (key, _pk, bpe) in ATTN_DTYPES.items():
            mask = insys & (a["op"] == "attn_decode") & (a["kv_cache_dtype"] == ds_dtype)
            if not mask.any():
                continue
            idx = subsample(mask)
            sysv = a["system"][idx]
            t = a["time_us"][idx] * 1e-6
            by = kv_bytes(a["batch"][idx], a["kv_cached_len"][idx] + 1, a["kv_heads"][idx],
                          a["head_dim"][idx], bpe)
            bw = np.array([specs[s]["bw"] for s in sysv])
            kv_len = a["kv_cached_len"][idx] + 1
            small, large = by <= MIB, (by >= 256 * MIB) & (kv_len >= DECODE_MIN_KV)
            # drop (system, kv_heads) groups whose median implied bandwidth exceeds DRAM peak: those rows
            # are evidently served from cache (A100 GQA/MQA rows), not streamed from DRAM
            kvh = a["kv_heads"][idx]
            dropped = []
            for sname in np.unique(sysv[large]):
                for hv in np.unique(kvh[large & (sysv == sname)]):
                    grp = large & (sysv == sname) & (kvh == hv)
                    if np.median(by[grp] / (bw[grp] * t[grp])) > 1.0:
                        large &= ~grp
                        dropped.append(f"{sname} kv_heads={int(hv)}")
            if small.sum() < 5 or large.sum() < 5:
                continue
            t0 = float(np.median(t[small]))
            (eff,) = fit_log(lambda q: t0 + by[large] / (bw[large] * q[0]), t[large],  # noqa: B023
                             [[0.8]], lo=[0.02], hi=[1.2])
            pred = t0 + by / (bw * eff)
            st_large = ape_stats(pred[large], t[large])
            st_all = ape_stats(pred, t)
            dec[key] = {"eff_kv": sig(eff), "t0_us": sig(t0 * 1e6), "bytes_per_element": bpe,
                        "rows": int(idx.size), "rows_fit_eff": int(large.sum()), **st_large,
                        "ape_median_pct_all_rows": st_all["ape_median_pct"]}
            if dropped:
                dec[key]["excluded_above_dram_peak"] = dropped
                report.append(f"  attn decode  {fam:15s} kv={key:4s} excluded (implied bw > DRAM peak): "
                              f"{dropped}")
            report.append(f"  attn decode  {fam:15s} kv={key:4s} eff_kv={eff:.3f} t0={t0 * 1e6:.1f}us  "
                          f"APE (>=256MiB, kv>={DECODE_MIN_KV}) med {st_large['ape_median_pct']:.1f}% "
                          f"p90 {st_large['ape_p90_pct']:.1f}%"
                          f"  (all rows med {st_all['ape_median_pct']:.1f}%, L2 makes small ones faster)")
        # ---- prefill, per compute dtype
        pre: dict[str, Any] = {}
        eff_kv_fam = dec.get("bf16", {}).get("eff_kv", 0.8)
        for ds_dtype, (key, peak_key, bpe) in ATTN_DTYPES.items():
            mask = insys & (a["op"] == "attn_prefill") & (a["dtype"] == ds_dtype) & (a["q_len"] > 1)
            if ds_dtype == "bfloat16":
                mask &= a["kv_cache_dtype"] == "bfloat16"
            if not mask.any():
                continue
            idx = subsample(mask)
            sysv = a["system"][idx]
            t = a["time_us"][idx] * 1e-6
            b, h, q, d, kvh = (a[c][idx] for c in ("batch", "heads", "q_len", "head_dim", "kv_heads"))
            flops = 2.0 * 2.0 * b * h * q * q * d / 2.0
            mem = (kv_bytes(b, q, kvh, d, bpe) + 2.0 * b * q * h * d * bpe)
            peak = np.array([specs[s]["peak"][peak_key] for s in sysv])
            bw = np.array([specs[s]["bw"] for s in sysv])

            def model(p, flops=flops, q=q, peak=peak, mem=mem, bw=bw, eff_kv_fam=eff_kv_fam):
                eff_max, lh, t0 = p
                return t0 + np.maximum(flops / (peak * eff_max * q / (q + lh)), mem / (bw * eff_kv_fam))

            starts = [[0.7, lh, t0] for lh in (256.0, 2048.0) for t0 in (5e-6, 20e-6)]
            p = fit_log(model, t, starts, lo=[0.05, 1.0, 1e-7], hi=[1.0, 1e6, 1e-3])
            pred = model(p)
            st = ape_stats(pred, t)
            big = q >= 4096
            per_sys = {s: ape_stats(pred[sysv == s], t[sysv == s])["ape_median_pct"] for s in systems
                       if (sysv == s).any()}
            pre[key] = {"eff_max": sig(p[0]), "l_half": sig(p[1]), "t0_us": sig(p[2] * 1e6),
                        "peak_dtype": peak_key, "rows": int(idx.size), **st,
                        "ape_median_pct_large": ape_stats(pred[big], t[big])["ape_median_pct"],
                        "ape_median_pct_by_system": per_sys}
            report.append(f"  attn prefill {fam:15s} {key:9s} eff_max={p[0]:.3f} L_half={p[1]:.0f} "
                          f"t0={p[2] * 1e6:.1f}us  rows={idx.size:6d}  APE med {st['ape_median_pct']:.1f}% "
                          f"p90 {st['ape_p90_pct']:.1f}% "
                          f"(q_len>=4096: {pre[key]['ape_median_pct_large']:.1f}%)")
        if pre or dec:
            out[fam] = {"prefill": pre, "decode": dec}
    return out


# ----------------------------------------------------------------------------------- memory
VIDUR_MEM_OPS = ("input_layernorm", "mlp_act", "add", "attn_rope")


def vidur_op_bytes(v: dict[str, np.ndarray]) -> np.ndarray:
    N, H, tp = v["num_tokens"], v["n_embd"], v["tp"]
    F = v["n_expanded_embd"] / tp
    gated = np.char.lower(v["use_gated_mlp"].astype(str)) == "true"
    d = H / v["n_head"]
    heads = v["n_head"] / tp + np.maximum(v["n_kv_head"] / tp, 1.0)
    op = v["op"]
    elems = np.select(
        [op == "input_layernorm", op == "add", op == "mlp_act", op == "attn_rope"],
        [2 * N * H, 3 * N * H, np.where(gated, 3 * N * F, 2 * N * F), 2 * N * heads * d],
        default=np.nan,
    )
    return elems * 2.0


def fit_memory(v: dict[str, np.ndarray], specs: dict, report: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    by_all = vidur_op_bytes(v)
    t_all = v["time_us_median"] * 1e-6
    for acc, (fam, system) in VIDUR_ACCS.items():
        mask = (v["accelerator"] == acc) & np.isin(v["op"], VIDUR_MEM_OPS)
        bw = specs[system]["bw"]
        by, t, op = by_all[mask], t_all[mask], v["op"][mask]
        small, large = by <= MIB, by >= 64 * MIB
        t0 = float(np.median(t[small]))
        (eff,) = fit_log(lambda q: t0 + by[large] / (bw * q[0]), t[large], [[0.5]],  # noqa: B023
                         lo=[0.02], hi=[1.2])
        st = ape_stats(t0 + by[large] / (bw * eff), t[large])
        by_op = {}
        for o in VIDUR_MEM_OPS:
            s = large & (op == o)
            by_op[o] = sig(float(np.median(by[s] / (bw * np.maximum(t[s] - t0, 1e-9)))), 3)
        out[fam] = {"eff": sig(eff), "t0_us": sig(t0 * 1e6), "source": f"fitted: vidur {acc} fp16 layer ops",
                    "rows": int(mask.sum()), "rows_fit_eff": int(large.sum()), **st, "eff_by_op": by_op}
        report.append(f"  memory       {fam:15s} eff={eff:.3f} t0={t0 * 1e6:.1f}us rows={large.sum()} "
                      f"APE med {st['ape_median_pct']:.1f}% p90 {st['ape_p90_pct']:.1f}%  by op {by_op}")
    return out


def vidur_gemm_check(v: dict[str, np.ndarray], specs: dict, gemm: dict, report: list[str]) -> dict[str, Any]:
    """Cross-source check: the TRT-LLM-fitted bf16 curves against Vidur's PyTorch fp16 projection GEMMs."""
    res: dict[str, Any] = {}
    for acc, (fam, system) in VIDUR_ACCS.items():
        mask = (v["accelerator"] == acc) & ~np.isnan(v["gemm_m_derived"])
        c = gemm[fam]["bf16"]
        p = np.array([c["eff_max"], c["m_half"], c["n_half"], c["k_half"], c["eff_mem"], c["t0_us"] * 1e-6])
        m, n, k = v["gemm_m_derived"][mask], v["gemm_n_derived"][mask], v["gemm_k_derived"][mask]
        t = v["time_us_median"][mask] * 1e-6
        pred = gemm_model(p, m, n, k, specs[system]["peak"]["bf16"], specs[system]["bw"], 2.0)
        st = ape_stats(pred, t)
        big = m * n * k >= 2**33
        bias = float(np.median(pred[big] / t[big]))
        res[fam] = {**st, "rows": int(mask.sum()), "median_pred_over_meas_large": round(bias, 3)}
        report.append(f"  check gemm {fam} bf16 curve vs vidur {acc} fp16 projections: APE med "
                      f"{st['ape_median_pct']:.1f}% p90 {st['ape_p90_pct']:.1f}%, large (mnk>=2^33) "
                      f"pred/meas median {bias:.3f}")
    return res


# ----------------------------------------------------------------------------------- collectives
def bus_factor(op: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.where(op == "all_reduce", 2.0 * (n - 1) / n, np.where(op == "send_recv", 1.0, (n - 1) / n))


def _alpha_eff(t: np.ndarray, size: np.ndarray, bus: np.ndarray, link: np.ndarray | float,
               small_max: float = 16384, large_min: float = 64 * MIB) -> tuple[float, float, dict]:
    small, large = size <= small_max, size >= large_min
    link = np.broadcast_to(np.asarray(link, dtype=float), t.shape)
    alpha = float(np.median(t[small]))
    eff = float(np.median(bus[large] / (link[large] * np.maximum(t[large] - alpha, 1e-9))))
    pred = alpha + bus / (link * eff)
    return alpha, eff, ape_stats(pred, t)


def fit_collectives(c: dict[str, np.ndarray], specs: dict, report: list[str]) -> tuple[dict, dict]:
    out: dict[str, dict[str, Any]] = {}
    n_all = c["n_ranks"]
    # oneCCL's all_gather "size" is evidently the per-rank input (bus bandwidth x n_ranks matches its
    # all_reduce / reduce_scatter at 2 and 4 ranks), unlike nccl-tests' gathered output: convert it.
    size_all = np.where((c["library"] == "oneccl") & (c["op"] == "all_gather"), c["message_bytes"] * n_all,
                        c["message_bytes"])
    bus_all = size_all * bus_factor(c["op"], n_all)
    base = np.isin(c["library"], ("nccl", "oneccl")) & (c["dtype"] == "half") & (c["n_nodes"] == 1)
    for fam in FAMILY_ORDER:
        systems = [s for s, v in specs.items() if v["family"] == fam]
        for op in COLL_OPS:
            mask = base & np.isin(c["system"], systems) & (c["op"] == op)
            all_ranks = mask.copy()
            if fam in COLL_RANKS:
                mask &= np.isin(n_all, COLL_RANKS[fam])
            if mask.sum() < 10:
                continue
            t = c["time_us"][mask] * 1e-6
            size, bus, n = size_all[mask], bus_all[mask], n_all[mask]
            link = np.array([specs[s]["link"] for s in c["system"][mask]])
            alpha, eff, st = _alpha_eff(t, size, bus, link)
            eff_by_ranks, alpha_by_ranks = {}, {}
            n_a = n_all[all_ranks]
            link_a = np.array([specs[s]["link"] for s in c["system"][all_ranks]])
            for r in (int(x) for x in np.unique(n_a)):
                s = n_a == r
                a_r, e_r, _ = _alpha_eff(c["time_us"][all_ranks][s] * 1e-6, size_all[all_ranks][s],
                                         bus_all[all_ranks][s], link_a[s])
                eff_by_ranks[r], alpha_by_ranks[r] = sig(e_r, 3), sig(a_r * 1e6, 3)
            links = sorted({round(float(x) / 1e9) for x in link})
            out.setdefault(fam, {})[op] = {
                "alpha_us": sig(alpha * 1e6), "eff": sig(eff), "link_gbs": links, "rows": int(mask.sum()),
                "ranks_fitted": [int(x) for x in np.unique(n)],
                **st, "eff_by_ranks": eff_by_ranks, "alpha_us_by_ranks": alpha_by_ranks,
            }
            report.append(f"  coll scaleup {fam:15s} {op:14s} alpha={alpha * 1e6:5.1f}us eff={eff:.3f} "
                          f"(link {links} GB/s; by ranks {eff_by_ranks})  "
                          f"APE med {st['ape_median_pct']:.1f}% p90 {st['ape_p90_pct']:.1f}%")
    # ---- Vidur torch.distributed rows: single-node send_recv (scale-up), 2-node (scale-out)
    vid = np.char.startswith(c["system"].astype(str), "vidur_") & (c["time_stat"] == "median")
    scaleout: dict[str, Any] = {}
    for node, (fam, system, nic_gbs) in VIDUR_NODES.items():
        link = specs[system]["link"]
        m1 = vid & (c["system"] == node) & (c["op"] == "send_recv") & (c["n_nodes"] == 1)
        if m1.sum() >= 10:
            alpha, eff, st = _alpha_eff(c["time_us"][m1] * 1e-6, c["message_bytes"][m1], bus_all[m1], link,
                                        small_max=16384, large_min=32 * MIB)
            out.setdefault(fam, {})["send_recv"] = {
                "alpha_us": sig(alpha * 1e6), "eff": sig(eff), "link_gbs": [round(link / 1e9)],
                "rows": int(m1.sum()), **st, "source": f"vidur {node} torch.distributed send_recv, 1 node"}
            report.append(f"  coll scaleup {fam:15s} send_recv      alpha={alpha * 1e6:5.1f}us eff={eff:.3f} "
                          f"(vidur {node})  APE med {st['ape_median_pct']:.1f}%")
        for op, ranks in (("all_reduce", 16), ("send_recv", 2)):
            m2 = vid & (c["system"] == node) & (c["op"] == op) & (c["n_nodes"] == 2) & (c["n_ranks"] == ranks)
            if m2.sum() < 10:
                continue
            alpha, eff, st = _alpha_eff(c["time_us"][m2] * 1e-6, c["message_bytes"][m2], bus_all[m2],
                                        nic_gbs * 1e9, small_max=16384, large_min=32 * MIB)
            scaleout.setdefault("cases", []).append({
                "node": node, "op": op, "n_ranks": ranks, "alpha_us": sig(alpha * 1e6), "eff": sig(eff),
                "assumed_nic_gbs": nic_gbs, **st})
            report.append(f"  coll scaleout {node} {op} x{ranks}: alpha={alpha * 1e6:.1f}us eff={eff:.3f} "
                          f"(vs assumed {nic_gbs:.0f} GB/s NIC per GPU)  APE med {st['ape_median_pct']:.1f}%")
    return out, scaleout


# ----------------------------------------------------------------------------------- assembly
def _median_tree(items: list[Any]) -> Any:
    """Per-key median of nested dicts of numbers (only keys present in at least one item)."""
    items = [x for x in items if x is not None]
    if not items:
        return None
    if all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
        return sig(float(np.median(items)))
    if all(isinstance(x, dict) for x in items):
        keys: list[str] = []
        for x in items:
            keys += [k for k in x if k not in keys]
        res = {}
        for key in keys:
            if key.startswith(("ape_", "rows")) or key in ("source", "link_gbs", "ape_median_pct_by_system",
                                                           "eff_by_ranks", "alpha_us_by_ranks", "eff_by_op",
                                                           "ranks_fitted", "eff_at_8192",
                                                           "excluded_above_dram_peak"):
                continue
            val = _median_tree([x.get(key) for x in items])
            if val is not None:
                res[key] = val
        return res
    return items[0]


def build(data: Path, report: list[str]) -> dict[str, Any]:
    t_start = time.time()
    specs = resolve_specs()
    report.append("Normalisation (dense peak TFLOP/s, DRAM GB/s, link GB/s):")
    for s, v in specs.items():
        pk = {k: round(x / 1e12, 1) for k, x in v["peak"].items()}
        warn = ""
        if v["catalog_family"] and v["catalog_family"] != v["family"]:
            warn = f"  [catalog family '{v['catalog_family']}' != fitted family '{v['family']}']"
        report.append(f"  {s:20s} -> {v['family']:15s} {pk} bw={v['bw'] / 1e9:.0f} "
                      f"link={v['link'] / 1e9:.0f} "
                      f"[{v['source']}; peaks {sorted(set(v['peak_source'].values()))}]{warn}")

    g = load_csv(data / "gemm.csv", ("m", "n", "k", "time_us"))
    a = load_csv(data / "attention.csv", ("batch", "q_len", "kv_cached_len", "heads", "kv_heads", "head_dim",
                                          "time_us"))
    c = load_csv(data / "collectives.csv", ("n_ranks", "n_nodes", "ranks_per_node", "message_elements",
                                            "message_bytes", "repeat", "time_us"))
    v = load_csv(data / "vidur_layer_ops.csv", ("num_tokens", "tp", "n_embd", "n_head", "n_kv_head",
                                                "n_expanded_embd", "vocab_size", "gemm_m_derived",
                                                "gemm_n_derived", "gemm_k_derived", "time_us_median",
                                                "time_us_mean", "time_us_min", "time_us_std"))
    report.append(f"Loaded data in {time.time() - t_start:.1f}s: gemm {g['m'].size}, "
                  f"attention {a['q_len'].size}, "
                  f"collectives {c['time_us'].size}, vidur ops {v['num_tokens'].size} rows")

    report.append("GEMM (t = t0 + max(F/(peak eff_max s(m)s(n)s(k)), bytes/(bw eff_mem))):")
    gemm = fit_gemm(g, specs, report)
    gemm_one_half_check(g, specs, report)
    report.append("Attention:")
    attn = fit_attention(a, specs, report)
    report.append("Elementwise / norm ops (vidur):")
    mem = fit_memory(v, specs, report)
    checks = vidur_gemm_check(v, specs, gemm, report)
    report.append("Collectives (t = alpha + bus_bytes/(eff link_bw)):")
    coll, scaleout_raw = fit_collectives(c, specs, report)

    # memory for families without vidur data: transfer from decode eff_kv
    ratios = [mem[f]["eff"] / attn[f]["decode"]["bf16"]["eff_kv"] for f in mem if f in attn]
    ratio = float(np.median(ratios))
    t0_mem = float(np.median([mem[f]["t0_us"] for f in mem]))
    for fam in FAMILY_ORDER:
        if fam not in mem and fam in attn and "bf16" in attn[fam]["decode"]:
            eff = min(1.0, attn[fam]["decode"]["bf16"]["eff_kv"] * ratio)
            mem[fam] = {"eff": sig(eff), "t0_us": sig(t0_mem),
                        "source": f"transferred, not fitted: decode eff_kv x {ratio:.3f} "
                                  f"(ampere/hopper median of eff_mem/eff_kv)"}
            report.append(f"  memory       {fam:15s} eff={eff:.3f} "
                          f"(transferred from decode eff_kv x {ratio:.3f})")

    families: dict[str, Any] = {}
    for fam in FAMILY_ORDER:
        systems = {s: {"peak_tflops": {k: round(x / 1e12, 2) for k, x in sv["peak"].items()},
                       "memory_bw_gbs": round(sv["bw"] / 1e9), "link_gbs": round(sv["link"] / 1e9),
                       "spec_source": sv["source"]}
                   for s, sv in specs.items() if sv["family"] == fam}
        entry: dict[str, Any] = {"status": "fitted", "systems": systems}
        if fam in gemm:
            entry["gemm"] = gemm[fam]
        if fam in attn:
            entry["attention"] = attn[fam]
        if fam in mem:
            entry["memory"] = mem[fam]
        if fam in coll:
            entry["collectives"] = {"scaleup": coll[fam]}
        if fam in checks:
            entry["checks"] = {"gemm_bf16_vs_vidur_fp16": checks[fam]}
        families[fam] = entry

    # scale-out: one table for every family (the NIC fabric, not the GPU, sets it)
    cases = scaleout_raw.get("cases", [])
    so: dict[str, Any] = {
        "note": "Vidur 2-node torch.distributed rows; eff is relative to an ASSUMED per-GPU NIC bandwidth "
                "(DGX A100 200 Gb/s HDR, DGX H100 400 Gb/s NDR); the fabric is not stated by the source. "
                "Applies to every family.",
        "cases": cases}
    for op in dict.fromkeys(x["op"] for x in cases):
        sel = [x for x in cases if x["op"] == op]
        so[op] = {"alpha_us": sig(float(np.median([x["alpha_us"] for x in sel]))),
                  "eff": sig(float(np.median([x["eff"] for x in sel])))}
    if cases:
        so["default"] = {"alpha_us": sig(float(np.median([x["alpha_us"] for x in cases]))),
                         "eff": sig(float(np.median([x["eff"] for x in cases])))}
    else:
        so["default"] = {"alpha_us": 20.0, "eff": 0.7}

    # default family: per-parameter median of the datacenter NVIDIA families
    dc = [families[f] for f in DATACENTER_FAMILIES if f in families]
    default: dict[str, Any] = {
        "status": "default: spec-sheet assumption, not fitted (per-parameter median of the fitted "
                  + ", ".join(DATACENTER_FAMILIES) + " curves); used for families without data "
                  "(volta, cdna2, cdna3, cdna4, gaudi, cpu, ...)",
        "gemm": _median_tree([f.get("gemm") for f in dc]),
        "attention": _median_tree([f.get("attention") for f in dc]),
        "memory": _median_tree([f.get("memory") for f in dc]),
        "collectives": {"scaleup": _median_tree([f.get("collectives", {}).get("scaleup") for f in dc])},
    }
    ref = 8192.0
    for e in default["gemm"].values():
        halves = (ref + e["m_half"]) * (ref + e["n_half"]) * (ref + e["k_half"])
        e["eff_at_8192"] = sig(e["eff_max"] * ref**3 / halves, 3)
    families["default"] = default
    report.append(f"Total fit time {time.time() - t_start:.1f}s")

    return {
        "version": 1,
        "generated": _dt.date.today().isoformat(),
        "data": {"path": str(DEFAULT_DATA), "sources": ["ai-dynamo/aiconfigurator@095f58a5 (Apache-2.0)",
                                                         "microsoft/vidur@7d475133 (MIT)"]},
        "units": "t0/alpha in microseconds, bandwidths in GB/s, peaks in TFLOP/s (dense)",
        "families": families,
        "scaleout": so,
    }


def header(doc: dict[str, Any]) -> str:
    lines = [
        "# paraplan efficiency curves -- GENERATED by scripts/fit_efficiency.py, do not edit by hand.",
        f"# Generated {doc['generated']} from ../shared/data/kernels (ai-dynamo/aiconfigurator @095f58a5,",
        "# Apache-2.0: TRT-LLM GEMM/attention module timings and nccl-tests; microsoft/vidur @7d475133, MIT:",
        "# PyTorch layer ops and torch.distributed collectives).",
        "# How fitted: a few shared parameters per accelerator FAMILY and op kind (never per row); each",
        "# system normalised by its own dense peak / DRAM bandwidth / link bandwidth (under 'systems');",
        "# least squares on log time (GEMM, attention prefill), robust medians + log-LS for bandwidth terms",
        "# (decode, memory, collectives). Forms: see docs/efficiency.md and the script's docstring.",
        "# Times in us, bandwidths GB/s, peaks TFLOP/s.",
        "# 'default' = not fitted (per-parameter median of ampere/hopper/blackwell).",
        "#",
        "# Fit error (absolute percentage error of predicted vs measured time, median / p90):",
    ]
    for fam, f in doc["families"].items():
        if fam == "default":
            continue
        for key, e in f.get("gemm", {}).items():
            lines.append(f"#   {fam:15s} gemm {key:10s} {e['ape_median_pct']:5.1f}% / "
                         f"{e['ape_p90_pct']:5.1f}%  (n={e['rows']})")
        for key, e in f.get("attention", {}).get("prefill", {}).items():
            lines.append(f"#   {fam:15s} prefill {key:7s} {e['ape_median_pct']:5.1f}% / "
                         f"{e['ape_p90_pct']:5.1f}%  (n={e['rows']})")
        for key, e in f.get("attention", {}).get("decode", {}).items():
            lines.append(f"#   {fam:15s} decode kv={key:5s} {e['ape_median_pct']:5.1f}% / "
                         f"{e['ape_p90_pct']:5.1f}%  (KV >= 256 MiB and >= {DECODE_MIN_KV} tokens, "
                         f"n={e['rows_fit_eff']})")
        m = f.get("memory", {})
        if "ape_median_pct" in m:
            lines.append(f"#   {fam:15s} memory         {m['ape_median_pct']:5.1f}% / "
                         f"{m['ape_p90_pct']:5.1f}%  (>= 64 MiB, n={m['rows_fit_eff']})")
        for op, e in f.get("collectives", {}).get("scaleup", {}).items():
            lines.append(f"#   {fam:15s} {op:14s} {e['ape_median_pct']:5.1f}% / {e['ape_p90_pct']:5.1f}%"
                         f"  (n={e['rows']})")
    return "\n".join(lines) + "\n"


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {(int(k) if isinstance(k, np.integer) else k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="kernel data folder (relative to the repo root)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output YAML (relative to the repo root)")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not data.is_absolute():
        data = (REPO / data).resolve()
    if not (data / "gemm.csv").is_file():
        print(f"error: no gemm.csv under {data}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not out.is_absolute():
        out = REPO / out
    report: list[str] = []
    doc = _plain(build(data, report))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header(doc) + yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")
    print("\n".join(report))
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
