import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.catalog import get_cluster, get_model
from paraplan.techniques import tpi_llm as tp


def test_allreduce_by_hand():
    assert float(tp.allreduce_ring_time(4, 4000, 1000.0, 0.5)) == pytest.approx(2 * 3 * (0.5 + 1.0))
    assert float(tp.allreduce_star_time(4, 4000, 1000.0, 0.5)) == pytest.approx(2 * (0.5 + 12.0))
    assert float(tp.allreduce_ring_time(1, 4000, 1000.0, 0.5)) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 64), st.floats(1e3, 1e7), st.floats(1e6, 1e10))
def test_crossover_is_exact(n, s, bw):
    a = tp.star_ring_crossover_latency(n, s, bw)
    assert float(tp.allreduce_star_time(n, s, bw, a)) == pytest.approx(float(tp.allreduce_ring_time(n, s, bw, a)))
    assert float(tp.allreduce_star_time(n, s, bw, 2 * a)) < float(tp.allreduce_ring_time(n, s, bw, 2 * a))
    assert float(tp.allreduce_star_time(n, s, bw, a / 2)) > float(tp.allreduce_ring_time(n, s, bw, a / 2))


def test_star_advantage_grows_with_latency():
    lo = tp.star_over_ring_speedup(8, 8192, 4, 0.125, 0.1).value
    hi = tp.star_over_ring_speedup(8, 8192, 4, 0.125, 10.0).value
    assert hi > lo
    assert tp.star_ring_crossover_latency(2, 1.0, 1.0) == math.inf


def test_window_memory_components():
    m = get_model("llama-2-70b")
    d = tp.peak_memory_per_device(m, 8, window=2)
    assert d["total"] == pytest.approx(sum(v for k, v in d.items() if k != "total"))
    assert tp.peak_memory_per_device(m, 8, window=4)["weights_window"] == pytest.approx(2 * d["weights_window"])
    worker = tp.peak_memory_per_device(m, 8, window=2, master=False)
    assert worker["total"] < d["total"]


def test_disk_stall_vanishes_with_fast_disk():
    m = get_model("llama-2-7b")
    c = get_cluster("tpi-llm-edge-8")
    slow = tp.token_latency(m, c, n_devices=4, link_bw=0.125e9, link_latency=1e-3, disk_bw=1e8)
    fast = tp.token_latency(m, c, n_devices=4, link_bw=0.125e9, link_latency=1e-3, disk_bw=1e13)
    assert slow["disk_stall_s"] > 0 and fast["disk_stall_s"] == 0.0
    assert slow["total_s"] > fast["total_s"]
