"""TPI-LLM: tensor-parallel inference of 70B-scale models on low-resource edge devices.

Li, Feng, Guizani, Yu, "TPI-LLM: Serving 70B-scale LLMs Efficiently on Low-resource Edge Devices",
arXiv 2410.00531 (2024); code github.com/Lizonghang/TPI-LLM.

* **Sliding-window memory scheduler**: each device keeps only ``w`` layers' weight shards resident (``--memory_window``,
  default 2 in the released code); a background thread loads the next layer's shard from disk while the current one
  computes and communicates. The master node also runs the input embedding and the LM head (whole). Peak memory per
  device::

      M = w * layer_bytes / N  +  [master: embedding + head]  +  KV shard  +  runtime

  and the disk stall per layer is ``max(0, t_load - (t_compute + t_comm))`` with ``t_load = layer_bytes / N / disk_bw``.
* **Star all-reduce** (workers -> master -> workers) instead of ring: for the per-token messages (``h`` values)
  link latency ``a``, not bandwidth, dominates::

      T_ring = 2 (N - 1) (a + S / (N B))          T_star = 2 (a + (N - 1) S / B)     (the master's link serialises)

  star wins when ``a > (N - 1)^2 S / (N (N - 2) B)`` (:func:`star_ring_crossover_latency`).

The per-token compute comes from :func:`paraplan.infer.iteration_time` on the device (TP ``N``), with its TP
communication replaced by the all-reduce algorithm chosen here.
"""

from __future__ import annotations

import math

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..infer import InferenceConfig, iteration_time
from ..specs import ClusterSpec, ModelSpec

ArrayLike = np.ndarray | float | int

__all__ = ["allreduce_ring_time", "allreduce_star_time", "star_ring_crossover_latency", "layer_bytes",
           "peak_memory_per_device", "token_latency", "peak_memory", "memory_reduction", "star_over_ring_speedup",
           "token_latency_reduction"]


def allreduce_ring_time(n: ArrayLike, nbytes: ArrayLike, bw: ArrayLike, latency: ArrayLike) -> np.ndarray:
    """Ring all-reduce with a per-hop latency: ``2 (N - 1) (a + S / (N B))``."""
    n, s, b, a = (np.asarray(x, dtype=float) for x in (n, nbytes, bw, latency))
    return np.where(n > 1, 2.0 * (n - 1.0) * (a + s / (n * b)), 0.0)


def allreduce_star_time(n: ArrayLike, nbytes: ArrayLike, bw: ArrayLike, latency: ArrayLike) -> np.ndarray:
    """Star all-reduce through a master whose link serialises the ``N - 1`` peers: ``2 (a + (N - 1) S / B)``."""
    n, s, b, a = (np.asarray(x, dtype=float) for x in (n, nbytes, bw, latency))
    return np.where(n > 1, 2.0 * (a + (n - 1.0) * s / b), 0.0)


def star_ring_crossover_latency(n: int, nbytes: float, bw: float) -> float:
    """Link latency above which the star all-reduce is faster than the ring (``inf`` for N <= 2: equal hops)."""
    if n <= 2:
        return math.inf
    return (n - 1) ** 2 * nbytes / (n * (n - 2) * bw)


def layer_bytes(model: ModelSpec, bytes_per_param: float = 4.0) -> float:
    """Bytes of one transformer layer's weights (attention + FFN + norms)."""
    p = model.attention_params() + model.dense_ffn_params() + 2 * model.hidden
    if model.moe is not None:
        p += model.moe.n_experts * model.expert_ffn_params()
    return p * bytes_per_param


def peak_memory_per_device(model: ModelSpec, n_devices: int, *, window: int = 2, bytes_per_param: float = 4.0,
                           seq_len: int = 512, master: bool = True, runtime_bytes: float = 0.0) -> dict[str, float]:
    """Peak resident bytes of one device under the sliding-window scheduler (components add up to ``total``)."""
    w = min(window, model.n_layers) * layer_bytes(model, bytes_per_param) / n_devices
    emb = model.vocab * model.hidden * bytes_per_param
    ends = (emb + (0.0 if model.tied_embeddings else emb)) if master else 0.0
    kv = seq_len * model.n_layers * 2 * math.ceil(model.kv_heads / n_devices) * model.dim_head * bytes_per_param
    out = {"weights_window": w, "embedding_and_head": ends, "kv_cache": float(kv), "runtime": runtime_bytes}
    out["total"] = sum(out.values())
    return out


def token_latency(model: ModelSpec, cluster: ClusterSpec, *, n_devices: int, link_bw: float, link_latency: float,
                  algorithm: str = "star", window: int | None = 2, disk_bw: float = 1e9, bytes_per_param: float = 4.0,
                  ctx: int = 512) -> dict[str, float]:
    """Seconds per decoded token with ``n_devices``-way TP: compute from :func:`paraplan.infer.iteration_time`
    (fp32 weights on the cluster's accelerator), two all-reduces of ``h`` values per layer by ``algorithm``
    (``star`` | ``ring``), and with a memory ``window`` the disk stall of loading each layer's shard
    (``window=None``: everything resident)."""
    cfg = InferenceConfig(tp=n_devices, weight_bits=16.0, act_bits=32 if bytes_per_param >= 4 else 16)
    it = iteration_time(model, cluster.with_accelerators(n_devices), cfg, decode_seqs=1, decode_ctx_sum=ctx)
    compute = float(it["total"] - it["tp_comm"])
    msg = model.hidden * bytes_per_param
    f = allreduce_star_time if algorithm == "star" else allreduce_ring_time
    comm = 2.0 * model.n_layers * float(f(n_devices, msg, link_bw, link_latency))
    stall = 0.0
    if window is not None and window < model.n_layers:
        t_load = layer_bytes(model, bytes_per_param) / n_devices / disk_bw
        per_layer = (compute + comm) / model.n_layers
        stall = model.n_layers * max(0.0, t_load - per_layer)
    return {"compute_s": compute, "comm_s": comm, "disk_stall_s": stall, "total_s": compute + comm + stall}


# ----------------------------------------------------------------------- claim functions
def peak_memory(model: str, n_devices: int, window: int = 2, bytes_per_param: float = 4.0,
                seq_len: int = 512) -> ClaimValue:
    """Peak bytes on the master device (the largest: it also holds the embedding and the head)."""
    d = peak_memory_per_device(get_model(model), n_devices, window=window, bytes_per_param=bytes_per_param,
                               seq_len=seq_len)
    return ClaimValue(d["total"], {k: v / 1e9 for k, v in d.items()})


def memory_reduction(model: str, n_devices: int, window: int = 2, bytes_per_param: float = 4.0,
                     seq_len: int = 512) -> ClaimValue:
    """1 - peak with the window / peak with every layer's shard resident (plain tensor parallelism)."""
    m = get_model(model)
    win = peak_memory_per_device(m, n_devices, window=window, bytes_per_param=bytes_per_param, seq_len=seq_len)
    full = peak_memory_per_device(m, n_devices, window=m.n_layers, bytes_per_param=bytes_per_param, seq_len=seq_len)
    return ClaimValue(1.0 - win["total"] / full["total"], {"window_gb": win["total"] / 1e9,
                                                            "resident_gb": full["total"] / 1e9})


def star_over_ring_speedup(n_devices: int, hidden: int, bytes_per_elem: float, link_bw_gbs: float,
                           link_latency_ms: float) -> ClaimValue:
    """Ring time / star time of one per-token all-reduce (> 1: the star wins)."""
    s = hidden * bytes_per_elem
    bw, a = link_bw_gbs * 1e9, link_latency_ms * 1e-3
    ring = float(allreduce_ring_time(n_devices, s, bw, a))
    star = float(allreduce_star_time(n_devices, s, bw, a))
    return ClaimValue(ring / star, {"ring_s": ring, "star_s": star,
                                    "crossover_latency_s": star_ring_crossover_latency(n_devices, s, bw)})


def token_latency_reduction(model: str, cluster: str, n_devices: int, link_bw_gbs: float, link_latency_ms: float,
                            disk_bw_gbs: float, window: int = 2) -> ClaimValue:
    """1 - TPI-LLM token latency / a single device that streams every layer from disk (Accelerate-style disk
    offload: one device, all weights, same disk)."""
    m = get_model(model)
    c = get_cluster(f"{cluster}")
    tpi = token_latency(m, c, n_devices=n_devices, link_bw=link_bw_gbs * 1e9, link_latency=link_latency_ms * 1e-3,
                        window=window, disk_bw=disk_bw_gbs * 1e9)
    one = token_latency(m, c, n_devices=1, link_bw=link_bw_gbs * 1e9, link_latency=link_latency_ms * 1e-3,
                        window=window, disk_bw=disk_bw_gbs * 1e9)
    return ClaimValue(1.0 - tpi["total_s"] / one["total_s"], {"tpi": tpi, "single_device_offload": one})
