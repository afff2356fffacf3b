"""The serving commands: serve, simulate serve, plan serve, validate infer (outputs, JSON, one-line errors)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli_helpers import assert_user_error
from paraplan.cli_serve import register

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "infer-measured.csv"

app = typer.Typer()
plan = typer.Typer()
val = typer.Typer()
app.add_typer(plan, name="plan")
app.add_typer(val, name="validate")
register(app, plan, val)
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))




SERVE = ["serve", "-m", "llama-3.1-8b", "-c", "h100-sxm:1", "--batch", "8", "-i", "512", "-o", "128"]


def test_serve_prints_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    r = run(*SERVE, "--json", str(out))
    assert r.exit_code == 0, r.output
    for needle in ("TTFT", "TPOT", "Throughput", "Memory per accelerator", "kv_cache", "Assumptions"):
        assert needle in r.stdout
    doc = json.loads(out.read_text())
    s = doc["summary"]
    assert s["batch"] == 8 and s["ttft_s"] > 0 and s["tpot_s"] > 0 and s["fits"] is True
    assert sum(doc["prefill"]["components_s"].values()) == pytest.approx(doc["ttft_s"])
    assert sum(doc["memory"]["components_bytes"].values()) == pytest.approx(doc["memory"]["total_bytes"])


def test_serve_json_to_stdout_with_quantization_and_speculation() -> None:
    r = run(*SERVE, "--weight-bits", "4", "--group-size", "128", "--kv-bits", "8", "--spec-method", "lookup",
            "--draft-len", "4", "--mean-accepted", "2.5", "--json", "-")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["config"]["weight_bits"] == 4 and doc["speculative"]["speedup"] > 1.0


@pytest.mark.parametrize(("args", "needles"), [
    (["--batch", "100000"], ["batch 100000 does not fit"]),
    (["--weight-bits", "0.5"], ["weight_bits", "0.5"]),
    (["--kv-bits", "32"], ["kv_bits", "32"]),
    (["-i", "200000"], ["200128 tokens exceeds", "context"]),
    (["--tp", "3"], ["tp=3"]),
    (["--spec-method", "lookup"], ["acceptance_rate or mean_accepted"]),
])
def test_serve_bad_input_is_one_line(args: list[str], needles: list[str]) -> None:
    base = [a for a in SERVE]
    for flag in ("-i", "--batch"):
        if flag in args and flag in base:
            i = base.index(flag)
            del base[i:i + 2]
    assert_user_error(run(*base, *args), *needles)


def test_serve_unknown_model() -> None:
    assert_user_error(run("serve", "-m", "no-such-model", "-c", "h100-sxm"), "unknown model")


SIM = ["simulate", "serve", "-m", "llama-3.1-8b", "-c", "h100-sxm:2", "--rate", "10", "--requests", "400"]


def test_simulate_serve_json_and_trace(tmp_path: Path) -> None:
    out, tr = tmp_path / "s.json", tmp_path / "trace.json"
    r = run(*SIM, "--slo-ttft", "1", "--slo-tpot", "0.05", "--json", str(out), "--trace", str(tr),
            "--trace-iterations", "20")
    assert r.exit_code == 0, r.output
    assert "Latency" in r.stdout and "Goodput" in r.stdout
    doc = json.loads(out.read_text())
    c = doc["counts"]
    assert c["arrived"] == 400 == c["completed"] + c["rejected"] + c["running"] + c["queued"]
    assert doc["config"]["replicas"] == 2
    assert {"t", "kv_utilization", "queue"} <= set(doc["timeseries"])
    assert doc["goodput_requests_per_s"] is not None
    trace = json.loads(tr.read_text())
    assert 0 < len(trace["traceEvents"]) <= 40


def test_simulate_serve_trace_file_input(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arrival_time", "input_len", "output_len"])
        for i in range(50):
            w.writerow([i * 0.1, 100 + i, 20])
    r = run("simulate", "serve", "-m", "llama-3.1-8b", "-c", "h100-sxm", "--arrivals", str(p),
            "--scheduler", "sarathi", "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["completed"] == 50


def test_simulate_serve_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_time,input_len,output_len\n0,12,4\n1,twelve,4\n", encoding="utf-8")
    assert_user_error(run("simulate", "serve", "-m", "llama-3.1-8b", "-c", "h100-sxm", "--arrivals", str(bad)),
                      "line 3", "twelve")
    assert_user_error(run("simulate", "serve", "-m", "llama-3.1-8b", "-c", "h100-sxm", "--rate", "5"),
                      "exactly one of --requests and --duration")
    assert_user_error(run(*SIM, "--input-dist", "weird:1"), "unknown input length distribution")
    assert_user_error(run("simulate", "serve", "-m", "llama-3.1-8b", "-c", "h100-sxm", "--arrivals",
                          str(tmp_path / "missing.csv")), "file not found")
    r = run(*SIM[:-4], "--rate", "-3", "--requests", "10")
    assert r.exit_code == 2


def test_plan_serve_small(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    r = run("plan", "serve", "-m", "llama-3.1-8b", "--rate", "20", "--slo-ttft", "2", "--slo-tpot", "0.1",
            "--accelerators", "h100-sxm,l40s", "--tps", "1", "--requests", "150", "--json", str(out))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    best = doc["best"]
    assert best is not None and best["replicas"] >= 1 and best["max_rate_per_replica"] > 0
    assert best["usd_per_hour"] == min(c["usd_per_hour"] for c in doc["candidates"])
    assert best["replicas"] * best["max_rate_per_replica"] >= 20


def test_plan_serve_errors() -> None:
    assert_user_error(run("plan", "serve", "-m", "llama-3.1-8b", "--rate", "0", "--slo-ttft", "1",
                          "--slo-tpot", "0.1"), "rate")
    assert_user_error(run("plan", "serve", "-m", "llama-3.1-8b", "--rate", "1", "--slo-ttft", "1",
                          "--slo-tpot", "0.1", "--tps", "a,b"), "--tps")


@pytest.mark.skipif(not DATA.is_file(), reason="../shared/data/infer-measured.csv not present")
def test_validate_infer_contract_on_a_subset(tmp_path: Path) -> None:
    with DATA.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = reader.fieldnames
    keep = rows[:6] + rows[38:42] + rows[382:386] + rows[446:448]
    sub = tmp_path / "sub.csv"
    with sub.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(keep)
    out = tmp_path / "v.json"
    r = run("validate", "infer", "--data", str(sub), "--json", str(out))
    assert r.exit_code == 0, r.output
    assert "median APE" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["n_rows"] == len(keep) and doc["n_predicted"] >= 12
    for row in doc["rows"]:
        assert {"row_id", "metric", "measured", "predicted", "ape", "skipped"} <= set(row)
    r = run("validate", "infer", "--data", str(sub), "--max-median-ape", "0.0001")
    assert r.exit_code == 1
    assert_user_error(run("validate", "infer", "--data", str(tmp_path / "nope.csv")), "file not found")


def test_cli_choices_match_the_simulator() -> None:
    from paraplan.cli_serve import RouterName, SchedulerName
    from paraplan.sim.engine import ROUTERS, SCHEDULERS

    assert tuple(SchedulerName) == SCHEDULERS and tuple(RouterName) == ROUTERS


def test_cli_layer_choices_match_the_cost_model() -> None:
    from paraplan.cli_common import LayerName
    from paraplan.cost.efficiency import LAYERS

    assert tuple(LayerName) == LAYERS
