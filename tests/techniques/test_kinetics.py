"""Kinetics cost model: the released formula, hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.techniques import kinetics as K

SH = K.Shape(params=1e9, heads=16, kv_heads=8, d=128.0 * 28)


def test_hand_computed_dense() -> None:
    c, m = K.dense_cost(SH, 100, 1000, 2, intensity=1.0)
    assert float(c) == pytest.approx(2 * (2e9 * 1000 + 2 * (200 + 1000) * 1000 * 16 * SH.d))
    assert float(m) == pytest.approx(2 * (200 + 2 * 1000) * 1000 * 8 * SH.d)


def test_intensity_b200() -> None:
    assert K.kinetics_intensity("b200", "fp8") == pytest.approx(562.5)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 40000), st.integers(1, 64))
def test_monotone_and_prompt_shared(li: int, lo: int, n: int) -> None:
    c1, m1 = K.dense_cost(SH, li, lo, n)
    c2, m2 = K.dense_cost(SH, li, lo + 1, n)
    assert c2 > c1 and m2 > m1
    # n samples cost at most n times one sample (the prompt KV is shared)
    c_one, m_one = K.dense_cost(SH, li, lo, 1)
    assert float(c1 + m1) <= n * float(c_one + m_one) + 1e-6


def test_memory_dominates_long_generation() -> None:
    c, m = K.dense_cost(SH, 200, 32000, 1)
    assert m / c > 50  # the KV reads, not the FLOPs
    assert float(K.flops_only_cost(SH, 32000)) < float(c)


def test_sparse_cheaper_than_dense_for_long_outputs() -> None:
    d = sum(K.dense_cost(SH, 200, 20000, 4))
    s = sum(K.block_sparse_cost(SH, 200, 20000, 4, block_size=32, topk=16))
    assert s < d / 5


def test_best_of_n_cheaper_than_one_long_chain() -> None:
    assert K.best_of_n_vs_long_cot(SH, 200, 32000, 8) < 1.0
    assert K.best_of_n_vs_long_cot(SH, 200, 32000, 1) == pytest.approx(1.0)


def test_model_shape_from_catalog() -> None:
    sh = K.model_shape("qwen3-0.6b", 0.752e9)
    assert (sh.heads, sh.kv_heads, sh.d, sh.params) == (16, 8, 128.0 * 28, 0.752e9)
    assert np.isfinite(K.expected_cost(sh, 155, [1000, 2000])[0])
