import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.catalog import get_cluster, get_model
from paraplan.errors import ConfigError
from paraplan.finetune import QLORA_BITS, FinetuneConfig, estimate_finetune, trainable_params
from paraplan.strategy import Strategy

M = get_model("llama-2-7b")
C = get_cluster("a100-sxm-80gb:1")
ST = Strategy(micro_batch=1, global_batch=4)


@pytest.mark.parametrize("method,bits", [("lora", 16.0), ("qlora", 4.0), ("adapter", 16.0), ("full", 16.0)])
def test_components_add_up(method, bits):
    e = estimate_finetune(M, C, FinetuneConfig(method=method, base_bits=bits), ST, 1024)
    assert sum(e.time.components_s.values()) == pytest.approx(e.step_time_s)
    assert sum(e.memory.components_bytes.values()) == pytest.approx(e.memory.total_bytes)


def test_frozen_base_is_cheaper_than_full():
    lo = estimate_finetune(M, C, FinetuneConfig(method="lora"), ST, 1024)
    fu = estimate_finetune(M, C, FinetuneConfig(method="full"), ST, 1024)
    assert lo.step_time_s < fu.step_time_s and lo.memory.total_bytes < fu.memory.total_bytes
    assert lo.memory.components_bytes["optimizer_states"] < 1e-2 * fu.memory.components_bytes["optimizer_states"]


def test_qlora_base_bits_and_dequant_cost():
    q = estimate_finetune(M, C, FinetuneConfig(method="qlora", base_bits=4), ST, 1024)
    lo = estimate_finetune(M, C, FinetuneConfig(method="lora"), ST, 1024)
    assert q.memory.components_bytes["base_weights"] == pytest.approx(M.n_params() * QLORA_BITS / 8)
    assert q.time.components_s["dequantize"] > 0 and q.step_time_s > lo.step_time_s


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 256))
def test_lora_trainable_hand_formula(r):
    t = trainable_params(M, FinetuneConfig(rank=r, targets=("q", "v")))
    d = M.dim_head
    assert t == M.n_layers * r * ((M.n_heads * d + M.hidden) + (M.kv_heads * d + M.hidden))


def test_qlora_needs_low_bits():
    with pytest.raises(ConfigError):
        estimate_finetune(M, C, FinetuneConfig(method="qlora", base_bits=16), ST, 1024)
