"""Efficiency curves: loading, physical bounds, shape trends, broadcasting, and agreement with data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from paraplan.cost import efficiency as eff
from paraplan.specs import AcceleratorSpec

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "kernels"


def _acc(family: str, bf16: float, bw: float, fp8: float | None = None,
         name: str = "test") -> AcceleratorSpec:
    peak = {"bf16": bf16 * 1e12, "fp16": bf16 * 1e12}
    if fp8:
        peak["fp8"] = fp8 * 1e12
    return AcceleratorSpec(name=name, vendor="test", family=family, peak_flops=peak, memory_bytes=80e9,
                           memory_bw=bw * 1e9, scaleup_bw=450e9)


# H100 SXM as in the fit (dense bf16 989.4 TFLOP/s, fp8 1978.9, 3.35 TB/s), built here so the tests do
# not depend on the catalog's contents.
H100 = _acc("hopper", 989.4, 3350, 1978.9, "h100-test")
A100 = _acc("ampere", 312, 2039, None, "a100-test")
B200 = _acc("blackwell", 2250, 8000, 4500, "b200-test")
MYSTERY = _acc("no-such-family", 500, 2000, 1000, "mystery")
ALL = [H100, A100, B200, MYSTERY]


def test_curves_load_and_have_default_and_fitted_families():
    doc = eff.load_curves()
    fams = doc["families"]
    for fam in ("default", "ampere", "hopper", "blackwell"):
        assert fam in fams
    assert fams["hopper"]["gemm"]["bf16"]["eff_max"] > 0
    assert "not fitted" in fams["default"]["status"]
    assert eff.load_curves() is doc  # loaded once


@pytest.mark.parametrize("acc", ALL, ids=lambda a: a.family)
@pytest.mark.parametrize("layer", ["curves", "spec"])
@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp8"])
def test_gemm_efficiency_in_unit_interval(acc, layer, dtype):
    g = 2.0 ** np.arange(0, 16)
    m, n, k = np.meshgrid(g, g * 2, g, indexing="ij")
    e = eff.gemm_efficiency(acc, dtype, m, n, k, layer=layer)
    assert e.shape == m.shape
    assert np.all(e > 0.0) and np.all(e <= 1.0)
    t = eff.gemm_time(acc, dtype, m, n, k, layer=layer)
    assert np.all(np.isfinite(t)) and np.all(t > 0.0)


@pytest.mark.parametrize("shape", [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 8192, 8192),
                                   (32768, 8192, 4096)])
def test_large_bf16_hopper_gemm_reaches_60_to_90_percent(shape):
    e = float(eff.gemm_efficiency(H100, "bf16", *shape))
    assert 0.6 <= e <= 0.9


def test_small_gemms_are_less_efficient_and_efficiency_grows_with_m():
    for acc in ALL:
        small = eff.gemm_efficiency(acc, "bf16", 16, 1024, 1024)
        large = eff.gemm_efficiency(acc, "bf16", 8192, 8192, 8192)
        assert small < large
        m = 2.0 ** np.arange(0, 16)
        e = eff.gemm_efficiency(acc, "bf16", m, 8192, 8192)
        assert np.all(np.diff(e) > 0), (acc.family, e)


def test_broadcasting_and_scalars():
    rng = np.random.default_rng(0)
    m = rng.integers(1, 20000, 1000)
    t = eff.gemm_time(H100, "bf16", m, 4096, 4096)
    assert t.shape == (1000,)
    assert eff.gemm_efficiency(H100, "bf16", m, 4096, 4096).shape == (1000,)
    # column x row broadcast
    grid = eff.gemm_time(H100, "bf16", m[:, None], np.array([1024, 4096, 8192])[None, :], 4096)
    assert grid.shape == (1000, 3)
    np.testing.assert_allclose(grid[:, 1], t)
    assert np.ndim(eff.gemm_time(H100, "bf16", 1024, 1024, 1024)) == 0
    att = eff.attention_time(H100, "bf16", rng.integers(1, 64, 1000), 32, np.where(m > 10000, 1, 2048), 4096,
                             128, 8)
    assert att.shape == (1000,) and np.all(att > 0)
    assert eff.memory_time(H100, np.linspace(1e6, 1e9, 1000)).shape == (1000,)


def test_empty_work_takes_no_time():
    assert float(eff.gemm_time(H100, "bf16", 0, 4096, 4096)) == 0.0
    assert float(eff.gemm_efficiency(H100, "bf16", 0, 4096, 4096)) == 0.0
    assert float(eff.memory_time(H100, 0)) == 0.0
    assert float(eff.attention_time(H100, "bf16", 0, 32, 1024, 1024, 128, 8)) == 0.0


def test_spec_layer_differs_from_curves():
    shape = (1024, 4096, 4096)
    spec = float(eff.gemm_efficiency(H100, "bf16", *shape, layer="spec"))
    curves = float(eff.gemm_efficiency(H100, "bf16", *shape, layer="curves"))
    assert spec == pytest.approx(0.8)
    assert curves != pytest.approx(spec, rel=1e-3)
    assert eff.collective_params(H100, "all_reduce", "scaleup", layer="spec") == (10e-6, 0.8)
    assert eff.collective_params(H100, "all_reduce", "scaleup") != (10e-6, 0.8)
    assert float(eff.memory_time(H100, 1e9, layer="spec")) == pytest.approx(1e9 / (3350e9 * 0.8))
    assert float(eff.memory_time(H100, 1e9)) != pytest.approx(float(eff.memory_time(H100, 1e9, layer="spec")))
    with pytest.raises(ValueError):
        eff.gemm_time(H100, "bf16", 1, 1, 1, layer="bogus")  # type: ignore[arg-type]


def test_fp8_faster_than_bf16_for_large_gemms_and_fallbacks():
    t16 = float(eff.gemm_time(H100, "bf16", 8192, 8192, 8192))
    t8 = float(eff.gemm_time(H100, "fp8", 8192, 8192, 8192))
    assert t8 < t16
    # fp16 uses the bf16 curve
    t_fp16 = float(eff.gemm_time(H100, "fp16", 4096, 4096, 4096))
    assert t_fp16 == float(eff.gemm_time(H100, "bf16", 4096, 4096, 4096))
    # ampere has no fp8 fit: bf16 curve shape, fp8 peak (which an A100 does not have -> bf16 peak)
    assert float(eff.gemm_efficiency(A100, "fp8", 8192, 8192, 8192)) == pytest.approx(
        float(eff.gemm_efficiency(A100, "bf16", 8192, 8192, 8192)), rel=0.05)
    # unknown family -> default curves
    e = float(eff.gemm_efficiency(MYSTERY, "bf16", 8192, 8192, 8192))
    assert 0.5 < e < 0.95


def test_attention_prefill_and_decode():
    # prefill efficiency grows with sequence length and stays below the peak
    q = np.array([512, 2048, 8192, 32768])
    t = eff.attention_time(H100, "bf16", 1, 32, q, q, 128, 8)
    flops = 2.0 * 32 * q**2 * 128
    e = flops / (t * 989.4e12)
    assert np.all(np.diff(e) > 0) and np.all(e < 1.0) and e[-1] > 0.3
    # non-causal does twice the work
    tn = eff.attention_time(H100, "bf16", 1, 32, 8192, 8192, 128, 8, causal=False)
    assert float(tn) > 1.6 * float(t[2])
    # decode is memory bound: time grows ~linearly with the KV cache, fp8 KV is cheaper
    kv = np.array([8192, 16384, 32768])
    td = eff.attention_time(H100, "bf16", 64, 32, 1, kv, 128, 8)
    kv_bytes = 2.0 * 64 * kv * 8 * 128 * 2
    bw_frac = kv_bytes / (td * 3350e9)
    assert np.all(bw_frac < 1.0) and bw_frac[-1] > 0.5
    assert float(eff.attention_time(H100, "fp8", 64, 32, 1, 32768, 128, 8)) < float(td[-1])


def test_collective_params_fallbacks():
    for op in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv"):
        for tier in ("scaleup", "scaleout"):
            for acc in ALL:
                alpha, e = eff.collective_params(acc, op, tier)
                assert 0 < alpha < 1e-3 and 0 < e <= 1.0
    with pytest.raises(ValueError):
        eff.collective_params(H100, "gossip", "scaleup")
    with pytest.raises(ValueError):
        eff.collective_params(H100, "all_reduce", "interplanetary")  # type: ignore[arg-type]


def _h100_bf16_times() -> dict[tuple[int, int, int], float]:
    path = DATA / "gemm.csv"
    if not path.is_file():
        pytest.skip(f"kernel data not found at {DATA}")
    out: dict[tuple[int, int, int], float] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["system"] == "h100_sxm" and row["dtype"] == "bfloat16":
                out[(int(row["m"]), int(row["n"]), int(row["k"]))] = float(row["time_us"]) * 1e-6
    return out


def test_fitted_curve_reproduces_measured_h100_bf16_gemms():
    measured = _h100_bf16_times()
    shapes = [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 8192, 8192), (8192, 4096, 4096),
              (4096, 8192, 8192), (16384, 4096, 4096), (8192, 16384, 8192), (8192, 12288, 4096)]
    shapes = [s for s in shapes if s in measured]
    assert len(shapes) >= 4
    m, n, k = (np.array(x, dtype=float) for x in zip(*shapes, strict=True))
    pred = eff.gemm_time(H100, "bf16", m, n, k)
    meas = np.array([measured[s] for s in shapes])
    np.testing.assert_allclose(pred, meas, rtol=0.15)


def test_fp8_quantize_pass_is_priced_apart_and_only_where_fitted() -> None:
    """Per-tensor fp8 curves price the inference module's quantize pass (m k x quantize_bytes at the fitted
    memory efficiency) apart from the GEMM; training asks for the GEMM alone; bf16 has no such pass."""
    import numpy as np

    from paraplan.catalog import get_accelerator
    from paraplan.cost import efficiency as E

    acc = get_accelerator("h100-sxm")
    m, n, k = 4096.0, 4096.0, 8192.0
    qb = E._quantize_bytes(acc.family, "fp8")
    assert qb == 3.0
    eff_mem = E._gemm_params(acc.family, "fp8")[4]
    with_q = float(E.gemm_time(acc, "fp8", m, n, k))
    without = float(E.gemm_time(acc, "fp8", m, n, k, quantize=False))
    assert with_q - without == pytest.approx(m * k * qb / (acc.memory_bw * eff_mem), rel=1e-9)
    assert float(E.gemm_time(acc, "bf16", m, n, k)) == float(E.gemm_time(acc, "bf16", m, n, k, quantize=False))
    assert E._quantize_bytes(acc.family, "fp8_block") == 0.0
    # broadcasting is unchanged
    assert E.gemm_time(acc, "fp8", np.array([m, 2 * m]), n, k, quantize=False).shape == (2,)
