"""TTSPM: scaling curves and saturation points."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.techniques import ttspm as T


def test_hand_computed() -> None:
    assert float(T.scaling_curve(0.5, 2)) == pytest.approx(0.75)
    assert float(T.marginal_gain(0.5, 2)) == pytest.approx(0.125)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.01, 0.99), st.floats(1e-4, 0.5))
def test_saturation_definition(p: float, eps: float) -> None:
    n = T.saturation_point(p, eps)
    assert float(T.marginal_gain(p, n)) < eps
    if n > 0:
        assert float(T.marginal_gain(p, n - 1)) >= eps


def test_curve_monotone_and_bounded() -> None:
    a = T.scaling_curve(0.2, [1, 2, 4, 8, 16])
    assert all(x < y for x, y in zip(a, a[1:], strict=False)) and a[-1] < 1


def test_heterogeneous_problems_saturate_below_one() -> None:
    acc = T.benchmark_accuracy([0.9, 0.5, 0.01, 0.0], [1, 32, 1024])
    assert acc[-1] < 0.76 and acc[0] == pytest.approx((0.9 + 0.5 + 0.01) / 4)


def test_fit_recovers_p() -> None:
    ns = [1, 2, 4, 8, 16]
    assert T.fit_p(ns, T.scaling_curve(0.17, ns)) == pytest.approx(0.17, abs=2e-3)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        T.saturation_point(0.0, 0.01)
