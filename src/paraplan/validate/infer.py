"""Validate the inference estimator and the serving simulator against published numbers (``infer-measured.csv``).

The file is read as it is: long format, one metric per row. Each row becomes (model, cluster, precisions,
parallelism, engine kind) from its own columns, with every default for a missing knob written into the row's
``assumptions``; then:

* static-batching rows (``batching`` = static): the estimator (:func:`paraplan.infer.estimate_inference`) at
  the row's batch, input and output lengths (throughput = batch x output / (prefill + decode); TTFT);
* maximum-load rows: the simulator with every request arriving at t = 0, the engine's documented scheduler,
  batch and token limits (:data:`ENGINE_SETTINGS`), fixed lengths or the named trace's length distribution;
* request-rate rows: the simulator with Poisson arrivals at the row's rate (normalized latency = mean of
  end-to-end latency / output tokens);
* speculative-decoding speedups: :func:`paraplan.infer.speculative_step` at batch 1 with the row's (method's)
  mean accepted tokens and the method's documented draft and verification sizes (:data:`SPEC_METHODS`);
* a few analytic rows (a kernel speedup, a roofline optimum) with the estimator's own GEMM time.

Rows that cannot be predicted are kept with the reason. Nothing here is fitted per row: the shared engine
parameters live in ``catalog/curves/inference.yaml`` (``scripts/fit_infer.py``).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import catalog
from ..cost.efficiency import gemm_time
from ..errors import ParaplanError
from ..infer import (
    InferenceConfig,
    SpeculativeConfig,
    check_inference,
    estimate_inference,
    kv_bytes_per_token,
    speculative_step,
    weight_bytes_per_accelerator,
    workspace_bytes,
)
from ..specs import ClusterSpec, ModelSpec
from .report import RowResultBase, _int, _num, ape_stats

#: metrics that count for the accuracy target (throughput, latency and speedup rows)
TARGET_METRICS = frozenset({
    "output_throughput", "output_throughput_total", "throughput_per_gpu", "normalized_latency", "ttft",
    "speedup_vs_autoregressive", "optimal_throughput_per_gpu", "kernel_speedup_vs_fp16",
    "fraction_of_optimal_throughput", "throughput_gain_min", "throughput_gain_max",
})

#: Scheduler limits of the engines behind the rows (documented defaults, not fitted):
#: vLLM v0.5: prefill-first paged scheduler, max_num_seqs 256, max_num_batched_tokens = max(context, 2048),
#: gpu_memory_utilization 0.9 of the whole memory; DeepSpeed-FastGen: Dynamic SplitFuse (chunked prefill, token
#: budget 768 = max_ragged_batch_size, 512 sequences); TensorRT-LLM in-flight batching: GUARANTEED_NO_EVICT (KV
#: for prompt + requested output reserved at admission), max_batch 256, max_num_tokens 4096 (v0.8 defaults),
#: KV = 0.9 of the free memory; trtllm-bench (v0.19) picks max_batch / max_num_tokens with
#: ``tensorrt_llm/bench/build/tuning.py`` (see :func:`trtllm_bench_settings`) and 0.95 of the free memory.
ENGINE_SETTINGS: dict[str, dict[str, Any]] = {
    "vllm": {"scheduler": "vllm", "max_batch": 256, "max_tokens": None, "memory": ("total", 0.90)},
    "vllm-0.5": {"scheduler": "vllm", "max_batch": 256, "max_tokens": None, "memory": ("total", 0.90)},
    "deepspeed": {"scheduler": "sarathi", "max_batch": 512, "chunk_size": 768, "memory": ("free", 0.90)},
    "trtllm": {"scheduler": "orca", "max_batch": 256, "max_tokens": 4096, "memory": ("free", 0.90)},
}

#: Speculative methods as Spec-Bench runs them (Vicuna-7B v1.3; evaluation scripts and model defaults of
#: hemingkx/Spec-Bench): tree/verified tokens per step, draft passes, draft parameters.
SPEC_METHODS: dict[str, dict[str, Any]] = {
    # one autoregressive decoder layer + fc(2h -> h) on the target's features, target LM head; tree mc_sim_7b_63
    "eagle": {"method": "heads", "tree_size": 64, "draft_steps": 5, "head": "eagle"},
    # EAGLE-2 dynamic tree: total_token 60, depth 6
    "eagle2": {"method": "heads", "tree_size": 60, "draft_steps": 6, "head": "eagle"},
    # 5 Medusa heads (ResBlock h x h + own LM head each), one pass; tree mc_sim_7b_63
    "medusa": {"method": "heads", "tree_size": 64, "draft_steps": 1, "head": "medusa"},
    # 4 sequentially dependent MLP heads (Hydra++), target LM head per pass; tree of 64
    "hydra": {"method": "heads", "tree_size": 64, "draft_steps": 4, "head": "hydra"},
    # vicuna-68m draft model, 5 draft tokens (assisted generation's num_assistant_tokens)
    "sps": {"method": "draft_model", "draft_len": 5},
    # prompt lookup: 10 tokens proposed from n-gram matches, no model
    "pld": {"method": "lookup", "draft_len": 10},
    # retrieval from a datastore (host), a tree of up to 64 candidates
    "rest": {"method": "lookup", "tree_size": 64, "draft_len": 10},
    # Jacobi lookahead, level 5, window 7, guess 7: 7 x 4 lookahead + 7 x 4 verification tokens
    "lookahead": {"method": "lookup", "tree_size": 57, "draft_len": 10},
}

#: LLaMA-68M (JackFram/llama-68m, the base of double7/vicuna-68m): the SpS drafter of Spec-Bench
VICUNA_68M = ModelSpec(name="vicuna-68m", source="https://huggingface.co/double7/vicuna-68m (config.json)",
                       n_layers=2, hidden=768, n_heads=12, ffn_hidden=3072, ffn_kind="swiglu", vocab=32000,
                       max_seq_len=2048, norm="rmsnorm")


@dataclass
class RowResult(RowResultBase):
    hardware: str = ""
    engine: str = ""
    category: str = ""


@dataclass
class InferValidationReport:
    dataset: str
    rows: list[RowResult]

    @property
    def predicted(self) -> list[RowResult]:
        return [r for r in self.rows if r.ape is not None]

    def target_rows(self) -> list[RowResult]:
        return [r for r in self.rows if r.metric in TARGET_METRICS]

    def stats(self) -> dict[str, Any]:
        apes = [float(r.ape) for r in self.predicted]  # type: ignore[arg-type]
        tgt = self.target_rows()
        tgt_apes = [float(r.ape) for r in tgt if r.ape is not None]
        by_cat: dict[str, list[float]] = {}
        for r in self.predicted:
            by_cat.setdefault(r.category, []).append(float(r.ape))  # type: ignore[arg-type]
        return {
            "n_rows": len(self.rows),
            "n_predicted": len(apes),
            **ape_stats(apes),
            "n_target_rows": len(tgt),
            "n_target_predicted": len(tgt_apes),
            "target_coverage": len(tgt_apes) / len(tgt) if tgt else None,
            **{k: v for k, v in ape_stats(tgt_apes, "target_").items() if k != "target_mean_ape"},
            "by_category": {k: {"n": len(v), "median_ape": float(np.median(v)), "p90_ape": float(np.percentile(v, 90))}
                            for k, v in sorted(by_cat.items())},
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.stats(), "dataset": self.dataset, "rows": [r.to_json() for r in self.rows]}


class RowSkip(ParaplanError):
    """A row that cannot be predicted; the message says why."""


# ------------------------------------------------------------------ parsing


def engine_kind(row: dict[str, str]) -> str:
    e = row.get("engine", "").lower()
    if "tensorrt" in e or "trt-llm" in e or "trtllm" in e:
        return "trtllm"
    if "vllm" in e:
        # vLLM 0.6 took the scheduler and API server off the critical path (vLLM blog, "vLLM v0.6.0: 2.7x
        # throughput improvement and 5x latency reduction", 2024-09): older versions are their own kind
        m = re.search(r"(\d+)\.(\d+)", row.get("engine_version", ""))
        return "vllm-0.5" if m and (int(m.group(1)), int(m.group(2))) < (0, 6) else "vllm"
    if "deepspeed" in e:
        return "deepspeed"
    if "sglang" in e:
        return "sglang"
    if "transformers" in e or "pytorch" in e or "spec-bench" in e or e.startswith("hf"):
        return "hf"
    return "default"


def row_model(row: dict[str, str], a: list[str]) -> ModelSpec:
    """The catalog model the name resolves to, with the row's architecture columns applied where given."""
    name = row.get("model", "").strip()
    try:
        m = catalog.get_model(name)
    except ParaplanError:
        m = None
    cols = {"n_layers": _int(row.get("n_layers")), "hidden": _int(row.get("hidden")),
            "n_heads": _int(row.get("n_heads")), "n_kv_heads": _int(row.get("n_kv_heads")),
            "vocab": _int(row.get("vocab"))}
    if m is None:
        raise RowSkip(f"model '{name}' not in the catalog and the architecture columns lack the FFN size")
    upd = {k: v for k, v in cols.items() if v is not None and v != getattr(m, k)}
    if upd:
        a.append(f"architecture columns override catalog '{m.name}': {upd}")
        m = m.model_copy(update=upd)
    else:
        a.append(f"architecture from catalog entry '{m.name}' (matches the columns)")
    return m


def row_precision(row: dict[str, str], a: list[str]) -> dict[str, Any]:
    w = row.get("weight_prec", "").lower()
    act = row.get("act_prec", "").lower()
    kv = row.get("kv_prec", "").lower()
    out: dict[str, Any] = {}
    if "nvfp4" in w or "fp4" in w:
        out.update(weight_bits=4.0, act_bits=4, group_size=16)
    elif "fp8" in w:
        out.update(weight_bits=8.0, act_bits=8 if ("fp8" in act or not act) else 16)
    elif "int4" in w:
        g = re.search(r"g(\d+)", w)
        out.update(weight_bits=4.0, act_bits=16, group_size=int(g.group(1)) if g else 128)
    elif "int8" in w:
        out.update(weight_bits=8.0, act_bits=16)
    elif "fp32" in w:
        raise RowSkip("fp32 weights (32 bits) are outside the 1-16-bit weight range")
    else:
        out.update(weight_bits=16.0, act_bits=16)
        if "assumed" in w:
            a.append("16-bit weights (assumed by the source)")
    m = re.search(r"int(\d+)", kv)
    if "fp8" in kv:
        out["kv_bits"] = 8.0
    elif m:
        out["kv_bits"] = float(m.group(1))
    elif "fp16" in kv or "bf16" in kv:
        out["kv_bits"] = 16.0
    else:
        low = out.get("act_bits", 16) < 16
        out["kv_bits"] = 8.0 if low else 16.0
        a.append(f"KV cache {'FP8 (quantized checkpoint default)' if low else '16-bit'} (not stated)")
    return out


def row_cluster(row: dict[str, str], n: int) -> ClusterSpec:
    hw = row.get("hardware", "").strip()
    if not hw:
        raise RowSkip("hardware not given")
    try:
        return catalog.resolve_cluster(hw, n)
    except ParaplanError as exc:
        raise RowSkip(f"hardware '{hw}' not in the catalog ({exc})") from None
    except ValueError as exc:
        raise RowSkip(str(exc)) from None


def _config(row: dict[str, str], model: ModelSpec, a: list[str]) -> tuple[ClusterSpec, InferenceConfig, int]:
    n = _int(row.get("n_devices")) or 1
    tp = _int(row.get("tp"))
    pp = _int(row.get("pp")) or 1
    if tp is None:
        tp = max(n // pp, 1)
        a.append(f"tp={tp} (not given: n_devices / pp)")
    ep = _int(row.get("ep")) or 1
    cluster = row_cluster(row, max(n, tp * pp))
    prec = row_precision(row, a)
    cfg = InferenceConfig(tp=tp, pp=pp, ep=ep, engine=engine_kind(row), **prec)
    check_inference(model, cluster, cfg)
    return cluster, cfg, n


def _long_context(model: ModelSpec, total: int, a: list[str]) -> ModelSpec:
    if total - 1 > model.max_seq_len:
        a.append(f"context raised from {model.max_seq_len} to {total} tokens (the source ran these lengths)")
        return model.model_copy(update={"max_seq_len": total})
    return model


# ------------------------------------------------------------------ engine settings
def trtllm_bench_settings(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, isl: int, osl: int,
                          kv_fraction: float = 0.95) -> tuple[int, int]:
    """(max_batch, max_num_tokens) as ``trtllm-bench`` picks them (``tensorrt_llm/bench/build/tuning.py``:
    ``calc_engine_setting`` / ``finetune_setting``): KV requests that fit ``kv_fraction`` of the memory left by
    the weights (GiB arithmetic, at least one KV head per GPU), capped at 4096, rounded up optimistically."""
    n_gpu = cfg.tp * cfg.pp
    kv_heads = max(cfg.tp, model.kv_heads)
    bpe = {16.0: 2.0, 8.0: 1.0, 4.0: 0.5}.get(cfg.weight_bits, 2.0)
    kv_bpe = 1.0 if cfg.kv_bits <= 8 else 2.0
    per_token = 2 * model.n_layers * kv_heads * model.dim_head * kv_bpe / 1024**3
    engine = model.n_params() * bpe / 1024**3
    avail = cluster.accelerator.memory_bytes / 1024**3 * n_gpu - engine
    reqs = max(avail * kv_fraction / (per_token * (isl + osl)), 1.0)
    raw_bs = min(reqs, 4096) / cfg.pp
    raw_tok = min(raw_bs * (1 + isl / osl), 32768)
    if raw_bs < 256:
        bs = max(64, 32 * math.ceil(raw_bs / 32))
    elif raw_bs < 1024:
        bs = 128 * math.ceil(raw_bs / 128)
    else:
        bs = 256 * math.ceil(raw_bs / 256)
    if raw_tok < 4096:
        tok = max(2048, 256 * math.ceil(raw_tok / 256))
    elif raw_tok < 8192:
        tok = 512 * math.ceil(raw_tok / 512)
    else:
        tok = 1024 * math.ceil(raw_tok / 1024)
    return int(bs), int(tok)


def _kv_blocks(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, policy: tuple[str, float],
               max_seqs: int) -> int:
    """KV blocks per replica under an engine's memory policy: a fraction of the free memory (TensorRT-LLM,
    DeepSpeed) or of the whole memory minus weights and workspace (vLLM's gpu_memory_utilization)."""
    from ..cost.memory import FRAMEWORK_OVERHEAD_BYTES

    cap = cluster.accelerator.memory_bytes
    used = weight_bytes_per_accelerator(model, cfg) + workspace_bytes(model, cfg, max_seqs)
    kind, frac = policy
    if kind == "total":
        kv = cap * frac - used
    else:
        kv = (cap - used - FRAMEWORK_OVERHEAD_BYTES) * frac
    return int(max(kv, 0.0) // (kv_bytes_per_token(model, cfg) * cfg.block_size))


_TRACE_PRESETS = {"splitwise": "splitwise", "lmsys": "lmsys", "sharegpt": "sharegpt"}


def _dataset_preset(row: dict[str, str]) -> str | None:
    d = row.get("dataset", "").lower()
    return next((v for k, v in _TRACE_PRESETS.items() if k in d), None)


def _simulate(row: dict[str, str], model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, a: list[str],
              *, rate: float, n_req: int, layer: str, calibration: dict[str, float] | None) -> Any:
    from ..sim import SimConfig, make_requests, simulate_serving

    kind = cfg.engine
    isl, osl = _int(row.get("input_len")), _int(row.get("output_len"))
    preset = _dataset_preset(row)
    if isl and osl:
        in_d, out_d = f"fixed:{isl}", f"fixed:{osl}"
    elif preset:
        in_d, out_d = preset, preset
        a.append(f"lengths drawn from the '{preset}' preset (published trace means, lognormal spread)")
    else:
        raise RowSkip("neither fixed lengths nor a known trace")
    if "trtllm-bench" in row.get("engine", "").lower():
        bs, tok = trtllm_bench_settings(model, cluster, cfg, isl or 512, osl or 512)
        settings = {"scheduler": "orca", "max_batch": bs, "max_tokens": tok, "memory": ("free", 0.95),
                    "chunked": (isl or 0) > tok}
        a.append(f"trtllm-bench settings: max_batch {bs}, max_num_tokens {tok}, KV 0.95 of free memory, "
                 "GUARANTEED_NO_EVICT (reserve prompt + output)"
                 + ("; chunked context (prompt longer than max_num_tokens)" if (isl or 0) > tok else ""))
    elif kind in ENGINE_SETTINGS:
        settings = dict(ENGINE_SETTINGS[kind])
        a.append(f"{kind} scheduler defaults: {settings}")
    else:
        raise RowSkip(f"no scheduler defaults for engine '{row.get('engine', '')}'")
    sched = settings["scheduler"]
    max_batch = int(settings["max_batch"])
    max_tokens = settings.get("max_tokens") or max(model.max_seq_len, 2048)
    blocks = _kv_blocks(model, cluster, cfg, settings["memory"], max_batch)
    sc = SimConfig(scheduler=sched, max_batch=max_batch, max_tokens=int(max_tokens),
                   chunk_size=int(settings.get("chunk_size", 512)), kv_blocks=max(blocks, 1),
                   max_output=osl if sched == "orca" and osl else None,
                   chunked_prefill=True if settings.get("chunked") else None)
    if sched == "orca" and not osl:
        # TensorRT-LLM reserves prompt + the request's max_tokens; trace requests ask for their own length
        sc = sc.model_copy(update={"max_output": 1024})
        a.append("output reservation of 1024 tokens per request (trace requests; max_tokens not stated)")
    req = make_requests("poisson", rate, n=n_req, input_dist=in_d, output_dist=out_d, seed=0,
                        max_input=model.max_seq_len // 2, max_output=model.max_seq_len // 2)
    return simulate_serving(model, cluster, req, sc, cfg, layer=layer, calibration=calibration), sc


# ------------------------------------------------------------------ per category
def _predict_static(row: dict[str, str], res: RowResult, layer: str, cal: dict[str, float] | None) -> float:
    a = res.assumptions
    model = row_model(row, a)
    cluster, cfg, n = _config(row, model, a)
    B = _int(row.get("batch_size")) or 1
    isl, osl = _int(row.get("input_len")), _int(row.get("output_len"))
    if not isl or not osl:
        raise RowSkip("input/output length not given")
    model = _long_context(model, isl + osl, a)
    est = estimate_inference(model, cluster, cfg, batch=B, input_len=isl, output_len=osl, layer=layer,  # type: ignore[arg-type]
                             strict=False, calibration=cal)
    res.config = {"tp": cfg.tp, "pp": cfg.pp, "batch": B, "weight_bits": cfg.weight_bits, "kv_bits": cfg.kv_bits,
                  "engine": cfg.engine, "cluster": cluster.name, "fits": est.fits}
    if not est.fits:
        a.append(f"the memory model says batch {B} does not fit (max {est.max_batch}); priced anyway")
    if res.metric == "ttft":
        return est.ttft_s * 1e3
    per_replica = B * osl / est.e2e_s
    if "gpu" in row.get("unit", "").lower():
        return per_replica / cfg.accelerators
    return per_replica


def _predict_maxload(row: dict[str, str], res: RowResult, layer: str, cal: dict[str, float] | None) -> float:
    a = res.assumptions
    model = row_model(row, a)
    cluster, cfg, n = _config(row, model, a)
    isl, osl = _int(row.get("input_len")), _int(row.get("output_len"))
    if isl and osl:
        model = _long_context(model, isl + osl, a)
    n_req = 2000
    if "trtllm-bench" in row.get("engine", "").lower():
        bs, _ = trtllm_bench_settings(model, cluster, cfg, isl or 512, osl or 512)
        n_req = int(min(max(3 * bs, 1000), 8000))
    a.append(f"{n_req} requests, all arriving at t = 0 (maximum load)")
    sim, sc = _simulate(row, model, cluster, cfg, a, rate=math.inf, n_req=n_req, layer=layer, calibration=cal)
    res.config = {"tp": cfg.tp, "engine": cfg.engine, "scheduler": sc.scheduler, "max_batch": sc.max_batch,
                  "kv_blocks": sim.kv_blocks_per_replica, "mean_batch": sim.mean_batch, "cluster": cluster.name}
    if sim.counts["completed"] == 0:
        raise RowSkip("no request completed in the simulation")
    if res.metric == "throughput_per_gpu":
        a.append("per-GPU throughput counts input + output tokens (NanoFlow's definition)")
        return sim.total_tokens_per_s / cfg.accelerators
    return sim.output_tokens_per_s


def _predict_rate(row: dict[str, str], res: RowResult, layer: str, cal: dict[str, float] | None) -> float:
    a = res.assumptions
    model = row_model(row, a)
    cluster, cfg, n = _config(row, model, a)
    rate = _num(row.get("request_rate_rps"))
    if not rate:
        raise RowSkip("request rate not given")
    n_req = int(rate * 300)
    a.append(f"Poisson arrivals at {rate:g} req/s for 5 minutes ({n_req} requests; the traces' '5min' naming)")
    sim, sc = _simulate(row, model, cluster, cfg, a, rate=rate, n_req=n_req, layer=layer, calibration=cal)
    res.config = {"tp": cfg.tp, "engine": cfg.engine, "scheduler": sc.scheduler, "rate": rate,
                  "mean_batch": sim.mean_batch, "completed": sim.counts["completed"]}
    v = sim.normalized_latency_s.mean
    if v is None:
        raise RowSkip("no request completed in the simulation")
    res.config["e2e_by_arrival_quarter_s"] = sim.e2e_by_arrival_quarter_s
    if sim.overloaded:
        q = ", ".join("-" if x is None else f"{x:.0f}" for x in sim.e2e_by_arrival_quarter_s)
        raise RowSkip(f"overloaded in the model at {rate:g} req/s (median latency by arrival quarter {q} s keeps "
                      "growing): the normalized latency then depends on the length of the experiment, which the "
                      "source does not give")
    return v


def _spec_method(row: dict[str, str]) -> str | None:
    m = re.search(r"method=([A-Za-z0-9]+)", row.get("engine", ""))
    if not m:
        return None
    key = m.group(1).lower()
    return key if key in SPEC_METHODS else None


def _predict_speedup(row: dict[str, str], res: RowResult, layer: str, cal: dict[str, float] | None,
                     accepted: dict[str, float]) -> float:
    a = res.assumptions
    method = _spec_method(row)
    if method is None:
        raise RowSkip("speculative method not recognised")
    tau = accepted.get(row.get("engine", ""))
    if tau is None:
        raise RowSkip("the source gives no mean accepted tokens for this method")
    model = row_model(row, a)
    cluster, cfg, n = _config(row, model, a)
    spec = SPEC_METHODS[method]
    if "Spec-Bench /" in row.get("dataset", ""):
        a.append(f"per-task row: the method's overall mean accepted tokens ({tau}) is used (no per-task value)")
    h, V = float(model.hidden), float(model.vocab)
    kw: dict[str, Any] = {"method": spec["method"], "mean_accepted": tau}
    tree = spec.get("tree_size")
    if spec["method"] == "draft_model":
        kw.update(draft_model=VICUNA_68M, draft_len=spec["draft_len"])
    elif spec["method"] == "heads":
        steps = spec["draft_steps"]
        if spec["head"] == "eagle":
            head = model.attention_params() + model.dense_ffn_params() + 2 * h * h
            kw.update(head_params=head, head_uses_lm_head=True)
        elif spec["head"] == "medusa":
            kw.update(head_params=5 * (h * h + h * V), head_uses_lm_head=False)
        else:
            kw.update(head_params=h * h, head_uses_lm_head=True)
        kw.update(draft_steps=steps, draft_len=max(int(math.ceil(tau)), tree - 1))
    else:
        kw.update(draft_len=max(spec["draft_len"], int(math.ceil(tau))))
    if tree:
        kw["tree_size"] = tree
    sc = SpeculativeConfig(**kw)
    ctx = 512.0
    a.append(f"batch 1, context {ctx:g} tokens; {method}: {spec}")
    est = speculative_step(model, cluster, cfg, sc, 1, ctx, layer=layer, calibration=cal)  # type: ignore[arg-type]
    res.config = {"method": method, "tau": tau, "verified": sc.verified_tokens, "draft_s": est.draft_s,
                  "verify_s": est.verify_s, "plain_s": est.plain_step_s}
    return est.speedup


def _predict_plain_decode(row: dict[str, str], res: RowResult, layer: str, cal: dict[str, float] | None) -> float:
    """SGLang baseline throughput at (about) batch 1: 1 / TPOT of a short chat turn."""
    a = res.assumptions
    if "speculative=none" not in row.get("engine", "").lower():
        raise RowSkip("speculative run without the accepted-token count")
    model = row_model(row, a)
    cluster, cfg, n = _config(row, model, a)
    est = estimate_inference(model, cluster, cfg, batch=1, input_len=128, output_len=256, layer=layer,  # type: ignore[arg-type]
                             calibration=cal)
    a.append("batch 1 (the source implies it), MT-Bench-like turn: 128 input, 256 output tokens; 1 / TPOT")
    return 1.0 / est.tpot_s


def _predict_kernel(row: dict[str, str], res: RowResult, layer: str) -> float:
    a = res.assumptions
    if res.metric == "kernel_speedup_vs_fp16":
        cluster = row_cluster(row, 1)
        acc = cluster.accelerator
        g = re.search(r"g(\d+)", row.get("weight_prec", ""))
        cfg = InferenceConfig(weight_bits=4.0, group_size=int(g.group(1)) if g else 128)
        m, n, k = 16.0, 72.0 * 1024, 18.0 * 1024
        a.append("the Marlin paper's 72k x 18k GEMM at batch 16 (the README's 16-32 range)")
        fp16 = float(gemm_time(acc, "bf16", m, n, k, layer=layer))  # type: ignore[arg-type]
        from ..infer import _scaled_bw

        w4 = float(gemm_time(_scaled_bw(acc, 2.0 / cfg.weight_bytes), "bf16", m, n, k, layer=layer))  # type: ignore[arg-type]
        return fp16 / w4
    if res.metric == "optimal_throughput_per_gpu":
        model = row_model(row, a)
        cluster, cfg, n = _config(row, model, a)
        acc = cluster.accelerator
        big = 8192.0
        t = float(gemm_time(acc, "bf16", big, big, big, layer=layer))  # type: ignore[arg-type]
        achieved = 2 * big**3 / t
        a.append("NanoFlow eq. 5: measured dense GEMM throughput / (2 x active parameters), per GPU")
        return achieved / (2.0 * model.n_active_params())
    raise RowSkip("headline number without the setup needed to predict it")


# ------------------------------------------------------------------ driver
def categorize(row: dict[str, str]) -> str:
    metric = row.get("metric", "")
    b = row.get("batching", "").lower()
    if metric == "mean_accepted_tokens_per_step":
        return "input"
    if metric == "speedup_vs_autoregressive":
        return "speculative"
    if metric in ("kernel_speedup_vs_fp16", "optimal_throughput_per_gpu"):
        return "analytic"
    if b.startswith("static"):
        return "static"
    if "max load" in b or "offline" in b:
        return "max_load"
    if "poisson" in b or _num(row.get("request_rate_rps")):
        return "rate"
    if "sglang" in row.get("engine", "").lower():
        return "batch1"
    return "headline"


def predict_row(row: dict[str, str], *, layer: str = "curves", calibration: dict[str, dict[str, float]] | None = None,
                accepted: dict[str, float] | None = None) -> RowResult:
    """Predict one row. ``calibration``: engine kind -> parameter overrides (used by the fitting script)."""
    res = RowResult(row_id=row.get("row_id", ""), model=row.get("model", ""), hardware=row.get("hardware", ""),
                    engine=row.get("engine", ""), metric=row.get("metric", ""))
    res.measured = _num(row.get("value"))
    res.category = cat = categorize(row)
    cal = (calibration or {}).get(engine_kind(row))
    try:
        if res.measured is None:
            raise RowSkip("no value")
        if cat == "input":
            raise RowSkip("an input of the speculative model (accepted tokens), not a prediction target")
        if cat == "static":
            pred = _predict_static(row, res, layer, cal)
        elif cat == "max_load":
            pred = _predict_maxload(row, res, layer, cal)
        elif cat == "rate":
            pred = _predict_rate(row, res, layer, cal)
        elif cat == "speculative":
            pred = _predict_speedup(row, res, layer, cal, accepted or {})
        elif cat == "analytic":
            pred = _predict_kernel(row, res, layer)
        elif cat == "batch1":
            pred = _predict_plain_decode(row, res, layer, cal)
        else:
            if res.metric == "fraction_of_optimal_throughput":
                raise RowSkip("NanoFlow's own nano-batching engine (intra-device overlap) is not modelled")
            raise RowSkip("headline number without the setup (hardware, lengths, batch) needed to predict it")
    except (ParaplanError, ValueError) as exc:
        res.skipped = " ".join(str(exc).split())
        return res
    res.predicted = float(pred)
    if res.measured and math.isfinite(res.predicted):
        res.ape = abs(res.predicted - res.measured) / abs(res.measured)
    else:
        res.skipped = "non-finite prediction"
        res.predicted = None
    return res


def read_rows(data: str | Path) -> list[dict[str, str]]:
    with open(data, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for i, r in enumerate(rows):
        r.setdefault("row_id", str(i))
        if not r.get("row_id"):
            r["row_id"] = str(i)
    return rows


def accepted_tokens(rows: list[dict[str, str]]) -> dict[str, float]:
    """Mean accepted tokens per step by engine/method, where the source gives them."""
    out: dict[str, float] = {}
    for r in rows:
        if r.get("metric") == "mean_accepted_tokens_per_step":
            v = _num(r.get("value"))
            if v:
                out[r.get("engine", "")] = v
    return out


def validate_inference(data: str | Path, *, layer: str = "curves",
                       calibration: dict[str, dict[str, float]] | None = None,
                       categories: set[str] | None = None) -> InferValidationReport:
    """Predict every row of ``data``; rows that cannot be predicted are kept with the reason."""
    rows = read_rows(data)
    acc = accepted_tokens(rows)
    out = []
    for r in rows:
        if categories is not None and categorize(r) not in categories:
            continue
        out.append(predict_row(r, layer=layer, calibration=calibration, accepted=acc))
    return InferValidationReport(dataset=str(data), rows=out)
