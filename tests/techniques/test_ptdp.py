import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.techniques import ptdp


def test_bubble_formulas_hand():
    assert ptdp.bubble(64, 3072, 1, 6).value == pytest.approx(63 / 512)
    assert ptdp.bubble(64, 3072, 1, 6, vpp=2).value == pytest.approx(63 / 1024)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 128), st.integers(1, 4096), st.integers(1, 8))
def test_bubble_fraction_properties(p, m, v):
    f = float(ptdp.bubble_fraction(p, m, v))
    assert f == pytest.approx((p - 1) / (v * m))
    assert float(ptdp.bubble_fraction(p, m + 1, v)) <= f


def test_bubble_fraction_broadcasts():
    f = ptdp.bubble_fraction(np.array([8, 8]), np.array([16, 32]), np.array([1, 2]))
    assert np.allclose(f, [7 / 16, 7 / 64])


def test_interleaved_gain_positive_and_shrinks():
    small = ptdp.interleaved_gain("gpt-3-175b", 96, 8, 12, 12).value
    large = ptdp.interleaved_gain("gpt-3-175b", 96, 8, 12, 96).value
    assert small > large > 1.0


def test_ptdp_per_gpu_falls_as_dp_grows_at_fixed_batch():
    a = ptdp.per_gpu_flops("gpt-3-175b", 384, 8, 12, 1536).value
    b = ptdp.per_gpu_flops("gpt-3-175b", 1536, 8, 12, 1536).value
    assert a > b
