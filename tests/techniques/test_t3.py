import numpy as np

from paraplan.catalog import get_cluster
from paraplan.specs import LinkTier
from paraplan.techniques import t3


def _c(bw):
    c = get_cluster("frontier-node:8")
    return c.model_copy(update={"scaleup": LinkTier(name="x", bw=bw, latency_s=3e-6)})


def test_t3_between_ideal_and_baseline():
    r = t3.sublayer_times(_c(50e9), np.array([1024, 4096, 16384]), 8192, 32768, 8)
    assert np.all(r["t3_s"] <= r["baseline_s"])
    assert np.all(r["t3_s"] >= r["ideal_s"])
    assert np.all(r["bytes_t3"] < r["bytes_baseline"])


def test_speedup_largest_when_balanced():
    # speedup is bounded by 2 and peaks when GEMM and reduce-scatter take similar time
    sp = []
    for bw in (5e9, 50e9, 500e9, 5000e9):
        r = t3.sublayer_times(_c(bw), 8192, 8192, 32768, 8)
        sp.append(float(r["baseline_s"] / r["t3_s"]))
    assert max(sp) < 2.0
    assert sp[0] < max(sp) and sp[-1] < max(sp)


def test_data_reduction_hand_case():
    # reduce-scatter traffic 4 S/N -> 1 S/N per step
    r = t3.sublayer_times(_c(50e9), 1024, 1024, 1024, 2)
    S = 1024 * 1024 * 2.0
    assert float(r["bytes_baseline"] - r["bytes_t3"]) == 3.0 * S / 2
