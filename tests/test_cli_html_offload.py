"""--html on the result commands and --offload on train (the public CLI contract)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paraplan.cli import app

pytest.importorskip("plotly", reason="the ui extra is not installed")

TRAIN = ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:64", "--tp", "8", "--zero", "3",
         "--framework", "deepspeed", "--global-batch", "512", "--recompute", "full"]


def test_train_offload_flags_reach_the_estimate(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    res = CliRunner().invoke(app, [*TRAIN, "--offload", "cpu", "--offload-params", "nvme", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["strategy"]["offload"] == "cpu" and doc["strategy"]["offload_params"] == "nvme"
    assert doc["host_memory_bytes"] > 0 and doc["nvme_bytes"] > 0
    assert doc["time"]["components_s"]["offload"] > 0


def test_megatron_refuses_nvme_offload_with_the_rule_name() -> None:
    res = CliRunner().invoke(app, ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:64", "--tp", "8",
                                   "--global-batch", "512", "--offload", "nvme"])
    assert res.exit_code == 2 and "offload_supported" in res.output


@pytest.mark.parametrize("args", [
    TRAIN,
    ["plan", "train", "--model", "llama-3-8b", "--cluster", "dgx-h100:8", "--global-batch", "64", "--top", "3"],
    ["serve", "--model", "llama-3-8b", "--cluster", "h100-sxm:1", "--batch", "8"],
])
def test_html_report_is_written_and_self_contained(tmp_path: Path, args: list[str]) -> None:
    html = tmp_path / "r.html"
    res = CliRunner().invoke(app, [*args, "--html", str(html)])
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") or text.lower().startswith("<!doctype html>")
    low = text.lower()
    assert "plotly" in low
    assert not re.search(r"<script[^>]+src=", low)  # the Plotly bundle is inline
    assert '<script src="http' not in low and "<link rel=\"stylesheet\" href=\"http" not in low  # nothing fetched
