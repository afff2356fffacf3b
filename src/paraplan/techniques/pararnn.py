"""ParaRNN: parallel training of nonlinear RNNs by Newton's method and parallel reduction (Danieli et al., Apple;
ICLR'26, arXiv 2510.21450, "ParaRNN: Unlocking Parallel Training of Nonlinear RNNs for Large Language Models").

Mechanism: the ``T`` recurrence steps ``h_t = f(h_{t-1}, x_t)`` are one nonlinear system in all hidden states.
Each Newton iteration linearises it into a linear recurrence ``dh_t = J_t dh_{t-1} + r_t`` (diagonal or small
block-diagonal Jacobians for the ParaGRU/ParaLSTM cells), solved by an associative parallel reduction of depth
``log2 T``. A handful of Newton iterations (3 in the paper) converge.

Cost model (analytic, on the accelerator's roofline from the catalog):

    sequential:  T x max(ops_per_step x launch latency, step bytes / BW, step FLOPs / peak)
    ParaRNN:     k x [ (cell + Jacobian evaluation over all T: bytes / BW)
                       + log2 T x (level sync latency + level bytes / BW) ]

The per-step kernel-launch latency is what makes naive sequential application slow; the parallel form streams the
whole sequence through memory a few times. Only the order of magnitude is claimed.

Not modelled: the CUDA kernels' real efficiency, the perplexity results, and the backward pass (the paper's
backward is a linear recurrence solved by the same reduction, so it scales the same way).
"""

from __future__ import annotations

import math

from ..catalog import get_accelerator
from ..claims import ClaimValue
from ..errors import ConfigError

#: CUDA kernel launch plus synchronisation per dependent op in eager PyTorch, seconds (typical 5 us)
LAUNCH_S = 5e-6
#: grid-wide synchronisation between reduction levels inside one kernel, seconds
LEVEL_SYNC_S = 1e-6


def sequential_time(seq_len: int, batch: int, hidden: int, accelerator: str = "h100-sxm", ops_per_step: int = 6,
                    launch_s: float = LAUNCH_S, bytes_per_value: float = 2.0) -> float:
    """Naive sequential application: one step after another, each a few dependent kernels."""
    acc = get_accelerator(accelerator)
    step_bytes = batch * hidden * bytes_per_value * 8.0  # read h, x-projections (3 gates), write h, temporaries
    step_flops = batch * hidden * 30.0  # elementwise gate arithmetic (diagonal recurrence)
    return seq_len * max(ops_per_step * launch_s, step_bytes / acc.memory_bw, step_flops / acc.peak("bf16"))


def parallel_time(seq_len: int, batch: int, hidden: int, accelerator: str = "h100-sxm", newton_iters: int = 3,
                  level_sync_s: float = LEVEL_SYNC_S, bytes_per_value: float = 2.0) -> float:
    """ParaRNN: Newton iterations of (parallel cell + Jacobian evaluation, parallel reduction of depth log2 T)."""
    if seq_len < 1 or batch < 1 or hidden < 1 or newton_iters < 1:
        raise ConfigError("seq_len, batch, hidden and newton_iters must be >= 1")
    acc = get_accelerator(accelerator)
    n = seq_len * batch * hidden
    eval_bytes = n * bytes_per_value * 10.0  # read x-projections and h, write J (diagonal) and residual
    levels = max(math.ceil(math.log2(seq_len)), 1)
    reduce_bytes = n * bytes_per_value * 4.0 * 2.0  # up- and down-sweep over (J, r) pairs
    return newton_iters * (eval_bytes / acc.memory_bw + levels * level_sync_s + reduce_bytes / acc.memory_bw)


def log10_speedup(seq_len: int, batch: int, hidden: int, accelerator: str = "h100-sxm",
                  newton_iters: int = 3) -> ClaimValue:
    """log10 of sequential time over ParaRNN time (order-of-magnitude claim)."""
    ts = sequential_time(seq_len, batch, hidden, accelerator)
    tp = parallel_time(seq_len, batch, hidden, accelerator, newton_iters)
    return ClaimValue(math.log10(ts / tp), {"speedup": ts / tp, "sequential_s": ts, "parallel_s": tp})
