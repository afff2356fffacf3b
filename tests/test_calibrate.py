"""Calibration machinery that needs no torch: curve registration, fits of synthetic timings, profiles, provenance,
the shared-parameter fit and ``calibrate --from-runs`` (issue 8)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli_helpers import calibrate_app  # noqa: E402
from paraplan import Strategy, Workload, estimate_training, get_accelerator, get_cluster, get_model
from paraplan.calibrate import CalibrationError, load_profile, save_profile
from paraplan.calibrate import fit as fitmod
from paraplan.calibrate.shared import Row, fit_params, fit_with_cv
from paraplan.cost import efficiency as E

pytest.importorskip("scipy")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train-measured.csv"

GEMM = {"eff_max": 0.9, "m_half": 40.0, "n_half": 20.0, "k_half": 60.0, "eff_mem": 0.7, "t0_us": 5.0}




def _profile_doc(family: str = "calibrated-test-0001") -> dict:
    """A hardware profile as `paraplan calibrate` writes it, with made-up but well-formed numbers."""
    base = {"name": "host-test-1c", "vendor": "generic", "family": "cpu", "kind": "cpu", "cores": 1,
            "peak_tflops": {"bf16": 0.2, "fp32": 0.1}, "memory_gb": 8.0, "memory_bw_gbs": 5.0, "source": "test"}
    entry = {**base, "name": "host-test-1c-calibrated", "family": family, "memory_bw_gbs": 25.0,
             "scaleup_bw_gbs": 2.0, "scaleup_domain": 2, "source": "test calibration"}
    curves = {"gemm": {"bf16": dict(GEMM)},
              "attention": {"prefill": {"bf16": {"eff_max": 0.3, "l_half": 50.0, "t0_us": 5.0}},
                            "decode": {"bf16": {"eff_kv": 0.1, "t0_us": 10.0}}},
              "memory": {"eff": 0.5, "t0_us": 2.0, "eff_by_op": {"add": 1.0}},
              "collectives": {"scaleup": {op: {"alpha_us": 300.0, "eff": 0.5} for op in E.COLLECTIVE_OPS}}}
    return {**entry, "calibration": {
        "format": 1, "kind": "hardware", "device": "cpu", "dtype": "bf16", "threads": 1, "ranks": 2,
        "created": "2026-01-01T00:00:00", "host": {"cpu": "test"}, "base": base,
        "link": {"name": "test link", "bw_gbs": 2.0, "latency_us": 300.0},
        "loaded": {"ranks": 2, "compute_factor": 0.8, "bandwidth_factor": 0.9},
        "curves": curves,
        "training": {"compute_derate": 1.1, "attention_derate": 0.9, "layer_overhead_s": 1e-4,
                     "step_overhead_s": 1e-3},
        "inference": {"compute_derate": 1.05, "step_overhead_s": 1e-4, "layer_overhead_s": 1e-5,
                      "seq_overhead_s": 1e-5}}}


# ------------------------------------------------------------------ no torch needed
def test_import_and_core_cli_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import paraplan, paraplan.calibrate, paraplan.cli_calibrate, paraplan.validate.measured\n"
            "from paraplan.calibrate.device import require_torch, CalibrationError\n"
            "try:\n    require_torch()\nexcept CalibrationError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'paraplan[calibrate]'" in out.stdout


def test_register_family_prices_with_its_curves() -> None:
    acc = get_accelerator("h100-sxm").model_copy(update={"family": "calibrated-unit-a"})
    before = float(E.gemm_time(acc, "bf16", 1024, 1024, 1024))  # unknown family: the 'default' curves
    E.register_family("calibrated-unit-a", {"gemm": {"bf16": dict(GEMM)}}, source="unit test", base="hopper")
    try:
        m, n, k = 1024.0, 2048.0, 512.0
        want = GEMM["t0_us"] * 1e-6 + max((m + 40) * (n + 20) * (k + 60) * 2 / (acc.peak("bf16") * 0.9),
                                          (m * k + n * k + m * n) * 2 / (acc.memory_bw * 0.7))
        assert math.isclose(float(E.gemm_time(acc, "bf16", m, n, k)), want, rel_tol=1e-12)
        assert float(E.gemm_time(acc, "bf16", 1024, 1024, 1024)) != before
        # sections it does not have come from its base family, not 'default'
        hopper = acc.model_copy(update={"family": "hopper"})
        assert float(E.memory_time(acc, 1e9)) == float(E.memory_time(hopper, 1e9))
        assert "calibrated kernel curves (unit test" in E.curves_provenance(acc)
    finally:
        E.unregister_family("calibrated-unit-a")
    assert float(E.gemm_time(acc, "bf16", 1024, 1024, 1024)) == before
    with pytest.raises(ValueError, match="catalog family"):
        E.register_family("hopper", {}, source="x")
    with pytest.raises(ValueError, match="unknown section"):
        E.register_family("calibrated-unit-b", {"gemms": {}}, source="x")


def test_catalog_fp32_gemm_unchanged() -> None:
    """fp32 GEMMs look for an fp32 curve first: catalog families have none, so nothing changes for them."""
    acc = get_accelerator("a100-sxm-80gb")
    p16 = E._gemm_params(acc.family, "bf16")
    assert E._gemm_params(acc.family, "fp32") == p16


def _gemm_points(p: dict, peak: float, bw: float, noise: float, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vals = [1, 16, 64, 256, 1024, 4096]
    pts = []
    for m in vals:
        for n in vals[1:]:
            for k in vals[1:]:
                t = float(fitmod.gemm_time(p, np.array(m), np.array(n), np.array(k), peak, bw, 2.0))
                pts.append({"m": m, "n": n, "k": k, "t": t * math.exp(rng.normal(0, noise))})
    return pts


def test_fit_gemm_recovers_curve() -> None:
    peak, bw = 100e12, 2e12
    fitted = fitmod.fit_gemm(_gemm_points(GEMM, peak, bw, noise=0.02), peak, bw, 2.0)
    assert fitted["ape_median_pct"] < 3.0
    assert fitted["eff_max"] == pytest.approx(0.9, rel=0.05)
    assert fitted["eff_mem"] == pytest.approx(0.7, rel=0.1)
    # predictions (what matters) within a few percent over the whole grid, noise-free
    clean = _gemm_points(GEMM, peak, bw, noise=0.0)
    pred = [float(fitmod.gemm_time(fitted, np.array(p["m"]), np.array(p["n"]), np.array(p["k"]), peak, bw, 2.0))
            for p in clean]
    assert np.median([abs(a / p["t"] - 1) for a, p in zip(pred, clean, strict=True)]) < 0.03


def test_fit_memory_attention_collectives() -> None:
    bw = 20e9
    pts = [{"op": op, "bytes": b, "t": 3e-6 + b / (bw * e)} for op, e in (("add", 0.9), ("layernorm", 0.3))
           for b in (1e4, 1e5, 1e6, 1e7, 1e8)]
    mem = fitmod.fit_memory(pts, bw)
    assert mem["eff_by_op"]["add"] == pytest.approx(0.9, rel=0.02)
    assert mem["eff_by_op"]["layernorm"] == pytest.approx(0.3, rel=0.02)
    assert mem["t0_us"] == pytest.approx(3.0, rel=0.05)
    assert mem["eff"] == pytest.approx(math.sqrt(0.9 * 0.3), rel=0.02)  # log-mean over ops

    dec = [{"b": b, "h": 8, "kv": kv, "d": 64, "kvh": 8, "t": 20e-6 + 2 * b * kv * 8 * 64 * 2 / (bw * 0.2)}
           for b in (1, 4) for kv in (128, 1024, 4096)]
    d = fitmod.fit_decode(dec, bw, 2.0)
    assert d["eff_kv"] == pytest.approx(0.2, rel=0.02)
    peak = 1e12
    curve = {"eff_max": 0.4, "l_half": 100.0, "t0_us": 10.0}
    pre = []
    for q in (64, 256, 1024, 4096):
        for b, h in ((1, 4), (4, 16)):
            f, io, _ = fitmod.attention_flops_bytes(np.array(b), np.array(h), np.array(q), np.array(q),
                                                    np.array(64), np.array(h), 2.0)
            t = float(fitmod.prefill_time(curve, f, io, np.array(q), peak, bw, 0.2))
            pre.append({"b": b, "h": h, "q": q, "kv": q, "d": 64, "kvh": h, "t": t, "t_fb": 3.0 * t})
    pf = fitmod.fit_prefill(pre, peak, bw, 2.0, 0.2)
    assert pf["eff_max"] == pytest.approx(0.4, rel=0.03) and pf["l_half"] == pytest.approx(100, rel=0.1)
    der = fitmod.attention_backward_derate(pre, pf, peak, bw, 2.0, 0.2, 2.5)
    assert der["attention_derate"] == pytest.approx(3.0 / 3.5, rel=0.02)

    coll = [{"op": op, "bytes": s, "ranks": 2, "t": a + fitmod.BUS_FACTOR[op](2) * s / (e * 4e9)}
            for op, a, e in (("all_reduce", 1e-4, 0.5), ("send_recv", 5e-5, 1.0)) for s in (1e3, 1e5, 1e7, 1e8)]
    sec, link, lat = fitmod.fit_collectives(coll, 4e9)
    assert sec["all_reduce"]["eff"] == pytest.approx(0.5, rel=0.03)
    assert sec["all_reduce"]["alpha_us"] == pytest.approx(100, rel=0.05)
    assert lat == pytest.approx(5e-5, rel=0.05) and link == 4e9


def test_profile_roundtrip_and_provenance(tmp_path: Path) -> None:
    path = save_profile(_profile_doc(), tmp_path / "p.yaml")
    prof = load_profile(path)
    assert prof.accelerator is not None and prof.accelerator.memory_bw == 25e9
    assert prof.base_accelerator is not None and prof.base_accelerator.family == "cpu"
    model = get_model("gpt-3-125m") if _has_model("gpt-3-125m") else get_model("gpt-3-175b")
    node = prof.cluster(1)
    s = Strategy(micro_batch=1, global_batch=1)
    w = Workload(seq_len=256)
    est = estimate_training(model, node, s, w, calibration=prof.calibration, calibration_source=prof.describe(),
                            check=False)
    assert "calibrated kernel curves" in est.provenance
    assert "shared training parameters from profile p.yaml" in est.provenance
    plain = estimate_training(model, prof.cluster(1, calibrated=False), s, w, check=False)
    assert "catalog/curves" in plain.provenance and est.step_time_s != plain.step_time_s
    # a DDP rank on this host is the 'loaded' accelerator: scaled peaks
    two = prof.cluster(2)
    assert two.accelerator.peak("bf16") == pytest.approx(0.8 * prof.accelerator.peak("bf16"))
    # applying to another cluster swaps the accelerator and gives the family's parameters
    c, cal = prof.apply(get_cluster("h100-sxm:8"))
    assert c.accelerator.family == prof.accelerator.family and cal == prof.calibration


def _has_model(name: str) -> bool:
    try:
        get_model(name)
        return True
    except Exception:
        return False


def test_malformed_profiles_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(CalibrationError, match="not a paraplan calibration profile"):
        load_profile(bad)
    doc = _profile_doc()
    doc["calibration"]["format"] = 99
    save_profile(doc, bad)
    with pytest.raises(CalibrationError, match="format"):
        load_profile(bad)
    doc = _profile_doc()
    doc["calibration"]["training"]["compute_derate"] = "fast"
    save_profile(doc, bad)
    with pytest.raises(CalibrationError, match="not a number"):
        load_profile(bad)
    with pytest.raises(FileNotFoundError):
        load_profile(tmp_path / "missing.yaml")
    res = CliRunner().invoke(calibrate_app(), ["validate", "measured", "--profile", str(bad)])
    assert res.exit_code == 2 and res.output.strip().startswith("error:")
    res = CliRunner().invoke(calibrate_app(), ["calibrate", "--params", "compute_derate"])
    assert res.exit_code == 2 and "error: --params applies to --from-runs only" in res.output


def test_shared_fit_recovers_and_cross_validates() -> None:
    rng = np.random.default_rng(1)
    truth = {"compute_derate": 1.2, "layer_overhead_s": 2e-2}
    rows = []
    for i in range(10):
        a, layers = rng.uniform(0.05, 1.0), int(rng.integers(1, 9))

        def pred(p: dict, a: float = a, layers: int = layers) -> float:
            return p["compute_derate"] * a + layers * p["layer_overhead_s"]

        meas = pred({**truth}) * math.exp(rng.normal(0, 0.01))
        rows.append(Row(row_id=str(i), measured=meas, predict=pred))
    p = fit_params(rows, ("compute_derate", "layer_overhead_s"), prior_weight=0.0)
    assert p["compute_derate"] == pytest.approx(1.2, rel=0.03)
    assert p["layer_overhead_s"] == pytest.approx(2e-2, rel=0.1)
    res = fit_with_cv(rows, ("compute_derate", "layer_overhead_s"), prior_weight=0.0)
    assert res.cv is not None and res.cv["method"] == "leave-one-out" and res.cv["median_ape"] < 0.03
    assert res.baseline["median_ape"] > 0.1 > res.in_sample["median_ape"]
    assert 0 < res.uncertainty["compute_derate"] < 0.05


def test_probe_configurations_are_not_in_the_grid() -> None:
    from paraplan.calibrate.run import PROBE_INFER, PROBE_INFER_QUICK, PROBE_TRAIN, PROBE_TRAIN_QUICK
    from paraplan.validate import measured as M

    grid_t = set(M.TRAIN_GRID + M.TRAIN_QUICK) | {c for c in M.DDP_GRID + M.DDP_QUICK}
    grid_t1 = {(c.hidden, c.layers, c.seq, c.micro_batch) for c in grid_t}
    assert not {(c.hidden, c.layers, c.seq, c.micro_batch) for c in PROBE_TRAIN + PROBE_TRAIN_QUICK} & grid_t1
    grid_i = {(c.hidden, c.layers, c.batch, c.input_len) for c in M.INFER_GRID + M.INFER_QUICK}
    assert not {(c.hidden, c.layers, c.batch, c.input_len) for c in PROBE_INFER + PROBE_INFER_QUICK} & grid_i
    # the full grid covers what the issue asks for
    single = M.TRAIN_GRID
    assert len(single) >= 12 and len(M.DDP_GRID) >= 2 and len(M.INFER_GRID) >= 3
    assert {c.checkpoint for c in single} == {True, False}
    assert min(c.hidden for c in single) == 256 and max(c.hidden for c in single) == 1024
    assert min(c.layers for c in single) == 2 and max(c.layers for c in single) == 8
    assert min(c.seq for c in single) == 128 and max(c.seq for c in single) == 1024
    assert min(c.micro_batch for c in single) == 1 and max(c.micro_batch for c in single) == 8


# ------------------------------------------------------------------ from runs (shared data)
@pytest.mark.skipif(not DATA.is_file(), reason="../shared/data/train-measured.csv not present")
def test_from_runs_three_runs_predict_the_fourth_better(tmp_path: Path) -> None:
    """A user with a few runs of one cluster: leave-one-out predictions (each run predicted from the others)
    beat the catalog's parameters, and the CLI writes a profile that applies to that family."""
    import csv

    from paraplan.validate.train import read_rows

    rows = [r for r in read_rows(DATA) if r["source"].startswith("mosaicml") and "H100" in r["gpu_type"]][:4]
    assert len(rows) == 4
    runs = tmp_path / "runs.csv"
    with open(runs, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "runs.yaml"
    res = CliRunner().invoke(calibrate_app(), ["calibrate", "--from-runs", str(runs), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load(out.read_text())
    fit = doc["calibration"]["fit"]["hopper"]
    assert fit["n_rows"] == 4 and fit["fitted"] == ["compute_derate"]
    assert fit["cross_validation"]["method"] == "leave-one-out"
    assert fit["cross_validation"]["median_ape"] < fit["baseline"]["median_ape"]
    assert fit["uncertainty_se"]["compute_derate"] > 0
    prof = load_profile(out)
    assert prof.accelerator is None
    params = prof.training_params("hopper")
    assert params["compute_derate"] == fit["params"]["compute_derate"]
    with pytest.raises(CalibrationError, match="no training parameters for accelerator family 'ampere'"):
        prof.training_params("ampere")
    c, cal = prof.apply(get_cluster("h100-sxm:8"))
    assert cal == params
