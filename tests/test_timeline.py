"""The pipeline timeline (paraplan.cost.timeline) against the bubble the cost model prices (cost/pipeline.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paraplan.cost.pipeline import bubble_slots
from paraplan.cost.timeline import estimate_timeline, pipeline_timeline, stage_times
from paraplan.strategy import SCHEDULES

CASES = [(2, 4, 2), (4, 8, 2), (4, 16, 3), (8, 16, 2), (8, 8, 4), (3, 6, 1), (1, 4, 1), (16, 32, 2), (3, 7, 1)]


def _model_idle(schedule: str, p: int, m: int, v: int) -> float:
    slots = float(bubble_slots(np.array(SCHEDULES.index(schedule)), np.array(p), np.array(v)))
    return slots / (m + slots)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b", "interleaved", "zero-bubble"])
@pytest.mark.parametrize(("p", "m", "v"), CASES)
def test_idle_fraction_equals_cost_model_bubble(schedule: str, p: int, m: int, v: int) -> None:
    if schedule == "interleaved" and m % p:
        pytest.skip("interleaved needs m to be a multiple of pp")
    v = v if schedule == "interleaved" else 1
    # F : B = 1 : 2 (and F = B = W under zero-bubble: the ZB-H1 share of one third holds exactly there)
    tl = pipeline_timeline(schedule, p, m, 1.0, 2.0, v)
    want = _model_idle(schedule, p, m, v)
    assert math.isclose(tl.idle_fraction(), want, rel_tol=1e-9, abs_tol=1e-12)
    for i in range(p):  # every stage has the same idle share
        assert math.isclose(tl.idle_fraction(i), want, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b", "interleaved"])
def test_bubble_independent_of_forward_backward_split(schedule: str) -> None:
    p, m, v = 4, 8, 2
    for f, b in ((1.0, 1.0), (1.0, 3.0), (0.2, 0.5)):
        tl = pipeline_timeline(schedule, p, m, f, b, v)
        assert math.isclose(tl.idle_fraction(), _model_idle(schedule, p, m, v if schedule == "interleaved" else 1),
                            rel_tol=1e-9)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b", "interleaved", "zero-bubble"])
def test_intervals_are_consistent(schedule: str) -> None:
    p, m, v = 4, 8, 2
    tl = pipeline_timeline(schedule, p, m, 1.0, 2.0, v)
    vv = v if schedule == "interleaved" else 1
    kinds = ("F", "B", "W") if schedule == "zero-bubble" else ("F", "B")
    for st in tl.stages:
        # no overlap on a stage, in execution order
        for a, b in zip(st, st[1:], strict=False):
            assert b.start >= a.end - 1e-12
        # every micro-batch and chunk once per kind
        for k in kinds:
            assert sorted((iv.micro_batch, iv.chunk) for iv in st if iv.kind == k) == \
                [(j, c) for j in range(m) for c in range(vv)]
    # data dependencies: a forward on stage i starts after that forward on stage i - 1
    ends = {(iv.stage, iv.kind, iv.micro_batch, iv.chunk): iv.end for st in tl.stages for iv in st}
    for st in tl.stages[1:]:
        for iv in st:
            if iv.kind == "F":
                assert iv.start >= ends[(iv.stage - 1, "F", iv.micro_batch, iv.chunk)] - 1e-12
    # 1F1B and zero-bubble keep at most p - i micro-batches in flight on stage i
    if schedule in ("1f1b", "zero-bubble"):
        for i, st in enumerate(tl.stages):
            live = peak = 0
            for iv in st:
                live += 1 if iv.kind == "F" else (-1 if iv.kind == "B" else 0)
                peak = max(peak, live)
            assert peak <= p - i


def test_one_stage_has_no_bubble_and_errors() -> None:
    assert pipeline_timeline("1f1b", 1, 5, 1.0, 2.0).idle_fraction() == 0.0
    with pytest.raises(ValueError, match="multiple of pp"):
        pipeline_timeline("interleaved", 4, 6, 1.0, 2.0, 2)
    with pytest.raises(ValueError, match="schedule"):
        pipeline_timeline("dualpipe", 4, 8, 1.0, 2.0)
    with pytest.raises(ValueError, match="too large"):
        pipeline_timeline("gpipe", 1000, 1000, 1.0, 2.0)


def test_estimate_timeline_matches_estimate() -> None:
    """From a real estimate: the drawn per-micro-batch time adds up to the estimate's m * t_mb, and the drawn
    bubble (all micro-batches) equals the estimate's pipeline_bubble component."""
    from paraplan import Strategy, Workload, estimate_training, get_cluster, get_model

    s = Strategy(tp=8, pp=8, dp=2, vpp=2, schedule="interleaved", micro_batch=1, global_batch=64, recompute="full")
    est = estimate_training(get_model("gpt-3-175b"), get_cluster("dgx-a100:128"), s, Workload(seq_len=2048))
    comps = est.time.components_s
    m = est.n_micro_batches
    f, b = stage_times(comps, m)
    tl = estimate_timeline(est.strategy.model_dump(), comps, m, max_micro=m)
    assert tl.n_micro == m
    busy = m * (f + b)
    assert math.isclose(tl.makespan_s - busy, comps["pipeline_bubble"], rel_tol=1e-9)
    assert math.isclose(busy + comps["pipeline_bubble"] + comps["dp_comm"] + comps["optimizer"], est.step_time_s,
                        rel_tol=1e-9)
