"""PyTorch plumbing shared by the microbenchmarks and the measured validation: the optional import, device and
thread selection, synchronisation and a robust timer. Nothing here is device specific beyond ``cpu``/``cuda``."""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..errors import ParaplanError

DEVICES = ("cpu", "cuda")
#: name -> torch dtype attribute
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class CalibrationError(ParaplanError, ValueError):
    """Calibration cannot run or cannot be applied (no PyTorch, no such device, a malformed profile, ...)."""


def require_torch() -> ModuleType:
    """``torch``, or a one-line error saying how to install it (torch is the optional ``calibrate`` extra)."""
    try:
        import torch
    except ImportError:
        raise CalibrationError("measuring needs PyTorch, which is not installed: pip install 'paraplan[calibrate]' "
                               "(or pip install torch)") from None
    return torch


def check_device(device: str) -> str:
    """Validate ``device`` ('cpu' or 'cuda') against what this PyTorch build can see."""
    if device not in DEVICES:
        raise CalibrationError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    torch = require_torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise CalibrationError(f"--device cuda: no CUDA device visible to PyTorch {torch.__version__} "
                               f"(built with CUDA {torch.version.cuda or 'none'})")
    return device


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_threads(device: str, ranks: int) -> int:
    """Threads per process: on CPU the available cores shared by ``ranks`` processes (at least 1)."""
    if device != "cpu":
        return 1
    return max(available_cpus() // max(ranks, 1), 1)


def setup_process(device: str, threads: int, rank: int = 0, pin: bool = False) -> None:
    """Per-process settings: intra-op threads (CPU), the rank's GPU (CUDA), optionally pin CPU ranks to
    disjoint cores."""
    torch = require_torch()
    if device == "cpu":
        torch.set_num_threads(max(threads, 1))
        if pin and hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            mine = cpus[rank * threads:(rank + 1) * threads]
            if len(mine) == threads:
                os.sched_setaffinity(0, mine)
    else:
        torch.cuda.set_device(rank % max(torch.cuda.device_count(), 1))


def torch_dtype(name: str) -> Any:
    torch = require_torch()
    try:
        return getattr(torch, DTYPES[name])
    except KeyError:
        raise CalibrationError(f"dtype must be one of {', '.join(DTYPES)}, not {name!r}") from None


def default_dtype(device: str) -> str:
    """The 16-bit training dtype: bf16 where the device runs it, else fp16."""
    torch = require_torch()
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


def sync(device: str) -> None:
    if device == "cuda":
        require_torch().cuda.synchronize()


def time_call(fn: Callable[[], Any], device: str, *, min_time: float = 0.02, repeats: int = 5,
              warmup: int = 1, max_inner: int = 2000) -> float:
    """Median seconds per call of ``fn``: after ``warmup`` calls, ``repeats`` batches of back-to-back calls, each
    batch at least ``min_time`` long (calls per batch chosen from one timed call), synchronised at both ends."""
    for _ in range(max(warmup, 0)):
        fn()
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    one = max(time.perf_counter() - t, 1e-7)
    inner = int(min(max(min_time / one, 1), max_inner))
    samples = []
    for _ in range(max(repeats, 1)):
        sync(device)
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples)


def time_steps(step: Callable[[], Any], device: str, *, warmup: int = 2, repeats: int = 5) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``step`` (after ``warmup`` untimed ones), synchronised."""
    for _ in range(warmup):
        step()
    out = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        step()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
