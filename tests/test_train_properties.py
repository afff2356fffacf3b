"""Invariants of the training estimator, checked on random valid strategies (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraplan import catalog
from paraplan.errors import InvalidStrategyError
from paraplan.strategy import RECOMPUTES, Strategy, StrategyArrays, check_strategy
from paraplan.train import MEMORY_COMPONENTS, TIME_COMPONENTS, Workload, estimate_training, evaluate_training

MODELS = ["gpt-3-175b", "llama-2-7b", "mixtral-8x7b", "mpt-7b", "llama-3-70b"]


def _model(name: str):
    try:
        return catalog.get_model(name)
    except KeyError:
        pytest.skip(f"{name} not in catalog")


@st.composite
def valid_case(draw):
    model = _model(draw(st.sampled_from(MODELS)))
    n_nodes = draw(st.sampled_from([1, 2, 4, 16, 64]))
    cluster = catalog.get_cluster("dgx-h100", 8 * n_nodes)
    n = cluster.n_accelerators
    tps = [t for t in (1, 2, 4, 8) if model.n_heads % t == 0 and (model.kv_heads % t == 0 or t % model.kv_heads == 0)]
    tp = draw(st.sampled_from(tps))
    pps = [p for p in (1, 2, 4, 8) if model.n_layers % p == 0 and n % (tp * p) == 0]
    pp = draw(st.sampled_from(pps))
    dp = n // (tp * pp)
    eps = [e for e in (1, 2, 4, 8) if model.moe and model.moe.n_experts % e == 0 and dp % e == 0] or [1]
    ep = draw(st.sampled_from(eps))
    mb = draw(st.sampled_from([1, 2, 4]))
    accum = draw(st.sampled_from([1, 2, 8]))
    sched = draw(st.sampled_from(["1f1b", "gpipe", "zero-bubble", "interleaved"])) if pp > 1 else "1f1b"
    vpp = 1
    if sched == "interleaved":
        vpp = draw(st.sampled_from([v for v in (1, 2, 3, 4) if model.n_layers % (pp * v) == 0]))
        if vpp == 1:
            sched = "1f1b"
    zero = draw(st.sampled_from([0, 1, 2, 3])) if dp > 1 else 0
    s = Strategy(tp=tp, pp=pp, dp=dp, ep=ep, sp=tp > 1 and draw(st.booleans()), vpp=vpp, schedule=sched,
                 micro_batch=mb, global_batch=mb * dp * accum, zero=zero,
                 recompute=draw(st.sampled_from(RECOMPUTES)), precision=draw(st.sampled_from(["bf16", "fp8"])))
    seq = draw(st.sampled_from([1024, 2048, 4096]))
    return model, cluster, s, Workload(seq_len=seq)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_case())
def test_random_valid_strategies_price_and_add_up(case) -> None:
    model, cluster, s, w = case
    check_strategy(model, cluster, s, w.seq_len)
    e = estimate_training(model, cluster, s, w)
    assert math.isfinite(e.step_time_s) and e.step_time_s > 0
    assert all(v >= 0 for v in e.time.components_s.values())
    assert sum(e.time.components_s.values()) == pytest.approx(e.step_time_s, rel=1e-9)
    assert sum(e.memory.components_bytes.values()) == pytest.approx(e.memory.total_bytes, rel=1e-9)
    assert 0 < e.mfu < 1.5
    assert e.fits == (e.memory.total_bytes <= e.memory.capacity_bytes)
    assert set(e.time.components_s) == set(TIME_COMPONENTS)
    assert set(e.memory.components_bytes) == set(MEMORY_COMPONENTS)


@settings(max_examples=40, deadline=None)
@given(valid_case())
def test_higher_zero_never_increases_model_state_memory(case) -> None:
    model, cluster, s, w = case
    if s.dp == 1:
        return
    cols = StrategyArrays.from_strategies([s.model_copy(update={"zero": z}) for z in range(4)])
    r = evaluate_training(model, cluster, cols, w)
    states = r["mem.weights"] + r["mem.gradients"] + r["mem.optimizer_states"]
    assert np.all(np.diff(states) <= 1e-6 * states[0])


@settings(max_examples=40, deadline=None)
@given(valid_case())
def test_more_recompute_never_increases_activation_memory(case) -> None:
    model, cluster, s, w = case
    cols = StrategyArrays.from_strategies([s.model_copy(update={"recompute": r}) for r in RECOMPUTES])
    r = evaluate_training(model, cluster, cols, w)
    act = r["mem.activations"]
    assert np.all(np.diff(act) <= 1e-6 * act[0])


def test_array_evaluation_equals_single_estimates() -> None:
    model = _model("llama-2-7b")
    cluster = catalog.get_cluster("dgx-a100", 16)
    strategies = [Strategy(tp=t, pp=p, dp=16 // (t * p), micro_batch=1, global_batch=64, zero=1, sp=t > 1)
                  for t in (1, 2, 4) for p in (1, 2)]
    w = Workload(seq_len=4096)
    r = evaluate_training(model, cluster, StrategyArrays.from_strategies(strategies), w)
    for i, s in enumerate(strategies):
        assert estimate_training(model, cluster, s, w).step_time_s == pytest.approx(r["step_time_s"][i], rel=1e-12)


@pytest.mark.parametrize("kw,rule", [
    ({"tp": 5, "dp": 1}, "tp_divides_heads"),
    ({"tp": 8, "pp": 1, "dp": 2}, "accelerator_count"),
    ({"tp": 8, "pp": 128, "dp": 1}, "pp_le_layers"),
    ({"tp": 8, "pp": 1, "dp": 1, "micro_batch": 3, "global_batch": 8}, "batch_divisible"),
])
def test_invalid_strategies_name_the_rule(kw, rule) -> None:
    model = _model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 8)
    with pytest.raises(InvalidStrategyError) as exc:
        check_strategy(model, cluster, Strategy(**{"global_batch": 8, **kw}), 2048)
    assert exc.value.rule == rule and rule in str(exc.value)


def test_plan_that_does_not_fit_is_not_an_error() -> None:
    model = _model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 8)
    e = estimate_training(model, cluster, Strategy(tp=8, dp=1, global_batch=1), Workload(seq_len=2048))
    assert not e.fits
    assert e.memory.overflow_component == "optimizer_states"
    assert e.memory.overflow_bytes > 0
