"""The model catalog: sources, parameter counts against published ones, aliases used by the measured data."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from paraplan.catalog import get_model, models, normalize
from paraplan.errors import UnknownNameError

ALL = models()
BY_NAME = {m.name: m for m in ALL}


def _data_dir() -> Path | None:
    """The measured-data folder: ``PARAPLAN_DATA``, ``<repo>/shared/data`` or ``<repo>/../shared/data``."""
    here = Path(__file__).resolve().parents[1]
    for p in (os.environ.get("PARAPLAN_DATA"), here / "shared" / "data", here.parent / "shared" / "data"):
        if p and (Path(p) / "train-measured.csv").is_file():
            return Path(p)
    return None


# Every model spelling in train-measured.csv / infer-measured.csv that names an architecture, and its entry.
CSV_SPELLINGS = {
    "BLOOM-176B": "bloom-176b",
    "DeepSeekV3 (w/ MTP)": "deepseek-v3",
    "Falcon-180B": "falcon-180b",
    "GPT 1.7B (Megatron weak scaling)": "megatron-gpt-1.7b",
    "GPT 3.6B (Megatron weak scaling)": "megatron-gpt-3.6b",
    "GPT 7.5B (Megatron weak scaling)": "megatron-gpt-7.5b",
    "GPT 18.4B (Megatron weak scaling)": "megatron-gpt-18.4b",
    "GPT 39.1B (Megatron weak scaling)": "megatron-gpt-39.1b",
    "GPT 76.1B (Megatron weak scaling)": "megatron-gpt-76.1b",
    "GPT 145.6B (Megatron weak scaling)": "megatron-gpt-145.6b",
    "GPT 310.1B (Megatron weak scaling)": "megatron-gpt-310.1b",
    "GPT 529.6B (Megatron weak scaling)": "gpt-530b",
    "GPT 1008.0B (Megatron weak scaling)": "gpt-1t",
    "GPT 175B": "gpt-3-175b",
    "GPT 175B (GPT-3)": "gpt-3-175b",
    "GPT 1T": "gpt-1t",
    "GPT 22B": "gpt-22b",
    "GPT 530B (MT-NLG)": "gpt-530b",
    "GPT OSS 120B": "gpt-oss-120b",
    "GPT-3 175B": "gpt-3-175b",
    "GPT-3-style 175B (MegaScale)": "gpt-3-175b",
    "GPT-J 6B": "gpt-j-6b",
    "GPT3-175B": "gpt-3-175b",
    "GPT3-5B": "nemo-gpt3-5b",
    "LLAMA2-70B": "llama-2-70b",
    "LLAMA2-7B": "llama-2-7b",
    "LLAMA3-8B": "llama-3-8b",
    "LLAMA3.1_405B": "llama-3.1-405b",
    "LLAMA3_70B": "llama-3-70b",
    "LLAMA3_8B": "llama-3-8b",
    "Llama-2-70B": "llama-2-70b",
    "Llama-2-7B": "llama-2-7b",
    "Llama-3.1-405B": "llama-3.1-405b",
    "Llama-3.1-70B": "llama-3.1-70b",
    "Llama-3.1-8B": "llama-3.1-8b",
    "Llama-3.3-70B": "llama-3.3-70b",
    "MPT-125m": "mpt-125m",
    "MPT-1b": "mpt-1b",
    "MPT-30b": "mpt-30b",
    "MPT-350m": "mpt-350m",
    "MPT-7b": "mpt-7b",
    "Mistral-7B": "mistral-7b",
    "Mixtral-8x7B": "mixtral-8x7b",
    "Nemotron-22B": "nemotron-3-22b",
    "Qwen3_235B_a22B": "qwen3-235b-a22b",
    "Qwen3_30B_a3B": "qwen3-30b-a3b",
    "Vicuna-7B": "llama-7b",
}
# Rows of the CSVs that are not one model architecture.
NOT_MODELS = {"(GEMM microbenchmark, large matrix)", "Llama-2 / Falcon / Mistral (abstract aggregate)"}

REQUIRED = [
    "gpt-3-125m", "gpt-3-350m", "gpt-3-760m", "gpt-3-1.3b", "gpt-3-2.7b", "gpt-3-6.7b", "gpt-3-13b",
    "gpt-3-175b", "megatron-gpt-1.7b", "megatron-gpt-3.6b", "megatron-gpt-7.5b", "megatron-gpt-18.4b",
    "megatron-gpt-39.1b", "megatron-gpt-76.1b", "megatron-gpt-145.6b", "megatron-gpt-310.1b", "gpt-530b",
    "gpt-1t", "gpt-22b", "mpt-125m", "mpt-350m", "mpt-1b", "mpt-3b", "mpt-7b", "mpt-13b", "mpt-30b",
    "mpt-70b", "bloom-176b", "gpt-j-6b", "llama-7b", "llama-13b", "llama-33b", "llama-65b", "llama-2-7b",
    "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "llama-3.1-8b", "llama-3.1-70b",
    "llama-3.1-405b", "llama-3.3-70b", "llama-4-scout", "llama-4-maverick", "mistral-7b", "mixtral-8x7b",
    "mixtral-8x22b", "qwen2.5-7b", "qwen2.5-72b", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b",
    "qwen3-14b", "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b", "deepseek-v3", "gpt-oss-20b",
    "gpt-oss-120b", "nemotron-4-15b", "nemotron-4-340b", "gemma-2-2b", "gemma-2-9b", "gemma-2-27b",
    "gemma-3-1b", "gemma-3-4b", "gemma-3-12b", "gemma-3-27b", "falcon-7b", "falcon-40b", "falcon-180b",
]


def test_catalog_size() -> None:
    assert len(ALL) >= 45
    assert sum(1 for m in ALL if m.params_published) >= 40


@pytest.mark.parametrize("name", REQUIRED)
def test_required_models_present(name: str) -> None:
    assert name in BY_NAME


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.name)
def test_every_entry_has_source(m) -> None:
    assert len(m.source) > 20, m.name
    assert "http" in m.source or "arXiv" in m.source or "et al." in m.source or "NeMo" in m.source


@pytest.mark.parametrize("m", [m for m in ALL if m.params_published], ids=lambda m: m.name)
def test_params_match_published(m) -> None:
    n = m.n_params()
    pub = m.params_published
    assert abs(n / pub - 1) <= 0.03, f"{m.name}: {n / 1e9:.3f}B vs published {pub / 1e9}B"


def test_models_without_published_count_are_explained() -> None:
    # Only nominal names whose shape gives a different count are left without params_published; ParScale's
    # paper states only the non-embedding count (1.6B), not a total.
    assert {m.name for m in ALL if not m.params_published} <= {"falcon-40b", "nemotron-3-22b", "parscale-1.6b"}


@pytest.mark.parametrize("spelling, name", sorted(CSV_SPELLINGS.items()))
def test_csv_spellings_resolve(spelling: str, name: str) -> None:
    assert get_model(spelling).name == name


def _csv_rows() -> list[dict[str, str]]:
    d = _data_dir()
    if d is None:
        pytest.skip("measured-data CSVs not available")
    rows: list[dict[str, str]] = []
    for f in ("train-measured.csv", "infer-measured.csv"):
        with open(d / f, newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def test_every_csv_model_is_known() -> None:
    spellings = {r["model"] for r in _csv_rows()}
    unknown = sorted(s for s in spellings - NOT_MODELS if s not in CSV_SPELLINGS)
    assert not unknown, f"CSV model spellings without a catalog mapping: {unknown}"
    for s in spellings - NOT_MODELS:
        get_model(s)


def _as_int(v: str | None) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


def test_csv_architecture_matches_catalog() -> None:
    """Where a CSV row states layers / hidden / heads / KV heads / vocab / FFN, the catalog entry agrees."""
    cols = {"layers": "n_layers", "n_layers": "n_layers", "hidden": "hidden", "heads": "n_heads",
            "n_heads": "n_heads", "kv_heads": "kv_heads", "n_kv_heads": "kv_heads", "vocab": "vocab",
            "ffn_hidden": "ffn_hidden"}
    bad = []
    for r in _csv_rows():
        if r["model"] in NOT_MODELS:
            continue
        m = get_model(r["model"])
        for col, attr in cols.items():
            v = _as_int(r.get(col))
            if v is None:
                continue
            if col == "ffn_hidden" and m.is_moe:
                continue
            if getattr(m, attr) != v:
                bad.append((r["model"], col, v, getattr(m, attr)))
    assert not bad, sorted(set(bad))


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError) as exc:
        get_model("llama-2-7")
    assert "llama-2-7b" in exc.value.suggestions
    assert "did you mean" in str(exc.value)
    with pytest.raises(UnknownNameError) as exc:
        get_model("Mixtral 8x7")
    assert "mixtral-8x7b" in exc.value.suggestions


def test_aliases_normalize_uniquely() -> None:
    seen: dict[str, str] = {}
    for m in ALL:
        for a in (m.name, *m.aliases):
            key = normalize(a)
            assert seen.setdefault(key, m.name) == m.name, f"{a!r} names {seen[key]} and {m.name}"


def test_hf_repo_ids_resolve() -> None:
    assert get_model("meta-llama/Llama-2-7b-hf").name == "llama-2-7b"
    assert get_model("meta-llama/Meta-Llama-3.1-405B-Instruct").name == "llama-3.1-405b"
    assert get_model("deepseek-ai/DeepSeek-V3").name == "deepseek-v3"
    assert get_model("Qwen/Qwen3-30B-A3B").name == "qwen3-30b-a3b"
    assert get_model("openai/gpt-oss-20b").name == "gpt-oss-20b"
    assert get_model("mistralai/Mixtral-8x22B-v0.1").name == "mixtral-8x22b"
    assert get_model("google/gemma-3-27b-it").name == "gemma-3-27b"
    assert get_model("tiiuae/falcon-180B").name == "falcon-180b"
    assert get_model("lmsys/vicuna-7b-v1.5").name == "llama-2-7b"


@pytest.mark.parametrize(
    "name, total_b, active_b, tol",
    [
        ("deepseek-v3", 671, 37, 0.03),
        ("mixtral-8x7b", 46.7, 12.9, 0.02),
        ("mixtral-8x22b", 141, 39, 0.03),
        ("qwen3-30b-a3b", 30.5, 3.3, 0.03),
        ("qwen3-235b-a22b", 235, 22, 0.03),
        ("llama-4-scout", 109, 17, 0.03),
        ("llama-4-maverick", 400, 17, 0.03),
        # gpt-oss's card counts the unembedding but not the embedding among active parameters (5.13B / 3.61B)
        ("gpt-oss-120b", 116.8, 5.13, 0.12),
        ("gpt-oss-20b", 20.9, 3.61, 0.17),
    ],
)
def test_moe_active_params(name: str, total_b: float, active_b: float, tol: float) -> None:
    m = get_model(name)
    assert m.is_moe
    assert m.n_params() == pytest.approx(total_b * 1e9, rel=0.03)
    assert m.n_active_params() == pytest.approx(active_b * 1e9, rel=tol)
    assert m.n_active_params() < m.n_params()


def test_moe_layer_layouts() -> None:
    assert get_model("deepseek-v3").n_moe_layers == 58  # 61 layers, the first 3 dense
    assert get_model("llama-4-maverick").n_moe_layers == 24  # alternate layers
    assert get_model("llama-4-scout").n_moe_layers == 48
    assert get_model("deepseek-v3").attention_kind == "mla"


def test_attention_and_window_shapes() -> None:
    assert get_model("falcon-7b").attention_kind == "mqa"
    assert get_model("llama-2-70b").attention_kind == "gqa"
    assert get_model("llama-2-7b").attention_kind == "mha"
    assert get_model("gpt-oss-120b").sliding_window == 128
    assert get_model("gpt-oss-120b").sliding_window_fraction == 0.5
    assert get_model("gemma-2-9b").sliding_window_fraction == 0.5
    assert get_model("gemma-3-4b").sliding_window_fraction == pytest.approx(29 / 34, abs=1e-3)
    assert get_model("gemma-3-27b").dim_head == 128
    assert get_model("nemotron-4-340b").ffn_kind == "relu2"
    assert not get_model("nemotron-4-340b").gated
    assert get_model("gemma-2-27b").ffn_kind == "geglu"


def test_megatron_series_shapes() -> None:
    shapes = {"megatron-gpt-1.7b": (24, 2304, 24), "megatron-gpt-3.6b": (30, 3072, 32),
              "megatron-gpt-7.5b": (36, 4096, 32), "megatron-gpt-18.4b": (40, 6144, 48),
              "megatron-gpt-39.1b": (48, 8192, 64), "megatron-gpt-76.1b": (60, 10240, 80),
              "megatron-gpt-145.6b": (80, 12288, 96), "megatron-gpt-310.1b": (96, 16384, 128),
              "gpt-530b": (105, 20480, 128), "gpt-1t": (128, 25600, 160), "gpt-22b": (48, 6144, 64)}
    for name, (l, h, a) in shapes.items():
        m = get_model(name)
        got = (m.n_layers, m.hidden, m.n_heads, m.ffn_hidden, m.vocab, m.max_seq_len)
        assert got == (l, h, a, 4 * h, 51200, 2048), name
