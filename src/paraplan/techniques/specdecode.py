"""Speculative decoding: speedup from acceptance and draft cost, at any batch, with the draft on the same
device or on a second device in parallel.

Leviathan, Kalman, Matias, *Fast Inference from Transformers via Speculative Decoding*, ICML 2023
(arXiv 2211.17192); Chen et al., *Accelerating LLM Decoding with Speculative Sampling* (arXiv 2302.01318).
A draft proposes ``gamma`` tokens, the target verifies them in one pass and keeps ``tau`` of them on average
(``tau = (1 - a^(gamma+1)) / (1 - a)`` for an i.i.d. per-token acceptance ``a``). With a draft step costing
``c`` target steps the speedup is ``tau / (gamma c + 1)`` (Leviathan eq. 4, verification as cheap as one
decode step).

paraplan prices both sides with its own estimator instead of a constant ``c``: :class:`paraplan.infer.
SpeculativeConfig` describes the method, :func:`paraplan.infer.speculative_step` prices draft and verification
at batch ``B`` and context ``ctx`` (verification of ``gamma + 1`` tokens per sequence turns compute-bound at
large batch, which is why speculation stops paying there). This module adds:

* :func:`leviathan_speedup`: the closed form, for reference and tests;
* :func:`speedup_vs_batch`: the priced speedup over a range of batches, and :func:`break_even_batch`;
* :func:`parallel_draft_speedup`: the draft runs on a *second* device (another accelerator, an NPU, a
  smaller GPU) concurrently with verification of the previous step, so a step costs ``max(draft, verify) +
  sync`` instead of ``draft + verify`` (the structure of Mirror-SD and PEARL-style pipelined drafting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..cost.efficiency import Layer
from ..infer import InferenceConfig, SpeculativeConfig, SpeculativeEstimate, iteration_time, speculative_step
from ..specs import ClusterSpec, ModelSpec

ArrayLike = np.ndarray | float | int


def expected_tokens(acceptance: ArrayLike, gamma: ArrayLike) -> np.ndarray:
    """Tokens per verification step for i.i.d. acceptance ``a`` and ``gamma`` drafted tokens (array form of
    :attr:`SpeculativeConfig.tau`)."""
    a, g = np.broadcast_arrays(np.asarray(acceptance, dtype=float), np.asarray(gamma, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (1.0 - a ** (g + 1.0)) / (1.0 - a)
    return np.where(a >= 1.0, g + 1.0, t)


def leviathan_speedup(acceptance: ArrayLike, gamma: ArrayLike, cost_ratio: ArrayLike) -> np.ndarray:
    """Leviathan et al. eq. 4: ``tau / (gamma c + 1)``, ``c`` = draft step / target step."""
    return expected_tokens(acceptance, gamma) / (np.asarray(gamma, dtype=float) * np.asarray(cost_ratio) + 1.0)


def speedup_vs_batch(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, spec: SpeculativeConfig,
                     batches: Sequence[int], ctx: float, *, layer: Layer = "curves") -> np.ndarray:
    """Priced speedup (plain TPOT / speculative TPOT) at each batch size."""
    return np.array([speculative_step(model, cluster, cfg, spec, int(b), ctx, layer=layer).speedup
                     for b in batches])


def break_even_batch(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, spec: SpeculativeConfig,
                     ctx: float, *, max_batch: int = 4096, layer: Layer = "curves") -> int | None:
    """Smallest power-of-two batch at which speculation no longer pays (speedup <= 1); None if it always pays."""
    b = 1
    while b <= max_batch:
        if speculative_step(model, cluster, cfg, spec, b, ctx, layer=layer).speedup <= 1.0:
            return b
        b *= 2
    return None


def draft_model_time(draft: ModelSpec, draft_cluster: ClusterSpec, steps: int, batch: int, ctx: float, *,
                     draft_cfg: InferenceConfig | None = None, layer: Layer = "curves") -> float:
    """Seconds for ``steps`` autoregressive decode steps of a draft model at ``batch`` on its own device."""
    if steps <= 0:
        return 0.0
    dcfg = draft_cfg or InferenceConfig()
    it = iteration_time(draft, draft_cluster, dcfg, decode_seqs=batch, decode_ctx_sum=batch * ctx, layer=layer)
    return steps * float(it["total"])


def parallel_draft_speedup(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, spec: SpeculativeConfig,
                           batch: int, ctx: float, *, draft_s: float, sync_s: float = 0.0,
                           layer: Layer = "curves") -> SpeculativeEstimate:
    """Speculation with the draft on a second device, overlapped with verification: a step costs
    ``max(draft_s, verify) + sync_s`` (``draft_s`` priced by the caller on the draft's device, e.g. with
    :func:`draft_model_time`). Plain decode and verification come from :func:`speculative_step`."""
    base = speculative_step(model, cluster, cfg, spec, batch, ctx, layer=layer)
    step = max(draft_s, base.verify_s) + sync_s
    tpot = step / base.mean_accepted
    return SpeculativeEstimate(method=f"{base.method}+parallel", mean_accepted=base.mean_accepted,
                               verified_tokens=base.verified_tokens, plain_step_s=base.plain_step_s,
                               draft_s=draft_s, verify_s=base.verify_s, step_s=step, tpot_s=tpot,
                               speedup=base.plain_step_s / tpot)
