import pytest

from paraplan.cost import offload as O
from paraplan.techniques import zero_infinity as Z


def test_1t_needs_nvme_but_smaller_fits_cpu():
    assert Z.smallest_tier("gpt-1t").value == 2
    assert Z.smallest_tier("gpt-3-13b").value in (0, 1)
    assert Z.smallest_tier("gpt-1t", nvme_bytes=1e12).value == 3


def test_step_is_slower_with_less_bandwidth():
    fast = Z.zero_infinity_step("gpt-1t", 64, 1, offload_params=O.NVME, offload_grads=O.NVME,
                                offload_optimizer=O.NVME, nvme_bw_node=100e9)
    slow = Z.zero_infinity_step("gpt-1t", 64, 1, offload_params=O.NVME, offload_grads=O.NVME,
                                offload_optimizer=O.NVME, nvme_bw_node=5e9)
    assert slow["step_time_s"] > fast["step_time_s"]
    assert slow["offload_exposed_s"] > fast["offload_exposed_s"]


def test_superlinear_from_bandwidth_centric_partitioning():
    r = Z.scaling_ratio("gpt-1t", 64, 512, 2, offload_params=O.NVME, offload_grads=O.NVME, offload_optimizer=O.NVME)
    assert r.value > 1.0


def test_bandwidth_claim_helpers():
    assert Z.bandwidth_ratio() == pytest.approx(4.0)
    assert Z.bandwidth_for_efficiency("params_grads", 0.5).value == pytest.approx(70e12 / 1024)
    assert Z.efficiency_at("optimizer", 1.5e12, batch_per_gpu=2) > 0.9
