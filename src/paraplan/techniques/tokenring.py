"""TokenRing: bidirectional ring attention for context/sequence parallelism (Wang et al., arXiv 2412.20501).

"TokenRing: An Efficient Parallelism Framework for Infinite-Context LLMs via Bidirectional Communication".
Ring attention (Liu et al. 2023) splits the sequence over ``N`` GPUs; at each of the ``N - 1`` steps every GPU
computes attention of its query block against one key/value block while it passes that K/V block to the next GPU
in ONE direction of the ring:

    step_ring = max(T_attn(s/N), bytes_KV(s/N) / bw)            bytes_KV = 2 (s/N) kv_heads d 2 B

TokenRing keeps K/V in place and sends the query block forward while the partial outputs (block_out, block_lse)
travel back, so both directions of every full-duplex link carry traffic at once:

    step_tokenring = max(T_attn(s/N), max(bytes_Q, bytes_out) / bw)   bytes_Q = (s/N) heads d 2 B,
                                                                      bytes_out = bytes_Q + (s/N) heads 4 B

Communication is hidden when the attention block takes longer than the transfer. Attention grows as ``(s/N)^2``
and the bytes as ``s/N``, so the hiding threshold on the per-GPU sequence is proportional to the bytes per
direction: for multi-head attention (``kv_heads = heads``) TokenRing halves it; for grouped-query attention, whose
K/V blocks are smaller than Q, the one-directional K/V ring already sends less and TokenRing does not help.
Attention time is :func:`paraplan.cost.efficiency.attention_time` (flash curve), the link the cluster's scale-up
tier (per direction).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.comm import collective_time
from ..cost.efficiency import attention_time
from ..cost.flops import attention_dims


def step_times(model: str, per_gpu_seq: ArrayLike, *, cluster: str = "dgx-h100", cp: int = 8) -> dict[str, np.ndarray]:
    """Per-layer, per-step seconds of ring attention and TokenRing for per-GPU sequence blocks (array-first)."""
    m = get_model(model)
    c = get_cluster(f"{cluster}:{cp}")
    L = np.asarray(per_gpu_seq, dtype=float)
    dqk, dv = attention_dims(m)
    attn = attention_time(c.accelerator, "bf16", 1.0, m.n_heads, L, L, float(dqk), float(m.kv_heads),
                          causal=False)
    kv_bytes = L * m.kv_heads * (dqk + dv) * 2.0
    q_bytes = L * m.n_heads * dqk * 2.0
    out_bytes = L * m.n_heads * (dv * 2.0 + 4.0)
    ring_comm = collective_time(c, "send_recv", kv_bytes, cp, 1)
    # the Q block and the partial outputs travel at the same time on the two directions of each link
    tr_comm = collective_time(c, "send_recv", np.maximum(q_bytes, out_bytes), cp, 1)
    return {"attn_s": attn, "ring_comm_s": ring_comm, "tokenring_comm_s": tr_comm,
            "ring_step_s": np.maximum(attn, ring_comm), "tokenring_step_s": np.maximum(attn, tr_comm),
            "ring_exposed_s": np.maximum(ring_comm - attn, 0.0),
            "tokenring_exposed_s": np.maximum(tr_comm - attn, 0.0)}


def hiding_threshold(model: str, which: str = "ring", *, cluster: str = "dgx-h100", cp: int = 8,
                     grid: ArrayLike | None = None) -> float:
    """Per-GPU sequence block (tokens) above which the ring's (``which="ring"``) or TokenRing's (``"tokenring"``)
    communication stays hidden under the attention block: the grid point after the last exposed one (a log grid
    from 16 to 1M tokens; 16 when never exposed, inf when exposed at the top of the grid)."""
    g = np.unique(np.round(np.geomspace(16, 1 << 20, 2000))) if grid is None else np.asarray(grid, dtype=float)
    r = step_times(model, g, cluster=cluster, cp=cp)
    exposed = np.nonzero(r[f"{which}_exposed_s"] > 0.0)[0]
    if exposed.size == 0:
        return float(g[0])
    last = int(exposed[-1])
    return float(g[last + 1]) if last + 1 < g.size else float("inf")


def threshold_ratio(model: str, *, cluster: str = "dgx-h100", cp: int = 8) -> ClaimValue:
    """Ring hiding threshold over TokenRing's (> 1: TokenRing hides communication at shorter sequences)."""
    a = hiding_threshold(model, "ring", cluster=cluster, cp=cp)
    b = hiding_threshold(model, "tokenring", cluster=cluster, cp=cp)
    return ClaimValue(a / b, {"ring_threshold_tokens": a, "tokenring_threshold_tokens": b})


def exposed_ratio(model: str, per_gpu_seq: int, *, cluster: str = "dgx-h100", cp: int = 8) -> ClaimValue:
    """Step time of TokenRing over the ring's at one per-GPU block (< 1: TokenRing faster)."""
    r = step_times(model, per_gpu_seq, cluster=cluster, cp=cp)
    return ClaimValue(float(r["tokenring_step_s"] / r["ring_step_s"]), {k: float(v) for k, v in r.items()})
