"""ParScale: the law, the widened comparison model and the batch crossover."""

from __future__ import annotations

import math

import pytest

from paraplan.catalog import get_cluster, get_model
from paraplan.techniques import parscale as P

M = get_model("parscale-1.6b")
C = get_cluster("a100-sxm-80gb:1")


def test_law() -> None:
    assert P.n_eff(1e9, 1) == pytest.approx(1e9)
    assert P.n_eff(1e9, 8, 0.39) == pytest.approx(1e9 * (0.39 * math.log(8) + 1))
    assert P.scaling_law_loss(1e9, 8, 1e7, 0.2, 1.0, 0.39) < P.scaling_law_loss(1e9, 1, 1e7, 0.2, 1.0, 0.39)


def test_widen_hits_target() -> None:
    target = P.n_eff(P.non_embedding_params(M), 8)
    big = P.widen_to(M, target)
    assert P.non_embedding_params(big) == pytest.approx(target, rel=1e-3)


def test_advantage_shrinks_with_batch() -> None:
    r1 = P.parscale_vs_params(M, C, 8, batch=1)
    r64 = P.parscale_vs_params(M, C, 8, batch=64)
    assert r1["latency_increase_ratio"] > 1 > r64["latency_increase_ratio"]
    assert r1["memory_increase_ratio"] > r64["memory_increase_ratio"]


def test_more_streams_cost_more() -> None:
    a = P.parscale_vs_params(M, C, 2)
    b = P.parscale_vs_params(M, C, 8)
    assert b["parscale_memory_increase_b"] > a["parscale_memory_increase_b"]
    assert b["params_memory_increase_b"] > a["params_memory_increase_b"]
