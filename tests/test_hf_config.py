"""Reading Hugging Face config.json files (fixtures under tests/data/hf/<family>/config.json, real values)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paraplan.catalog import get_model
from paraplan.errors import ConfigError, UnknownNameError
from paraplan.hf import load_hf_config, load_model

HF = Path(__file__).parent / "data" / "hf"

# fixture folder -> catalog entry with the same architecture
CATALOG_TWIN = {
    "llama": "llama-2-7b", "mistral": "mistral-7b", "mixtral": "mixtral-8x7b", "qwen2": "qwen2.5-7b",
    "qwen3": "qwen3-8b", "qwen3_moe": "qwen3-30b-a3b", "deepseek_v3": "deepseek-v3", "gpt2": "gpt2",
    "gptj": "gpt-j-6b", "gpt_neox": "gpt-neox-20b", "mpt": "mpt-7b", "falcon": "falcon-7b",
    "falcon-180b": "falcon-180b", "gemma": "gemma-7b", "gemma2": "gemma-2-9b", "gemma3": "gemma-3-4b",
    "gemma3_text": "gemma-3-1b", "llama4": "llama-4-scout", "llama4-maverick": "llama-4-maverick",
    "gpt_oss": "gpt-oss-120b",
}

# fixture -> (layers, hidden, heads, kv heads, dim_head, ffn, ffn_kind, vocab, tied)
SHAPES = {
    "llama": (32, 4096, 32, 32, 128, 11008, "swiglu", 32000, False),
    "mistral": (32, 4096, 32, 8, 128, 14336, "swiglu", 32000, False),
    "mixtral": (32, 4096, 32, 8, 128, 14336, "swiglu", 32000, False),
    "qwen2": (28, 3584, 28, 4, 128, 18944, "swiglu", 152064, False),
    "qwen3": (36, 4096, 32, 8, 128, 12288, "swiglu", 151936, False),
    "qwen3_moe": (48, 2048, 32, 4, 128, 6144, "swiglu", 151936, False),
    "deepseek_v3": (61, 7168, 128, 128, 56, 18432, "swiglu", 129280, False),
    "gpt2": (12, 768, 12, 12, 64, 3072, "gelu", 50257, True),
    "gptj": (28, 4096, 16, 16, 256, 16384, "gelu", 50400, False),
    "gpt_neox": (44, 6144, 64, 64, 96, 24576, "gelu", 50432, False),
    "mpt": (32, 4096, 32, 32, 128, 16384, "gelu", 50432, True),
    "falcon": (32, 4544, 71, 1, 64, 18176, "gelu", 65024, True),
    "falcon-180b": (80, 14848, 232, 8, 64, 59392, "gelu", 65024, True),
    "gemma": (28, 3072, 16, 16, 256, 24576, "geglu", 256000, True),
    "gemma2": (42, 3584, 16, 8, 256, 14336, "geglu", 256000, True),
    "gemma3": (34, 2560, 8, 4, 256, 10240, "geglu", 262208, True),
    "gemma3_text": (26, 1152, 4, 1, 256, 6912, "geglu", 262144, True),
    "llama4": (48, 5120, 40, 8, 128, 16384, "swiglu", 202048, False),
    "llama4-maverick": (48, 5120, 40, 8, 128, 16384, "swiglu", 202048, False),
    "gpt_oss": (36, 2880, 64, 8, 64, 2880, "swiglu", 201088, False),
}

REQUIRED_FAMILIES = ["llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "deepseek_v3", "gpt2",
                     "gptj", "gpt_neox", "mpt", "falcon", "gemma", "gemma2", "gemma3", "gemma3_text",
                     "llama4"]


def _cfg(name: str) -> dict:
    return json.loads((HF / name / "config.json").read_text())


def test_every_family_has_a_fixture() -> None:
    for fam in REQUIRED_FAMILIES:
        assert (HF / fam / "config.json").is_file(), fam
    assert set(SHAPES) == {p.name for p in HF.iterdir() if (p / "config.json").is_file()}


@pytest.mark.parametrize("fixture", sorted(SHAPES))
def test_shapes(fixture: str) -> None:
    m = load_hf_config(HF / fixture / "config.json")
    layers, hidden, heads, kv, dh, ffn, kind, vocab, tied = SHAPES[fixture]
    assert (m.n_layers, m.hidden, m.n_heads, m.kv_heads, m.dim_head) == (layers, hidden, heads, kv, dh)
    assert (m.ffn_hidden, m.ffn_kind, m.vocab, m.tied_embeddings) == (ffn, kind, vocab, tied)


@pytest.mark.parametrize("fixture", sorted(CATALOG_TWIN))
def test_params_equal_catalog_twin(fixture: str) -> None:
    m = load_hf_config(HF / fixture / "config.json")
    c = get_model(CATALOG_TWIN[fixture])
    rel = 0.001 if fixture == "mpt" else 0.0  # released MPT-7B pads vocab to 50432, llm-foundry uses 50368
    assert m.n_params() == pytest.approx(c.n_params(), rel=rel)
    assert m.n_active_params() == pytest.approx(c.n_active_params(), rel=rel)
    assert m.kv_heads == c.kv_heads and m.dim_head == c.dim_head
    assert m.mla == c.mla and m.moe == c.moe
    assert m.sliding_window == c.sliding_window
    assert m.sliding_window_fraction == pytest.approx(c.sliding_window_fraction, abs=1e-3)
    assert m.norm == c.norm and m.learned_pos_emb == c.learned_pos_emb


def test_llama2_7b_exact() -> None:
    m = load_hf_config(HF / "llama" / "config.json")
    assert m.name == "meta-llama/Llama-2-7b-hf"  # from _name_or_path
    assert m.n_params() == get_model("llama-2-7b").n_params() == 6_738_415_616  # the checkpoint's exact count
    assert m.max_seq_len == 4096 and m.norm == "rmsnorm" and m.family == "llama"


def test_name_falls_back_to_folder_then_model_type() -> None:
    assert load_hf_config(HF / "mistral" / "config.json").name == "mistral"
    assert load_hf_config(HF / "falcon-180b").name == "falcon-180b"  # a folder works too
    d = _cfg("mistral")
    assert load_hf_config(d).name == "mistral"  # dict: model_type
    repo = "mistralai/Mistral-7B-v0.1"
    assert load_hf_config({**d, "_name_or_path": repo}).name == repo
    assert load_hf_config(d, name="mine").name == "mine"


def test_moe_families() -> None:
    ds = load_hf_config(HF / "deepseek_v3" / "config.json")
    assert ds.attention_kind == "mla" and ds.mla is not None
    assert (ds.mla.q_lora_rank, ds.mla.kv_lora_rank, ds.mla.qk_nope_head_dim, ds.mla.qk_rope_head_dim,
            ds.mla.v_head_dim) == (1536, 512, 128, 64, 128)
    assert ds.moe is not None and (ds.moe.n_experts, ds.moe.top_k, ds.moe.expert_ffn_hidden) == (256, 8, 2048)
    assert (ds.moe.n_shared_experts, ds.moe.first_dense_layers, ds.n_moe_layers) == (1, 3, 58)
    assert ds.n_params() == pytest.approx(671e9, rel=0.01)
    assert ds.n_active_params() == pytest.approx(37e9, rel=0.03)

    mx = load_hf_config(HF / "mixtral" / "config.json")
    assert mx.moe is not None and (mx.moe.n_experts, mx.moe.top_k, mx.moe.expert_ffn_hidden) == (8, 2, 14336)
    assert mx.n_active_params() == pytest.approx(12.9e9, rel=0.01)

    q = load_hf_config(HF / "qwen3_moe" / "config.json")
    assert q.moe is not None and (q.moe.n_experts, q.moe.top_k, q.moe.expert_ffn_hidden) == (128, 8, 768)
    assert q.n_moe_layers == 48

    mav = load_hf_config(HF / "llama4-maverick" / "config.json")
    assert mav.moe is not None
    assert (mav.moe.first_dense_layers, mav.moe.layer_freq, mav.n_moe_layers) == (1, 2, 24)
    assert mav.moe.n_shared_experts == 1
    assert mav.n_params() == pytest.approx(400e9, rel=0.01)

    oss = load_hf_config(HF / "gpt_oss" / "config.json")
    assert oss.moe is not None and (oss.moe.n_experts, oss.moe.top_k) == (128, 4)
    assert oss.n_params() == pytest.approx(116.8e9, rel=0.01)


def test_qwen_moe_dense_layers_and_sparse_step() -> None:
    base = _cfg("qwen3_moe")
    m = load_hf_config({**base, "mlp_only_layers": [0, 1]})
    assert m.moe is not None and (m.moe.first_dense_layers, m.moe.layer_freq, m.n_moe_layers) == (2, 1, 46)
    m = load_hf_config({**base, "decoder_sparse_step": 2})
    assert m.moe is not None and (m.moe.first_dense_layers, m.moe.layer_freq, m.n_moe_layers) == (1, 2, 24)
    # an irregular set keeps the MoE layer count
    m = load_hf_config({**base, "mlp_only_layers": [0, 5, 9]})
    assert m.n_moe_layers == 45


def test_sliding_windows() -> None:
    assert load_hf_config(HF / "mistral").sliding_window == 4096
    assert load_hf_config(HF / "mistral").sliding_window_fraction == 1.0
    g2 = load_hf_config(HF / "gemma2")
    assert (g2.sliding_window, g2.sliding_window_fraction) == (4096, 0.5)
    g3 = load_hf_config(HF / "gemma3")
    assert g3.sliding_window == 1024 and g3.sliding_window_fraction == pytest.approx(29 / 34)
    assert load_hf_config(HF / "gemma3_text").sliding_window == 512
    oss = load_hf_config(HF / "gpt_oss")
    assert (oss.sliding_window, oss.sliding_window_fraction) == (128, 0.5)
    l4 = load_hf_config(HF / "llama4")
    assert (l4.sliding_window, l4.sliding_window_fraction) == (8192, 0.75)
    for fam in ("qwen2", "qwen3", "mixtral", "llama", "deepseek_v3"):
        assert load_hf_config(HF / fam).sliding_window is None, fam
    swa = {"use_sliding_window": True, "sliding_window": 4096, "max_window_layers": 21}
    q = load_hf_config({**_cfg("qwen2"), **swa})
    assert (q.sliding_window, q.sliding_window_fraction) == (4096, 0.25)


def test_positions_and_heads_by_family() -> None:
    gpt2 = load_hf_config(HF / "gpt2")
    assert gpt2.learned_pos_emb and gpt2.max_seq_len == 1024 and gpt2.bias
    assert gpt2.n_params() == pytest.approx(124.4e6, rel=0.005)
    mpt = load_hf_config(HF / "mpt")
    assert not mpt.learned_pos_emb and not mpt.bias  # ALiBi, no_bias
    no_alibi = {**_cfg("mpt"), "attn_config": {"alibi": False}}
    assert load_hf_config(no_alibi).learned_pos_emb
    assert load_hf_config({**_cfg("mpt"), "expansion_ratio": 2}).ffn_hidden == 8192
    assert load_hf_config(HF / "falcon").attention_kind == "mqa"
    assert load_hf_config(HF / "falcon-180b").attention_kind == "gqa"
    assert load_hf_config({**_cfg("falcon"), "multi_query": False}).attention_kind == "mha"
    assert load_hf_config(HF / "gptj").max_seq_len == 2048
    assert load_hf_config(HF / "gemma").norm == "rmsnorm"
    assert load_hf_config(HF / "gpt_neox").norm == "layernorm"


def test_multimodal_text_config() -> None:
    g3 = load_hf_config(HF / "gemma3")
    assert g3.family == "gemma3"
    assert g3.n_params() == pytest.approx(3.88e9, rel=0.01)  # language model only
    l4 = load_hf_config(HF / "llama4")
    assert l4.family == "llama4" and l4.moe is not None and l4.moe.n_experts == 16
    assert l4.n_params() == pytest.approx(109e9, rel=0.03)
    assert l4.n_active_params() == pytest.approx(17e9, rel=0.03)


def test_missing_keys_are_all_named() -> None:
    drop = ("hidden_size", "vocab_size", "intermediate_size")
    cfg = {k: v for k, v in _cfg("llama").items() if k not in drop}
    with pytest.raises(ConfigError) as exc:
        load_hf_config(cfg)
    msg = str(exc.value)
    for key in ("hidden_size", "vocab_size", "intermediate_size"):
        assert key in msg
    assert "num_hidden_layers" not in msg
    gpt2 = {k: v for k, v in _cfg("gpt2").items() if k not in ("n_embd", "n_layer")}
    with pytest.raises(ConfigError, match=r"n_embd.*n_layer"):
        load_hf_config(gpt2)
    with pytest.raises(ConfigError, match="d_model"):
        load_hf_config({k: v for k, v in _cfg("mpt").items() if k != "d_model"})


def test_malformed_configs() -> None:
    with pytest.raises(ConfigError, match="integer"):
        load_hf_config({**_cfg("llama"), "hidden_size": "4096x"})
    with pytest.raises(ConfigError):
        load_hf_config({**_cfg("llama"), "num_key_value_heads": 5})  # 32 heads not divisible by 5
    with pytest.raises(ConfigError):
        load_hf_config({**_cfg("mixtral"), "num_experts_per_tok": None})


def test_unknown_model_type_with_standard_keys() -> None:
    phi3 = {"model_type": "phi3", "hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 32, "intermediate_size": 8192, "vocab_size": 32064, "hidden_act": "silu",
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "tie_word_embeddings": False}
    m = load_hf_config(phi3)
    assert (m.family, m.ffn_kind, m.norm, m.n_layers, m.vocab) == ("phi3", "swiglu", "rmsnorm", 32, 32064)
    assert m.n_params() == pytest.approx(3.82e9, rel=0.01)
    bare = {"model_type": "my_new_lm", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
            "intermediate_size": 4096, "vocab_size": 1000}
    m = load_hf_config(bare)
    assert m.name == "my_new_lm" and m.n_layers == 4 and m.max_seq_len == 2048
    with pytest.raises(ConfigError, match="num_attention_heads"):
        load_hf_config({k: v for k, v in bare.items() if k != "num_attention_heads"})


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_hf_config(tmp_path / "nope.json")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        load_hf_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError):
        load_hf_config(tmp_path / "config.json")


def test_load_model(tmp_path: Path) -> None:
    assert load_model(str(HF / "llama" / "config.json")).name == "meta-llama/Llama-2-7b-hf"
    assert load_model(str(HF / "gemma2")).family == "gemma2"  # folder holding config.json
    assert load_model(HF / "qwen3").n_layers == 36
    assert load_model("Llama-2-7B").name == "llama-2-7b"
    assert load_model("meta-llama/Llama-2-70b-hf").name == "llama-2-70b"
    with pytest.raises(UnknownNameError):
        load_model("no-such-model-xyz")
    with pytest.raises(ConfigError):
        load_model(str(tmp_path / "missing" / "config.json"))
    y = tmp_path / "tiny.yaml"
    y.write_text("name: tiny\nn_layers: 2\nhidden: 64\nn_heads: 4\nffn_hidden: 256\nvocab: 100\n")
    assert load_model(str(y)).name == "tiny"


def test_no_transformers_import() -> None:
    code = ("import sys, paraplan.hf as h; "
            f"h.load_hf_config({str(HF / 'llama')!r}); h.load_hf_config({str(HF / 'gemma3')!r}); "
            "assert 'transformers' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


_QWEN3_NEXT = {"model_type": "qwen3_next", "hidden_size": 2048, "num_hidden_layers": 48, "num_attention_heads": 16,
               "num_key_value_heads": 2, "head_dim": 256, "intermediate_size": 5120, "moe_intermediate_size": 512,
               "num_experts": 512, "num_experts_per_tok": 10, "vocab_size": 151936,
               "full_attention_interval": 4, "linear_num_key_heads": 16, "linear_key_head_dim": 128}


@pytest.mark.parametrize("extra,needle", [
    ({"full_attention_interval": 4, "linear_num_key_heads": 16}, "full_attention_interval"),
    ({"hybrid_override_pattern": "M-M-M*-M-"}, "hybrid_override_pattern"),
    ({"layer_types": ["mamba", "mamba", "attention", "mamba"]}, "layer_types mamba"),
    ({"layer_types": ["conv", "full_attention"]}, "layer_types conv"),
])
def test_hybrid_configs_carry_a_caveat_into_every_estimate(extra: dict, needle: str) -> None:
    from paraplan import catalog
    from paraplan.infer import InferenceConfig, estimate_inference
    from paraplan.search import search
    from paraplan.strategy import Strategy
    from paraplan.train import Workload, estimate_training

    cfg = {"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
           "intermediate_size": 4096, "vocab_size": 32000, **extra}
    m = load_hf_config(cfg)
    (cav,) = m.caveats
    assert needle in cav and "does not model" in cav
    c = catalog.get_cluster("dgx-h100", 8)
    est = estimate_training(m, c, Strategy(dp=8, global_batch=8), Workload(seq_len=1024))
    assert cav in est.assumptions
    inf = estimate_inference(m, catalog.get_cluster("h100-sxm:1"), InferenceConfig(), batch=1, input_len=128,
                             output_len=16)
    assert cav in inf.assumptions
    assert cav in search(m, c, 8, Workload(seq_len=1024), top=1).notes


def test_plain_and_sliding_window_configs_have_no_caveat() -> None:
    base = {"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
            "intermediate_size": 4096, "vocab_size": 32000}
    assert load_hf_config(base).caveats == ()
    swa = {**base, "sliding_window": 512, "layer_types": ["sliding_attention", "full_attention"] * 2}
    assert load_hf_config(swa).caveats == ()
    assert load_hf_config(_QWEN3_NEXT).caveats  # Qwen3-Next's gated DeltaNet layers


_NEXT_FULL = {**_QWEN3_NEXT, "linear_num_value_heads": 32, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4}
_GRANITE_H = {"model_type": "granitemoehybrid", "hidden_size": 4096, "num_hidden_layers": 40,
              "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 12800, "vocab_size": 100352,
              "layer_types": (["mamba"] * 9 + ["attention"]) * 4, "mamba_n_heads": 128, "mamba_d_head": 64,
              "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4, "max_position_embeddings": 131072}
_JAMBA = {"model_type": "jamba", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
          "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 65536, "attn_layer_period": 8,
          "attn_layer_offset": 4, "mamba_d_state": 16, "mamba_expand": 2, "mamba_d_conv": 4, "num_experts": 16,
          "num_experts_per_tok": 2, "expert_layer_period": 2, "expert_layer_offset": 1}


@pytest.mark.parametrize("cfg,frac,elems", [
    (_NEXT_FULL, 0.75, 32 * 128 * 128 + 3 * (2 * 16 * 128 + 32 * 128)),   # gated DeltaNet state + conv cache
    (_GRANITE_H, 0.9, 128 * 64 * 128 + 3 * (128 * 64 + 2 * 128)),          # Mamba-2
    (_JAMBA, 0.875, 8192 * 16 + 3 * 8192),                                  # Mamba-1, d_inner = 2 h
])
def test_hybrid_layers_are_priced_as_a_state_sized_window(cfg: dict, frac: float, elems: int) -> None:
    """Non-attention layers keep a constant state: they become sliding-window layers whose window holds as
    many elements as the state, so the cache stops growing with the context there."""
    import math

    m = load_hf_config(cfg)
    kv_tok = 2 * m.kv_heads * m.head_dim_qk if hasattr(m, "head_dim_qk") else 2 * m.kv_heads * (
        m.head_dim or m.hidden // m.n_heads)
    assert m.sliding_window == math.ceil(elems / kv_tok)
    assert m.sliding_window_fraction == pytest.approx(frac)
    (cav,) = m.caveats
    assert "priced as sliding-window attention" in cav and f"{elems:,} elements" in cav


def test_hybrid_serving_cache_grows_only_in_the_attention_layers() -> None:
    from paraplan import catalog
    from paraplan.infer import InferenceConfig, estimate_inference

    hyb = load_hf_config(_GRANITE_H)
    full = hyb.model_copy(update={"sliding_window": None, "sliding_window_fraction": 1.0, "caveats": ()})
    c = catalog.get_cluster("h100-sxm:1")
    a = estimate_inference(hyb, c, InferenceConfig(), batch=1, input_len=32768, output_len=256)
    b = estimate_inference(full, c, InferenceConfig(), batch=1, input_len=32768, output_len=256)
    # 4 of 40 layers keep a 32k-token cache; the other 36 a constant state: several times more sequences fit
    assert a.max_batch > 4 * b.max_batch
    assert a.tpot_s < b.tpot_s and a.ttft_s < b.ttft_s


def test_jamba_moe_every_other_layer() -> None:
    m = load_hf_config(_JAMBA)
    assert m.moe is not None and m.n_moe_layers == 16


def test_catalog_models_shows_what_a_config_json_reads_as(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from paraplan.cli import app

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(_GRANITE_H))
    r = CliRunner().invoke(app, ["catalog", "models", str(cfg), "--json", "-"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["sliding_window_fraction"] == pytest.approx(0.9) and "Mamba-2" in d["caveats"][0]
    table = CliRunner().invoke(app, ["catalog", "models", str(cfg)], env={"COLUMNS": "200"})
    assert "caveat" in table.stdout and "on 90% of layers" in table.stdout
