"""FlashRNN: I/O-aware traditional RNNs (LSTM, GRU, sLSTM) on modern GPUs (Pöppel, Beck, Hochreiter; ICLR'25,
arXiv 2412.07752, "FlashRNN: I/O-Aware Optimization of Traditional RNNs on modern hardware").

Mechanism: a traditional RNN is strictly sequential in time, but each step's recurrent matmul ``R h_{t-1}``
(``R`` is ``G d x d`` for ``G`` gates, split into heads) can keep ``R`` resident in registers and shared memory of a
persistent kernel, so a step costs only its FLOPs and a grid synchronisation instead of re-reading ``R`` from HBM
and launching several kernels. Roofline bound (the paper's claim is a kernel speed, so only a bound is modelled):

    vanilla PyTorch step:  ops_per_step x launch latency + R bytes / HBM BW + step FLOPs / peak
    FlashRNN step:         max(step FLOPs / peak, R bytes / on-chip BW) + grid sync

Not modelled: the ConstrINT auto-tuner, register-level tiling limits (the largest hidden size a kernel can hold),
and the Triton variant.
"""

from __future__ import annotations

from ..catalog import get_accelerator
from ..claims import ClaimValue

LAUNCH_S = 5e-6  # eager PyTorch: launch + dependency per op
GRID_SYNC_S = 1e-6  # persistent kernel: one grid-wide barrier per time step
ON_CHIP_BW_FACTOR = 10.0  # shared memory / register bandwidth over HBM bandwidth (order of magnitude)


def step_times(hidden: int, batch: int, gates: int = 4, heads: int = 1, accelerator: str = "h100-sxm",
               ops_per_step: int = 8) -> dict[str, float]:
    """Seconds per time step of a vanilla PyTorch RNN and of the FlashRNN bound."""
    acc = get_accelerator(accelerator)
    dh = hidden // heads
    r_bytes = gates * dh * dh * heads * 2.0
    flops = 2.0 * batch * gates * dh * dh * heads
    peak = acc.peak("bf16")
    vanilla = ops_per_step * LAUNCH_S + r_bytes / acc.memory_bw + flops / peak
    flash = max(flops / peak, r_bytes / (acc.memory_bw * ON_CHIP_BW_FACTOR)) + GRID_SYNC_S
    return {"vanilla_s": vanilla, "flash_s": flash, "speedup_bound": vanilla / flash}


def speedup_bound(hidden: int, batch: int, gates: int = 4, heads: int = 1, accelerator: str = "h100-sxm") -> ClaimValue:
    """Roofline bound on FlashRNN's speedup over a vanilla PyTorch RNN (a measured speedup must not exceed it)."""
    r = step_times(hidden, batch, gates, heads, accelerator)
    return ClaimValue(r["speedup_bound"], r)
