"""Goodput of a long training job with failures and checkpoints: the shared model behind C4, DataStates-LLM and
Universal Checkpointing, and behind ``paraplan train --tokens N``'s goodput section.

A job needs ``W`` seconds of failure-free work. Every ``tau`` seconds of work it saves a checkpoint that stalls
training for ``delta`` seconds. Failures arrive as a Poisson process with mean time between failures ``M`` (for the
whole job: the per-accelerator MTBF divided by the number of accelerators). After a failure the job spends ``R``
seconds detecting it, restarting and reloading, then redoes the work since the last durable checkpoint.

* Young (1974) / Daly (2006, "A higher order estimate of the optimum checkpoint interval for restart dumps",
  FGCS 22) optimum interval: ``tau* = sqrt(2 delta M) [1 + sqrt(delta / 2M) / 3 + delta / 18M] - delta``
  (``delta < 2M``; else ``M``); Young's first-order form is ``sqrt(2 delta M)``.
* Daly's expected wall time for exponential failures (his eq. 20, failures during restart included):
  ``T = M e^(R/M) (e^((tau + delta)/M) - 1) W / tau``.
* Split into named components that add up to ``T``: useful work ``W``, checkpoint stalls ``(W / tau) delta``,
  detection and restart ``(T / M) R``, and the lost (re-done) work, the remainder.
* Synchronous checkpoint stall: device-to-host copy plus the write to storage. Asynchronous (lazy, DataStates-LLM
  style): the device-to-host copy overlaps the next forward and backward pass, so the stall is only the part of
  the copy that does not fit in that window plus any wait for the previous flush; the checkpoint becomes durable
  one flush later, so each failure loses that flush latency of extra work on average (added to ``R``).

:func:`simulate_goodput` is a Monte-Carlo of the same process (for C4, whose numbers come from production
measurements, and as a check of the closed form). Defaults live in ``catalog/rules/resilience.yaml`` with sources.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from ..cost import memory as M
from ..errors import ConfigError
from ..specs import ModelSpec

__all__ = [
    "GoodputEstimate", "resilience_defaults", "checkpoint_bytes", "young_interval", "daly_interval",
    "expected_wall_time", "checkpoint_stall", "goodput", "simulate_goodput", "job_mtbf_s",
]

GOODPUT_COMPONENTS = ("useful", "checkpoint", "restart", "lost_work")


@cache
def resilience_defaults() -> dict[str, float]:
    """Default MTBF, detection, restart and bandwidth figures (``catalog/rules/resilience.yaml``), by key."""
    text = resources.files("paraplan.catalog").joinpath("rules/resilience.yaml").read_text(encoding="utf-8")
    doc = (yaml.safe_load(text) or {}).get("resilience", {})
    return {k: float(v["value"]) for k, v in doc.items()}


def resilience_sources() -> dict[str, str]:
    """Where each default comes from (for --json and the docs)."""
    text = resources.files("paraplan.catalog").joinpath("rules/resilience.yaml").read_text(encoding="utf-8")
    doc = (yaml.safe_load(text) or {}).get("resilience", {})
    return {k: " ".join(str(v.get("source", "")).split()) for k, v in doc.items()}


def checkpoint_bytes(model: ModelSpec, *, optimizer: str = "adamw", precision: str = "bf16",
                     include_optimizer: bool = True) -> float:
    """Bytes of one full training checkpoint: 16-bit weights plus the optimizer states (fp32 master, m, v for Adam).

    Gradients are not saved. Uses paraplan.cost.memory's per-parameter byte tables."""
    p = float(model.n_params())
    w = M.WEIGHT_BYTES[precision] if precision != "fp32" else 4.0
    if not include_optimizer:
        return p * w
    opt = M.OPT_BYTES_FP32[optimizer] if precision == "fp32" else M.OPT_BYTES_MIXED[optimizer]
    return p * (w + opt)


def job_mtbf_s(n_accelerators: int, mtbf_hours_per_accelerator: float | None = None) -> float:
    """Mean time between failures of a job on ``n`` accelerators (independent failures: MTBF_acc / n), seconds."""
    if n_accelerators < 1:
        raise ConfigError("a job needs at least one accelerator")
    per = resilience_defaults()["mtbf_hours_per_accelerator"] if mtbf_hours_per_accelerator is None \
        else mtbf_hours_per_accelerator
    if not per > 0:
        raise ConfigError(f"MTBF must be > 0 hours, got {per}")
    return per * 3600.0 / n_accelerators


def young_interval(stall_s: float, mtbf_s: float) -> float:
    """Young's first-order optimum work between checkpoints: ``sqrt(2 delta M)``."""
    return math.sqrt(2.0 * max(stall_s, 0.0) * mtbf_s)


def daly_interval(stall_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum work between checkpoints (seconds); ``M`` when ``delta >= 2M``."""
    d, m = max(stall_s, 0.0), mtbf_s
    if d <= 0.0:
        return 0.0
    if d >= 2.0 * m:
        return m
    r = d / (2.0 * m)
    return math.sqrt(2.0 * d * m) * (1.0 + math.sqrt(r) / 3.0 + r / 9.0) - d


def expected_wall_time(work_s: Any, interval_s: Any, stall_s: Any, mtbf_s: Any, restart_s: Any) -> np.ndarray:
    """Daly's expected wall time ``M e^(R/M) (e^((tau+delta)/M) - 1) W / tau`` (broadcasts over arrays).

    ``mtbf_s = inf`` gives the failure-free ``W (1 + delta / tau)``."""
    w, tau, d, m, r = (np.asarray(x, dtype=float) for x in (work_s, interval_s, stall_s, mtbf_s, restart_s))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        finite = np.isfinite(m)
        mm = np.where(finite, m, 1.0)
        t = mm * np.exp(r / mm) * np.expm1((tau + d) / mm) * w / tau
        return np.where(finite, t, w * (1.0 + d / tau))


def checkpoint_stall(ckpt_bytes: float, n_accelerators: int, *, storage_gbs_per_accelerator: float,
                     d2h_gbs_per_accelerator: float, asynchronous: bool, overlap_window_s: float = 0.0,
                     interval_wall_s: float = math.inf) -> dict[str, float]:
    """Training time one checkpoint costs, and when it is durable.

    Every rank holds ``1/n`` of the state (ZeRO-style sharding). ``d2h_s``: copy of a rank's shard to host memory;
    ``write_s``: the whole checkpoint over the job's share of storage bandwidth (``n * storage_gbs``).
    Synchronous: stall = d2h + write. Asynchronous: stall = max(0, d2h - overlap window) + max(0, write - time to
    the next checkpoint); durable ``d2h + write`` after the snapshot starts (the extra lost work on a failure)."""
    if n_accelerators < 1 or not storage_gbs_per_accelerator > 0 or not d2h_gbs_per_accelerator > 0:
        raise ConfigError("checkpoint needs >= 1 accelerator and positive storage and device-to-host bandwidths")
    d2h = ckpt_bytes / n_accelerators / (d2h_gbs_per_accelerator * 1e9)
    write = ckpt_bytes / (n_accelerators * storage_gbs_per_accelerator * 1e9)
    if asynchronous:
        stall = max(0.0, d2h - overlap_window_s) + max(0.0, write - interval_wall_s)
        latency = d2h + write
    else:
        stall = d2h + write
        latency = 0.0
    return {"d2h_s": d2h, "write_s": write, "stall_s": stall, "durability_latency_s": latency}


class GoodputEstimate(BaseModel):
    """Wall time of a job with failures and checkpoints. ``components_s`` add up to ``wall_time_s``."""

    model_config = ConfigDict(frozen=True)
    work_s: float
    wall_time_s: float
    goodput: float  # useful / total
    components_s: dict[str, float]
    checkpoint_interval_s: float  # work between checkpoints
    checkpoint_interval_steps: int | None = None
    checkpoint_stall_s: float
    checkpoint_bytes: float | None = None
    checkpoint_write_s: float | None = None
    checkpoint_d2h_s: float | None = None
    asynchronous: bool = False
    mtbf_job_s: float
    restart_s: float
    expected_failures: float
    checkpoint_overhead: float  # checkpoint stalls / wall time
    interval_rule: str = "daly"
    assumptions: list[str] = []


def goodput(work_s: float, *, mtbf_s: float, restart_s: float, stall_s: float, interval_s: float | None = None,
            durability_latency_s: float = 0.0, step_s: float | None = None) -> GoodputEstimate:
    """Expected wall time and goodput of ``work_s`` seconds of work (Daly's model); ``interval_s=None`` uses Daly's
    optimum (rounded to whole steps when ``step_s`` is given)."""
    if not work_s > 0:
        raise ConfigError(f"work must be > 0 s, got {work_s}")
    if not mtbf_s > 0 or restart_s < 0 or stall_s < 0:
        raise ConfigError("MTBF must be > 0, restart and checkpoint stall >= 0")
    rule = "given"
    if interval_s is None:
        rule = "daly"
        interval_s = daly_interval(stall_s, mtbf_s) if stall_s > 0 else min(work_s, mtbf_s)
        interval_s = max(interval_s, step_s or 0.0, 1e-9)
    steps = None
    if step_s:
        steps = max(int(round(interval_s / step_s)), 1)
        interval_s = steps * step_s
    interval_s = min(interval_s, work_s)
    r_eff = restart_s + durability_latency_s
    total = float(expected_wall_time(work_s, interval_s, stall_s, mtbf_s, r_eff))
    ckpt = work_s / interval_s * stall_s
    n_fail = total / mtbf_s if math.isfinite(mtbf_s) else 0.0
    restart = n_fail * restart_s
    lost = max(total - work_s - ckpt - restart, 0.0)
    total = work_s + ckpt + restart + lost
    return GoodputEstimate(
        work_s=work_s, wall_time_s=total, goodput=work_s / total,
        components_s={"useful": work_s, "checkpoint": ckpt, "restart": restart, "lost_work": lost},
        checkpoint_interval_s=interval_s, checkpoint_interval_steps=steps, checkpoint_stall_s=stall_s,
        mtbf_job_s=mtbf_s, restart_s=restart_s, expected_failures=n_fail, checkpoint_overhead=ckpt / total,
        interval_rule=rule,
    )


def simulate_goodput(work_s: float, *, interval_s: float, stall_s: float, mtbf_s: float, restart_s: float,
                     runs: int = 2000, seed: int = 0, max_events: int = 1_000_000) -> dict[str, float]:
    """Monte-Carlo of the same job: exponential failures (also during restart and checkpointing), roll back to the
    last completed checkpoint. Returns mean wall time, its standard error, and mean failures per run."""
    rng = np.random.default_rng(seed)
    n_seg = max(int(math.ceil(work_s / interval_s - 1e-9)), 1)
    seg_work = np.full(n_seg, interval_s)
    seg_work[-1] = work_s - interval_s * (n_seg - 1)
    seg_len = seg_work + stall_s  # every segment ends with a checkpoint (the last one too, as in Daly's model)
    t = np.zeros(runs)
    fails = np.zeros(runs)
    seg = np.zeros(runs, dtype=np.int64)
    events = 0
    while True:
        active = seg < n_seg
        if not active.any():
            break
        events += int(active.sum())
        if events > max_events * max(runs // 100, 1):
            raise ConfigError("simulate_goodput: too many failures for the work; raise the MTBF or the interval")
        need = seg_len[np.minimum(seg, n_seg - 1)]
        # restart itself may fail: sample the time to get through R without a failure (geometric retries)
        ttf = rng.exponential(mtbf_s, runs)
        ok = active & (ttf >= need)
        bad = active & ~ok
        t = t + np.where(ok, need, 0.0)
        seg = seg + ok
        # a failure: lose the partial segment, then detect/restart (a failure during the restart starts it again)
        t = t + np.where(bad, ttf, 0.0)
        pending = bad
        while pending.any():
            ttf_r = rng.exponential(mtbf_s, runs)
            hit = pending & (ttf_r < restart_s)
            t = t + np.where(hit, ttf_r, 0.0) + np.where(pending & ~hit, restart_s, 0.0)
            fails = fails + hit
            pending = hit
        fails = fails + bad
    return {"mean_wall_s": float(t.mean()), "stderr_s": float(t.std(ddof=1) / math.sqrt(runs)) if runs > 1 else 0.0,
            "mean_failures": float(fails.mean()), "goodput": float(work_s / t.mean())}


def training_goodput(est: Any, model: ModelSpec, tokens: float, *, mtbf_hours_per_accelerator: float | None = None,
                     checkpoint_every_steps: int | None = None, storage_gbs_per_accelerator: float | None = None,
                     asynchronous: bool = False, restart_minutes: float | None = None,
                     d2h_gbs_per_accelerator: float | None = None) -> GoodputEstimate:
    """Goodput of training ``tokens`` tokens with the plan of a :class:`~paraplan.train.TrainingEstimate`.

    ``restart_minutes`` is detection plus restart (default: the yaml's ``detect_minutes + restart_minutes``); the
    checkpoint holds 16-bit weights and the optimizer states; the asynchronous copy overlaps one step's forward and
    backward (the step minus its optimizer update); ``checkpoint_every_steps=None`` uses Daly's optimum."""
    d = resilience_defaults()
    n = int(est.n_accelerators)
    mtbf = job_mtbf_s(n, mtbf_hours_per_accelerator)
    restart_s = 60.0 * (d["detect_minutes"] + d["restart_minutes"] if restart_minutes is None else restart_minutes)
    if restart_s < 0:
        raise ConfigError("restart time must be >= 0 minutes")
    storage = d["storage_gbs_per_accelerator"] if storage_gbs_per_accelerator is None else storage_gbs_per_accelerator
    d2h = d["d2h_gbs_per_accelerator"] if d2h_gbs_per_accelerator is None else d2h_gbs_per_accelerator
    s = est.strategy
    ckb = checkpoint_bytes(model, optimizer=s.optimizer, precision=s.precision)
    step = float(est.step_time_s)
    window = max(step - float(est.time.components_s.get("optimizer", 0.0)), 0.0)
    work = tokens / float(est.tokens_per_s)
    interval = None if checkpoint_every_steps is None else checkpoint_every_steps * step
    if checkpoint_every_steps is not None and checkpoint_every_steps < 1:
        raise ConfigError("--checkpoint-every must be >= 1 step")
    cs = checkpoint_stall(ckb, n, storage_gbs_per_accelerator=storage, d2h_gbs_per_accelerator=d2h,
                          asynchronous=asynchronous, overlap_window_s=window,
                          interval_wall_s=math.inf if interval is None else interval)
    if asynchronous and interval is None:
        # lazy snapshots: checkpoint as often as Daly's rule says for the blocking part, but no more often than a
        # flush takes (a snapshot never waits for the previous flush)
        blocking = cs["stall_s"]
        interval = max(daly_interval(blocking, mtbf) if blocking > 0 else 0.0, cs["write_s"], step)
        interval = step * math.ceil(interval / step - 1e-9)
        cs = checkpoint_stall(ckb, n, storage_gbs_per_accelerator=storage, d2h_gbs_per_accelerator=d2h,
                              asynchronous=True, overlap_window_s=window, interval_wall_s=interval)
        g = goodput(work, mtbf_s=mtbf, restart_s=restart_s, stall_s=cs["stall_s"], interval_s=interval,
                    durability_latency_s=cs["durability_latency_s"], step_s=step)
        g = g.model_copy(update={"interval_rule": "daly"})
    else:
        g = goodput(work, mtbf_s=mtbf, restart_s=restart_s, stall_s=cs["stall_s"], interval_s=interval,
                    durability_latency_s=cs["durability_latency_s"], step_s=step)
    notes = [
        f"failures: Poisson, MTBF {mtbf / 3600:.2f} h for the job ({(mtbf * n) / 3600:,.0f} h per accelerator / {n})",
        f"checkpoint {ckb / 1e9:,.1f} GB (16-bit weights + optimizer states), sharded over {n} ranks; storage "
        f"{storage:g} GB/s and device-to-host {d2h:g} GB/s per accelerator",
        f"{'asynchronous (lazy) snapshot overlapping forward/backward' if asynchronous else 'synchronous'} "
        "checkpoints; each failure costs detection + restart plus the work since the last durable checkpoint",
        "expected wall time: Daly (2006) eq. 20; interval: "
        + (("Daly's optimum" + (", at least one flush" if asynchronous else "")) if g.interval_rule == "daly"
           else "as given"),
    ]
    return g.model_copy(update={"checkpoint_bytes": ckb, "checkpoint_write_s": cs["write_s"],
                                "checkpoint_d2h_s": cs["d2h_s"], "asynchronous": asynchronous, "assumptions": notes})
