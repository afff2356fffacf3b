"""Offloading model states to CPU memory and NVMe: bytes per tier, transfer time, bandwidth efficiency (array-first).

Rajbhandari et al., "ZeRO-Infinity: Breaking the GPU Memory Wall for Extreme Scale Deep Learning", SC'21,
arXiv 2104.07857 (sec. 3 memory requirements, sec. 4 bandwidth requirements, sec. 5 design); ZeRO-Offload
(Ren et al., USENIX ATC'21, arXiv 2101.06840) is the CPU-only special case (optimizer states and gradients on
the CPU, the optimizer step on the CPU).

Units: bytes, seconds, bytes per second, FLOP/s. Every function broadcasts its array arguments with NumPy, so the
training estimator and the planner can price a whole column of strategies in one call: pass the strategy columns
(``zero``, ``dp``, per-state offload codes, ...) as arrays of the same length and get arrays back. Offload
targets are integer codes (``DEVICE = 0``, ``CPU = 1``, ``NVME = 2``) so they can be array columns too.

Model states per parameter (mixed-precision Adam), :data:`STATE_BYTES`:

* ``params``: 16-bit weights, 2 B;
* ``grads``: 16-bit gradients, 2 B;
* ``optimizer``: fp32 master weights, momentum and variance, 12 B (ZeRO's K = 12), plus in ZeRO-Infinity's
  accounting an fp32 gradient copy, 4 B: 16 B (``convention="zero-infinity"``: 20 B/param in all, the paper's
  ``240 nl hd^2`` bytes for ``12 nl hd^2`` parameters; ``convention="zero"``: 16 B/param, the ZeRO paper's).

Sharding (ZeRO stage ``z`` over ``dp`` data-parallel ranks): optimizer states from stage 1, gradients from 2,
parameters from 3 are divided by ``dp``. Offloading a state kind moves its (sharded) bytes off the device to the
target tier; nothing of it stays on the device except the working set the caller adds (prefetch buffers,
:func:`paraplan.cost.memory` / the estimator's ``zero3_buffers``).

Traffic per training step and rank (ZeRO-Infinity sec. 4.1: the arithmetic intensity analysis counts the
parameters loaded three times, forward, recompute forward and backward, the gradients written once, and the
optimizer states read and written once per step):

* offloaded params: ``loads x 2 B x P_shard`` read from the tier each micro-batch (``loads`` = 3 with full
  recompute, 2 without);
* offloaded grads: ``2 B x P_shard`` written to the tier each micro-batch;
* offloaded optimizer: the step runs where the states live (the CPU for CPU and NVMe); with NVMe the fp32 states
  (``opt_bytes``) are read and written between NVMe and CPU; the updated 16-bit parameters go back over PCIe when
  the params live on the device.

Transfer time = PCIe bytes / PCIe bandwidth and NVMe bytes / NVMe bandwidth; the two are pipelined by
ZeRO-Infinity's overlap engine, so the longer of the two counts (``pipelined=True``) or their sum. The exposed
part is what ``overlap x compute`` cannot hide (overlap-centric design, sec. 6.2).

Bandwidth efficiency (sec. 4.1): with ``ait`` FLOPs per byte moved, ``bw`` bytes/s and an achievable peak
``peak`` FLOP/s, ``efficiency = ait bw / (ait bw + peak)`` (compute time over compute plus transfer time, no
overlap). The paper's intensities: params and grads ``ait = seq x bsz``, optimizer states ``seq x bsz / 4``,
activation checkpoints ``24 hd ci``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

DEVICE, CPU, NVME = 0, 1, 2
TIERS: tuple[str, ...] = ("device", "cpu", "nvme")
STATE_KINDS: tuple[str, ...] = ("params", "grads", "optimizer")
Convention = Literal["zero", "zero-infinity"]

#: bytes per parameter of each state kind, per convention (mixed-precision Adam)
STATE_BYTES: dict[str, dict[str, float]] = {
    "zero": {"params": 2.0, "grads": 2.0, "optimizer": 12.0},
    "zero-infinity": {"params": 2.0, "grads": 2.0, "optimizer": 16.0},
}
#: ZeRO stage from which each state kind is sharded over the data-parallel group
SHARD_FROM_STAGE = {"params": 3, "grads": 2, "optimizer": 1}


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def bytes_per_param(convention: Convention = "zero-infinity") -> float:
    """Model-state bytes per parameter: 16 (ZeRO) or 20 (ZeRO-Infinity, with the fp32 gradient copy)."""
    return float(sum(STATE_BYTES[convention].values()))


def model_state_bytes(n_params: ArrayLike, convention: Convention = "zero-infinity") -> np.ndarray:
    """Total model-state bytes of ``n_params`` parameters (all ranks together, unsharded)."""
    return _f(n_params) * bytes_per_param(convention)


def sharded_state_bytes(n_params: ArrayLike, zero_stage: ArrayLike, dp: ArrayLike,
                        convention: Convention = "zero-infinity") -> dict[str, np.ndarray]:
    """Per-rank bytes of each state kind under ZeRO stage ``zero_stage`` over ``dp`` ranks (before offload)."""
    p = _f(n_params)
    z = np.asarray(zero_stage)
    d = np.maximum(_f(dp), 1.0)
    out = {}
    for kind in STATE_KINDS:
        share = np.where(z >= SHARD_FROM_STAGE[kind], 1.0 / d, 1.0)
        out[kind] = p * STATE_BYTES[convention][kind] * share
    return out


def state_placement(n_params: ArrayLike, zero_stage: ArrayLike, dp: ArrayLike, *,
                    offload_params: ArrayLike = DEVICE, offload_grads: ArrayLike = DEVICE,
                    offload_optimizer: ArrayLike = DEVICE,
                    convention: Convention = "zero-infinity") -> dict[str, np.ndarray]:
    """Per-rank bytes of each state kind on each tier: keys ``"<tier>.<kind>"`` (e.g. ``"nvme.optimizer"``)
    plus the tier totals ``"<tier>"``. The offload codes are :data:`DEVICE`, :data:`CPU` or :data:`NVME`
    (scalars or arrays, one per strategy)."""
    shard = sharded_state_bytes(n_params, zero_stage, dp, convention)
    target = {"params": np.asarray(offload_params), "grads": np.asarray(offload_grads),
              "optimizer": np.asarray(offload_optimizer)}
    out: dict[str, np.ndarray] = {}
    for t_code, tier in enumerate(TIERS):
        total = np.zeros(np.broadcast(*shard.values(), *target.values()).shape)
        for kind in STATE_KINDS:
            b = np.where(target[kind] == t_code, shard[kind], 0.0)
            out[f"{tier}.{kind}"] = b
            total = total + b
        out[tier] = total
    return out


def smallest_tier_that_fits(need_bytes: ArrayLike, device_bytes: ArrayLike, cpu_bytes: ArrayLike,
                            nvme_bytes: ArrayLike) -> np.ndarray:
    """The first tier (0 device, 1 + CPU, 2 + NVMe) whose cumulative capacity holds ``need_bytes``; 3 if none.

    Capacities are for the same group of ranks as ``need_bytes`` (e.g. one node: 16 GPUs' HBM, the node's DRAM
    and its NVMe drives); offloading to a tier keeps the faster tiers in use, so capacities add up."""
    need = _f(need_bytes)
    c0 = _f(device_bytes)
    c1 = c0 + _f(cpu_bytes)
    c2 = c1 + _f(nvme_bytes)
    return np.where(need <= c0, DEVICE, np.where(need <= c1, CPU, np.where(need <= c2, NVME, 3)))


def offload_traffic(n_params: ArrayLike, zero_stage: ArrayLike, dp: ArrayLike, *,
                    offload_params: ArrayLike = DEVICE, offload_grads: ArrayLike = DEVICE,
                    offload_optimizer: ArrayLike = DEVICE, n_micro: ArrayLike = 1, param_loads: ArrayLike = 3,
                    convention: Convention = "zero-infinity") -> dict[str, np.ndarray]:
    """Per-rank bytes moved per training step: ``pcie_overlappable`` (param loads and gradient stores during
    forward/backward), ``pcie_step`` (after the backward: 16-bit params back to the device when the optimizer
    runs on the CPU) and ``nvme_overlappable`` / ``nvme_step`` (the NVMe share of the same, plus the optimizer
    states read and written around the CPU optimizer step)."""
    pb = STATE_BYTES[convention]
    p = _f(n_params)
    z = np.asarray(zero_stage)
    d = np.maximum(_f(dp), 1.0)
    m = _f(n_micro)
    op, og, oo = (np.asarray(x) for x in (offload_params, offload_grads, offload_optimizer))
    p_shard = p * np.where(z >= SHARD_FROM_STAGE["params"], 1.0 / d, 1.0)
    g_shard = p * np.where(z >= SHARD_FROM_STAGE["grads"], 1.0 / d, 1.0)
    o_shard = p * np.where(z >= SHARD_FROM_STAGE["optimizer"], 1.0 / d, 1.0)
    param_reads = m * _f(param_loads) * pb["params"] * p_shard
    grad_writes = m * pb["grads"] * g_shard
    pcie_ov = np.where(op != DEVICE, param_reads, 0.0) + np.where(og != DEVICE, grad_writes, 0.0)
    nvme_ov = np.where(op == NVME, param_reads, 0.0) + np.where(og == NVME, grad_writes, 0.0)
    # CPU optimizer step: gradients must reach the CPU (if they are not already offloaded) and the updated
    # 16-bit parameters go back to the device (if the parameters live there)
    cpu_step = oo != DEVICE
    pcie_step = np.where(cpu_step & (og == DEVICE), pb["grads"] * o_shard, 0.0) \
        + np.where(cpu_step & (op == DEVICE), pb["params"] * o_shard, 0.0)
    nvme_step = np.where(oo == NVME, 2.0 * pb["optimizer"] * o_shard, 0.0)
    return {"pcie_overlappable": pcie_ov, "pcie_step": pcie_step, "nvme_overlappable": nvme_ov,
            "nvme_step": nvme_step}


def transfer_time(pcie_bytes: ArrayLike, nvme_bytes: ArrayLike, pcie_bw: ArrayLike, nvme_bw: ArrayLike, *,
                  pipelined: bool = True) -> np.ndarray:
    """Seconds to move bytes over a rank's PCIe link and its share of the NVMe bandwidth (both B/s per rank).

    ``pipelined``: NVMe->CPU and CPU->GPU stages overlap (ZeRO-Infinity's overlap engine), so the slower stage
    counts; otherwise their sum. Zero bytes cost zero seconds whatever the bandwidth."""
    pb, nb = _f(pcie_bytes), _f(nvme_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.where(pb > 0, pb / _f(pcie_bw), 0.0)
        tn = np.where(nb > 0, nb / _f(nvme_bw), 0.0)
    return np.maximum(tp, tn) if pipelined else tp + tn


def exposed_time(transfer_s: ArrayLike, compute_s: ArrayLike, overlap: ArrayLike = 1.0) -> np.ndarray:
    """The part of a transfer that ``overlap`` (0..1) of the concurrent compute does not hide."""
    return np.maximum(_f(transfer_s) - _f(overlap) * _f(compute_s), 0.0)


def offload_step_time(traffic: dict[str, np.ndarray], compute_s: ArrayLike, pcie_bw: ArrayLike,
                      nvme_bw: ArrayLike, *, overlap: ArrayLike = 1.0, cpu_step_s: ArrayLike = 0.0,
                      pipelined: bool = True) -> dict[str, np.ndarray]:
    """Exposed seconds per step that offloading adds to a step whose forward+backward compute is ``compute_s``:
    ``overlapped`` (param/grad traffic beyond what the compute hides) and ``step`` (the optimizer-step traffic
    and the CPU optimizer itself, ``cpu_step_s``, which runs after the backward), and their ``total``."""
    t_ov = transfer_time(traffic["pcie_overlappable"], traffic["nvme_overlappable"], pcie_bw, nvme_bw,
                         pipelined=pipelined)
    t_st = transfer_time(traffic["pcie_step"], traffic["nvme_step"], pcie_bw, nvme_bw, pipelined=pipelined)
    exposed_ov = exposed_time(t_ov, compute_s, overlap)
    step = np.maximum(t_st, _f(cpu_step_s)) if pipelined else t_st + _f(cpu_step_s)
    step = step + np.zeros_like(exposed_ov)
    return {"overlapped": exposed_ov, "step": step, "total": exposed_ov + step,
            "transfer_overlappable": t_ov}


# ------------------------------------------------------------------ bandwidth vs efficiency (sec. 4.1)
def ait_params_grads(seq: ArrayLike, batch_per_gpu: ArrayLike) -> np.ndarray:
    """FLOPs per byte of parameter and gradient traffic: ``seq x bsz`` (8 bsz seq P FLOPs over 8 P bytes)."""
    return _f(seq) * _f(batch_per_gpu)


def ait_optimizer(seq: ArrayLike, batch_per_gpu: ArrayLike) -> np.ndarray:
    """FLOPs per byte of optimizer-state traffic: ``seq x bsz / 4`` (32 B read and written per parameter)."""
    return _f(seq) * _f(batch_per_gpu) / 4.0


def ait_activation_checkpoints(hidden: ArrayLike, ci: ArrayLike = 1) -> np.ndarray:
    """FLOPs per byte of activation-checkpoint traffic: ``24 hd ci`` (one checkpoint every ``ci`` blocks)."""
    return 24.0 * _f(hidden) * _f(ci)


def bandwidth_efficiency(ait: ArrayLike, bw: ArrayLike, peak: ArrayLike) -> np.ndarray:
    """Fraction of peak kept when every byte moves at ``bw`` without overlap: ``ait bw / (ait bw + peak)``."""
    x = _f(ait) * _f(bw)
    return x / (x + _f(peak))


def bandwidth_for_efficiency(efficiency: ArrayLike, ait: ArrayLike, peak: ArrayLike) -> np.ndarray:
    """Inverse of :func:`bandwidth_efficiency`: the B/s needed to keep ``efficiency`` (0 < e < 1) of peak."""
    e = _f(efficiency)
    return e * _f(peak) / (_f(ait) * (1.0 - e))
