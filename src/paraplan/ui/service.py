"""What the web page's JSON API does: request models and the calls behind them.

Every function here calls the same public Python functions the CLI commands call (``estimate_training``,
``paraplan.search.search``, ``estimate_inference``, ``simulate_serving``, ``plan_serving``, ``validate_training``,
``validate_inference``, ``run_claims``) and returns the same JSON the CLI's ``--json`` writes, plus a ``charts``
block (Plotly figures from :mod:`paraplan.ui.charts`). No formula lives here.

Safety: no request names a file. Models are catalog names or an uploaded Hugging Face ``config.json`` parsed in
memory (:func:`parse_hf_upload`, size-capped); request streams are generated (Poisson/gamma), never read from a
trace path; searches are bounded in accelerator counts, grid size and wall time and say so when they hit a bound.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import ConfigError, ParaplanError

#: uploaded config.json size cap (bytes)
MAX_UPLOAD_BYTES = 256 * 1024
#: a search request may ask for at most this many accelerator counts, and this many accelerators
MAX_SEARCH_COUNTS = 16
MAX_SEARCH_ACCELERATORS = 65_536
#: wall-clock bound of one search request (seconds)
SEARCH_TIMEOUT_S = 20.0
#: simulation bounds
MAX_SIM_REQUESTS = 5_000
MAX_SWEEP_RATES = 8
MAX_PLAN_REQUESTS = 1_000

_SEARCH_POOL = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="paraplan-search")
_SEARCH_SLOTS = threading.BoundedSemaphore(2)


class BoundExceeded(ParaplanError):
    """A request hit one of the server's time or size bounds (HTTP 503 with the bound named)."""


# ===================================================================== model resolution
class ModelRef(BaseModel):
    """A catalog model name, or an uploaded Hugging Face config (the JSON object itself, never a path)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="Catalog model name or alias, e.g. 'gpt-3-175b'.",
                              examples=["llama-3-8b"])
    hf_config: dict[str, Any] | None = Field(None, description="A Hugging Face config.json object (uploaded).")
    hf_name: str | None = Field(None, max_length=120, description="Display name for the uploaded config.")


def resolve_model(ref: ModelRef) -> Any:
    """The ModelSpec: ``paraplan.hf.load_hf_config`` on the uploaded object, or ``catalog.get_model``."""
    if ref.hf_config is not None:
        from ..hf import load_hf_config

        if len(json.dumps(ref.hf_config)) > MAX_UPLOAD_BYTES:
            raise ConfigError(f"the Hugging Face config is larger than {MAX_UPLOAD_BYTES // 1024} KiB")
        return load_hf_config(ref.hf_config, name=ref.hf_name or ref.hf_config.get("_name_or_path") or "uploaded")
    if not ref.model:
        raise ConfigError("give a model: a catalog name or an uploaded config.json")
    from ..catalog import get_model

    return get_model(ref.model)


def parse_hf_upload(data: bytes, filename: str | None = None) -> dict[str, Any]:
    """Parse an uploaded ``config.json`` in memory; returns the object and the model it describes."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ConfigError(f"upload of {len(data):,} bytes is over the {MAX_UPLOAD_BYTES // 1024} KiB limit")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"the upload is not a JSON file: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError("the upload does not hold a JSON object (expected a Hugging Face config.json)")
    name = Path(filename or "").stem if filename and filename != "config.json" else None
    name = name or obj.get("_name_or_path") or obj.get("model_type") or "uploaded"
    m = resolve_model(ModelRef(hf_config=obj, hf_name=str(name)[:120]))
    return {"name": m.name, "hf_config": obj, "n_params": m.n_params(), "n_layers": m.n_layers,
            "hidden": m.hidden, "heads": m.n_heads}


def _cluster(spec: str, gpus: int | None) -> Any:
    from ..cli import resolve_cluster

    return resolve_cluster(spec, gpus)


# ===================================================================== training
Schedule = Literal["gpipe", "1f1b", "interleaved", "zero-bubble"]
Recompute = Literal["none", "selective", "full"]
Precision = Literal["bf16", "fp16", "fp8", "fp32"]
Optimizer = Literal["adamw", "adam", "sgd"]
Framework = Literal["megatron", "fsdp", "deepspeed"]
LayerName = Literal["spec", "curves"]
OffloadTier = Literal["none", "cpu", "nvme"]


class TrainRequest(ModelRef):
    """``paraplan train``'s flags as a JSON object (same names, same defaults)."""

    cluster: str = Field(..., min_length=1, max_length=80, examples=["dgx-h100:64"],
                         description="Preset, NAME:COUNT or accelerator name.")
    gpus: int | None = Field(None, ge=1, le=262_144)
    tp: int = Field(1, ge=1, le=4096)
    pp: int = Field(1, ge=1, le=4096)
    dp: int | None = Field(None, ge=1)
    cp: int = Field(1, ge=1, le=4096)
    ep: int = Field(1, ge=1, le=4096)
    sp: bool | None = None
    vpp: int = Field(1, ge=1, le=128)
    schedule: Schedule | None = None
    micro_batch: int = Field(1, ge=1, le=1 << 20)
    global_batch: int | None = Field(None, ge=1, le=1 << 24)
    zero: int | None = Field(None, ge=0, le=3)
    hsdp: bool = False
    recompute: Recompute = "none"
    precision: Precision = "bf16"
    optimizer: Optimizer = "adamw"
    offload: OffloadTier = "none"
    offload_params: OffloadTier = "none"
    seq_len: int = Field(2048, ge=1, le=1 << 22)
    tokens: float | None = Field(None, gt=0, description="Training tokens, for time and cost to train.")
    framework: Framework = "megatron"
    layer: LayerName = "curves"


def train_estimate(req: TrainRequest) -> dict[str, Any]:
    """What ``paraplan train --json --explain --sensitivity`` writes (estimate + ``summary`` + ``fixes`` when it
    does not fit, else ``explain`` + ``sensitivity``), plus the first/last-stage memory and ``charts``."""
    from .. import search as S
    from ..cli import build_strategy
    from ..rules import get_framework
    from ..sensitivity import sensitivity
    from ..train import Workload, estimate_training, evaluate_training
    from . import charts

    m = resolve_model(req)
    c = _cluster(req.cluster, req.gpus)
    strategy, notes = build_strategy(
        m, c, tp=req.tp, pp=req.pp, dp=req.dp, cp=req.cp, ep=req.ep, sp=req.sp, vpp=req.vpp, schedule=req.schedule,
        micro_batch=req.micro_batch, global_batch=req.global_batch, zero=req.zero, hsdp=req.hsdp,
        recompute=req.recompute, precision=req.precision, optimizer=req.optimizer, framework=req.framework,
        offload=req.offload, offload_params=req.offload_params)
    fw = get_framework(req.framework)
    if strategy.zero not in fw.zero_stages:
        notes.append(f"framework '{fw.name}' does not offer ZeRO stage {strategy.zero}; priced anyway")
    if strategy.schedule not in fw.schedules:
        notes.append(f"framework '{fw.name}' does not offer the {strategy.schedule} schedule; priced anyway")
    workload = Workload(seq_len=req.seq_len, tokens=req.tokens)
    est = estimate_training(m, c, strategy, workload, framework=req.framework, layer=req.layer)
    est = est.model_copy(update={"assumptions": notes + list(est.assumptions)})
    payload = est.model_dump(mode="json")
    payload["summary"] = est.summary()
    if not est.fits:
        payload["fixes"] = S.cheapest_fixes(m, c, strategy, workload, fw, layer=req.layer).to_json()
    elif c.n_accelerators <= MAX_SEARCH_ACCELERATORS:  # explain compares with a search of the same accelerators
        payload["explain"] = _run_bounded(lambda: S.explain(m, c, strategy, workload, fw, layer=req.layer),
                                          "the explanation", SEARCH_TIMEOUT_S).to_json()
    payload["sensitivity"] = sensitivity(m, c, strategy, workload, framework=req.framework, layer=req.layer,
                                         base=est).to_json()
    raw = evaluate_training(m, c, strategy.to_arrays(), workload, fw, layer=req.layer)
    payload["stage_activations_bytes"] = {
        "first": float(raw["mem.activations_first_stage"].reshape(-1)[0]),
        "last": float(raw["mem.activations_last_stage"].reshape(-1)[0]),
    }
    payload["kind"] = "train"
    payload["charts"] = charts.training_charts(payload)
    return payload


class PlanRequest(ModelRef):
    """``paraplan plan train``'s flags as a JSON object."""

    cluster: str = Field(..., min_length=1, max_length=80, examples=["dgx-h100:64"])
    global_batch: int = Field(..., ge=1, le=1 << 24)
    seq_len: int = Field(2048, ge=1, le=1 << 22)
    gpus: str | None = Field(None, max_length=80, description="1024 | 512,1024 | 256..2048 | 256..4096:x2")
    objective: Literal["throughput", "cost", "time-to-train"] = "throughput"
    allow: list[Literal["fp8", "fp16", "fp32", "tp-across-nodes", "offload"]] = []
    fix: list[str] = Field([], max_length=16, description="Search only these values of a field (--fix), e.g. "
                           "['recompute=full', 'tp=4,8', 'sp=off'].")
    framework: Framework = "megatron"
    top: int = Field(10, ge=1, le=100)
    tokens: float | None = Field(None, gt=0)
    optimizer: Optimizer = "adamw"
    layer: LayerName = "curves"


def _run_bounded(fn: Any, what: str, timeout_s: float) -> Any:
    if not _SEARCH_SLOTS.acquire(timeout=timeout_s):
        raise BoundExceeded(f"{what}: the server is busy with other searches (at most 2 at a time); try again")
    fut = _SEARCH_POOL.submit(fn)
    fut.add_done_callback(lambda _f: _SEARCH_SLOTS.release())
    try:
        return fut.result(timeout=timeout_s)
    except cf.TimeoutError:
        raise BoundExceeded(f"{what} hit the server's time bound of {timeout_s:g} s; narrow it (fewer accelerator "
                            "counts, a smaller cluster) or run `paraplan plan train` locally") from None


def train_plan(req: PlanRequest, timeout_s: float = SEARCH_TIMEOUT_S) -> dict[str, Any]:
    """What ``paraplan plan train --json`` writes (search result + ``remedy`` when nothing fits), plus
    ``charts`` and ``bounds``."""
    from .. import search as S
    from ..train import Workload
    from . import charts

    S.check_request(req.global_batch, req.seq_len)
    m = resolve_model(req)
    c = _cluster(req.cluster, None)
    counts = S.parse_gpus(req.gpus, c.per_node) if req.gpus else [c.n_accelerators]
    if len(counts) > MAX_SEARCH_COUNTS:
        raise BoundExceeded(f"{len(counts)} accelerator counts is over the server's bound of {MAX_SEARCH_COUNTS} per "
                            "request; give a step (e.g. 256..4096:x2)")
    if max(counts) > MAX_SEARCH_ACCELERATORS:
        raise BoundExceeded(f"{max(counts):,} accelerators is over the server's bound of "
                            f"{MAX_SEARCH_ACCELERATORS:,} per search")
    base = S.scaled_cluster(c, counts[0])
    precisions, notes, across, restrict = S.search_options(base, req.allow, req.fix)
    workload = Workload(seq_len=req.seq_len, tokens=req.tokens)

    def run() -> tuple[Any, Any]:
        res = S.search(m, base, req.global_batch, workload, gpus=counts, framework=req.framework,
                       objective=req.objective, precisions=precisions, optimizer=req.optimizer, top=req.top,
                       layer=req.layer, tp_across_nodes=True if across else None,
                       offload=S.allows_offload(req.allow), restrict=restrict or None)
        res.notes[:0] = notes
        remedy = None
        if not res.top:
            remedy = S.nearest_feasible(m, base, req.global_batch, workload, req.framework, counts[-1], precisions,
                                        req.layer)
        return res, remedy

    res, remedy = _run_bounded(run, "the search", timeout_s)
    payload = res.to_json()
    if remedy is not None:
        plan, note = remedy
        payload["remedy"] = {"note": note, "plan": None if plan is None else plan.to_json(res.price_per_hour,
                                                                                            res.tokens)}
    payload["kind"] = "plan"
    payload["bounds"] = {"max_counts": MAX_SEARCH_COUNTS, "max_accelerators": MAX_SEARCH_ACCELERATORS,
                         "timeout_s": timeout_s}
    payload["charts"] = charts.plan_charts(payload)
    return payload


class CompareRequest(BaseModel):
    """Two or more training estimates side by side."""

    model_config = ConfigDict(extra="forbid")
    plans: list[TrainRequest] = Field(..., min_length=2, max_length=8)


def compare(req: CompareRequest) -> dict[str, Any]:
    from . import charts

    results = [train_estimate(p) for p in req.plans]
    for r in results:
        r.pop("charts", None)
    return {"kind": "compare", "estimates": results, "charts": charts.compare_charts(results)}


# ===================================================================== serving
class InferenceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tp: int = Field(1, ge=1, le=1024)
    pp: int = Field(1, ge=1, le=1024)
    ep: int = Field(1, ge=1, le=1024)
    weight_bits: float = Field(16.0, ge=1, le=16)
    act_bits: Literal[16, 8, 4] = 16
    kv_bits: float = Field(16.0, ge=1, le=16)
    group_size: int | None = Field(None, ge=1)
    kv_group_size: int | None = Field(None, ge=1)
    block_size: int = Field(16, ge=1, le=4096)
    kv_fraction: float = Field(0.9, ge=0.01, le=1.0)
    engine: Literal["default", "trtllm", "vllm", "sglang", "deepspeed", "hf"] = "default"

    def icfg(self, max_tokens: int = 8192) -> Any:
        from ..cli_serve import _icfg

        return _icfg(self.tp, self.pp, self.ep, self.weight_bits, self.act_bits, self.kv_bits, self.group_size,
                     self.kv_group_size, self.block_size, self.kv_fraction, self.engine, max_tokens=max_tokens)


class ServeRequest(InferenceFields, ModelRef):
    """``paraplan serve``'s flags (speculative decoding aside) as a JSON object."""

    cluster: str = Field(..., min_length=1, max_length=80, examples=["dgx-h100"])
    gpus: int | None = Field(None, ge=1, le=262_144)
    batch: int = Field(1, ge=1, le=65_536)
    input_len: int = Field(1024, ge=1, le=1 << 22)
    output_len: int = Field(256, ge=1, le=1 << 22)
    price: float | None = Field(None, ge=0)
    layer: LayerName = "curves"


def serve_estimate(req: ServeRequest) -> dict[str, Any]:
    from ..infer import estimate_inference
    from . import charts

    m = resolve_model(req)
    c = _cluster(req.cluster, req.gpus)
    est = estimate_inference(m, c, req.icfg(), batch=req.batch, input_len=req.input_len, output_len=req.output_len,
                             layer=req.layer, price_per_hour=req.price)
    payload = est.model_dump(mode="json")
    payload["summary"] = est.summary()
    payload["kind"] = "serve"
    payload["charts"] = charts.serve_charts(payload)
    return payload


class SimulateRequest(InferenceFields, ModelRef):
    """``paraplan simulate serve``'s flags as a JSON object (generated arrivals only: no trace files)."""

    cluster: str = Field(..., min_length=1, max_length=80, examples=["dgx-h100"])
    gpus: int | None = Field(None, ge=1, le=262_144)
    replicas: int | None = Field(None, ge=1, le=256)
    arrivals: Literal["poisson", "gamma"] = "poisson"
    rate: float = Field(4.0, gt=0, description="Requests per second.")
    rates: list[float] | None = Field(None, description="Also simulate at these rates (TTFT/TPOT against rate).")
    cv: float = Field(2.0, gt=0)
    requests: int = Field(500, ge=1, le=MAX_SIM_REQUESTS)
    input_dist: str = Field("sharegpt", max_length=40)
    output_dist: str | None = Field(None, max_length=40)
    scheduler: Literal["static", "vllm", "orca", "sarathi"] = "vllm"
    max_batch: int = Field(256, ge=1, le=4096)
    max_tokens: int = Field(8192, ge=1, le=1 << 20)
    chunk_size: int = Field(512, ge=1, le=1 << 20)
    preemption: Literal["recompute", "swap"] = "recompute"
    router: Literal["round_robin", "least_loaded", "random"] = "least_loaded"
    slo_ttft: float | None = Field(None, gt=0)
    slo_tpot: float | None = Field(None, gt=0)
    seed: int = 0

    @field_validator("rates")
    @classmethod
    def _rates(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) > MAX_SWEEP_RATES:
            raise ValueError(f"at most {MAX_SWEEP_RATES} rates per request")
        if any(not (r > 0 and math.isfinite(r)) for r in v):
            raise ValueError("rates must be positive numbers")
        return v


def simulate(req: SimulateRequest) -> dict[str, Any]:
    """What ``paraplan simulate serve --json`` writes, plus ``rate_sweep`` (one simulation per extra rate) and
    ``charts``."""
    from ..sim import SimConfig, make_requests, simulate_serving
    from . import charts

    m = resolve_model(req)
    c = _cluster(req.cluster, req.gpus)
    cfg = req.icfg(max_tokens=max(req.max_tokens, req.chunk_size))
    reps = req.replicas or max(c.n_accelerators // cfg.accelerators, 1)

    def one(rate: float) -> Any:
        rq = make_requests(req.arrivals, rate, n=req.requests, input_dist=req.input_dist,
                           output_dist=req.output_dist, seed=req.seed, cv=req.cv)
        sc = SimConfig(scheduler=req.scheduler, replicas=reps, router=req.router, max_batch=req.max_batch,
                       max_tokens=req.max_tokens, chunk_size=req.chunk_size, preemption=req.preemption,
                       seed=req.seed)
        return simulate_serving(m, c, rq, sc, cfg, slo_ttft_s=req.slo_ttft, slo_tpot_s=req.slo_tpot)

    def run() -> dict[str, Any]:
        res = one(req.rate)
        payload = res.model_dump(mode="json", exclude={"trace_events"})
        sweep = []
        for r in sorted(set((req.rates or []) + [req.rate])):
            rr = res if r == req.rate else one(r)
            sweep.append({"rate": r, "ttft_s": rr.ttft_s.model_dump(mode="json"),
                          "tpot_s": rr.tpot_s.model_dump(mode="json"), "overloaded": rr.overloaded,
                          "slo_attainment": rr.slo_attainment, "output_tokens_per_s": rr.output_tokens_per_s})
        payload["rate_sweep"] = sweep
        return payload

    payload = _run_bounded(run, "the simulation", SEARCH_TIMEOUT_S)
    payload["kind"] = "simulate"
    payload["charts"] = charts.simulate_charts(payload)
    return payload


class ServePlanRequest(ModelRef):
    """``paraplan plan serve``'s flags as a JSON object."""

    rate: float = Field(..., gt=0)
    slo_ttft: float = Field(..., gt=0)
    slo_tpot: float = Field(..., gt=0)
    accelerators: list[str] | None = Field(None, max_length=8)
    tps: list[int] = Field([1, 2, 4, 8], min_length=1, max_length=6)
    attainment: float = Field(0.9, ge=0.01, le=1.0)
    input_dist: str = Field("sharegpt", max_length=40)
    output_dist: str | None = Field(None, max_length=40)
    scheduler: Literal["static", "vllm", "orca", "sarathi"] = "vllm"
    max_batch: int = Field(256, ge=1, le=4096)
    requests: int = Field(300, ge=50, le=MAX_PLAN_REQUESTS)
    weight_bits: float = Field(16.0, ge=1, le=16)
    act_bits: Literal[16, 8, 4] = 16
    kv_bits: float = Field(16.0, ge=1, le=16)
    engine: Literal["default", "trtllm", "vllm", "sglang", "deepspeed", "hf"] = "default"


def serve_plan(req: ServePlanRequest, timeout_s: float = 2 * SEARCH_TIMEOUT_S) -> dict[str, Any]:
    from ..cli_serve import _icfg
    from ..sim import SimConfig
    from ..sim.plan import plan_serving
    from . import charts

    m = resolve_model(req)
    cfg = _icfg(1, 1, 1, req.weight_bits, req.act_bits, req.kv_bits, None, None, 16, 0.9, req.engine)

    def run() -> Any:
        return plan_serving(m, req.rate, slo_ttft_s=req.slo_ttft, slo_tpot_s=req.slo_tpot, attainment=req.attainment,
                            accelerators=req.accelerators, tps=req.tps, inference=cfg,
                            sim=SimConfig(scheduler=req.scheduler, max_batch=req.max_batch), n_requests=req.requests,
                            input_dist=req.input_dist, output_dist=req.output_dist)

    plan = _run_bounded(run, "the serving plan", timeout_s)
    payload = plan.model_dump(mode="json")
    payload["kind"] = "serve_plan"
    payload["charts"] = charts.serve_plan_charts(payload)
    return payload


# ===================================================================== validation, claims, catalog
#: server-side datasets (fixed paths relative to the working directory; never taken from a request)
DATASETS = {
    "train": ("../shared/data/train-measured.csv", "./shared/data/train-measured.csv"),
    "infer": ("../shared/data/infer-measured.csv", "./shared/data/infer-measured.csv"),
}
_VALIDATION_CACHE: dict[tuple[str, str], dict[str, Any]] = {}


def validation(dataset: Literal["train", "infer"], layer: LayerName = "curves") -> dict[str, Any]:
    """``paraplan validate train|infer --json`` on the server's own copy of the measurements (cached)."""
    from . import charts

    key = (dataset, layer)
    if key in _VALIDATION_CACHE:
        return _VALIDATION_CACHE[key]
    path = next((Path(p) for p in DATASETS[dataset] if Path(p).is_file()), None)
    if path is None:
        raise ConfigError(f"no {dataset}-measured.csv on this server (looked for {', '.join(DATASETS[dataset])} "
                          "relative to where `paraplan ui` was started)")
    if dataset == "train":
        from ..validate.train import validate_training

        payload = validate_training(path, layer=layer).to_json()
    else:
        from ..validate.infer import validate_inference

        payload = validate_inference(path, layer=layer).to_json()
    payload["kind"] = f"validate_{dataset}"
    payload["charts"] = charts.validation_charts(payload)
    _VALIDATION_CACHE[key] = payload
    return payload


def claims(paper: str | None = None) -> dict[str, Any]:
    """``paraplan claims --json``."""
    from ..claims import run_claims

    return {"kind": "claims", "claims": [r.to_json() for r in run_claims(paper)]}


def catalog() -> dict[str, Any]:
    """Names for the pickers: models, accelerators, clusters (with a few numbers each)."""
    from .. import catalog as K

    return {
        "models": [{"name": m.name, "params_b": round(m.n_params() / 1e9, 2)} for m in K.models()],
        "accelerators": [{"name": a.name, "memory_gb": round(a.memory_bytes / 1e9, 1)} for a in K.accelerators()],
        "clusters": [{"name": c.name, "accelerator": c.accelerator.name, "n": c.n_accelerators}
                     for c in K.clusters()],
    }
