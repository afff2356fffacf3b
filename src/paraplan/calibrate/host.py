"""The machine being calibrated, as a spec-sheet accelerator entry (catalog YAML units).

This is the *uncalibrated* starting point that ``paraplan calibrate`` measures against:

* CUDA: the catalog entry whose name or alias the device name contains (``NVIDIA H100 80GB HBM3`` ->
  ``h100-sxm``); a device the catalog does not know gets an entry whose peaks and bandwidth are filled in
  from the measurements (said so in its ``source``).
* CPU: one "accelerator" is the group of cores one process uses (``threads``), following the catalog's CPU
  convention: dense peak = cores x clock x FLOP/cycle/core from ``/proc/cpuinfo`` (vector width from the
  flags, base clock from the model name or cpufreq, else the reported current clock). A virtual machine's
  slice of a server has no spec-sheet memory bandwidth: the entry assumes the catalog's ``ci-cpu`` share,
  5 GB/s per core (an assumption; the calibrated profile replaces it with the STREAM measurement).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any

from ..specs import AcceleratorSpec

#: nominal DRAM bandwidth per core where no spec sheet exists (the catalog's ci-cpu: 10 GB/s for 2 vCPUs)
NOMINAL_CPU_BW_PER_CORE_GBS = 5.0


def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (empty off Linux)."""
    p = Path("/proc/cpuinfo")
    if not p.is_file():
        return {}
    out: dict[str, str] = {}
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            if out:
                break
            continue
        k, _, v = line.partition(":")
        out.setdefault(k.strip(), v.strip())
    return out


def _meminfo_gb() -> float | None:
    p = Path("/proc/meminfo")
    if not p.is_file():
        return None
    m = re.search(r"MemTotal:\s+(\d+)\s*kB", p.read_text(encoding="utf-8"))
    return int(m.group(1)) * 1024 / 1e9 if m else None


def _read_khz(path: str) -> float | None:
    p = Path(path)
    try:
        return float(p.read_text().strip()) / 1e6 if p.is_file() else None
    except (OSError, ValueError):
        return None


def cpu_clock_ghz(info: dict[str, str]) -> tuple[float, str]:
    """(clock in GHz, where it came from): base clock when stated, else the reported current clock."""
    m = re.search(r"@\s*([0-9.]+)\s*GHz", info.get("model name", ""))
    if m:
        return float(m.group(1)), "base clock in the model name"
    base = _read_khz("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency")
    if base:
        return base, "cpufreq base_frequency"
    mhz = info.get("cpu MHz")
    if mhz:
        try:
            return float(mhz) / 1e3, "current clock reported by /proc/cpuinfo (no base clock stated)"
        except ValueError:
            pass
    return 2.0, "assumed 2.0 GHz (no clock reported)"


def cpu_flops_per_cycle(vendor: str, flags: set[str]) -> tuple[float, float, str]:
    """(fp32, bf16) dense FLOP per cycle per core from the ISA flags, and the reasoning."""
    intel = "intel" in vendor.lower()
    if "avx512f" in flags:
        fp32, why = (64.0, "2 AVX-512 FMA units") if intel else (32.0, "AVX-512 on 2x 256-bit FMA pipes")
    elif "avx2" in flags and "fma" in flags:
        fp32, why = 32.0, "AVX2 with 2 FMA units"
    elif "avx" in flags:
        fp32, why = 16.0, "AVX without FMA"
    else:
        fp32, why = 8.0, "SSE"
    if "amx_bf16" in flags:
        bf16, why_b = 1024.0, "AMX tiles (1024 BF16 FLOP/cycle)"
    elif "avx512_bf16" in flags:
        bf16, why_b = 2 * fp32, "AVX512_BF16 dot products (2x fp32)"
    else:
        bf16, why_b = fp32, "no native bf16 (converted, at about the fp32 rate)"
    return fp32, bf16, f"fp32: {why}; bf16: {why_b}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "device"


def spec_entry(acc: AcceleratorSpec) -> dict[str, Any]:
    """A catalog accelerator as a YAML entry (human units), the inverse of the catalog loader."""
    d = acc.model_dump(exclude={"peak_flops", "memory_bytes", "memory_bw", "scaleup_bw", "pcie_bw", "aliases"})
    d["aliases"] = list(acc.aliases)
    d["peak_tflops"] = {k: round(v / 1e12, 6) for k, v in acc.peak_flops.items()}
    d["memory_gb"] = round(acc.memory_bytes / 1e9, 3)
    d["memory_bw_gbs"] = round(acc.memory_bw / 1e9, 3)
    d["scaleup_bw_gbs"] = round(acc.scaleup_bw / 1e9, 3)
    d["pcie_bw_gbs"] = round(acc.pcie_bw / 1e9, 3)
    return d


def cpu_entry(threads: int, ranks: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec-sheet entry for ``threads`` cores of this host, host facts)."""
    info = _cpuinfo()
    model = info.get("model name") or platform.processor() or "unknown CPU"
    vendor_id = info.get("vendor_id", "")
    vendor = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(vendor_id, "generic")
    flags = set(info.get("flags", "").split())
    ghz, clock_src = cpu_clock_ghz(info)
    fp32, bf16, isa = cpu_flops_per_cycle(vendor_id, flags)
    mem = _meminfo_gb()
    name = f"host-{_slug(model)}-{threads}c"
    entry = {
        "name": name, "aliases": [], "vendor": vendor, "family": "cpu", "kind": "cpu", "cores": threads,
        "source": (f"this host: {model}, {threads} core(s) per process; peaks = cores x {ghz:.3g} GHz "
                   f"({clock_src}) x FLOP/cycle ({isa}); memory bandwidth {NOMINAL_CPU_BW_PER_CORE_GBS:g} GB/s "
                   "per core assumed (no spec sheet for a machine slice)"),
        "peak_tflops": {"fp32": round(threads * ghz * fp32 / 1e3, 6), "bf16": round(threads * ghz * bf16 / 1e3, 6)},
        "memory_gb": round((mem or 8.0) / max(ranks, 1), 3),
        "memory_bw_gbs": NOMINAL_CPU_BW_PER_CORE_GBS * threads,
        "scaleup_name": "none", "scaleup_bw_gbs": 0.0, "scaleup_domain": 1, "pcie_bw_gbs": 16.0,
        "price_per_hour": 0.0,
        "notes": "uncalibrated host entry derived by paraplan calibrate; memory_gb = host memory / processes",
    }
    host = {"cpu": model, "vendor_id": vendor_id, "clock_ghz": ghz, "clock_source": clock_src,
            "fp32_flop_per_cycle": fp32, "bf16_flop_per_cycle": bf16, "isa": isa,
            "memory_gb": mem, "platform": platform.platform()}
    return entry, host


def cuda_entry() -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(spec-sheet entry, host facts, whether the catalog knew the device) for CUDA device 0."""
    from ..catalog import resolve_cluster
    from ..errors import ParaplanError
    from .device import require_torch

    torch = require_torch()
    props = torch.cuda.get_device_properties(0)
    dev_name = torch.cuda.get_device_name(0)
    host = {"gpu": dev_name, "gpus": torch.cuda.device_count(), "memory_gb": props.total_memory / 1e9,
            "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
            "capability": list(torch.cuda.get_device_capability(0)), "platform": platform.platform()}
    try:
        acc = resolve_cluster(dev_name).accelerator
    except (ParaplanError, ValueError):
        acc = None
    if acc is not None:
        entry = spec_entry(acc)
        entry["source"] = f"catalog entry '{acc.name}' (matched device name '{dev_name}'): {acc.source}"
        return entry, host, True
    entry = {
        "name": _slug(dev_name), "aliases": [], "vendor": "amd" if host["hip"] else "nvidia", "family": "default",
        "kind": "gpu", "source": f"device '{dev_name}' not in the catalog: peaks and bandwidth from the measurements",
        "peak_tflops": {}, "memory_gb": round(props.total_memory / 1e9, 3), "memory_bw_gbs": 0.0,
        "scaleup_name": "", "scaleup_bw_gbs": 0.0, "scaleup_domain": 1, "pcie_bw_gbs": 32.0, "price_per_hour": 0.0,
        "notes": "uncalibrated entry of a device the catalog does not know",
    }
    return entry, host, False
