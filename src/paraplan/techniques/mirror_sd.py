"""Mirror Speculative Decoding: the draft runs on a second accelerator in parallel with the target's suffix.

Bhendawade et al. (Apple), *Mirror Speculative Decoding: Breaking the Serial Barrier in LLM Inference*,
arXiv 2510.13161. Classic speculative decoding is serial: draft ``gamma`` tokens, then verify them, so a
step costs ``t_draft + t_verify``. Mirror-SD launches the draft's rollout from an early-exit signal of the
target (after a fraction ``e`` of its layers) on another device (an NPU next to the GPUs), so the draft runs
while the target computes its remaining layers; speculative streaming lets the draft emit ``s`` tokens per
draft step. One step costs::

    t_step = e t_verify + max((1 - e) t_verify, ceil(gamma / s) t_draft_step) + t_sync

and the speedup over plain decoding is ``tau t_plain / t_step`` (``tau`` = mean accepted tokens per step, a
measured input). Target and draft times come from paraplan's estimator (:func:`paraplan.infer.
speculative_step`, :func:`paraplan.techniques.specdecode.draft_model_time`); the draft device is any catalog
accelerator.
"""

from __future__ import annotations

import math

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.efficiency import Layer
from ..infer import InferenceConfig, SpeculativeConfig, speculative_step
from ..specs import ClusterSpec, ModelSpec
from .specdecode import draft_model_time


def mirror_step(target: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, draft: ModelSpec,
                draft_cluster: ClusterSpec, *, gamma: int, tau: float, batch: int = 1, ctx: float = 1024.0,
                exit_fraction: float = 0.5, stream: int = 1, sync_s: float = 20e-6,
                layer: Layer = "curves") -> dict[str, float]:
    """Mirror-SD step against serial speculation with the same draft and the same acceptance.

    Returns plain, verify, draft seconds, the Mirror-SD and serial step times and both speedups."""
    if not (0.0 <= exit_fraction <= 1.0):
        raise ValueError(f"exit_fraction must be within 0-1, got {exit_fraction}")
    spec = SpeculativeConfig(method="lookup", draft_len=gamma, mean_accepted=min(tau, gamma + 1.0))
    base = speculative_step(target, cluster, cfg, spec, batch, ctx, layer=layer)
    draft_s = draft_model_time(draft, draft_cluster, math.ceil(gamma / max(stream, 1)), batch, ctx, layer=layer)
    v = base.verify_s
    mirror = exit_fraction * v + max((1.0 - exit_fraction) * v, draft_s) + sync_s
    serial = draft_s + v
    return {"plain_s": base.plain_step_s, "verify_s": v, "draft_s": draft_s, "mirror_step_s": mirror,
            "serial_step_s": serial, "tau": base.mean_accepted,
            "mirror_speedup": base.mean_accepted * base.plain_step_s / mirror,
            "serial_speedup": base.mean_accepted * base.plain_step_s / serial}


def mirror_speedup(target: str, gpus: int, tp: int, draft: str, draft_accelerator: str, gamma: int, tau: float,
                   cluster: str = "dgx-h100", stream: int = 1, exit_fraction: float = 0.5,
                   batch: int = 1, ctx: float = 1024.0) -> ClaimValue:
    """Claim: Mirror-SD speedup of a target on ``gpus`` accelerators with the draft on ``draft_accelerator``."""
    t = get_model(target)
    c = get_cluster(f"{cluster}:{gpus}")
    d = get_model(draft)
    dc = get_cluster(f"{draft_accelerator}:1")
    r = mirror_step(t, c, InferenceConfig(tp=tp), d, dc, gamma=gamma, tau=tau, batch=batch, ctx=ctx,
                    exit_fraction=exit_fraction, stream=stream)
    return ClaimValue(r["mirror_speedup"], r)


def mirror_over_serial(target: str, gpus: int, tp: int, draft: str, draft_accelerator: str, gamma: int,
                       tau: float, cluster: str = "dgx-h100", stream: int = 1,
                       exit_fraction: float = 0.5) -> ClaimValue:
    """Claim: Mirror-SD speedup / serial speculation speedup at the same draft and acceptance."""
    r = mirror_speedup(target, gpus, tp, draft, draft_accelerator, gamma, tau, cluster, stream,
                       exit_fraction).details
    return ClaimValue(r["mirror_speedup"] / r["serial_speedup"], r)
