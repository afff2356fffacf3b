"""``paraplan testtime``: options priced by the serving estimator, budget choice, saturation, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paraplan.catalog import get_cluster, get_model
from paraplan.cli import app
from paraplan.errors import ConfigError
from paraplan.infer import InferenceConfig, estimate_inference
from paraplan.testtime import Curve, load_curves, parse_points, plan_testtime, price_option

CURVES = Path(__file__).resolve().parents[1] / "src/paraplan/catalog/testtime"
R = CliRunner()


def test_parse_points() -> None:
    assert parse_points("1:0.3, 32:53.3%") == ((1.0, 0.3), (32.0, pytest.approx(0.533)))
    with pytest.raises(ConfigError):
        parse_points("1-0.3")


def test_option_prices_come_from_estimate_inference() -> None:
    m, c = get_model("qwen3-0.6b"), get_cluster("h100-sxm:1")
    cv = Curve(strategy="best_of_n", x="samples", points=((1, 0.2), (8, 0.6)), tokens_per_sample=2000)
    o = price_option(m, c, InferenceConfig(), cv, 8, 100)
    est = estimate_inference(m, c, InferenceConfig(), batch=8, input_len=100, output_len=2000)
    assert o.latency_s == pytest.approx(est.e2e_s)
    assert o.accuracy == pytest.approx(0.6)


def test_budget_picks_most_accurate_feasible() -> None:
    curves, meta = load_curves(CURVES / "kinetics-qwen3-0.6b-aime24-q0.yaml")
    m, c = get_model("qwen3-0.6b"), get_cluster("h100-sxm:1")
    loose = plan_testtime(m, c, InferenceConfig(), curves, input_len=155)
    assert loose.best is not None and loose.best.x == 32
    tight = plan_testtime(m, c, InferenceConfig(), curves, input_len=155, latency_budget_s=60)
    assert tight.best is not None and tight.best.x < 32 and tight.best.latency_s <= 60
    none = plan_testtime(m, c, InferenceConfig(), curves, input_len=155, latency_budget_s=1)
    assert none.best is None
    assert loose.saturation["best_of_n"]["empirical_x"] == 16


def test_cli_table_and_json(tmp_path: Path) -> None:
    res = R.invoke(app, ["testtime", "-c", "h100-sxm:1", "--curve", str(CURVES / "kinetics-qwen3-0.6b-aime24-q0.yaml"),
                         "--latency-budget", "80"])
    assert res.exit_code == 0, res.output
    assert "Choice" in res.output and "Saturation" in res.output
    out = tmp_path / "tt.json"
    res = R.invoke(app, ["testtime", "-c", "h100-sxm:1", "-m", "qwen3-1.7b", "--points", "1:0.3,32:0.533",
                         "--strategy", "self_consistency", "--tokens-per-sample", "4000", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["best"]["strategy"] == "self_consistency" and doc["options"] and "ttspm_n_star" in \
        doc["saturation"]["self_consistency"]


def test_cli_long_reasoning_and_csv(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("strategy,x,value,accuracy\nlong_reasoning,tokens,1000,0.2\nlong_reasoning,tokens,4000,0.4\n")
    res = R.invoke(app, ["testtime", "-c", "h100-sxm:1", "-m", "qwen3-0.6b", "--curve", str(f), "--json", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["best"]["x"] == 4000


@pytest.mark.parametrize("args,msg", [
    (["--points", "1:0.3", "--tokens-per-sample", "100"], "--model"),
    (["-m", "qwen3-0.6b"], "exactly one"),
    (["-m", "qwen3-0.6b", "--points", "1:0.3"], "tokens_per_sample"),
    (["-m", "qwen3-0.6b", "--points", "4:0.3,2:0.5", "--tokens-per-sample", "10"], "increasing"),
])
def test_cli_errors(args: list[str], msg: str) -> None:
    res = R.invoke(app, ["testtime", "-c", "h100-sxm:1", *args])
    assert res.exit_code == 2
    assert msg in res.output
