"""``paraplan plan train`` and the planner-backed parts of ``paraplan train`` (fixes, --explain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_helpers import assert_user_error
from paraplan.cli import app

runner = CliRunner()
PLAN = ["plan", "train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:1024", "--global-batch", "1536"]


def run(*args: str):
    return runner.invoke(app, list(args))




def test_plan_train_prints_the_answer_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = run(*PLAN, "--top", "5", "--tokens", "300B", "--json", str(out))
    assert r.exit_code == 0, r.output
    for text in ("Evaluated", "Top 5 plans by throughput", "Plan #1 breakdown", "Pareto frontier",
                 "Why the rest were rejected", "rule tp_in_scaleup_domain", "memory: activations"):
        assert text in r.stdout, text
    d = json.loads(out.read_text())
    assert d["n_evaluated"] > 10_000 and d["elapsed_s"] > 0 and d["n_feasible"] > 0
    assert len(d["top"]) == 5 and [p["rank"] for p in d["top"]] == [1, 2, 3, 4, 5]
    best = d["top"][0]
    assert best["fits"] and best["memory_bytes"] <= best["memory_capacity_bytes"]
    assert sum(best["time_components_s"].values()) == pytest.approx(best["step_time_s"], rel=1e-9)
    assert sum(best["memory_components_bytes"].values()) == pytest.approx(best["memory_bytes"], rel=1e-9)
    assert best["time_to_train_s"] == pytest.approx(300e9 / best["tokens_per_s"])
    tps = [p["tokens_per_s"] for p in d["top"]]
    assert tps == sorted(tps, reverse=True)
    assert d["pareto"] and d["rejected_by_rule"]["tp_in_scaleup_domain"]["count"] > 0
    assert sum(d["rejected_by_memory"].values()) == d["n_not_fitting"]


def test_planner_number_equals_paraplan_train_for_the_same_strategy() -> None:
    r = run(*PLAN, "--top", "3", "--json", "-")
    assert r.exit_code == 0, r.output
    for plan in json.loads(r.stdout)["top"]:
        s = plan["strategy"]
        args = ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:1024", "--tp", str(s["tp"]), "--pp",
                str(s["pp"]), "--dp", str(s["dp"]), "--cp", str(s["cp"]), "--ep", str(s["ep"]), "--vpp", str(s["vpp"]),
                "--schedule", s["schedule"], "--micro-batch", str(s["micro_batch"]), "--global-batch",
                str(s["global_batch"]), "--zero", str(s["zero"]), "--recompute", s["recompute"], "--precision",
                s["precision"], "--sp" if s["sp"] else "--no-sp", "--json", "-"]
        t = run(*args)
        assert t.exit_code == 0, t.output
        est = json.loads(t.stdout)
        assert est["step_time_s"] == pytest.approx(plan["step_time_s"], rel=1e-12)
        assert est["memory"]["total_bytes"] == pytest.approx(plan["memory_bytes"], rel=1e-12)


def test_plan_train_over_a_range_of_counts_and_cost() -> None:
    r = run("plan", "train", "-m", "llama-3-8b", "-c", "dgx-h100", "--gpus", "8..64:x2", "--gb", "256", "--seq",
            "8192", "--objective", "cost", "--allow", "fp8", "--top", "3", "--json", "-")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["gpus"] == [8, 16, 32, 64] and set(d["best_by_gpus"]) == {"8", "16", "32", "64"}
    assert d["precisions"] == ["bf16", "fp8"]
    usd = [p["usd_per_million_tokens"] for p in d["top"]]
    assert usd == sorted(usd)
    r = run("plan", "train", "-m", "llama-3-8b", "-c", "dgx-h100", "--gpus", "8..64:x2", "--gb", "256")
    assert r.exit_code == 0 and "Best plan per accelerator count" in r.stdout


def test_allow_fp8_on_an_accelerator_without_fp8_units_says_so() -> None:
    r = run("plan", "train", "-m", "gpt-3-1.3b", "-c", "dgx-a100", "--gb", "64", "--allow", "fp8,offload",
            "--json", "-")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["precisions"] == ["bf16"]
    assert any("fp8" in n for n in d["notes"]) and any("offload" in n for n in d["notes"])


@pytest.mark.parametrize("args,needle", [
    (["--gpus", "1000000"], "outside what paraplan models"),
    (["--gpus", "12"], "whole number"),
    (["--gpus", "2048..256"], "LO <= HI"),
    (["--gpus", "8..1000000"], "outside"),
    (["--allow", "fp6"], "--allow 'fp6'"),
    (["--top", "0"], "--top"),
])
def test_absurd_plan_inputs_are_clear_errors(args: list[str], needle: str) -> None:
    assert_user_error(run(*PLAN, *args), needle)


@pytest.mark.parametrize("gb,needle", [("0", "at least 1"), ("-5", "at least 1"), ("99999999999", "absurd")])
def test_absurd_global_batch_is_a_clear_error(gb: str, needle: str) -> None:
    assert_user_error(run("plan", "train", "-m", "gpt-3-175b", "-c", "dgx-a100", "--global-batch", gb), needle)


def test_nothing_fits_explains_and_points_to_a_feasible_plan() -> None:
    r = run("plan", "train", "-m", "gpt-3-175b", "-c", "dgx-a100", "--gb", "64")
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    for text in ("Nothing fits", "nearest miss", "Cheapest way to a feasible plan", "memory: optimizer_states"):
        assert text in r.stdout, text
    r = run("plan", "train", "-m", "gpt-3-175b", "-c", "dgx-a100", "--gb", "64", "--json", "-")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["top"] == [] and d["n_feasible"] == 0 and d["closest"]
    assert d["remedy"]["plan"]["fits"] and d["remedy"]["plan"]["n_accelerators"] > 8


def test_nothing_legal_names_the_rules() -> None:
    r = run("plan", "train", "-m", "gpt-3-175b", "-c", "dgx-a100:1024", "--gb", "1")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "No legal strategy" in r.stdout and "rule " in r.stdout


def test_train_that_does_not_fit_lists_the_cheapest_fixes() -> None:
    args = ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:64", "--tp", "8", "--pp", "8",
            "--micro-batch", "4", "--global-batch", "64"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "Cheapest fixes" in r.stdout and "Planner" in r.stdout
    d = json.loads(run(*args, "--json", "-").stdout)
    assert d["fits"] is False
    fixes = d["fixes"]["fixes"]
    assert fixes and all(f["fits"] for f in fixes)
    per_acc = [f["tokens_per_s"] / f["n_accelerators"] for f in fixes]
    assert per_acc == sorted(per_acc, reverse=True)


def test_train_explain_names_the_largest_loss_and_the_change() -> None:
    args = ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:1024", "--tp", "8", "--pp", "16",
            "--global-batch", "256", "--recompute", "full", "--explain"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "roofline" in r.stdout and "(largest loss)" in r.stdout and "Shrinks the pipeline bubble most" in r.stdout
    assert "Planner's best on 1024 accelerators" in r.stdout
    d = json.loads(run(*args, "--json", "-").stdout)
    ex = d["explain"]
    assert ex["largest_loss"] == "pipeline bubble"
    assert ex["roofline_s"] + sum(ex["losses_s"].values()) == pytest.approx(d["step_time_s"], rel=1e-9)
    assert ex["shrink_largest"]["loss_after_s"] < ex["losses_s"]["pipeline bubble"]
    assert ex["planner_best"]["tokens_per_s"] > d["tokens_per_s"]
    assert 0.0 < ex["rank"]["share_faster"] < 1.0 and ex["rank"]["n_feasible"] > 1
    assert "feasible strategies the planner prices on these accelerators are predicted faster" in r.stdout
    # a fitting plan without --explain carries no fixes or explanation
    plain = json.loads(run(*args[:-1], "--json", "-").stdout)
    assert "fixes" not in plain and "explain" not in plain


def test_plan_train_fix_restricts_the_search_and_says_so() -> None:
    args = ["plan", "train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:256", "--global-batch", "512",
            "--fix", "recompute=full", "--fix", "sp=off", "--fix", "tp=4,8", "--fix", "tp=8,16", "--top", "5"]
    d = json.loads(run(*args, "--json", "-").stdout)
    assert d["top"], d
    for p in d["top"]:
        st = p["strategy"]
        assert st["recompute"] == "full" and st["sp"] is False and st["tp"] == 8  # both --fix tp keep only 8
    assert any("search restricted (--fix): recompute in {full}; sp in {false}; tp in {8}" in n for n in d["notes"])
    free = json.loads(run(*args[:8], "--top", "5", "--json", "-").stdout)
    assert free["n_evaluated"] > d["n_evaluated"]
    assert free["top"][0]["tokens_per_s"] >= d["top"][0]["tokens_per_s"]


@pytest.mark.parametrize("fix,needle", [
    ("recomput=full", "did you mean 'recompute'"),
    ("recompute=most", "not one of none, selective, full"),
    ("sp=maybe", "not on/off"),
    ("tp=eight", "not a whole number"),
    ("tp", "FIELD=VALUE"),
])
def test_plan_train_bad_fix_is_one_error_line(fix: str, needle: str) -> None:
    r = run("plan", "train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:64", "--global-batch", "64", "--fix", fix)
    assert_user_error(r, needle)


def test_plan_train_fix_that_empties_the_space_is_one_error_line() -> None:
    r = run("plan", "train", "--model", "llama-3-8b", "--cluster", "dgx-h100:8", "--global-batch", "64",
            "--fix", "tp=16")
    assert_user_error(r, "--fix tp: none of 16", "it has: 1, 2, 4, 8")
    r = run("plan", "train", "--model", "llama-3-8b", "--cluster", "dgx-a100:8", "--global-batch", "64",
            "--fix", "precision=fp8")
    assert_user_error(r, "--fix precision: none of fp8")
    # a fixed precision the accelerator has is searched without --allow
    d = json.loads(run("plan", "train", "--model", "llama-3-8b", "--cluster", "dgx-h100:8", "--global-batch", "64",
                       "--fix", "precision=fp8", "--top", "3", "--json", "-").stdout)
    assert d["top"] and all(p["strategy"]["precision"] == "fp8" for p in d["top"])
