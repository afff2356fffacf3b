"""Validate the training estimator against published runs (``train-measured.csv`` columns).

Each row is turned into (model, cluster, strategy, workload, framework) from its own columns, with every
default for a missing knob written into the row's ``assumptions``; then the first available metric of
``tokens_per_s_per_gpu``, ``step_time_s``, ``tflops_per_gpu``, ``mfu_pct`` is predicted. TFLOP/s and MFU
are converted with the row's own FLOP convention (``flops_convention`` / ``flops_include_recompute``).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import catalog
from ..cost import flops as F
from ..cost.efficiency import Layer
from ..errors import ParaplanError
from ..specs import ClusterSpec, ModelSpec, MoEConfig
from ..strategy import Strategy, StrategyArrays, check_strategy
from ..train import Workload, estimate_training, evaluate_training
from .report import RowResultBase, _int, _num, ape_stats

METRICS = ("tokens_per_s_per_gpu", "step_time_s", "tflops_per_gpu", "mfu_pct")


@dataclass
class RowResult(RowResultBase):
    gpu: str = ""


@dataclass
class ValidationReport:
    dataset: str
    layer: str
    rows: list[RowResult]

    @property
    def predicted(self) -> list[RowResult]:
        return [r for r in self.rows if r.ape is not None]

    def stats(self) -> dict[str, Any]:
        apes = [float(r.ape) for r in self.predicted]  # type: ignore[arg-type]
        return {"n_rows": len(self.rows), "n_predicted": len(apes), **ape_stats(apes)}

    def to_json(self) -> dict[str, Any]:
        return {**self.stats(), "dataset": self.dataset, "layer": self.layer,
                "rows": [r.to_json() for r in self.rows]}


# ------------------------------------------------------------------ parsing helpers


FFN_KINDS = {"gelu": "gelu", "swiglu": "swiglu", "geglu": "geglu", "squaredrelu": "relu2", "relu2": "relu2",
             "relu": "relu"}


def _feature_years() -> dict[str, int]:
    text = resources.files("paraplan.catalog").joinpath("rules/features.yaml").read_text(encoding="utf-8")
    return {d["feature"]: int(d["year"]) for d in yaml.safe_load(text)}


FEATURE_YEAR = _feature_years()


def source_year(row: dict[str, str]) -> int | None:
    """Publication year named in the row's ``source`` (the first 20xx), if any."""
    m = re.search(r"\b(20[0-9]{2})\b", row.get("source", ""))
    return int(m.group(1)) if m else None


def parse_ffn_kind(text: str) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", text.lower().split()[0] if text.strip() else "")
    for k, v in FFN_KINDS.items():
        if key.startswith(k):
            return v
    return None


def parse_zero(text: str) -> tuple[int, str]:
    """(ZeRO stage, framework) from free text: "FSDP FULL_SHARD (ZeRO-3)", "ZeRO stage 2", "HSDP",
    "distributed optimizer (ZeRO-1-like)", "Megatron-FSDP", "DDP" ..."""
    t = text.lower()
    if not t.strip():
        return 0, "megatron"
    fw = "megatron"
    if ("fsdp" in t or "hybrid_shard" in t or "hsdp" in t) and "megatron" not in t:
        fw = "fsdp"
    elif "deepspeed" in t:
        fw = "deepspeed"
    m = re.search(r"zero[\s_-]*(?:stage)?[\s_-]*([0-3])", t)
    if m:
        return int(m.group(1)), fw
    if any(k in t for k in ("full_shard", "megatron-fsdp", "hybrid_shard", "hsdp", "fsdp")) and \
            "shard_grad_op" not in t:
        return 3, fw
    if "shard_grad_op" in t:
        return 2, fw
    if "distributed optimizer" in t or "dist_opt" in t:
        return 1, fw
    return 0, fw


def parse_precision(text: str) -> str:
    t = text.lower()
    if "fp8" in t:
        return "fp8"
    if "bf16" in t:
        return "bf16"
    if "fp16" in t:
        return "fp16"
    if "fp32" in t:
        return "fp32"
    return "bf16"


def parse_recompute(text: str) -> str | None:
    """none / selective / full from free text ("full (--checkpoint-activations)", "yes", "no", ...)."""
    t = text.strip().lower()
    if not t:
        return None
    for k in ("selective", "full", "none"):
        if t.startswith(k):
            return k
    if t.startswith(("no", "false", "off", "0")):
        return "none"
    if t.startswith(("partial", "attention")):
        return "selective"
    if t.startswith(("yes", "true", "on", "1", "checkpoint", "activation")):
        return "full"
    return None


def row_model(row: dict[str, str], assumptions: list[str]) -> ModelSpec:
    """The row's architecture from its columns, else the catalog entry its name resolves to."""
    name = row.get("model", "").strip()
    try:
        cat: ModelSpec | None = catalog.get_model(name)
    except ParaplanError:
        cat = None
    layers, hidden, heads = _int(row.get("layers")), _int(row.get("hidden")), _int(row.get("heads"))
    ffn = _int(row.get("ffn_hidden"))
    is_moe = bool(row.get("moe", "").strip()) or "moe" in row.get("ffn_type", "").lower()
    if is_moe and cat is None and layers and hidden and heads:
        return moe_model_from_columns(row, assumptions)
    if is_moe or not (layers and hidden and heads and ffn):
        if cat is None:
            raise ParaplanError("architecture columns incomplete and model name not in the catalog")
        assumptions.append(f"architecture from catalog entry '{cat.name}'")
        return cat
    kv = _int(row.get("kv_heads"))
    vocab = _int(row.get("vocab"))
    ffn_kind = parse_ffn_kind(row.get("ffn_type", "")) or (cat.ffn_kind if cat else "gelu")
    if vocab is None:
        vocab = cat.vocab if cat else 51200
        assumptions.append(f"vocab {vocab} ({'catalog' if cat else 'default'})")
    if kv is None:
        kv = cat.kv_heads if cat and cat.n_heads == heads else heads
        assumptions.append(f"kv_heads {kv}")
    seq = _int(row.get("seq_len")) or 2048
    base = dict(name=name or "row-model", n_layers=layers, hidden=hidden, n_heads=heads, n_kv_heads=kv,
                ffn_hidden=ffn, ffn_kind=ffn_kind, vocab=vocab, max_seq_len=max(seq, 2048))
    if cat is not None:
        base.update(tied_embeddings=cat.tied_embeddings, learned_pos_emb=cat.learned_pos_emb, norm=cat.norm,
                    bias=cat.bias, sliding_window=cat.sliding_window,
                    sliding_window_fraction=cat.sliding_window_fraction, head_dim=cat.head_dim
                    if cat.n_heads == heads and cat.hidden == hidden else None)
        return ModelSpec(**base)
    # no catalog entry: infer tied embeddings from the published parameter count when given
    untied = ModelSpec(**base)
    p_b = _num(row.get("params_b"))
    if p_b:
        tied = ModelSpec(**{**base, "tied_embeddings": True})
        if abs(tied.n_params() / 1e9 - p_b) < abs(untied.n_params() / 1e9 - p_b):
            assumptions.append("tied embeddings (closer to params_b)")
            return tied
    return untied


def moe_model_from_columns(row: dict[str, str], assumptions: list[str]) -> ModelSpec:
    """A mixture-of-experts model from the architecture columns and the free-text ``moe`` description
    ("128 experts, top-8", "256 routed + 1 shared experts, top-8, first 3 layers dense")."""
    text = (row.get("moe", "") + " " + row.get("ffn_type", "")).lower()
    ffn_txt = row.get("ffn_hidden", "").lower()
    n_exp = re.search(r"(\d+)\s*(?:routed\s*)?(?:\+[^,]*)?experts?", text)
    top_k = re.search(r"top-?\s*(\d+)", text)
    expert_ffn = re.search(r"(\d+)\s*per expert", ffn_txt)
    if not (n_exp and top_k and expert_ffn):
        raise ParaplanError("MoE row: experts, top-k or expert FFN size not readable from the columns")
    shared = re.search(r"(\d+)\s*shared", text)
    dense_first = re.search(r"first\s*(\d+)\s*layers?\s*dense", text)
    dense_ffn = re.search(r"(\d+)\s*dense", ffn_txt)
    e_ffn = int(expert_ffn.group(1))
    heads = _int(row.get("heads")) or 1
    kv = _int(row.get("kv_heads")) or heads
    moe = MoEConfig(n_experts=int(n_exp.group(1)), top_k=int(top_k.group(1)), expert_ffn_hidden=e_ffn,
                    n_shared_experts=int(shared.group(1)) if shared else 0,
                    first_dense_layers=int(dense_first.group(1)) if dense_first else 0)
    window = 128 if "sliding" in text else None
    assumptions.append("MoE architecture parsed from the moe/ffn columns" + (
        "; sliding window 128 tokens on half the layers (size not given)" if window else ""))
    return ModelSpec(name=row.get("model", "moe-row"), n_layers=_int(row.get("layers")) or 1,
                     hidden=_int(row.get("hidden")) or 1, n_heads=heads, n_kv_heads=kv,
                     ffn_hidden=int(dense_ffn.group(1)) if dense_ffn else e_ffn,
                     ffn_kind=parse_ffn_kind(row.get("ffn_type", "")) or "swiglu",
                     vocab=_int(row.get("vocab")) or 32000,
                     moe=moe, sliding_window=window, sliding_window_fraction=0.5 if window else 1.0)


def row_config(row: dict[str, str]) -> tuple[ModelSpec, ClusterSpec, Strategy, Workload, str, list[str]]:
    """Everything needed to predict a row, plus the assumptions made for missing knobs."""
    a: list[str] = []
    model = row_model(row, a)
    n = _int(row.get("gpu_count"))
    if not n:
        raise ParaplanError("gpu_count not given")
    cluster = catalog.resolve_cluster(row["gpu_type"], n)
    tp = _int(row.get("tp"))
    pp = _int(row.get("pp"))
    cp = _int(row.get("cp")) or 1
    layout_guessed = False
    if tp is None or pp is None:
        sharded_dp = parse_zero(row.get("zero_fsdp", ""))[0] == 3
        if tp is None and pp is None and n > cluster.domain and not sharded_dp:
            layout_guessed = True  # filled below, once the workload is known
            tp = pp = 1
        else:
            tp = tp or 1
            pp = pp or 1
            a.append(f"tp={tp}, pp={pp} (not given)")
    dp = _int(row.get("dp")) or max(n // (tp * pp * cp), 1)
    if not _int(row.get("dp")) and not layout_guessed:
        a.append(f"dp={dp} from gpu_count / (tp*pp*cp)")
    ep = _int(row.get("ep")) or 1
    vpp = _int(row.get("vpp")) or 1
    year = source_year(row)
    sp_txt = row.get("sp", "").strip().lower()
    if sp_txt in ("yes", "true", "1"):
        sp = True
    elif sp_txt in ("no", "false", "0"):
        sp = False
    elif tp > 1 and year is not None and year < FEATURE_YEAR["sequence_parallel"]:
        sp = False
        a.append(f"sequence parallel off (not given; source from {year}, before it existed)")
    else:
        # sequence parallelism moves the same bytes as plain TP and saves memory and elementwise work, so a
        # tuned run with tp > 1 uses it (NeMo/Megatron-Bridge recipes turn it on with TP)
        sp = tp > 1 or layout_guessed
        if tp > 1:
            a.append("sequence parallel on (not given; it dominates plain TP)")
    mb = _int(row.get("micro_batch"))
    if mb is None:
        mb = 1
        a.append("micro_batch 1 (not given)")
    gb = _int(row.get("global_batch_seqs"))
    if gb is None:
        ga = _int(row.get("grad_accum")) or 1
        gb = mb * dp * ga
        a.append(f"global batch {gb} from micro_batch*dp*grad_accum" if not layout_guessed else
                 f"global batch {gb} = gpu_count*micro_batch*grad_accum (not given)")
    rec = parse_recompute(row.get("recompute", ""))
    zero_txt = row.get("zero_fsdp", "").strip()
    zero, fw = parse_zero(zero_txt)
    if "bigscience" in row.get("source", "").lower() or "deepspeed" in row.get("precision", "").lower():
        fw = "deepspeed"
    precision = parse_precision(row.get("precision", ""))
    if zero > 0 and dp == 1:
        zero = 0
    base = Strategy(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, sp=sp and tp > 1, vpp=vpp,
                    schedule="interleaved" if vpp > 1 else "1f1b", micro_batch=mb, global_batch=gb,
                    zero=zero, recompute=rec or "none", precision=precision)  # type: ignore[arg-type]
    seq = _int(row.get("seq_len")) or 2048
    # Megatron GPT models of the Narayanan/Korthikanti era train with dropout 0.1; the architecture-column
    # 'GeLU 4h' family is that lineage. Dropout only changes activation memory and elementwise bytes.
    dropout = "gelu 4h" in row.get("ffn_type", "").lower() and fw == "megatron"
    # Flash attention reached Megatron and the other frameworks in 2023 (catalog/rules/features.yaml): a
    # run published before that used unfused attention (scores materialised).
    flash = None
    if year is not None and year < FEATURE_YEAR["flash_attention"]:
        flash = False
        a.append(f"unfused attention (source from {year}, before flash attention in frameworks)")
    fused = True
    if year is not None and year < FEATURE_YEAR["fused_elementwise"]:
        fused = False
        a.append(f"element-wise kernels unfused (source from {year}, before Megatron-LM's fused kernels)")
    workload = Workload(seq_len=seq, dropout=dropout, flash_attention=flash, fused_kernels=fused)
    if layout_guessed:
        base = _guess_layout(model, cluster, base, workload, fw, _int(row.get("dp")), sp, a)
        dp = base.dp
    if zero == 3 and dp > 1 and ("hybrid" in zero_txt.lower() or "hsdp" in zero_txt.lower()):
        base = base.model_copy(update={"hsdp": True})
    strategy = base
    if rec is None or (not zero_txt and dp > 1):
        # A run that was made fits in memory: for knobs the source does not state, take the cheapest
        # setting (least recompute, then lowest ZeRO stage) that the memory model says fits.
        recs = [rec] if rec else ["none", "selective", "full"]
        zeros = [zero] if zero_txt or dp == 1 else [0, 1]
        cands = [base.model_copy(update={"recompute": r, "zero": z}) for r in recs for z in zeros]
        fits = evaluate_training(model, cluster, StrategyArrays.from_strategies(cands), workload, fw)["fits"]
        strategy = cands[int(np.argmax(fits))] if np.any(fits) else cands[-1]
        if rec is None:
            a.append(f"recompute '{strategy.recompute}' (not given: least recompute that fits memory)")
        if not zero_txt and dp > 1:
            a.append(f"ZeRO stage {strategy.zero} (not given: lowest stage that fits memory)")
    return model, cluster, strategy, workload, fw, a


def _guess_layout(model: ModelSpec, cluster: ClusterSpec, base: Strategy, w: Workload, fw: str, dp_given: int | None,
                  sp_rule: bool, a: list[str]) -> Strategy:
    """tp and pp for a multi-node run that does not state them: Narayanan et al. 2021's guideline (sec. 3.3: tensor
    parallelism up to the GPUs of a node, then pipeline stages, data parallelism for the rest), the least
    model-parallel size whose plan fits memory (with full recompute, the usual setting of large runs)."""
    n = cluster.n_accelerators
    gb = base.global_batch
    base_sp = sp_rule  # the row's sequence-parallel rule for tp > 1 (base itself has tp = 1)
    tps = [t for t in (1, 2, 4, 8, 16) if t <= cluster.domain and model.n_heads % t == 0
           and (model.kv_heads % t == 0 or t % model.kv_heads == 0)]
    cands: list[Strategy] = []
    for t in tps:
        for p in range(1, model.n_layers + 1):
            if model.n_layers % p or n % (t * p) or (t < tps[-1] and p > 1):
                continue
            d = n // (t * p)
            if dp_given and d != dp_given:
                continue
            mb = min(base.micro_batch, max(gb // d, 1))
            if gb % (mb * d):
                continue
            cands.append(base.model_copy(update={"tp": t, "pp": p, "dp": d, "micro_batch": mb,
                                                 "sp": t > 1 and base_sp,
                                                 "recompute": base.recompute if base.recompute != "none" else "full",
                                                 "zero": base.zero if d > 1 else 0}))
    if not cands:
        raise ParaplanError("tp and pp not given for a multi-node run, and no layout divides it")
    fits = evaluate_training(model, cluster, StrategyArrays.from_strategies(cands), w, fw)["fits"]
    pick = cands[int(np.argmax(fits))] if np.any(fits) else cands[-1]
    a.append(f"tp={pick.tp}, pp={pick.pp}, dp={pick.dp} (not given: tensor parallelism up to the node, then the "
             "fewest pipeline stages that fit memory, Narayanan et al. 2021 sec. 3.3)")
    return pick


def convention_flops_per_step(row: dict[str, str], model: ModelSpec, strategy: Strategy, seq: int) -> float:
    """FLOPs per step as the row's source counts them."""
    conv = row.get("flops_convention", "").lower()
    B, L, h, V = strategy.global_batch, model.n_layers, model.hidden, model.vocab
    if "96*b*s*l*h^2" in conv.replace(" ", "") or "narayanan" in conv:
        return F.narayanan_flops_per_step(B, seq, L, h, V)
    if "72*b*s*l*h^2" in conv.replace(" ", ""):
        return F.korthikanti_model_flops_per_step(B, seq, L, h, V)
    if "6*n" in conv.replace(" ", ""):
        n_params = (_num(row.get("params_b")) or model.n_params() / 1e9) * 1e9
        return F.foundry_flops_per_token(n_params, L, h, seq) * B * seq
    causal = "halve" in conv or "causal" in conv
    per_tok = float(F.model_flops_per_token(model, seq, causal=causal))
    inc = row.get("flops_include_recompute", "").lower().startswith("yes")
    if inc and strategy.recompute == "full":
        per_tok *= 4.0 / 3.0
    return per_tok * B * seq


def predict_row(row: dict[str, str], layer: Layer = "curves",
                calibration: dict[str, float] | None = None) -> RowResult:
    res = RowResult(row_id=row.get("row_id", ""), model=row.get("model", ""), gpu=row.get("gpu_type", ""))
    measured = {m: _num(row.get(m)) for m in METRICS}
    metric = next((m for m in METRICS if measured[m] is not None), None)
    if metric is None:
        res.skipped = "no metric given"
        return res
    res.metric, res.measured = metric, measured[metric]
    if row.get("config_complete", "").strip().lower() == "no":
        res.skipped = "config_complete = no (headline number only)"
        return res
    try:
        model, cluster, strategy, workload, fw, assumptions = row_config(row)
        check_strategy(model, cluster, strategy, workload.seq_len, uneven_pp=True, tp_across_nodes=True)
        est = estimate_training(model, cluster, strategy, workload, framework=fw, layer=layer, check=False,
                                 calibration=calibration)
    except (ParaplanError, ValueError) as exc:
        res.skipped = str(exc)
        return res
    res.assumptions = assumptions
    res.config = {"tp": strategy.tp, "pp": strategy.pp, "dp": strategy.dp, "cp": strategy.cp, "ep": strategy.ep,
                  "micro_batch": strategy.micro_batch, "global_batch": strategy.global_batch, "zero": strategy.zero,
                  "recompute": strategy.recompute, "precision": strategy.precision, "framework": fw,
                  "cluster": cluster.name, "fits": est.fits}
    n = est.n_accelerators
    if metric == "tokens_per_s_per_gpu":
        pred = est.tokens_per_s_per_accelerator
    elif metric == "step_time_s":
        pred = est.step_time_s
    else:
        fl = convention_flops_per_step(row, model, strategy, workload.seq_len)
        tflops = fl / est.step_time_s / n / 1e12
        if metric == "tflops_per_gpu":
            pred = tflops
        else:
            peak = _num(row.get("peak_tflops_used")) or cluster.accelerator.peak(strategy.precision) / 1e12
            pred = 100.0 * tflops / peak
    res.predicted = float(pred)
    res.ape = abs(pred - res.measured) / res.measured if res.measured else None  # type: ignore[operator]
    if res.ape is not None and not math.isfinite(res.ape):
        res.ape = None
        res.skipped = "non-finite prediction"
    return res


def read_rows(data: str | Path) -> list[dict[str, str]]:
    with open(data, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def validate_training(data: str | Path, layer: Layer = "curves",
                      calibration: dict[str, float] | None = None) -> ValidationReport:
    """Predict every row of ``data``; rows that cannot be predicted are kept with the reason."""
    rows = read_rows(data)
    return ValidationReport(dataset=str(data), layer=layer, rows=[predict_row(r, layer, calibration) for r in rows])
