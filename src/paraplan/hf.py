"""Read a Hugging Face ``config.json`` into a :class:`~paraplan.specs.ModelSpec`, without ``transformers``.

Supported ``model_type`` values: llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe,
deepseek_v2, deepseek_v3, gpt2, gptj, gpt_neox, mpt, falcon (and the older RefinedWeb spellings), bloom,
gemma, gemma2, gemma3 / gemma3_text, llama4 / llama4_text, gpt_oss and nemotron. Multimodal configs that
nest the language model under ``text_config`` (llama4, gemma3, ...) are read from that block. Any other
``model_type`` works when it has the standard keys (``hidden_size``, ``num_hidden_layers``,
``num_attention_heads``, ``intermediate_size``, ``vocab_size``); it is then read as a Llama-like decoder.
Configs with state-space, linear-attention or convolution layers (``hybrid_override_pattern``,
``full_attention_interval``, ``layer_types`` with ``mamba``/``linear_attention``/``conv``, ...) carry a caveat
in :attr:`ModelSpec.caveats`, which every estimate repeats; where the state's shape is given those layers are
priced as sliding-window attention holding the same state (:func:`_hybrid`), else as full attention.

Defaults follow the ``transformers`` config classes only where released checkpoints rely on them (gpt2's
``n_inner``, MPT's ``expansion_ratio``, falcon's ``ffn_hidden_size``, the sparse Gemma 3 ``text_config``,
...); otherwise a missing shape key raises :class:`~paraplan.errors.ConfigError` naming every missing key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import _yaml
from .errors import ConfigError
from .specs import MLAConfig, ModelSpec, MoEConfig

__all__ = ["load_hf_config", "load_model"]

# Families whose MLP is gated (gate/up/down: SwiGLU or GeGLU).
_GATED = frozenset({
    "llama", "llama4", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
    "deepseek_v2", "deepseek_v3", "gemma", "gemma2", "gemma3", "gemma3_text", "gpt_oss",
})
# GPT-2-style families: plain two-matrix MLP and LayerNorm.
_PLAIN = frozenset({"gpt2", "gptj", "gpt_neox", "mpt", "falcon", "refinedweb", "refinedwebmodel", "rw",
                    "bloom", "nemotron", "opt"})
_FALCON = frozenset({"falcon", "refinedweb", "refinedwebmodel", "rw"})
_GEMMA = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})

# Shape keys: canonical field -> accepted spellings (first one is named in errors) per key style.
_STD_KEYS: dict[str, tuple[str, ...]] = {
    "hidden": ("hidden_size", "n_embd", "d_model", "n_embed"),
    "n_layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "n_heads": ("num_attention_heads", "n_head", "n_heads"),
    "ffn": ("intermediate_size", "ffn_hidden_size", "n_inner"),
    "vocab": ("vocab_size", "padded_vocab_size"),
}
_GPT2_KEYS: dict[str, tuple[str, ...]] = {
    "hidden": ("n_embd", "hidden_size"),
    "n_layers": ("n_layer", "num_hidden_layers"),
    "n_heads": ("n_head", "num_attention_heads"),
    "ffn": ("n_inner", "intermediate_size"),
    "vocab": ("vocab_size",),
}
_MPT_KEYS: dict[str, tuple[str, ...]] = {
    "hidden": ("d_model", "hidden_size"),
    "n_layers": ("n_layers", "num_hidden_layers"),
    "n_heads": ("n_heads", "num_attention_heads"),
    "ffn": (),
    "vocab": ("vocab_size",),
}
_FALCON_KEYS: dict[str, tuple[str, ...]] = {
    "hidden": ("hidden_size", "n_embed", "n_embd"),
    "n_layers": ("num_hidden_layers", "n_layer"),
    "n_heads": ("num_attention_heads", "n_head"),
    "ffn": ("ffn_hidden_size",),
    "vocab": ("vocab_size",),
}
_BLOOM_KEYS: dict[str, tuple[str, ...]] = {
    "hidden": ("hidden_size", "n_embed"),
    "n_layers": ("n_layer", "num_hidden_layers"),
    "n_heads": ("n_head", "num_attention_heads"),
    "ffn": (),
    "vocab": ("vocab_size",),
}

# transformers' Gemma3TextConfig defaults: the released gemma-3-{4b,12b,27b} config.json files give only a few
# text_config keys and rely on these.
_GEMMA3_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131_072,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
    "tie_word_embeddings": True,
}


# ------------------------------------------------------------------------------------------ helpers
def _read(src: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    if isinstance(src, Mapping):
        return dict(src), None
    path = Path(src)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError(f"no Hugging Face config at '{src}' "
                          "(expected a config.json file or a folder holding one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read '{path}' as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"'{path}' does not hold a JSON object")
    return data, path


def _text_block(cfg: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a (possibly multimodal) config, with the outer keys as fallbacks."""
    for key in ("text_config", "language_config", "llm_config"):
        inner = cfg.get(key)
        if isinstance(inner, Mapping):
            outer = {k: v for k, v in cfg.items() if k not in ("text_config", "vision_config", "audio_config",
                                                                 "language_config", "llm_config")}
            merged = {**outer, **inner}
            if "model_type" not in inner:
                merged["model_type"] = cfg.get("model_type", "")
            # tie_word_embeddings is sometimes only given at the top level of multimodal configs
            if "tie_word_embeddings" not in inner and "tie_word_embeddings" in cfg:
                merged["tie_word_embeddings"] = cfg["tie_word_embeddings"]
            return merged
    return cfg


def _family(model_type: str) -> str:
    mt = model_type.lower()
    return {"llama4_text": "llama4", "gemma3_text": "gemma3", "refinedweb": "falcon",
            "refinedwebmodel": "falcon", "rw": "falcon"}.get(mt, mt)


def _pick(cfg: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
    return int(value)


def _ffn_kind(mt: str, cfg: Mapping[str, Any]) -> str:
    act = cfg.get("hidden_activation") if mt in _GEMMA else None
    act = act or cfg.get("hidden_act") or cfg.get("activation_function") or cfg.get("activation") or ""
    if isinstance(cfg.get("ffn_config"), Mapping):  # MPT: ffn_config.ffn_act_fn
        act = act or (cfg["ffn_config"].get("ffn_act_fn") or {}).get("name", "")
    a = str(act).lower().replace("-", "_")
    if a in ("relu2", "squared_relu", "relu_squared"):
        return "relu2"
    if mt in _PLAIN:
        return "relu" if a == "relu" else "gelu"
    if mt in _GATED:
        return "geglu" if a.startswith("gelu") or (mt in _GEMMA and not a) else "swiglu"
    # unknown family: HF's silu/swish convention is the Llama gated MLP
    if a.startswith("gelu"):
        return "gelu"
    if a == "relu":
        return "relu"
    return "swiglu"


def _moe_layout(n_layers: int, moe_layers: list[int]) -> tuple[int, int]:
    """(first_dense_layers, layer_freq) reproducing ``moe_layers`` exactly when it is a regular pattern, else
    one keeping the count (freq 1, dense prefix) so parameter totals stay right."""
    m = sorted(set(i for i in moe_layers if 0 <= i < n_layers))
    if not m:
        return n_layers, 1
    first = m[0]
    freq = m[1] - m[0] if len(m) > 1 else max(n_layers - first, 1)
    if m == list(range(first, n_layers, freq)):
        return first, freq
    return n_layers - len(m), 1


def _sliding(mt: str, cfg: Mapping[str, Any], n_layers: int, max_seq: int) -> tuple[int | None, float]:
    layer_types = cfg.get("layer_types")
    window = cfg.get("sliding_window")
    if mt == "llama4":
        chunk = cfg.get("attention_chunk_size")
        if not chunk:
            return None, 1.0
        flags = cfg.get("no_rope_layers") or []
        if len(flags) == n_layers:  # 1 = RoPE layer = chunked local attention
            n_local = sum(1 for f in flags if f)
        else:
            interval = int(cfg.get("no_rope_layer_interval") or 4)
            n_local = sum(1 for i in range(n_layers) if (i + 1) % interval != 0)
        return (int(chunk), n_local / n_layers) if n_local else (None, 1.0)
    if isinstance(layer_types, list) and layer_types:
        n_local = sum(1 for t in layer_types if str(t) in ("sliding_attention", "chunked_attention", "local"))
        if not n_local or not window:
            return None, 1.0
        return int(window), n_local / len(layer_types)
    if mt in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        if not cfg.get("use_sliding_window") or not window:
            return None, 1.0
        first = int(cfg.get("max_window_layers") or 0)
        n_local = max(n_layers - first, 0)
        return (int(window), n_local / n_layers) if n_local else (None, 1.0)
    if not window:
        return None, 1.0
    if mt == "gemma2":
        return int(window), ((n_layers + 1) // 2) / n_layers  # even layers are local
    if mt == "gemma3":
        pattern = int(cfg.get("sliding_window_pattern") or 6)
        n_local = sum(1 for i in range(n_layers) if (i + 1) % pattern != 0)
        return int(window), n_local / n_layers
    if int(window) >= max_seq:  # a window as long as the context is full attention
        return None, 1.0
    return int(window), 1.0


# ------------------------------------------------------------------------------------------ public API
#: config keys that mark token mixers other than softmax attention (state-space / Mamba, linear attention,
#: gated DeltaNet, short convolutions): priced by :func:`_hybrid` where it can, flagged in the caveats always
_HYBRID_KEYS = ("hybrid_override_pattern", "layers_block_type", "attn_layer_period", "full_attention_interval",
                "linear_num_key_heads", "mamba_d_state", "mamba_num_heads", "ssm_state_size", "mamba_expand",
                "conv_L_cache")
_NON_ATTENTION_LAYERS = ("mamba", "linear_attention", "conv", "ssm", "recurrent", "rwkv", "deltanet")


def _non_attention(layer_type: Any) -> bool:
    """Whether a ``layer_types`` entry names a token mixer other than softmax attention."""
    return any(w in str(layer_type).lower() for w in _NON_ATTENTION_LAYERS)


def _hybrid_markers(cfg: Mapping[str, Any]) -> list[str]:
    """The config keys (and layer types) that mark token mixers other than softmax attention."""
    found = [k for k in _HYBRID_KEYS if cfg.get(k) is not None]
    types = cfg.get("layer_types")
    if isinstance(types, list):
        other = sorted({str(t) for t in types if _non_attention(t)})
        if other:
            found.append("layer_types " + "/".join(other))
    return found


def _num(cfg: Mapping[str, Any], *keys: str) -> int | None:
    v = _pick(cfg, keys)
    return None if v is None else int(v)


def _recurrent_state(cfg: Mapping[str, Any], hidden: int) -> tuple[int, str] | None:
    """Elements one sequence keeps per non-attention layer (recurrent state + convolution cache), and the
    layer kind, for the hybrid forms whose shapes the config states; None when it does not."""
    nv, dk, dv = (_num(cfg, k) for k in ("linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim"))
    if nv and dk and dv:  # gated DeltaNet (Qwen3-Next): a dk x dv state per value head, short conv on q, k, v
        nk = _num(cfg, "linear_num_key_heads") or nv
        kc = _num(cfg, "linear_conv_kernel_dim") or 4
        return nv * dk * dv + (kc - 1) * (2 * nk * dk + nv * dv), "gated DeltaNet"
    h = _num(cfg, "mamba_n_heads", "mamba_num_heads")
    p = _num(cfg, "mamba_d_head", "mamba_head_dim")
    n = _num(cfg, "mamba_d_state", "ssm_state_size")
    if h and p and n:  # Mamba-2: an N-wide state per head channel, conv over x, B, C
        g = _num(cfg, "mamba_n_groups", "n_groups") or 1
        kc = _num(cfg, "mamba_d_conv", "conv_kernel") or 4
        return h * p * n + (kc - 1) * (h * p + 2 * g * n), "Mamba-2"
    if n:  # Mamba-1 (Jamba): an N-wide state per inner channel, conv over x
        inner = (_num(cfg, "mamba_expand") or 2) * hidden
        kc = _num(cfg, "mamba_d_conv") or 4
        return inner * n + (kc - 1) * inner, "Mamba"
    lc = _num(cfg, "conv_L_cache")
    if lc:  # LFM2 short convolutions: the last L tokens of the hidden state
        return lc * hidden, "short-convolution"
    return None


def _hybrid(mt: str, cfg: Mapping[str, Any], n_layers: int, hidden: int, kv_heads: int, head_dim: int,
            has_window: bool) -> tuple[int | None, float, str | None]:
    """(state-equivalent window, share of layers, caveat) of a hybrid model; (None, 1.0, None) without one.

    Non-attention layers (state-space, linear attention, short convolution) keep a fixed state per sequence
    instead of a growing KV cache. Where every layer is one such mixer plus an FFN (Qwen3-Next, Jamba,
    Granite-H, LFM2) and the config gives the state's shape, they are priced as sliding-window attention whose
    window holds the same number of elements: constant cache in the context, mixing work bounded by the
    window. Other layouts (Nemotron-H's separate mixer and MLP layers, Falcon-H1's parallel heads) keep the
    full-attention pricing with a caveat that says so."""
    found = _hybrid_markers(cfg)
    if not found:
        return None, 1.0, None
    name = mt or "unknown"
    types = cfg.get("layer_types")
    frac = None
    if isinstance(types, list) and types:
        frac = sum(1 for t in types if _non_attention(t)) / len(types)
    elif cfg.get("full_attention_interval"):
        frac = 1.0 - 1.0 / int(cfg["full_attention_interval"])
    elif cfg.get("attn_layer_period") and not cfg.get("hybrid_override_pattern"):
        frac = 1.0 - 1.0 / int(cfg["attn_layer_period"])
    state = _recurrent_state(cfg, hidden)
    if frac is None or not 0.0 < frac < 1.0 or state is None or has_window:
        return None, 1.0, (
            f"'{name}' has state-space / linear-attention layers ({', '.join(found)}) that paraplan does not "
            "model: every layer is priced as softmax attention with a KV cache, so attention time and KV-cache "
            "memory are overestimated and those layers' own projections are approximated by the attention's")
    elems, kind = state
    window = max(1, math.ceil(elems / (2 * kv_heads * head_dim)))
    n_lin = round(frac * n_layers)
    return window, frac, (
        f"'{name}': {n_lin} of {n_layers} layers are {kind} layers ({', '.join(found)}), priced as sliding-window "
        f"attention whose window ({window} tokens) holds the same state per sequence ({elems:,} elements per "
        "layer): their cache stays constant in the context, their mixing work is approximated by attention "
        "over the window and their projections by the attention's")


def load_hf_config(src: str | Path | Mapping[str, Any], name: str | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from a Hugging Face ``config.json``: a path, a folder holding one, or the dict.

    The name is ``name`` if given, else ``_name_or_path``, else the config file's folder name, else
    ``model_type``.
    Raises :class:`ConfigError` for unreadable files and missing or malformed keys.
    """
    raw, path = _read(src)
    cfg = _text_block(raw)
    mt = _family(str(cfg.get("model_type") or raw.get("model_type") or ""))
    if mt == "gemma3":
        cfg = {**_GEMMA3_TEXT_DEFAULTS, **cfg}

    if mt in ("gpt2", "gptj"):
        keys = _GPT2_KEYS
    elif mt == "mpt":
        keys = _MPT_KEYS
    elif mt in _FALCON:
        keys = _FALCON_KEYS
    elif mt == "bloom":
        keys = _BLOOM_KEYS
    else:
        keys = _STD_KEYS
    ffn_optional = mt in ("gpt2", "gptj", "mpt", "bloom") or mt in _FALCON

    expert_size = _pick(cfg, ("moe_intermediate_size",))
    vals: dict[str, Any] = {}
    missing: list[str] = []
    for field, names in keys.items():
        v = _pick(cfg, names) if names else None
        if v is None:
            if field == "ffn" and (ffn_optional or expert_size is not None):
                continue
            if names:
                missing.append(names[0])
            continue
        vals[field] = _int(v, names[0])
    if missing:
        where = f" ({path})" if path else ""
        raise ConfigError(f"config.json{where} for model_type '{mt or 'unknown'}' is missing required keys: "
                          f"{', '.join(missing)}")

    hidden, n_layers, n_heads, vocab = vals["hidden"], vals["n_layers"], vals["n_heads"], vals["vocab"]
    ffn = vals.get("ffn")
    if ffn is None:
        if mt == "mpt":
            ratio = cfg.get("expansion_ratio")
            ffn_cfg = cfg.get("ffn_config") if isinstance(cfg.get("ffn_config"), Mapping) else {}
            ffn = ffn_cfg.get("ffn_hidden_size") or round(float(ratio if ratio is not None else 4) * hidden)
        elif expert_size is not None and mt not in ("gpt2", "gptj", "bloom") and mt not in _FALCON:
            ffn = _int(expert_size, "moe_intermediate_size")
        else:
            ffn = 4 * hidden
    if mt == "llama4":  # dense layers use intermediate_size_mlp; intermediate_size is the expert size
        ffn = _int(cfg.get("intermediate_size_mlp") or 16384, "intermediate_size_mlp")

    # attention heads
    attn_cfg = cfg.get("attn_config") if isinstance(cfg.get("attn_config"), Mapping) else {}
    if mt in _FALCON:
        if cfg.get("new_decoder_architecture"):
            kv = cfg.get("num_kv_heads") or cfg.get("n_head_kv") or n_heads
        elif cfg.get("multi_query", True):  # FalconConfig default multi_query=True
            kv = 1
        else:
            kv = n_heads
    elif mt == "mpt":
        kv = attn_cfg.get("kv_n_heads") if attn_cfg.get("attn_type") == "grouped_query_attention" else None
        kv = 1 if attn_cfg.get("attn_type") == "multiquery_attention" else kv
    else:
        kv = cfg.get("num_key_value_heads") or cfg.get("num_kv_heads")
    n_kv = _int(kv, "num_key_value_heads") if kv is not None else None
    if n_kv == n_heads:
        n_kv = None
    head_dim = cfg.get("head_dim")
    head_dim = _int(head_dim, "head_dim") if head_dim is not None else None
    if head_dim is not None and head_dim * n_heads == hidden:
        head_dim = None

    # MLA
    mla = None
    if cfg.get("kv_lora_rank"):
        mla_keys = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
        miss = [k for k in mla_keys if cfg.get(k) is None]
        if miss:
            raise ConfigError(f"MLA config is missing required keys: {', '.join(miss)}")
        q_rank = cfg.get("q_lora_rank")
        mla = MLAConfig(q_lora_rank=_int(q_rank, "q_lora_rank") if q_rank else None,
                        **{k: _int(cfg[k], k) for k in mla_keys})
        head_dim = None
        n_kv = None

    # MoE
    moe = None
    n_experts = _pick(cfg, ("num_local_experts", "n_routed_experts", "num_experts"))
    if mt == "mpt" and isinstance(cfg.get("ffn_config"), Mapping):
        n_experts = n_experts or cfg["ffn_config"].get("moe_num_experts")
    if n_experts and int(n_experts) > 1:
        n_experts = _int(n_experts, "num_experts")
        top_k = _pick(cfg, ("num_experts_per_tok", "experts_per_token", "moe_top_k"))
        if top_k is None:
            raise ConfigError("MoE config is missing required keys: num_experts_per_tok")
        top_k = _int(top_k, "num_experts_per_tok")
        if mt in ("mixtral", "gpt_oss", "llama4"):
            expert = cfg.get("intermediate_size") or expert_size
        else:
            expert = expert_size or cfg.get("intermediate_size")
        if expert is None:
            raise ConfigError("MoE config is missing required keys: moe_intermediate_size")
        expert = _int(expert, "moe_intermediate_size")
        n_shared, shared_size = 0, None
        if cfg.get("n_shared_experts"):
            n_shared = _int(cfg["n_shared_experts"], "n_shared_experts")
        elif cfg.get("shared_expert_intermediate_size"):
            key = "shared_expert_intermediate_size"
            n_shared, shared_size = 1, _int(cfg[key], key)
        elif mt == "llama4":
            n_shared = 1
        # which layers are MoE
        if mt in ("deepseek_v2", "deepseek_v3"):
            k = int(cfg.get("first_k_dense_replace") or 0)
            f = int(cfg.get("moe_layer_freq") or 1)
            layers = [i for i in range(n_layers) if i >= k and i % f == 0]
        elif mt in ("qwen2_moe", "qwen3_moe"):
            step = int(cfg.get("decoder_sparse_step") or 1)
            dense = set(cfg.get("mlp_only_layers") or [])
            layers = [i for i in range(n_layers) if i not in dense and (i + 1) % step == 0]
        elif mt == "llama4":
            layers = cfg.get("moe_layers")
            if not layers:
                step = int(cfg.get("interleave_moe_layer_step") or 1)
                layers = list(range(step - 1, n_layers, step))
        elif cfg.get("expert_layer_period"):  # Jamba: every period-th layer from the offset
            period = int(cfg["expert_layer_period"])
            layers = list(range(int(cfg.get("expert_layer_offset") or 0), n_layers, period))
        else:
            layers = list(range(n_layers))
        first, freq = _moe_layout(n_layers, list(layers))
        moe = MoEConfig(n_experts=n_experts, top_k=top_k, expert_ffn_hidden=expert, n_shared_experts=n_shared,
                        shared_expert_ffn_hidden=shared_size, first_dense_layers=first, layer_freq=freq)

    # positions and context
    max_seq = _pick(cfg, ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx"))
    if max_seq is None and mt == "mpt":
        max_seq = 2048
    max_seq = _int(max_seq, "max_position_embeddings") if max_seq is not None else 2048
    if mt == "gpt2":
        learned_pos = True
    elif mt == "mpt":
        positional = attn_cfg.get("alibi") or attn_cfg.get("rope")
        learned_pos = bool(cfg.get("learned_pos_emb", True)) and not positional
    elif mt == "opt":
        learned_pos = True
    else:
        learned_pos = False
    window, window_frac = _sliding(mt, cfg, n_layers, max_seq)
    kv_h = n_kv or n_heads
    hd = head_dim or hidden // n_heads
    hyb_window, hyb_frac, caveat = _hybrid(mt, cfg, n_layers, hidden, kv_h, hd, window is not None)
    if hyb_window is not None:
        window, window_frac = hyb_window, hyb_frac

    # embeddings, norm, bias
    if "tie_word_embeddings" in cfg:
        tied = bool(cfg["tie_word_embeddings"])
    elif mt == "mpt":
        tied = True  # MPT reuses wte for the output
    else:
        # transformers' PretrainedConfig default is True; these config classes default to False
        tied = mt not in ("llama", "llama4", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
                          "deepseek_v2", "deepseek_v3", "gptj", "gpt_neox", "gpt_oss", "nemotron")
    if mt in _PLAIN:
        norm = "layernorm"
    elif mt in _GATED or "rms_norm_eps" in cfg:
        norm = "rmsnorm"
    elif "layer_norm_eps" in cfg or "layer_norm_epsilon" in cfg:
        norm = "layernorm"
    else:
        norm = "rmsnorm"
    if mt in ("gpt2", "gptj", "gpt_neox", "bloom", "opt"):
        bias = True
    elif mt in _FALCON:
        bias = bool(cfg.get("bias", False))
    elif mt == "mpt":
        bias = not cfg.get("no_bias", True)
    elif mt == "qwen2":
        bias = True  # q/k/v biases
    else:
        bias = bool(cfg.get("attention_bias") or cfg.get("mlp_bias"))

    if name is None:
        name = raw.get("_name_or_path") or cfg.get("_name_or_path") or None
    if not name and path is not None:
        name = path.resolve().parent.name or None
    name = name or mt or "hf-model"

    try:
        return ModelSpec(
            name=str(name),
            family=mt or "unknown",
            source=f"Hugging Face config.json ({path})" if path else "Hugging Face config (dict)",
            n_layers=n_layers,
            hidden=hidden,
            n_heads=n_heads,
            n_kv_heads=n_kv,
            head_dim=head_dim,
            ffn_hidden=int(ffn),
            ffn_kind=_ffn_kind(mt, cfg),
            vocab=vocab,
            tied_embeddings=tied,
            learned_pos_emb=learned_pos,
            max_seq_len=max_seq,
            mla=mla,
            sliding_window=window,
            sliding_window_fraction=window_frac,
            moe=moe,
            norm=norm,
            bias=bias,
            caveats=(caveat,) if caveat else (),
        )
    except ValidationError as exc:
        raise ConfigError(f"config.json for '{name}' gives an invalid model: {exc}") from None


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A model from a config.json path (or a folder holding one), a ModelSpec YAML file, or a catalog name."""
    from .catalog import get_model

    p = Path(name_or_path)
    if p.is_dir() and (p / "config.json").is_file():
        return load_hf_config(p / "config.json")
    if p.is_file():
        if p.suffix in (".yaml", ".yml"):
            data = _yaml.read_user_file(p, ConfigError)
            if isinstance(data, list):
                data = data[0]
            if not isinstance(data, dict):
                raise ConfigError(f"'{p}' does not hold a model entry")
            data = {k: v for k, v in data.items() if not k.startswith("_")}
            data["aliases"] = tuple(data.get("aliases") or ())
            try:
                return ModelSpec(**data)
            except ValidationError as exc:
                raise ConfigError(f"'{p}' is not a valid model entry: {exc}") from None
        return load_hf_config(p)
    if str(name_or_path).endswith(".json"):
        raise ConfigError(f"no such file: '{name_or_path}'")
    return get_model(str(name_or_path))
