"""The ``paraplan`` command line: outputs, JSON contracts, exit codes and one-line errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import assert_user_error
from paraplan import __version__
from paraplan.cli import app, parse_count

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TRAIN_CSV = SHARED_DATA / "train-measured.csv"

runner = CliRunner()

# gpt-3-1.3b: 24 layers, hidden 2048, 16 heads; one DGX A100 node (8 GPUs)
SMALL = ["train", "--model", "gpt-3-1.3b", "--cluster", "dgx-a100", "--micro-batch", "4",
         "--global-batch", "64"]


def run(*args: str):
    return runner.invoke(app, list(args))




# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize(("text", "value"), [("1e12", 1e12), ("300B", 3e11), ("2T", 2e12), ("1.5t", 1.5e12),
                                             ("500M", 5e8), ("1_000", 1e3)])
def test_parse_count(text: str, value: float) -> None:
    assert parse_count(text) == pytest.approx(value)


def test_version() -> None:
    r = run("version")
    assert r.exit_code == 0 and __version__ in r.stdout


# ------------------------------------------------------------------ train
def test_train_prints_tables_and_writes_consistent_json(tmp_path: Path) -> None:
    out = tmp_path / "est.json"
    r = run(*SMALL, "--tokens", "300B", "--json", str(out))
    assert r.exit_code == 0, r.output
    for text in ("Step time", "MFU", "Time per step", "Memory per accelerator", "Assumptions", "gemm",
                 "optimizer_states", "Time to train", "Provenance"):
        assert text in r.stdout, text
    data = json.loads(out.read_text())
    assert data["step_time_s"] > 0
    assert {"components_bytes", "total_bytes", "capacity_bytes", "fits"} <= set(data["memory"])
    comps = data["time"]["components_s"]
    assert math.isclose(sum(comps.values()), data["step_time_s"], rel_tol=1e-6)
    assert math.isclose(sum(data["memory"]["components_bytes"].values()), data["memory"]["total_bytes"],
                        rel_tol=1e-6)
    assert data["summary"]["step_time_s"] == data["step_time_s"]
    assert data["n_accelerators"] == 8 and data["strategy"]["dp"] == 8
    assert data["time_to_train_s"] == pytest.approx(3e11 / data["tokens_per_s"])
    assert any("dp=8" in a for a in data["assumptions"])


def test_train_json_to_stdout_is_pure_json() -> None:
    r = run(*SMALL, "--seq", "1024", "--json", "-")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["seq_len"] == 1024
    assert math.isclose(sum(data["time"]["components_s"].values()), data["step_time_s"], rel_tol=1e-6)


def test_train_defaults_global_batch_and_says_so() -> None:
    r = run("train", "--model", "gpt-3-1.3b", "--cluster", "a100-sxm-80gb", "--gpus", "16", "--tp", "2",
            "--json", "-")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    s = data["strategy"]
    assert (s["tp"], s["dp"], s["global_batch"], s["sp"]) == (2, 8, 8, True)
    assert any("global batch" in a for a in data["assumptions"])


def test_train_unknown_model_suggests_close_matches() -> None:
    r = run("train", "--model", "gpt-3-175", "--cluster", "dgx-a100")
    err = assert_user_error(r, "did you mean")
    assert "gpt-3-175b" in err


def test_train_unknown_gpu_suggests_close_matches() -> None:
    r = run("train", "--model", "gpt-3-1.3b", "--cluster", "h100-sxmm:16")
    err = assert_user_error(r, "did you mean")
    assert "h100" in err.lower()


def test_train_tp_not_dividing_heads_names_the_rule() -> None:
    # 16 heads, tp=3: 24 GPUs = 3 nodes of 8, dp = 8
    r = run("train", "--model", "gpt-3-1.3b", "--cluster", "dgx-a100:24", "--tp", "3")
    assert_user_error(r, "tp_divides_heads")


def test_train_wrong_accelerator_count_names_the_rule() -> None:
    r = run("train", "--model", "gpt-3-1.3b", "--cluster", "dgx-a100", "--tp", "2", "--dp", "3")
    assert_user_error(r, "accelerator_count")
    # dp left to default but n is not a multiple of tp*pp*cp
    r = run("train", "--model", "gpt-3-1.3b", "--cluster", "dgx-a100", "--tp", "3")
    assert_user_error(r, "accelerator_count")


def test_train_cluster_count_not_whole_nodes_is_a_user_error() -> None:
    r = run("train", "--model", "gpt-3-1.3b", "--cluster", "dgx-a100", "--gpus", "12")
    assert_user_error(r)


def test_train_missing_config_path_is_a_user_error(tmp_path: Path) -> None:
    r = run("train", "--model", str(tmp_path / "nope" / "config.json"), "--cluster", "dgx-a100")
    assert_user_error(r)


def test_train_from_hf_config(tmp_path: Path) -> None:
    pytest.importorskip("paraplan.hf")
    cfg = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 32000,
           "max_position_embeddings": 4096}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = run("train", "--model", str(tmp_path), "--cluster", "dgx-h100", "--tp", "2", "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["step_time_s"] > 0


def test_plan_that_does_not_fit_is_not_an_error() -> None:
    # 175B parameters with Adam on 8 GPUs: optimizer states alone are ~260 GB per GPU
    r = run("train", "--model", "gpt-3-175b", "--cluster", "dgx-a100", "--tp", "8", "--recompute", "full")
    assert r.exit_code == 0, r.output
    assert "NO" in r.stdout and "does NOT fit" in r.stdout
    assert "optimizer_states" in r.stdout
    r = run("train", "--model", "gpt-3-175b", "--cluster", "dgx-a100", "--tp", "8", "--recompute", "full",
            "--json", "-")
    data = json.loads(r.stdout)
    assert data["fits"] is False
    assert data["memory"]["overflow_component"] == "optimizer_states"
    assert data["memory"]["overflow_bytes"] > 0


def test_bad_choice_is_a_usage_error() -> None:
    r = run(*SMALL, "--schedule", "round-robin")
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_installed_script_reports_errors_without_traceback() -> None:
    exe = shutil.which("paraplan")
    cmd = [exe] if exe else [sys.executable, "-m", "paraplan.cli"]
    p = subprocess.run([*cmd, "train", "--model", "no-such-model", "--cluster", "dgx-h100"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("error: unknown model 'no-such-model'")
    assert "Traceback" not in p.stderr + p.stdout


# ------------------------------------------------------------------ catalog
@pytest.mark.parametrize(("kind", "needle"), [("models", "gpt-3-175b"), ("accelerators", "h100-sxm"),
                                              ("clusters", "dgx-h100")])
def test_catalog_listing(kind: str, needle: str) -> None:
    r = run("catalog", kind)
    assert r.exit_code == 0, r.output
    assert needle in r.stdout
    r = run("catalog", kind, "--json", "-")
    names = [e["name"] for e in json.loads(r.stdout)]
    assert needle in names


def test_catalog_detail_shows_source() -> None:
    r = run("catalog", "models", "GPT-3 175B")
    assert r.exit_code == 0 and "Brown et al." in r.stdout
    r = run("catalog", "accelerators", "H100", "--json", "-")
    assert json.loads(r.stdout)["name"] == "h100-sxm"
    r = run("catalog", "clusters", "dgx-a100:64", "--json", "-")
    assert json.loads(r.stdout)["n_accelerators"] == 64


def test_catalog_unknown_entry() -> None:
    assert_user_error(run("catalog", "accelerators", "h1000"), "did you mean")


# ------------------------------------------------------------------ validate
needs_data = pytest.mark.skipif(not TRAIN_CSV.is_file(), reason=f"{TRAIN_CSV} not available")


@needs_data
def test_validate_train_json_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the default data path is ../shared/data relative to the checkout
    out = tmp_path / "report.json"
    r = run("validate", "train", "--json", str(out))
    assert r.exit_code == 0, r.output
    assert "median APE" in r.stdout and "n_predicted" in r.stdout
    rep = json.loads(out.read_text())
    assert {"n_rows", "n_predicted", "median_ape", "p90_ape", "rows"} <= set(rep)
    assert rep["n_rows"] == len(rep["rows"]) > 0 and rep["n_predicted"] > 0
    for row in rep["rows"]:
        assert {"row_id", "metric", "measured", "predicted", "ape", "skipped"} <= set(row)
        assert (row["ape"] is None) or row["ape"] >= 0
    assert 0 <= rep["median_ape"] < 5  # a fraction, not a percentage


@needs_data
def test_validate_train_gate_fails_on_tiny_threshold() -> None:
    r = run("validate", "train", "--data", str(TRAIN_CSV), "--json", "-", "--max-median-ape", "0.0001")
    assert r.exit_code == 1
    assert "median_ape" in json.loads(r.stdout)


def test_validate_train_missing_data_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_user_error(run("validate", "train"), "--data")
    assert_user_error(run("validate", "train", "--data", str(tmp_path / "missing.csv")), "missing.csv")
