import numpy as np
import pytest

from paraplan.errors import ConfigError
from paraplan.techniques import sgc


def test_no_stragglers_gc_runtime_is_load():
    t = np.ones((10, 16))
    assert sgc.gc_runtime(t, 3) == pytest.approx(10 * 4 / 16)
    assert sgc.repetition_runtime(t, 3) == pytest.approx(10 * 4 / 16)


def test_gc_tolerates_s_stragglers():
    t = np.ones((1, 8))
    t[0, :2] = 100.0
    assert sgc.gc_runtime(t, 2) == pytest.approx(3 / 8)
    assert sgc.gc_runtime(t, 0) == pytest.approx(100 / 8)


def test_more_bursty_stragglers_cost_more():
    a = sgc.straggler_times(64, 200, p_gb=0.01, p_bg=0.5, slowdown=3.0, seed=0)
    b = sgc.straggler_times(64, 200, p_gb=0.10, p_bg=0.5, slowdown=3.0, seed=0)
    assert sgc.gc_runtime(b, 3) > sgc.gc_runtime(a, 3)


def test_window_absorbs_short_bursts():
    t = sgc.straggler_times(64, 300, p_gb=0.05, p_bg=0.9, slowdown=5.0, seed=2)
    assert sgc.sgc_runtime(t, 3, 3) < sgc.sgc_runtime(t, 3, 0)


def test_bad_parameters():
    with pytest.raises(ConfigError):
        sgc.straggler_times(4, 4, p_gb=0.0, p_bg=0.5, slowdown=2.0)
