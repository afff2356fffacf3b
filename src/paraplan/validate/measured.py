"""Validate paraplan against real steps measured on this machine (``paraplan validate measured``).

Runs the test GPT of :mod:`paraplan.testing.gpt` (plain PyTorch) over a grid of training configurations
(hidden 256-1024, 2-8 layers, sequence 128-1024, micro-batch 1-8, activation checkpointing on and off), a subset
data parallel over 2 local processes (torch DDP: gloo on CPU, NCCL on CUDA), and static inference batches
(prefill, then decode steps with a KV cache) at several batch sizes and lengths. Each is measured with warm-up
and repeats (median) and predicted by the unchanged estimators at four layers:

* ``spec``: the machine's spec-sheet entry with fixed textbook efficiencies;
* ``curves``: the same entry with the catalog's fitted curves and shared parameters (what paraplan says
  without calibration);
* ``kernels``: the calibrated profile's accelerator and curves (microbenchmarks only; shared parameters neutral,
  attention derate from the attention microbenchmark);
* ``calibrated``: the full profile, adding the shared parameters fitted on the probe steps (configurations this
  grid never uses).

The report follows the other validate commands: ``{"n_rows", "n_predicted", "median_ape", "p90_ape", "rows"}``
with the calibrated prediction as ``predicted``/``ape`` (APE as a fraction), plus the per-layer and per-kind
statistics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..calibrate.device import CalibrationError
from ..calibrate.profile import Profile
from ..calibrate.steps import (
    InferCase,
    TrainCase,
    measure_infer,
    measure_train,
    measure_train_ddp,
    predict_infer,
    predict_train,
)

LAYERS = ("spec", "curves", "kernels", "calibrated")
TARGETS = {"training": 0.15, "inference": 0.20}

#: the full grid: 14 single-process training configurations, 4 data-parallel ones, 6 inference batches
TRAIN_GRID = (
    TrainCase(256, 2, 128, 1), TrainCase(256, 8, 1024, 1), TrainCase(384, 4, 256, 4, True),
    TrainCase(512, 2, 512, 2), TrainCase(512, 6, 128, 8, True), TrainCase(512, 4, 1024, 1, True),
    TrainCase(768, 2, 256, 2), TrainCase(768, 4, 128, 4), TrainCase(1024, 2, 128, 2),
    TrainCase(1024, 2, 512, 1, True), TrainCase(384, 8, 512, 2), TrainCase(256, 4, 256, 8, True),
    TrainCase(896, 3, 256, 1), TrainCase(1024, 4, 256, 1, True),
)
DDP_GRID = (TrainCase(256, 2, 128, 2, ranks=2), TrainCase(512, 4, 256, 1, True, ranks=2),
            TrainCase(768, 2, 256, 2, ranks=2), TrainCase(1024, 2, 128, 1, ranks=2))
INFER_GRID = (InferCase(512, 4, 1, 128, 17), InferCase(512, 4, 8, 128, 17), InferCase(1024, 2, 1, 512, 17),
              InferCase(768, 4, 4, 256, 17), InferCase(256, 8, 16, 64, 17), InferCase(1024, 4, 2, 1024, 9))
#: the reduced grid of the CI test
TRAIN_QUICK = (TrainCase(256, 2, 128, 1), TrainCase(512, 2, 256, 2, True), TrainCase(768, 2, 128, 1))
DDP_QUICK = (TrainCase(256, 2, 128, 2, ranks=2),)
INFER_QUICK = (InferCase(512, 2, 4, 128, 9),)

GRIDS = ("full", "quick")


def grid_cases(grid: str) -> tuple[tuple[TrainCase, ...], tuple[TrainCase, ...], tuple[InferCase, ...]]:
    if grid == "full":
        return TRAIN_GRID, DDP_GRID, INFER_GRID
    if grid == "quick":
        return TRAIN_QUICK, DDP_QUICK, INFER_QUICK
    raise CalibrationError(f"grid must be one of {', '.join(GRIDS)}, not {grid!r}")


@dataclass
class MeasuredRow:
    row_id: str
    kind: str  # train | train_ddp | prefill | decode
    metric: str  # step_time_s | ttft_s | tpot_s
    config: dict[str, Any]
    label: str = ""
    measured: float | None = None
    times: list[float] = field(default_factory=list)
    by_layer: dict[str, float | None] = field(default_factory=dict)
    provenance: str = ""
    skipped: str | None = None

    @property
    def family(self) -> str:
        return "training" if self.kind.startswith("train") else "inference"

    def ape(self, layer: str = "calibrated") -> float | None:
        p = self.by_layer.get(layer)
        if p is None or self.measured is None or not self.measured or not math.isfinite(p):
            return None
        return abs(p - self.measured) / self.measured

    @property
    def predicted(self) -> float | None:
        return self.by_layer.get("calibrated")

    def to_json(self) -> dict[str, Any]:
        return {"row_id": self.row_id, "kind": self.kind, "label": self.label, "metric": self.metric,
                "measured": self.measured, "predicted": self.predicted, "ape": self.ape(), "skipped": self.skipped,
                "predicted_by_layer": self.by_layer, "ape_by_layer": {k: self.ape(k) for k in self.by_layer},
                "times_s": self.times, "config": self.config, "provenance": self.provenance}


def _stats(apes: list[float | None]) -> dict[str, Any]:
    a = np.array([x for x in apes if x is not None], dtype=float)
    if not a.size:
        return {"n_predicted": 0, "median_ape": None, "p90_ape": None, "mean_ape": None}
    return {"n_predicted": int(a.size), "median_ape": float(np.median(a)), "p90_ape": float(np.percentile(a, 90)),
            "mean_ape": float(np.mean(a))}


@dataclass
class MeasuredReport:
    device: str
    grid: str
    profile: str
    rows: list[MeasuredRow]
    threads: int
    dtype: str
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        main = _stats([r.ape() for r in self.rows])
        by_layer = {lay: {fam: _stats([r.ape(lay) for r in self.rows if r.family == fam])
                          for fam in ("training", "inference")} for lay in LAYERS}
        by_kind = {k: _stats([r.ape() for r in self.rows if r.kind == k])
                   for k in ("train", "train_ddp", "prefill", "decode")}
        targets = {fam: {"target_median_ape": t, "median_ape": by_layer["calibrated"][fam]["median_ape"],
                         "met": (by_layer["calibrated"][fam]["median_ape"] or math.inf) <= t}
                   for fam, t in TARGETS.items()}
        return {"n_rows": len(self.rows), **main, "by_layer": by_layer, "by_kind": by_kind, "targets": targets}

    def to_json(self) -> dict[str, Any]:
        return {**self.stats(), "device": self.device, "grid": self.grid, "profile": self.profile,
                "threads": self.threads, "dtype": self.dtype, "elapsed_s": round(self.elapsed_s, 1),
                "notes": self.notes, "rows": [r.to_json() for r in self.rows]}


Progress = Callable[[str, int, int], None]


def _quiet(label: str, done: int, total: int) -> None:
    return None


def _median(xs: list[float]) -> float | None:
    return float(np.median(xs)) if xs else None


def _case(row: MeasuredRow) -> TrainCase | InferCase:
    fields = TrainCase.__dataclass_fields__ if row.kind.startswith("train") else InferCase.__dataclass_fields__
    cls = TrainCase if row.kind.startswith("train") else InferCase
    return cls(**{k: row.config[k] for k in fields if k in row.config})  # type: ignore[arg-type]


def predict_rows(rows: list[MeasuredRow], profile: Profile) -> None:
    """Fill every row's ``by_layer`` predictions and ``provenance`` from ``profile`` (and its base entry)."""
    if profile.accelerator is None:
        raise CalibrationError("validate measured needs a hardware profile (from 'paraplan calibrate'), not a runs "
                               "profile")
    cal = profile.doc["calibration"]
    dtype = str(cal.get("dtype", "bf16"))
    src = profile.describe()
    kernels_cal = {"attention_derate": profile.calibration.get("attention_derate", 1.0), "compute_derate": 1.0,
                   "layer_overhead_s": 0.0, "step_overhead_s": 0.0}
    infer_neutral = {"compute_derate": 1.0, "step_overhead_s": 0.0, "layer_overhead_s": 0.0, "seq_overhead_s": 0.0}
    for row in rows:
        case = _case(row)
        row.by_layer = {}
        try:
            if isinstance(case, TrainCase):
                n = case.ranks
                base_c, cal_c = profile.cluster(n, calibrated=False), profile.cluster(n)
                row.by_layer["spec"] = predict_train(case, base_c, layer="spec", precision=dtype).step_time_s
                row.by_layer["curves"] = predict_train(case, base_c, layer="curves", precision=dtype).step_time_s
                row.by_layer["kernels"] = predict_train(case, cal_c, calibration=kernels_cal, precision=dtype,
                                                        calibration_source="neutral shared parameters").step_time_s
                est = predict_train(case, cal_c, calibration=profile.calibration, calibration_source=src,
                                    precision=dtype)
                row.by_layer["calibrated"] = est.step_time_s
                row.provenance = est.provenance
            else:
                attr = row.metric
                base_c, cal_c = profile.cluster(1, calibrated=False), profile.cluster(1)
                row.by_layer["spec"] = getattr(predict_infer(case, base_c, layer="spec"), attr)
                row.by_layer["curves"] = getattr(predict_infer(case, base_c, layer="curves"), attr)
                row.by_layer["kernels"] = getattr(predict_infer(case, cal_c, calibration=infer_neutral), attr)
                iest = predict_infer(case, cal_c, calibration=profile.inference_calibration or None)
                row.by_layer["calibrated"] = getattr(iest, attr)
                row.provenance = (f"{iest.provenance}; calibrated: {src} (kernel curves of family "
                                  f"{profile.accelerator.family}, engine parameters fitted on its probe steps)")
        except (ValueError, CalibrationError) as exc:
            row.skipped = row.skipped or f"not predicted: {' '.join(str(exc).split())}"


def measure_grid(device: str, grid: str, threads: int, dtype: str, *, warmup: int, repeats: int,
                 progress: Progress = _quiet) -> tuple[list[MeasuredRow], list[str]]:
    """Time every case of ``grid`` on ``device`` (rows without predictions) and notes on how."""
    train, ddp, infer = grid_cases(grid)
    total = len(train) + len(ddp) + len(infer)
    done = 0
    rows: list[MeasuredRow] = []
    notes: list[str] = []

    def failed(exc: BaseException) -> str:
        return f"measurement failed: {' '.join(str(exc).split())[:300]}"

    for i, case in enumerate(train):
        row = MeasuredRow(row_id=f"T{i + 1:02d}", kind=case.kind, metric="step_time_s", config=case.to_json(),
                          label=case.label())
        try:
            row.times = measure_train(case, device, dtype, warmup=warmup, repeats=repeats)
            row.measured = _median(row.times)
        except (RuntimeError, MemoryError) as exc:  # e.g. out of memory on a small device
            row.skipped = failed(exc)
        rows.append(row)
        done += 1
        progress(case.label(), done, total)

    for i, ic in enumerate(infer):
        pre: list[float] = []
        dec: list[float] = []
        why = None
        try:
            pre, dec = measure_infer(ic, device, dtype, warmup=warmup, repeats=repeats)
        except (RuntimeError, MemoryError) as exc:
            why = failed(exc)
        for kind, metric, times in (("prefill", "ttft_s", pre), ("decode", "tpot_s", dec)):
            rows.append(MeasuredRow(row_id=f"I{i + 1:02d}-{kind}", kind=kind, metric=metric, config=ic.to_json(),
                                    label=ic.label(), times=times, measured=_median(times), skipped=why))
        done += 1
        progress(ic.label(), done, total)

    if ddp:
        from ..calibrate.device import require_torch

        ranks = ddp[0].ranks
        times_all: list[list[float]] = [[] for _ in ddp]
        why = None
        if device == "cpu" and ranks * threads > _cpus():
            notes.append(f"data-parallel rows use {ranks} processes x {threads} thread(s) on {_cpus()} core(s): "
                         "oversubscribed")
        if device == "cuda" and require_torch().cuda.device_count() < ranks:
            why = f"needs {ranks} GPUs, {require_torch().cuda.device_count()} visible"
        else:
            try:
                times_all = list(measure_train_ddp(list(ddp), device, dtype, threads, warmup=warmup,
                                                   repeats=repeats))
            except CalibrationError as exc:
                why = failed(exc)
        for i, case in enumerate(ddp):
            rows.append(MeasuredRow(row_id=f"D{i + 1:02d}", kind=case.kind, metric="step_time_s",
                                    config=case.to_json(), label=case.label(), times=times_all[i],
                                    measured=_median(times_all[i]), skipped=why))
            done += 1
            progress(case.label(), done, total)
    return rows, notes


def validate_measured(profile: Profile, device: str | None = None, *, grid: str = "full", warmup: int | None = None,
                      repeats: int | None = None, progress: Progress = _quiet) -> MeasuredReport:
    """Measure the grid on ``device`` (default: the profile's) and compare with the four prediction layers."""
    from ..calibrate.device import check_device, setup_process

    cal = profile.doc["calibration"]
    if profile.accelerator is None:
        raise CalibrationError("validate measured needs a hardware profile (from 'paraplan calibrate'), not a runs "
                               "profile")
    device = device or str(cal.get("device", "cpu"))
    if device != cal.get("device"):
        raise CalibrationError(f"the profile was calibrated on device '{cal.get('device')}', not '{device}': "
                               f"run paraplan calibrate --device {device}")
    grid_cases(grid)
    check_device(device)
    threads = int(cal.get("threads", 1))
    dtype = str(cal.get("dtype", "bf16"))
    setup_process(device, threads)
    quick = grid == "quick"
    warmup = warmup if warmup is not None else (1 if quick else 2)
    repeats = repeats if repeats is not None else (3 if quick else 5)
    started = time.perf_counter()
    rows, notes = measure_grid(device, grid, threads, dtype, warmup=warmup, repeats=repeats, progress=progress)
    predict_rows(rows, profile)
    return MeasuredReport(device=device, grid=grid, profile=profile.describe(), rows=rows, threads=threads,
                          dtype=dtype, elapsed_s=time.perf_counter() - started, notes=notes)


def repredict(doc: dict[str, Any], profile: Profile) -> MeasuredReport:
    """Predict the measurements of an earlier report (its JSON) again with another profile: compare profiles
    without re-measuring."""
    rows = []
    for r in doc.get("rows", []):
        times = [float(t) for t in r.get("times_s") or []]
        skipped = r.get("skipped") if str(r.get("skipped") or "").startswith("measurement failed") else None
        rows.append(MeasuredRow(row_id=r["row_id"], kind=r["kind"], metric=r["metric"], config=r["config"],
                                label=r.get("label", ""), times=times, measured=_median(times), skipped=skipped))
    predict_rows(rows, profile)
    cal = profile.doc["calibration"]
    return MeasuredReport(device=str(doc.get("device", cal.get("device"))), grid=str(doc.get("grid", "?")),
                          profile=profile.describe(), rows=rows, threads=int(doc.get("threads", 1)),
                          dtype=str(doc.get("dtype", "bf16")), notes=list(doc.get("notes", []))
                          + ["predictions recomputed from stored measurements"])


def _cpus() -> int:
    from ..calibrate.device import available_cpus

    return available_cpus()
