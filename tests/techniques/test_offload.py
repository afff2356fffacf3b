import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.cost import offload as O


def test_bytes_per_param_conventions():
    assert O.bytes_per_param("zero") == 16.0
    assert O.bytes_per_param("zero-infinity") == 20.0
    # the paper's Table 1: 1.01T params (12 * 128 * 25600^2) -> 18.31 TiB of model states
    n = 12 * 128 * 25600**2
    assert float(O.model_state_bytes(n)) / 2**40 == pytest.approx(18.31, abs=0.01)


@settings(max_examples=50, deadline=None)
@given(st.floats(1e6, 1e13), st.integers(0, 3), st.integers(1, 4096), st.integers(0, 2), st.integers(0, 2),
       st.integers(0, 2))
def test_placement_conserves_bytes(n, z, dp, op, og, oo):
    pl = O.state_placement(n, z, dp, offload_params=op, offload_grads=og, offload_optimizer=oo)
    shard = O.sharded_state_bytes(n, z, dp)
    total = sum(float(v) for v in shard.values())
    assert float(pl["device"] + pl["cpu"] + pl["nvme"]) == pytest.approx(total, rel=1e-12)
    for kind, code in (("params", op), ("grads", og), ("optimizer", oo)):
        assert float(pl[f"{O.TIERS[code]}.{kind}"]) == pytest.approx(float(shard[kind]))


def test_sharding_by_stage_hand_case():
    s = O.sharded_state_bytes(1e9, np.array([0, 1, 2, 3]), 4, convention="zero")
    assert np.allclose(s["optimizer"], [12e9, 3e9, 3e9, 3e9])
    assert np.allclose(s["grads"], [2e9, 2e9, 0.5e9, 0.5e9])
    assert np.allclose(s["params"], [2e9, 2e9, 2e9, 0.5e9])


def test_array_broadcast_over_strategies():
    pl = O.state_placement(1e12, 3, np.array([16, 64, 512]), offload_optimizer=np.array([0, 1, 2]))
    assert pl["device"].shape == (3,)
    assert pl["nvme.optimizer"][2] > 0 and pl["nvme.optimizer"][0] == 0


def test_smallest_tier():
    t = O.smallest_tier_that_fits(np.array([0.1e12, 1e12, 20e12, 50e12]), 0.5e12, 1.5e12, 30e12)
    assert list(t) == [0, 1, 2, 3]


def test_traffic_shrinks_with_dp_and_is_zero_without_offload():
    tr = O.offload_traffic(1e12, 3, np.array([64, 512]), offload_params=O.NVME, offload_grads=O.NVME,
                           offload_optimizer=O.NVME)
    assert tr["pcie_overlappable"][0] == pytest.approx(8 * tr["pcie_overlappable"][1])
    none = O.offload_traffic(1e12, 3, 64)
    assert all(float(v) == 0.0 for v in none.values())


def test_transfer_and_exposed():
    assert float(O.transfer_time(12e9, 0.0, 12e9, 1.0)) == pytest.approx(1.0)
    assert float(O.transfer_time(12e9, 25e9, 12e9, 25e9, pipelined=False)) == pytest.approx(2.0)
    assert float(O.exposed_time(3.0, 2.0, 1.0)) == pytest.approx(1.0)
    assert float(O.exposed_time(3.0, 5.0, 1.0)) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.floats(1.0, 1e6), st.floats(1e6, 1e13), st.floats(1e12, 1e15))
def test_efficiency_monotone_and_inverse(ait, bw, peak):
    e = float(O.bandwidth_efficiency(ait, bw, peak))
    assert 0.0 < e < 1.0
    assert float(O.bandwidth_efficiency(ait, 2 * bw, peak)) > e
    if 1e-6 < e < 1 - 1e-6:
        assert float(O.bandwidth_for_efficiency(e, ait, peak)) == pytest.approx(bw, rel=1e-6)


def test_ait_hand_values():
    assert float(O.ait_params_grads(1024, 1)) == 1024
    assert float(O.ait_optimizer(1024, 1)) == 256
    assert float(O.ait_activation_checkpoints(8192, 1)) == 24 * 8192
