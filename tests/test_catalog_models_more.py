"""The models added in ``catalog/models/*_more.yaml``: every alias resolves, parameter counts match the published
ones, MoE active parameters are plausible, and training and serving estimates run for a sample of them."""

from __future__ import annotations

import math
from importlib import resources

import pytest
import yaml

from paraplan import Strategy, Workload, estimate_training, get_cluster, get_model
from paraplan.catalog import models
from paraplan.infer import InferenceConfig, estimate_inference


def _more_entries() -> list[dict]:
    root = resources.files("paraplan.catalog").joinpath("models")
    out: list[dict] = []
    for f in sorted(root.iterdir(), key=lambda p: p.name):
        if f.name.endswith("_more.yaml"):
            for d in yaml.safe_load(f.read_text(encoding="utf-8")) or []:
                out.append({**d, "_file": f.name})
    return out


MORE = _more_entries()
MORE_NAMES = [d["name"] for d in MORE]
ALIASES = [(d["name"], a) for d in MORE for a in (d["name"], *d.get("aliases", []))]

EXPECTED = {
    # dense
    "llama-3.2-1b", "llama-3.2-3b", "codellama-34b",
    "opt-1.3b", "opt-2.7b", "opt-6.7b", "opt-13b", "opt-30b", "opt-66b", "opt-175b",
    "pythia-1.4b", "pythia-2.8b", "pythia-6.9b", "pythia-12b",
    "palm-8b", "palm-62b", "palm-540b",
    "yi-6b", "yi-34b", "qwen2-7b", "qwen2-72b", "qwen2.5-14b", "qwen2.5-32b",
    "mistral-large-2", "phi-3-mini", "phi-3-medium", "phi-4", "internlm2-20b",
    "olmo-7b", "olmo-2-7b", "olmo-2-13b", "olmo-2-32b", "deepseek-llm-7b", "deepseek-llm-67b",
    # MoE
    "deepseek-v2", "deepseek-v2-lite", "qwen1.5-moe-a2.7b", "qwen2-57b-a14b", "dbrx", "grok-1", "arctic",
}


def test_new_entries_present_and_unique() -> None:
    assert set(MORE_NAMES) == EXPECTED
    assert len(MORE_NAMES) == len(set(MORE_NAMES))
    catalog_names = [m.name for m in models()]
    assert len(catalog_names) == len(set(catalog_names))
    for name in MORE_NAMES:
        assert name in catalog_names


@pytest.mark.parametrize("name, alias", ALIASES, ids=[f"{n}:{a}" for n, a in ALIASES])
def test_every_alias_resolves(name: str, alias: str) -> None:
    assert get_model(alias).name == name
    assert get_model(alias.upper()).name == name  # case does not matter


def test_usual_spellings_resolve() -> None:
    spellings = {
        "OPT-175B": "opt-175b", "facebook/opt-66b": "opt-66b", "OPT 30B": "opt-30b",
        "EleutherAI/pythia-12b-deduped": "pythia-12b", "PaLM 540B": "palm-540b",
        "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b", "Llama 3.2 3B": "llama-3.2-3b",
        "codellama/CodeLlama-34b-Instruct-hf": "codellama-34b", "01-ai/Yi-34B": "yi-34b",
        "Qwen/Qwen2-72B-Instruct": "qwen2-72b", "Qwen2.5-32B-Instruct": "qwen2.5-32b",
        "mistralai/Mistral-Large-Instruct-2407": "mistral-large-2", "microsoft/phi-4": "phi-4",
        "microsoft/Phi-3-mini-4k-instruct": "phi-3-mini", "internlm/internlm2-chat-20b": "internlm2-20b",
        "allenai/OLMo-2-1124-13B": "olmo-2-13b", "deepseek-ai/deepseek-llm-67b-chat": "deepseek-llm-67b",
        "deepseek-ai/DeepSeek-V2-Chat": "deepseek-v2", "DeepSeek-V2-Lite": "deepseek-v2-lite",
        "Qwen/Qwen1.5-MoE-A2.7B": "qwen1.5-moe-a2.7b", "Qwen2-57B-A14B": "qwen2-57b-a14b",
        "databricks/dbrx-instruct": "dbrx", "Grok-1": "grok-1", "Snowflake/snowflake-arctic-instruct": "arctic",
    }
    for spelling, name in spellings.items():
        assert get_model(spelling).name == name, spelling
    # the existing entries keep their spellings (no new alias shadows them)
    assert get_model("Qwen2.5-7B").name == "qwen2.5-7b"
    assert get_model("DeepSeek-V3").name == "deepseek-v3"
    assert get_model("GPT-3 175B").name == "gpt-3-175b"
    assert get_model("Mistral-7B").name == "mistral-7b"


@pytest.mark.parametrize("name", MORE_NAMES)
def test_source_and_published_count(name: str) -> None:
    m = get_model(name)
    assert len(m.source) > 40 and ("http" in m.source or "arXiv" in m.source)
    assert m.params_published, f"{name}: every new entry states a published count"
    assert abs(m.n_params() / m.params_published - 1) <= 0.03, (
        f"{name}: {m.n_params() / 1e9:.3f}B vs published {m.params_published / 1e9}B")


def test_exact_published_counts_are_close() -> None:
    """Where the source gives an exact count (Pythia Table 1, PaLM Table 1) the shape reproduces it to 0.1%
    (the remainder: biases and norms that the parameter count does not include)."""
    for name in ("pythia-1.4b", "pythia-2.8b", "pythia-6.9b", "pythia-12b", "palm-8b", "palm-62b", "palm-540b"):
        m = get_model(name)
        assert m.n_params() == pytest.approx(m.params_published, rel=1e-3), name


@pytest.mark.parametrize(
    "name, total_b, active_b, tol",
    [
        ("deepseek-v2", 236, 21, 0.05),
        # V2-Lite's 2.4B activated leaves out the input embedding (0.2B) that n_active_params counts
        ("deepseek-v2-lite", 15.7, 2.4, 0.12),
        ("qwen1.5-moe-a2.7b", 14.3, 2.7, 0.03),
        ("qwen2-57b-a14b", 57.4, 14, 0.03),
        ("dbrx", 132, 36, 0.03),
        # xAI: "25% of the weights active on a given token" (about 78.5B of 314B)
        ("grok-1", 314, 78.5, 0.08),
        ("arctic", 480, 17, 0.03),
    ],
)
def test_moe_active_params(name: str, total_b: float, active_b: float, tol: float) -> None:
    m = get_model(name)
    assert m.is_moe
    assert m.n_params() == pytest.approx(total_b * 1e9, rel=0.03)
    assert m.n_active_params() == pytest.approx(active_b * 1e9, rel=tol)
    assert 0.01 < m.n_active_params() / m.n_params() < 0.5


def test_moe_and_attention_layouts() -> None:
    assert get_model("deepseek-v2").attention_kind == "mla"
    assert get_model("deepseek-v2").n_moe_layers == 59  # first layer dense
    assert get_model("deepseek-v2-lite").mla.q_lora_rank is None
    assert get_model("deepseek-v2-lite").n_moe_layers == 26
    assert get_model("arctic").n_moe_layers == 35
    assert get_model("arctic").moe.shared_expert_ffn_hidden == 7168  # dense residual MLP of hidden size
    assert get_model("palm-540b").attention_kind == "mqa"
    assert get_model("palm-540b").dim_head == 256
    assert get_model("opt-175b").learned_pos_emb and get_model("opt-175b").ffn_kind == "relu"
    assert get_model("grok-1").ffn_kind == "geglu"
    assert get_model("phi-4").attention_kind == "gqa"
    assert get_model("llama-3.2-1b").tied_embeddings and get_model("llama-3.2-1b").dim_head == 64


TRAIN_SAMPLE = [
    ("opt-175b", "dgx-a100:1024", dict(tp=8, pp=16, micro_batch=1, global_batch=1536, recompute="full"), 2048, True),
    ("palm-62b", "dgx-h100:256", dict(tp=8, pp=4, micro_batch=1, global_batch=512, recompute="selective"), 2048,
     True),
    ("yi-34b", "dgx-h100:64", dict(tp=8, pp=2, micro_batch=1, global_batch=256, recompute="selective"), 4096, True),
    ("pythia-12b", "dgx-a100:64", dict(tp=4, pp=1, micro_batch=2, global_batch=256, recompute="selective"), 2048,
     True),
    ("llama-3.2-1b", "dgx-h100:8", dict(tp=1, pp=1, micro_batch=1, global_batch=256, recompute="selective"), 8192,
     True),
    ("dbrx", "dgx-h100:128", dict(tp=4, pp=4, ep=8, micro_batch=1, global_batch=512, recompute="full"), 4096, True),
    ("deepseek-v2", "dgx-h100:256", dict(tp=1, pp=4, ep=32, micro_batch=1, global_batch=1024, recompute="full"),
     4096, None),
    ("arctic", "dgx-h100:320", dict(tp=8, pp=5, ep=8, micro_batch=1, global_batch=512, recompute="full"), 4096, None),
]


@pytest.mark.parametrize("name, cluster, strat, seq, fits", TRAIN_SAMPLE, ids=[t[0] for t in TRAIN_SAMPLE])
def test_training_estimate_runs(name: str, cluster: str, strat: dict, seq: int, fits: bool | None) -> None:
    m, c = get_model(name), get_cluster(cluster)
    strat = dict(strat, dp=c.n_accelerators // (strat["tp"] * strat["pp"]))
    est = estimate_training(m, c, Strategy(**strat), Workload(seq_len=seq, tokens=1e12))
    assert math.isfinite(est.step_time_s) and est.step_time_s > 0
    assert sum(est.time.components_s.values()) == pytest.approx(est.step_time_s, rel=1e-9)
    assert 0.02 < est.mfu < 0.8
    if fits is not None:
        assert est.fits == fits


SERVE_SAMPLE = [
    ("llama-3.2-3b", "h100-sxm:8", dict(tp=1)),
    ("opt-13b", "a100-sxm-80gb:8", dict(tp=2)),
    ("opt-66b", "a100-sxm-80gb:8", dict(tp=4)),
    ("mistral-large-2", "h100-sxm:8", dict(tp=8)),
    ("phi-3-mini", "a100-sxm-80gb:8", dict(tp=1)),
    ("palm-8b", "h100-sxm:8", dict(tp=1)),
    ("qwen2-57b-a14b", "h100-sxm:8", dict(tp=4)),
    ("deepseek-v2-lite", "h100-sxm:8", dict(tp=1)),
    ("dbrx", "h100-sxm:8", dict(tp=8)),
    ("grok-1", "h100-sxm:8", dict(tp=8, weight_bits=8, act_bits=8)),
]


@pytest.mark.parametrize("name, cluster, cfg", SERVE_SAMPLE, ids=[s[0] for s in SERVE_SAMPLE])
def test_serving_estimate_runs(name: str, cluster: str, cfg: dict) -> None:
    m, c = get_model(name), get_cluster(cluster)
    est = estimate_inference(m, c, InferenceConfig(**cfg), batch=8, input_len=1024, output_len=256)
    assert est.fits
    assert est.ttft_s > 0 and est.tpot_s > 0 and math.isfinite(est.e2e_s)
    assert est.output_tokens_per_s > 0
    assert sum(est.decode.components_s.values()) == pytest.approx(est.decode.total_s, rel=1e-9)


def test_moe_decode_cheaper_than_dense_of_same_total() -> None:
    """A token of Qwen2-57B-A14B touches ~14B parameters: its decode step is faster than Qwen2-72B's on the
    same accelerators (and slower than a 7B's)."""
    c = get_cluster("h100-sxm:8")
    cfg = InferenceConfig(tp=4)
    kw = dict(batch=1, input_len=512, output_len=64)
    moe = estimate_inference(get_model("qwen2-57b-a14b"), c, cfg, **kw)
    dense = estimate_inference(get_model("qwen2-72b"), c, cfg, **kw)
    small = estimate_inference(get_model("qwen2-7b"), c, cfg, **kw)
    assert small.tpot_s < dense.tpot_s
    assert moe.tpot_s < dense.tpot_s
