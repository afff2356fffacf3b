import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.techniques import moe_serving as ms


def test_baseline_bytes_by_hand():
    # 100 tokens, k=2, h=10, 2 B, 4 GPUs: 2 * 100 * 2 * 10 * 2 * 3/4
    assert float(ms.ep_alltoall_bytes(100, 10, 2, 4)) == pytest.approx(6000.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 64), st.floats(0, 1))
def test_exflow_reduction_monotone_in_affinity(g, a):
    r0 = ms.exflow_routing_reduction(g, 0.0).value
    r = ms.exflow_routing_reduction(g, a).value
    assert r >= r0 - 1e-12
    assert r <= 1.0 + 1e-12
    # without affinity placement: one all-to-all instead of two -> exactly half
    assert ms.exflow_routing_reduction(g).value == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_smoe_monotone_in_accuracy(a, b):
    lo, hi = sorted([a, b])
    assert ms.smoe_volume_reduction(8, hi).value >= ms.smoe_volume_reduction(8, lo).value - 1e-12
    assert ms.smoe_volume_reduction(8, 1.0).value == pytest.approx(1.0)


def test_exflow_time_faster():
    r = ms.exflow_comm_speedup("mixtral-8x7b", "dgx-a100", 16, 256)
    assert r.value > 1.0
    with pytest.raises(ValueError):
        ms.exflow_comm_speedup("llama-2-7b", "dgx-a100", 8, 256)
