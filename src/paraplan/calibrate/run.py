"""``paraplan calibrate``: microbenchmarks -> curves -> a profile document.

Order: the spec-sheet entry of this machine (:mod:`paraplan.calibrate.host`); GEMM, STREAM and layer memory ops,
attention (forward, forward+backward, decode), collectives between ``ranks`` local processes; fits into the
curve forms (:mod:`paraplan.calibrate.fit`); then *probe steps*: a few small training steps and inference batches of
the test GPT, configurations that the measured validation grid never uses, from which the shared training and
inference parameters (per-layer, per-step and per-sequence overheads: what kernels measured in isolation do not
see; a compute derate where it predicts held-out probes better) are fitted through the unchanged estimators
(:mod:`paraplan.calibrate.shared`), with their leave-one-out error. The attention derate comes from the attention
microbenchmark (training forward+backward against the fitted forward curve), not from the probes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from ..train import ATTN_BWD_FACTOR
from . import bench, fit
from .device import (
    CalibrationError,
    check_device,
    default_dtype,
    default_threads,
    require_torch,
    setup_process,
)
from .host import cpu_entry, cuda_entry
from .profile import FORMAT, Profile, family_name
from .shared import Row, select_fit
from .steps import InferCase, TrainCase, measure_infer, measure_train, predict_infer, train_step_function

#: Probe configurations (never in the validation grid of paraplan.validate.measured: a test checks it)
PROBE_TRAIN = (
    TrainCase(128, 1, 64, 1), TrainCase(192, 2, 128, 2), TrainCase(320, 3, 192, 1, True),
    TrainCase(448, 2, 384, 2), TrainCase(640, 2, 256, 1, True), TrainCase(576, 3, 96, 4),
    TrainCase(832, 2, 192, 2), TrainCase(960, 1, 384, 1, True),
)
PROBE_TRAIN_QUICK = (TrainCase(128, 1, 64, 1), TrainCase(320, 3, 192, 1, True), TrainCase(640, 2, 256, 1))
PROBE_INFER = (InferCase(192, 2, 1, 96, 9), InferCase(320, 3, 4, 160, 9), InferCase(448, 1, 2, 320, 9),
               InferCase(576, 2, 8, 64, 9), InferCase(896, 2, 1, 256, 9), InferCase(640, 3, 2, 192, 9))
PROBE_INFER_QUICK = (InferCase(192, 2, 1, 96, 5), InferCase(640, 2, 4, 160, 5))

#: Parameter sets the probes may fit; the one with the lowest leave-one-out error on the probes is kept
#: (:func:`paraplan.calibrate.shared.select_fit`). The kernels are measured: the overheads are what they do not
#: see; a compute derate on top is kept only where it predicts held-out probes better.
TRAIN_CANDIDATES = (("layer_overhead_s", "step_overhead_s"),
                    ("compute_derate", "layer_overhead_s", "step_overhead_s"))
INFER_CANDIDATES = (("step_overhead_s", "layer_overhead_s", "seq_overhead_s"),
                    ("compute_derate", "step_overhead_s", "layer_overhead_s", "seq_overhead_s"))
NEUTRAL_TRAINING = {"compute_derate": 1.0, "layer_overhead_s": 0.0, "step_overhead_s": 0.0}
NEUTRAL_INFERENCE = {"compute_derate": 1.0, "step_overhead_s": 0.0, "layer_overhead_s": 0.0, "seq_overhead_s": 0.0}

ProgressFn = Callable[[str, int, int], None]


def _quiet(task: str, done: int, total: int) -> None:
    return None


def _bpe(dtype: str) -> float:
    return {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0}[dtype]


def calibrate(device: str = "cpu", *, quick: bool = False, threads: int | None = None, ranks: int = 2,
              dtype: str | None = None, probes: bool = True, progress: ProgressFn = _quiet) -> dict[str, Any]:
    """Measure this machine and return the profile document (see :mod:`paraplan.calibrate.profile`)."""
    torch = require_torch()
    check_device(device)
    if ranks < 1:
        raise CalibrationError(f"ranks must be >= 1, got {ranks}")
    threads = threads or default_threads(device, ranks)
    if threads < 1:
        raise CalibrationError(f"threads must be >= 1, got {threads}")
    dtype = dtype or default_dtype(device)
    setup_process(device, threads)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args, progress=lambda d, n: progress(name, d, n), **kw)
        timings[name] = round(time.perf_counter() - t, 2)
        return out

    if device == "cpu":
        base, host = cpu_entry(threads, ranks)
        known = True
    else:
        base, host, known = cuda_entry()
    # ------------------------------------------------------------- microbenchmarks
    gemm_pts = step(f"GEMM {dtype}", bench.bench_gemm, device, dtype, quick)
    gemm32 = [] if quick else step("GEMM fp32", bench.bench_gemm, device, "fp32", quick)
    stream = step("STREAM", bench.bench_stream, device, quick)
    memops = step("layer memory ops", bench.bench_memory_ops, device, dtype, quick)
    attn = step("attention", bench.bench_attention, device, dtype, quick)
    dec = step("decode attention", bench.bench_decode, device, dtype, quick)
    multi = step("collectives", bench.bench_collectives, device, dtype, ranks, threads, quick)
    coll, load = multi["points"], multi["load"]

    # ------------------------------------------------------------- the calibrated accelerator entry
    triad = float(stream["triad_gbs"])
    if not known:  # a device the catalog does not know: measured peaks stand in for the spec sheet
        base["peak_tflops"] = {dtype: round(bench.peak_measured(gemm_pts) / 1e12, 4)}
        if gemm32:
            base["peak_tflops"]["fp32"] = round(bench.peak_measured(gemm32) / 1e12, 4)
        base["memory_bw_gbs"] = round(triad, 3)
    entry = {k: v for k, v in base.items()}
    entry["memory_bw_gbs"] = round(triad, 3)
    peaks = {k: float(v) * 1e12 for k, v in entry["peak_tflops"].items()}
    peak16 = peaks.get(dtype) or peaks.get("bf16") or peaks.get("fp16") or max(peaks.values())
    bw = triad * 1e9
    bpe = _bpe(dtype)

    curves: dict[str, Any] = {"gemm": {"bf16": {**fit.fit_gemm(gemm_pts, peak16, bw, bpe), "peak_dtype": dtype,
                                                "measured_dtype": dtype}}}
    if gemm32:
        curves["gemm"]["fp32"] = {**fit.fit_gemm(gemm32, peaks.get("fp32", peak16), bw, 4.0), "peak_dtype": "fp32"}
    curves["memory"] = {**fit.fit_memory(memops, bw), "source": f"measured: LayerNorm/GELU/add in {dtype}"}
    decode = fit.fit_decode(dec, bw, bpe)
    prefill = fit.fit_prefill(attn, peak16, bw, bpe, decode["eff_kv"])
    curves["attention"] = {"prefill": {"bf16": prefill}, "decode": {"bf16": decode}}
    attn_bwd = fit.attention_backward_derate(attn, prefill, peak16, bw, bpe, decode["eff_kv"], ATTN_BWD_FACTOR)
    link: dict[str, Any] = {}
    if coll:
        spec_link = float(base.get("scaleup_bw_gbs") or 0.0) * 1e9 if device == "cuda" else 0.0
        section, link_bw, latency = fit.fit_collectives(coll, spec_link or None)
        curves["collectives"] = {"scaleup": section}
        fabric = "gloo over local sockets / shared memory" if device == "cpu" else "NCCL between local GPUs"
        link = {"name": f"{fabric}, {ranks} processes", "bw_gbs": round(link_bw / 1e9, 4),
                "latency_us": round(latency * 1e6, 3), "reference": "spec scale-up link" if spec_link else
                "best measured bus bandwidth"}
        if device == "cpu":
            entry.update(scaleup_name=link["name"], scaleup_bw_gbs=link["bw_gbs"], scaleup_domain=ranks)
    loaded: dict[str, Any] = {}
    if load and device == "cpu" and load.get("compute_factor") and load.get("bandwidth_factor"):
        # on one host the ranks share cores, caches, memory channels and power: a rank of a job that keeps all
        # `ranks` processes busy is a slower accelerator (peaks and bandwidth scaled by the measured factors)
        loaded = {"ranks": ranks, "compute_factor": round(min(float(load["compute_factor"]), 1.0), 4),
                  "bandwidth_factor": round(min(float(load["bandwidth_factor"]), 1.0), 4), "measured": load}
    measured = {"gemm": gemm_pts, "gemm_fp32": gemm32, "stream": stream, "memory_ops": memops, "attention": attn,
                "decode": dec, "collectives": coll, "load": load}
    entry["name"] = f"{base['name']}-calibrated"
    entry["family"] = family_name(entry["name"], measured)
    entry["aliases"] = []
    entry["source"] = (f"calibrated by paraplan calibrate ({dt.date.today().isoformat()}): peaks from the spec sheet "
                       f"[{base.get('source', '')}]; memory_bw_gbs = STREAM triad, measured"
                       + ("; scale-up = measured local collectives" if coll else ""))
    cal: dict[str, Any] = {
        "format": FORMAT, "kind": "hardware", "created": dt.datetime.now().isoformat(timespec="seconds"),
        "device": device, "dtype": dtype, "threads": threads, "ranks": ranks, "quick": quick,
        "torch": torch.__version__, "host": host, "base": base, "link": link, "loaded": loaded, "curves": curves,
        "training": {"attention_derate": attn_bwd["attention_derate"]},
        "inference": {},
        "fit": {"attention_backward": attn_bwd, "stream": stream},
        "timings_s": timings,
        "measurements": measured,
    }
    doc = {**entry, "calibration": cal}

    # ------------------------------------------------------------- probe steps -> shared parameters
    if probes:
        prof = Profile(doc)
        cluster = prof.cluster(1)
        train_cases = PROBE_TRAIN_QUICK if quick else PROBE_TRAIN
        rows = []
        t = time.perf_counter()
        for i, case in enumerate(train_cases):
            times = measure_train(case, device, dtype, warmup=1 if quick else 2, repeats=3 if quick else 5)
            rows.append(Row(row_id=case.label(), measured=float(sorted(times)[len(times) // 2]),
                            predict=train_step_function(case, cluster, dtype), info={"times": times}))
            progress("probe training steps", i + 1, len(train_cases))
        timings["probe training steps"] = round(time.perf_counter() - t, 2)
        fixed = {"attention_derate": attn_bwd["attention_derate"]}
        tfit, tsel = select_fit(rows, TRAIN_CANDIDATES, fixed)
        cal["training"] = {**NEUTRAL_TRAINING, **fixed, **tfit.params}
        cal["fit"]["training_probes"] = {**tfit.to_json(), "selection": tsel,
                                         "cases": [c.to_json() for c in train_cases]}

        infer_cases = PROBE_INFER_QUICK if quick else PROBE_INFER
        irows = []
        t = time.perf_counter()
        for i, ic in enumerate(infer_cases):
            pre, dec_t = measure_infer(ic, device, dtype, warmup=1 if quick else 2, repeats=3 if quick else 5)

            def pred(p: dict[str, float], ic: InferCase = ic, what: str = "ttft_s") -> float:
                return float(getattr(predict_infer(ic, cluster, calibration=p), what))

            irows.append(Row(row_id=f"prefill {ic.label()}", measured=sorted(pre)[len(pre) // 2], predict=pred))
            irows.append(Row(row_id=f"decode {ic.label()}", measured=sorted(dec_t)[len(dec_t) // 2],
                             predict=lambda p, ic=ic: float(predict_infer(ic, cluster, calibration=p).tpot_s)))
            progress("probe inference batches", i + 1, len(infer_cases))
        timings["probe inference batches"] = round(time.perf_counter() - t, 2)
        ifit, isel = select_fit(irows, INFER_CANDIDATES)
        cal["inference"] = {**NEUTRAL_INFERENCE, **ifit.params}
        cal["fit"]["inference_probes"] = {**ifit.to_json(), "selection": isel,
                                          "cases": [c.to_json() for c in infer_cases]}
    cal["elapsed_s"] = round(time.perf_counter() - started, 1)
    doc["family"] = entry["family"]
    return doc
