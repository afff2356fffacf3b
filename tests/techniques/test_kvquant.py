import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.catalog import get_cluster, get_model
from paraplan.techniques import kvquant as kq


def test_effective_bits_by_hand():
    # 1024 tokens, 128 residual: (896 * (2 + 1) + 128 * 16) / 1024
    assert float(kq.effective_kv_bits(1024, 2, 32, 128)) == pytest.approx((896 * 3 + 128 * 16) / 1024)
    assert float(kq.effective_kv_bits(100, 2, 32, 128)) == pytest.approx(16.0)  # all residual


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 100_000))
def test_effective_bits_monotone_and_bounded(L):
    a = float(kq.effective_kv_bits(L))
    b = float(kq.effective_kv_bits(L + 100))
    assert 3.0 - 1e-9 <= b <= a <= 16.0


def test_sequence_bytes_match_core_at_16_bits():
    from paraplan.infer import InferenceConfig, kv_bytes_per_token

    m = get_model("llama-2-7b")
    assert float(kq.kv_bytes_per_sequence(m, 1000, kv_bits=16)) == pytest.approx(
        1000 * kv_bytes_per_token(m, InferenceConfig()))


def test_max_batch_grows_with_fewer_bits():
    m = get_model("llama-2-7b")
    c = get_cluster("a100-sxm-80gb:1")
    b16 = kq.kivi_max_batch(m, c, 2048, kv_bits=16)
    b4 = kq.kivi_max_batch(m, c, 2048, kv_bits=4)
    b2 = kq.kivi_max_batch(m, c, 2048, kv_bits=2)
    assert b16 < b4 < b2 < b16 * 16 / 3


def test_longer_sequences_approach_the_ratio_without_residual():
    short = kq.kivi_batch_ratio("llama-2-7b", "a100-sxm-80gb", 160, 338).value
    long = kq.kivi_batch_ratio("llama-2-7b", "a100-sxm-80gb", 1024, 3000).value
    assert short < long < 16 / 3 + 0.1
