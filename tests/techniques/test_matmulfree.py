import pytest

from paraplan.catalog import get_model
from paraplan.techniques import matmulfree as MF


def test_ternary_weights_quarter_of_bf16():
    m = get_model("llama-2-7b")
    lw = MF.layer_weight_params(m)
    b = MF.inference_bytes(m, ternary_bits=2.0)
    assert b["weights"] == pytest.approx(lw / 4 + (m.n_params() - lw) * 2)


def test_ratio_grows_with_context_and_baseline_bits():
    assert MF.inference_memory_ratio("llama-2-7b", 32.0).value > MF.inference_memory_ratio("llama-2-7b", 16.0).value
    assert MF.inference_memory_ratio("llama-2-7b", 16.0, context=32768).value > \
        MF.inference_memory_ratio("llama-2-7b", 16.0, context=2048).value


def test_fused_kernel_saving():
    assert MF.fused_bitlinear_activation_saving(3, 1).value == pytest.approx(2 / 3)
