import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.catalog import get_model
from paraplan.errors import ConfigError
from paraplan.techniques import resilience as R


def test_defaults_have_sources():
    d, s = R.resilience_defaults(), R.resilience_sources()
    for k in ("mtbf_hours_per_accelerator", "detect_minutes", "restart_minutes", "storage_gbs_per_accelerator"):
        assert d[k] > 0 and s[k]


def test_young_and_daly_hand_computed():
    assert R.young_interval(300, 18000) == pytest.approx(math.sqrt(2 * 300 * 18000))
    # Daly's correction is small when delta << M and the interval stays near Young's
    assert R.daly_interval(300, 18000) == pytest.approx(3089.4, rel=1e-3)
    assert R.daly_interval(5000, 2000) == 2000  # delta >= 2M -> M


def test_no_failures_limit():
    t = R.expected_wall_time(1000.0, 100.0, 10.0, np.inf, 60.0)
    assert float(t) == pytest.approx(1100.0)


@settings(max_examples=30, deadline=None)
@given(st.floats(10, 1e4), st.floats(0.5, 200), st.floats(1e3, 1e6), st.floats(0, 3600))
def test_components_add_up_and_monotone_in_mtbf(tau, delta, mtbf, restart):
    g = R.goodput(1e6, mtbf_s=mtbf, restart_s=restart, stall_s=delta, interval_s=tau)
    assert sum(g.components_s.values()) == pytest.approx(g.wall_time_s, rel=1e-9)
    assert 0 < g.goodput <= 1
    g2 = R.goodput(1e6, mtbf_s=mtbf * 2, restart_s=restart, stall_s=delta, interval_s=tau)
    assert g2.wall_time_s <= g.wall_time_s * (1 + 1e-12)


def test_daly_interval_is_near_optimal():
    w, m, d, r = 3.6e5, 1.8e4, 300.0, 1800.0
    best = R.daly_interval(d, m)
    t_best = float(R.expected_wall_time(w, best, d, m, r))
    for f in (0.5, 2.0):
        assert float(R.expected_wall_time(w, best * f, d, m, r)) > t_best


def test_monte_carlo_agrees_with_closed_form():
    w, m, d, r = 3.6e5, 1.8e4, 300.0, 1800.0
    tau = R.daly_interval(d, m)
    closed = float(R.expected_wall_time(w, tau, d, m, r))
    mc = R.simulate_goodput(w, interval_s=tau, stall_s=d, mtbf_s=m, restart_s=r, runs=1500, seed=1)
    assert mc["mean_wall_s"] == pytest.approx(closed, rel=0.02)


def test_async_stall_hides_behind_fwd_bwd():
    b = R.checkpoint_bytes(get_model("llama-2-7b"))
    assert b == pytest.approx(get_model("llama-2-7b").n_params() * 14)
    sync = R.checkpoint_stall(b, 64, storage_gbs_per_accelerator=1.0, d2h_gbs_per_accelerator=25.0,
                              asynchronous=False)
    lazy = R.checkpoint_stall(b, 64, storage_gbs_per_accelerator=1.0, d2h_gbs_per_accelerator=25.0,
                              asynchronous=True, overlap_window_s=10.0, interval_wall_s=100.0)
    assert lazy["stall_s"] == 0.0 < sync["stall_s"]
    assert lazy["durability_latency_s"] == pytest.approx(sync["stall_s"])


def test_bad_inputs():
    with pytest.raises(ConfigError):
        R.job_mtbf_s(0)
    with pytest.raises(ConfigError):
        R.goodput(-1.0, mtbf_s=1.0, restart_s=0.0, stall_s=0.0)
