"""Scalable MatMul-free language modelling (Zhu et al., arXiv 2406.02528, "Scalable MatMul-free Language
Modeling"): ternary BitLinear layers (weights in {-1, 0, +1}), an MLGRU token mixer with a recurrent state instead
of a KV cache, and a fused RMSNorm + quantisation kernel for training.

Memory accounting only (the paper's claims are about memory):

* **inference**: ternary weights packed at 2 bits (log2 3 = 1.58 bits is the information content) for every
  BitLinear matrix, 16-bit embeddings and LM head, and a per-sequence recurrent state of ``L x h`` values instead of
  a KV cache; the baseline is the same-size Transformer++ stored unoptimised at 32 bits per weight with its fp16 KV
  cache. Uses :meth:`ModelSpec.n_params` and :mod:`paraplan.cost.memory`'s byte tables.
* **training**: without the fused kernel, each BitLinear keeps for backward its input ``x``, ``RMSNorm(x)`` and the
  fake-quantised activation (three 16-bit tensors); the fused kernel keeps only ``x`` and recomputes the other two
  in backward. The reduction of that activation memory, ``1 - 2/6``, bounds the reduction of the total.

Not modelled: accuracy, the FPGA and Loihi-2 results (power, throughput), and the kernels' speed.
"""

from __future__ import annotations

from ..catalog import get_model
from ..claims import ClaimValue
from ..cost.flops import dense_ffn_gemms
from ..specs import ModelSpec


def layer_weight_params(model: ModelSpec) -> float:
    """Parameters of the BitLinear (ternary) matrices: every attention/FFN weight of every layer."""
    return float(model.n_layers * (model.attention_params() + sum(g.n * g.k for g in dense_ffn_gemms(model))))


def inference_bytes(model: ModelSpec, *, ternary_bits: float = 2.0, other_bits: float = 16.0, batch: int = 1,
                    context: int = 2048) -> dict[str, float]:
    """Inference memory of the MatMul-free version of ``model``: packed ternary layers, 16-bit rest, recurrent state."""
    lw = layer_weight_params(model)
    rest = float(model.n_params()) - lw
    state = batch * model.n_layers * model.hidden * 2.0 * 2  # MLGRU hidden state + GLU channel-mixer buffer, fp16
    return {"weights": lw * ternary_bits / 8.0 + rest * other_bits / 8.0, "state": state,
            "total": lw * ternary_bits / 8.0 + rest * other_bits / 8.0 + state}


def transformer_inference_bytes(model: ModelSpec, *, weight_bits: float = 32.0, batch: int = 1,
                                context: int = 2048) -> dict[str, float]:
    """Unoptimised Transformer++ baseline: weights at ``weight_bits`` plus an fp16 KV cache."""
    w = float(model.n_params()) * weight_bits / 8.0
    kv = batch * context * model.n_layers * 2 * model.kv_heads * model.dim_head * 2.0
    return {"weights": w, "kv_cache": kv, "total": w + kv}


def inference_memory_ratio(model: str, baseline_bits: float = 32.0, batch: int = 1, context: int = 2048) -> ClaimValue:
    """Baseline inference memory over MatMul-free inference memory for the same architecture size."""
    m = get_model(model)
    a = transformer_inference_bytes(m, weight_bits=baseline_bits, batch=batch, context=context)
    b = inference_bytes(m, batch=batch, context=context)
    return ClaimValue(a["total"] / b["total"], {"baseline_bytes": a, "matmulfree_bytes": b})


def fused_bitlinear_activation_saving(saved_unfused: int = 3, saved_fused: int = 1) -> ClaimValue:
    """Share of BitLinear activation memory the fused RMSNorm+quantise kernel removes (tensors kept per input)."""
    return ClaimValue(1.0 - saved_fused / saved_unfused, {"tensors_unfused": saved_unfused,
                                                          "tensors_fused": saved_fused})
