import pytest

from paraplan.techniques import c4


def test_ecmp_max_load_limits():
    assert c4.ecmp_max_load(1, 8) == pytest.approx(1.0)
    assert c4.planned_max_load(64, 64) == 1.0
    assert c4.ecmp_max_load(64, 64) > 3.0  # balls into bins: ~ln n / ln ln n


def test_more_subflows_balance_better():
    assert c4.ecmp_max_load(64, 64, subflows=8) < c4.ecmp_max_load(64, 64, subflows=1)


def test_faster_detection_cuts_overhead_more_when_diagnosis_is_longer():
    lo = c4.fault_overhead_reduction(diagnose_before_h=(2.0, 2.0)).value
    hi = c4.fault_overhead_reduction(diagnose_before_h=(48.0, 48.0)).value
    assert 0 < lo < hi < 0.30


def test_mtbf_for_overhead_inverts():
    from paraplan.techniques.resilience import expected_wall_time
    m = c4.mtbf_for_overhead(0.2, 3600.0, 1800.0, 60.0, 1e6)
    t = float(expected_wall_time(1e6, 1800.0, 60.0, m, 3600.0))
    ff = 1e6 * (1 + 60 / 1800)
    assert (t - ff) / t == pytest.approx(0.2, rel=1e-3)
