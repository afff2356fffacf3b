import pytest

from paraplan.techniques import frontier as Fr


def test_tp_link_rule():
    assert Fr.tp_link_bandwidth(2) == 200e9
    assert Fr.tp_link_bandwidth(8) == 50e9
    assert Fr.frontier_cluster(16, 2).scaleup.bw == 200e9


def test_catalog_gcd_numbers():
    acc = Fr.frontier_cluster(8, 8).accelerator
    assert acc.peak("fp16") == pytest.approx(191.5e12)
    assert acc.memory_bytes == pytest.approx(64e9)


def test_tp_comm_cheaper_on_package_link():
    from paraplan.cost.comm import collective_time
    fast = float(collective_time(Fr.frontier_cluster(8, 2), "all_reduce", 1e8, 2))
    slow = float(collective_time(Fr.frontier_cluster(8, 4), "all_reduce", 1e8, 2))
    assert fast < slow


def test_strong_scaling_below_one_and_weak_near_one():
    s = Fr.strong_scaling("gpt-3-175b", 512, 1024, 4, 16, 640).value
    w = Fr.weak_scaling("gpt-3-175b", 128, 1024, 4, 16, 80).value
    assert 0.5 < s < 1.0
    assert w == pytest.approx(1.0, abs=0.05)


def test_strong_scaling_worse_with_smaller_batch():
    a = Fr.strong_scaling("gpt-3-175b", 512, 1024, 4, 16, 640).value
    b = Fr.strong_scaling("gpt-3-175b", 512, 1024, 4, 16, 320).value
    assert b < a
