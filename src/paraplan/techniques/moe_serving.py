"""MoE serving under expert parallelism: all-to-all volume, expert-affinity placement and speculative pre-scheduling.

* **Expert parallelism baseline** (DeepSpeed-MoE / Megatron style): per MoE layer each token is dispatched to its
  ``k`` experts and combined back: two all-to-alls whose remote share is ``(G - 1) / G`` under uniform routing over
  ``G`` GPUs. Bytes leaving each GPU per layer: ``2 T k h b (G - 1) / G`` for ``T`` tokens per GPU.
* **ExFlow** -- Yao et al., "Exploiting Inter-Layer Expert Affinity for Accelerating Mixture-of-Experts Model
  Inference", IPDPS'24, arXiv 2401.08383. Context-coherent expert parallelism keeps a token on the GPU of its last
  expert (no combine all-to-all; one dispatch per layer) and places experts so that consecutive-layer experts that
  co-activate share a GPU. Remote share per layer = ``1 - p_aff``, ``p_aff`` = P(next-layer expert on the same GPU),
  a routing statistic of the traced model (``1 / G`` without affinity-aware placement).
* **Speculative MoE (s-MoE)** -- arXiv 2503.04398. Tokens are shuffled ahead of time to the GPU that a predictor
  expects their experts on, and experts are pre-grouped; only mis-speculated routes cross GPUs, plus a correction.
  Remote share = ``(1 - a) (G - 1) / G`` per all-to-all with prediction accuracy ``a``.

Times use :func:`paraplan.cost.comm.collective_time` (``all_to_all`` of the per-GPU bytes) on the catalog cluster.
"""

from __future__ import annotations

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.comm import collective_time
from ..specs import ClusterSpec, ModelSpec

ArrayLike = np.ndarray | float | int

__all__ = ["ep_alltoall_bytes", "exflow_alltoall_bytes", "smoe_alltoall_bytes", "alltoall_time",
           "exflow_routing_reduction", "smoe_volume_reduction", "exflow_comm_speedup"]


def ep_alltoall_bytes(tokens: ArrayLike, hidden: int, top_k: int, n_gpus: ArrayLike,
                      bytes_per_elem: float = 2.0) -> np.ndarray:
    """Bytes each GPU sends per MoE layer in the baseline (dispatch + combine, uniform routing)."""
    g = np.asarray(n_gpus, dtype=float)
    return 2.0 * np.asarray(tokens, dtype=float) * top_k * hidden * bytes_per_elem * (g - 1.0) / g


def exflow_alltoall_bytes(tokens: ArrayLike, hidden: int, top_k: int, affinity: ArrayLike,
                          bytes_per_elem: float = 2.0) -> np.ndarray:
    """Bytes each GPU sends per MoE layer under ExFlow: one dispatch, remote share ``1 - affinity``."""
    return np.asarray(tokens, dtype=float) * top_k * hidden * bytes_per_elem * (1.0 - np.asarray(affinity, float))


def smoe_alltoall_bytes(tokens: ArrayLike, hidden: int, top_k: int, n_gpus: ArrayLike, accuracy: ArrayLike,
                        bytes_per_elem: float = 2.0, correction: float = 0.0) -> np.ndarray:
    """Bytes each GPU sends per MoE layer with speculative pre-scheduling of accuracy ``accuracy``: the baseline's
    remote traffic on the mis-speculated routes plus ``correction`` times it (re-dispatch metadata)."""
    base = ep_alltoall_bytes(tokens, hidden, top_k, n_gpus, bytes_per_elem)
    return base * (1.0 - np.asarray(accuracy, dtype=float)) * (1.0 + correction)


def alltoall_time(cluster: ClusterSpec, per_gpu_bytes: ArrayLike, n_gpus: int, calls: int = 1) -> np.ndarray:
    """Seconds of ``calls`` all-to-alls that move ``per_gpu_bytes`` in total per GPU (split evenly over calls)."""
    b = np.asarray(per_gpu_bytes, dtype=float) / calls
    # collective_time counts the (G-1)/G remote share itself: hand it the full per-GPU buffer
    full = b * n_gpus / max(n_gpus - 1, 1)
    return calls * collective_time(cluster, "all_to_all", full, n_gpus)


# ----------------------------------------------------------------------- claim functions
def exflow_routing_reduction(n_gpus: int, affinity: float | None = None) -> ClaimValue:
    """1 - ExFlow cross-GPU bytes / baseline bytes (per MoE layer; tokens, width and k cancel). ``affinity``
    None: no affinity-aware placement (``1 / G``)."""
    a = 1.0 / n_gpus if affinity is None else affinity
    base = float(ep_alltoall_bytes(1.0, 1, 1, n_gpus))
    ex = float(exflow_alltoall_bytes(1.0, 1, 1, a))
    return ClaimValue(1.0 - ex / base, {"affinity": a, "baseline_remote_share": base, "exflow_remote_share": ex})


def exflow_comm_speedup(model: str, cluster: str, n_gpus: int, tokens_per_gpu: int, affinity: float | None = None,
                        ) -> ClaimValue:
    """All-to-all seconds per MoE layer, baseline over ExFlow, on the catalog cluster."""
    m: ModelSpec = get_model(model)
    if m.moe is None:
        raise ValueError(f"{model} is not a mixture of experts")
    c = get_cluster(f"{cluster}:{n_gpus}")
    a = 1.0 / n_gpus if affinity is None else affinity
    base = float(alltoall_time(c, ep_alltoall_bytes(tokens_per_gpu, m.hidden, m.moe.top_k, n_gpus), n_gpus, 2))
    ex = float(alltoall_time(c, exflow_alltoall_bytes(tokens_per_gpu, m.hidden, m.moe.top_k, a), n_gpus, 1))
    return ClaimValue(base / ex, {"baseline_s": base, "exflow_s": ex})


def smoe_volume_reduction(n_gpus: int, accuracy: float, correction: float = 0.0) -> ClaimValue:
    """1 - s-MoE all-to-all bytes / baseline bytes at prediction accuracy ``accuracy``."""
    base = float(ep_alltoall_bytes(1.0, 1, 1, n_gpus))
    s = float(smoe_alltoall_bytes(1.0, 1, 1, n_gpus, accuracy, correction=correction))
    return ClaimValue(1.0 - s / base, {"accuracy": accuracy, "correction": correction})
