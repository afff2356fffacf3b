import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.catalog import get_accelerator, get_model
from paraplan.techniques import xquant as xq


def test_mha_fp16_is_two_x_and_gqa_less():
    assert xq.xquant_memory_ratio(get_model("llama-2-7b"), 16, None) == pytest.approx(2.0)
    # GQA (8 KV heads of 128 against hidden 4096): caching the full X is larger than K,V
    assert xq.xquant_memory_ratio(get_model("llama-3.1-8b"), 16, None) == pytest.approx(0.5)


def test_ratio_by_hand():
    assert xq.xquant_memory_ratio(get_model("llama-2-7b"), 3, 128) == pytest.approx(32 / 3.25)


@settings(max_examples=25, deadline=None)
@given(st.floats(1, 8), st.floats(1, 8))
def test_cl_between_base_and_delta(delta, base):
    m = get_model("llama-2-7b")
    r = xq.xquant_cl_memory_ratio(m, delta, base)
    lo, hi = sorted([xq.xquant_memory_ratio(m, delta), xq.xquant_memory_ratio(m, base)])
    assert lo - 1e-9 <= r <= hi + 1e-9


def test_remat_flops_and_sensitivity():
    m = get_model("llama-2-7b")
    assert xq.remat_flops_per_token(m) == 2 * 4096 * 2 * 4096
    a = get_accelerator("h100-sxm")
    short = xq.remat_step(m, a, 512, 8)
    long = xq.remat_step(m, a, 8192, 8)
    assert float(long["remat_flops"]) == pytest.approx(16 * float(short["remat_flops"]))
    assert float(long["xquant_s"]) > float(short["xquant_s"])
    # breakeven intensity falls as the X width shrinks
    assert xq.breakeven_flops_per_byte(m, 2) < xq.breakeven_flops_per_byte(m, 8)
