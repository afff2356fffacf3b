"""Sensitivity of a training estimate to its inputs (paraplan.sensitivity, `paraplan train --sensitivity`)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import paraplan
from paraplan import catalog
from paraplan.cli import app
from paraplan.sensitivity import FACTORS, sensitivity
from paraplan.strategy import Strategy
from paraplan.train import Workload, estimate_training


def run(*args: str):
    return CliRunner().invoke(app, list(args))


W = Workload(seq_len=2048)
GPT3 = catalog.get_model("gpt-3-175b")
A100_1024 = catalog.get_cluster("dgx-a100", 1024)
PTDP = Strategy(tp=8, pp=16, dp=8, micro_batch=1, global_batch=1536, sp=True, recompute="selective")


def test_every_input_is_ranked_and_worse_inputs_never_speed_the_step_up() -> None:
    s = sensitivity(GPT3, A100_1024, PTDP, W)
    changes = [r.step_change for r in s.rows]
    assert changes == sorted(changes, reverse=True)
    assert {r.factor for r in s.rows} == {f[0] for f in FACTORS}
    base = estimate_training(GPT3, A100_1024, PTDP, W).step_time_s
    assert s.step_time_s == pytest.approx(base)
    for r in s.rows:
        assert r.step_change >= -1e-9, r.factor
        assert r.step_time_s == pytest.approx(base * (1 + r.step_change))
        assert 1 + r.throughput_change == pytest.approx(1 / (1 + r.step_change))
    # a compute-bound 175B plan: the peak moves it most, by less than the 1/0.9 of a purely compute-bound step
    assert s.largest is not None and s.largest.factor == "compute_peak"
    assert 0.05 < s.largest.step_change < 1 / 0.9 - 1 + 1e-9
    # the moved components are those the input feeds
    by = {r.factor: r for r in s.rows}
    assert next(iter(by["scaleup_bandwidth"].components_s)) == "tp_comm"
    assert next(iter(by["memory_bandwidth"].components_s)) == "elementwise"
    assert by["host_bandwidth"].step_change == 0.0 and by["host_bandwidth"].components_s == {}  # no offload


def test_inputs_the_plan_does_not_use_move_nothing() -> None:
    one_node = catalog.get_cluster("dgx-h100", 8)
    s = sensitivity(catalog.get_model("llama-3-8b"), one_node, Strategy(dp=8, micro_batch=1, global_batch=64),
                    Workload(seq_len=4096))
    by = {r.factor: r for r in s.rows}
    assert by["scaleout_bandwidth"].step_change == 0.0  # nothing leaves the node
    assert by["scaleup_bandwidth"].step_change >= 0.0


def test_offload_makes_the_host_side_matter() -> None:
    m = catalog.get_model("llama-3-70b")
    c = catalog.get_cluster("dgx-h100", 8)
    plan = Strategy(dp=8, zero=3, micro_batch=1, global_batch=64, recompute="full", offload="cpu")
    s = sensitivity(m, c, plan, Workload(seq_len=4096), framework="deepspeed")
    host = next(r for r in s.rows if r.factor == "host_bandwidth")
    assert host.step_change > 0.0 and "offload" in host.components_s


def test_spec_layer_has_no_fitted_derates_and_a_bad_delta_is_refused() -> None:
    s = sensitivity(GPT3, A100_1024, PTDP, W, layer="spec")
    assert {r.factor for r in s.rows} == {f[0] for f in FACTORS if not f[3]}
    with pytest.raises(ValueError):
        sensitivity(GPT3, A100_1024, PTDP, W, delta=1.5)
    assert paraplan.training_sensitivity is sensitivity


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([0.05, 0.1, 0.2]), st.sampled_from([1, 2, 4]))
def test_a_larger_delta_moves_the_step_at_least_as_much(delta: float, mb: int) -> None:
    plan = PTDP.model_copy(update={"micro_batch": mb})
    small = {r.factor: r.step_change for r in sensitivity(GPT3, A100_1024, plan, W, delta=delta).rows}
    large = {r.factor: r.step_change for r in sensitivity(GPT3, A100_1024, plan, W, delta=delta * 2).rows}
    for f, v in small.items():
        assert large[f] >= v - 1e-12, f


def test_cli_sensitivity_table_and_json() -> None:
    args = ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:1024", "--tp", "8", "--pp", "16",
            "--global-batch", "1536", "--recompute", "selective", "--sensitivity"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "Sensitivity" in r.stdout and "Moves the estimate most" in r.stdout and "compute_peak" in r.stdout
    d = json.loads(run(*args, "--json", "-").stdout)
    sens = d["sensitivity"]
    assert sens["largest"] == "compute_peak" and sens["delta"] == 0.1
    assert {f["factor"] for f in sens["factors"]} == {f[0] for f in FACTORS}
    assert "sensitivity" not in json.loads(run(*args[:-1], "--json", "-").stdout)


def test_a_given_base_estimate_is_used_as_is() -> None:
    est = estimate_training(GPT3, A100_1024, PTDP, W)
    assert sensitivity(GPT3, A100_1024, PTDP, W, base=est).to_json() == sensitivity(GPT3, A100_1024, PTDP, W).to_json()
