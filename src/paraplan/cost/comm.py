"""Collective communication time by algorithm, over two network tiers (array-first).

Groups are laid out Megatron style (tp innermost, then cp, then dp, pp outermost); a group of ``n``
ranks whose members are ``stride`` ranks apart has ``r = clip(domain // stride, 1, n)`` members inside
one scale-up domain (NVLink/NVSwitch island) and spans ``n / r`` domains.

Algorithms (alpha-beta with achieved-bandwidth efficiencies from :mod:`paraplan.cost.efficiency`):

* inside one domain: NCCL ring, bus bytes ``2(n-1)/n S`` (all-reduce) or ``(n-1)/n S``
  (all-gather, reduce-scatter, all-to-all) over the scale-up link;
* across domains: hierarchical: reduce-scatter inside the domain, the cross-domain collective on
  ``S / r`` bytes over each rank's own scale-out NIC (so ``r`` NICs work in parallel), all-gather inside;
  latency grows with the ring length across domains.

Sizes: ``all_reduce(S)``: every rank holds ``S`` bytes. ``all_gather(S)``: the gathered output is ``S``.
``reduce_scatter(S)``: the full input is ``S``. ``all_to_all(S)``: every rank sends ``S`` in total.
"""

from __future__ import annotations

import math

import numpy as np

from ..specs import ClusterSpec
from .efficiency import Layer, collective_params

ArrayLike = np.ndarray | float | int


def ranks_per_domain(cluster: ClusterSpec, n: ArrayLike, stride: ArrayLike) -> np.ndarray:
    n = np.asarray(n)
    return np.clip(cluster.domain // np.maximum(np.asarray(stride), 1), 1, np.maximum(n, 1))


def _tier(cluster: ClusterSpec, op: str, tier: str, layer: Layer) -> tuple[float, float]:
    alpha, eff = collective_params(cluster.accelerator, op, tier, layer=layer)  # type: ignore[arg-type]
    link = cluster.scaleup if tier == "scaleup" else cluster.scaleout
    return max(alpha, link.latency_s), eff * link.bw


def _ranks_nodes(cluster: ClusterSpec, n: np.ndarray, stride: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Float ``(r, n / r domains)`` of :func:`ranks_per_domain`, without the slow float floor-division:
    ``floor(domain / s)`` equals ``domain // s`` for the integer-valued strides used here (both < 2**53)."""
    st = np.maximum(np.asarray(stride, dtype=float), 1.0)
    r = np.minimum(np.maximum(np.floor(float(cluster.domain) / st), 1.0), np.maximum(n, 1.0))
    return r, np.maximum(n / r, 1.0)


def collective_time(cluster: ClusterSpec, op: str, nbytes: ArrayLike, n: ArrayLike, stride: ArrayLike = 1,
                    *, layer: Layer = "curves") -> np.ndarray:
    """Seconds for one collective ``op`` of ``nbytes`` over ``n`` ranks spaced ``stride`` apart."""
    S = np.asarray(nbytes, dtype=float)
    n = np.asarray(n, dtype=float)
    r, nodes = _ranks_nodes(cluster, n, stride)
    a_up, bw_up = _tier(cluster, op if op != "send_recv" else "all_gather", "scaleup", layer)
    a_out, bw_out = _tier(cluster, op if op != "send_recv" else "all_gather", "scaleout", layer)
    multi = nodes > 1.0
    if op == "all_reduce":
        intra = 2.0 * (r - 1.0) / r * S / bw_up
        inter = 2.0 * (nodes - 1.0) / nodes * (S / r) / bw_out
        lat = a_up + np.where(multi, a_out * np.log2(np.maximum(nodes, 2.0)), 0.0)
    elif op in ("all_gather", "reduce_scatter"):
        intra = (r - 1.0) / r * S / bw_up
        inter = (nodes - 1.0) / nodes * (S / r) / bw_out
        lat = a_up + np.where(multi, a_out * np.log2(np.maximum(nodes, 2.0)), 0.0)
    elif op == "all_to_all":
        intra = (r - 1.0) / n * S / bw_up
        inter = (n - r) / n * S / bw_out
        lat = a_up + np.where(multi, a_out, 0.0)
    elif op == "send_recv":
        # point-to-point between neighbours ``stride`` apart: same domain when stride < domain
        same = np.asarray(stride) < cluster.domain
        return np.where(same, a_up + S / bw_up, a_out + S / bw_out) * (n > 1)
    else:
        raise ValueError(f"unknown collective {op}")
    # inter is 0 on one domain ((nodes - 1) = 0): with a finite, non-zero scale-out bandwidth adding it
    # unmasked equals np.where(multi, inter, 0.0)
    t = lat + intra + (inter if 0.0 < bw_out < math.inf else np.where(multi, inter, 0.0))
    return np.where(n > 1.0, t, 0.0)
