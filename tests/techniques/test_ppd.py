"""PPD: parameter/memory overhead, hardware-dependent verification cost, tree choice."""

from __future__ import annotations

import pytest

from paraplan.catalog import get_cluster, get_model
from paraplan.infer import InferenceConfig
from paraplan.techniques import ppd as P

M = get_model("llama-7b")


def test_fractions_hand_computed() -> None:
    assert P.trainable_fraction(M, 3) == pytest.approx(3 * 4096 / M.n_params())
    assert P.trainable_fraction(M, 3, ensemble=4) == pytest.approx(4 * P.trainable_fraction(M, 3))
    assert P.memory_overhead_fraction(M, 3) < 1e-5


def test_verification_cost_grows_with_tree_and_differs_by_gpu() -> None:
    a100 = get_cluster("a100-sxm-80gb:1")
    r4090 = get_cluster("rtx-4090:1")
    small = P.verify_cost_ratio(M, a100, InferenceConfig(), 4)
    big = P.verify_cost_ratio(M, a100, InferenceConfig(), 256)
    assert big > small >= 0.99
    assert P.verify_cost_ratio(M, r4090, InferenceConfig(), 64) > P.verify_cost_ratio(M, a100, InferenceConfig(), 64)


def test_best_tree_size_from_a_curve() -> None:
    c = get_cluster("a100-sxm-80gb:1")
    size, sp = P.best_tree_size(M, c, InferenceConfig(), lambda n: 1.0 + 0.4 * n ** 0.35, [4, 16, 64, 256, 512])
    assert size in (4, 16, 64, 256, 512) and sp > 1.0
    assert size < 512  # verification of 512 candidates is compute-bound
