"""End-to-end: the web page in a real (Debian) Chromium, driven by Playwright.

Opens the Training page, picks a model and a cluster, runs an estimate and checks the numbers shown equal the
API's, that the charts drew data (SVG bars), follows the shared link, submits invalid input and sees the error;
then the plan, Serving, Compare, Claims and Validation pages. Screenshots go to docs/images/ when
PARAPLAN_SCREENSHOTS=1 (else to a temporary folder)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from paraplan.cli_common import fmt_time

pytestmark = pytest.mark.browser

GPT3 = {"model": "gpt-3-175b", "cluster": "dgx-a100:1024", "tp": 8, "pp": 16, "micro_batch": 1,
        "global_batch": 1536, "recompute": "full"}


@pytest.fixture()
def shots(images: Path, tmp_path: Path) -> Path:
    return images if os.environ.get("PARAPLAN_SCREENSHOTS") else tmp_path


def _fill(page: Any, values: dict[str, Any]) -> None:
    for k, v in values.items():
        loc = page.locator(f"#f-{k}")
        if loc.evaluate("e => e.tagName") == "SELECT":
            loc.select_option(str(v))
        else:
            loc.fill(str(v))


def _chart_has_data(page: Any, name: str) -> int:
    sel = f"#chart-{name}"
    page.locator(f"{sel} svg.main-svg").first.wait_for()
    return page.locator(f"{sel} .barlayer .point, {sel} .scatterlayer .point, {sel} .scatterlayer path.js-line").count()


def test_training_estimate_charts_link_and_error(page: Any, server: str, client: Any, shots: Path) -> None:
    api = client.post("/api/train/estimate", json=GPT3).json()
    page.goto(f"{server}/training")
    # the pickers are filled from the catalog
    page.wait_for_function("document.querySelectorAll('#dl-models option').length > 10")
    _fill(page, GPT3)
    page.click("#run")
    step = page.locator('#summary dd[data-key="step_time_s"]')
    step.wait_for()
    assert step.inner_text() == fmt_time(api["step_time_s"])
    assert math.isclose(float(step.get_attribute("data-value")), api["step_time_s"], rel_tol=1e-12)
    mfu = page.locator('#summary dd[data-key="mfu"]')
    assert math.isclose(float(mfu.get_attribute("data-value")), api["mfu"], rel_tol=1e-12)
    mem = page.locator('#summary dd[data-key="memory_gb"]')
    assert math.isclose(float(mem.get_attribute("data-value")), api["memory"]["total_bytes"] / 1e9, rel_tol=1e-12)
    # every time component row equals the API's
    rows = page.locator('table[data-table="0"] tbody tr')
    shown = {rows.nth(i).locator("td").nth(0).inner_text(): float(rows.nth(i).locator("td").nth(1)
                                                                   .get_attribute("data-value"))
             for i in range(rows.count())}
    for k, v in api["time"]["components_s"].items():
        if v:
            assert math.isclose(shown[k], v, rel_tol=1e-12)
    # charts drew data: stacked memory, time breakdown, the pipeline timeline (16 stages)
    assert _chart_has_data(page, "memory") >= 3
    assert _chart_has_data(page, "time") >= 5
    assert _chart_has_data(page, "timeline") >= 16
    assert _chart_has_data(page, "sensitivity") >= 5  # one bar per input the step depends on
    assert _chart_has_data(page, "roofline") >= 4  # the roofline and the losses that make up the step
    page.screenshot(path=str(shots / "training.png"), full_page=True)

    # the URL holds the whole query: a shared link reproduces the result
    link = page.url
    assert "model=gpt-3-175b" in link and "tp=8" in link
    other = page.context.new_page()
    other.goto(link)
    other.locator('#summary dd[data-key="step_time_s"]').wait_for()
    assert other.locator('#summary dd[data-key="step_time_s"]').inner_text() == fmt_time(api["step_time_s"])
    assert other.locator("#f-tp").input_value() == "8"
    other.close()

    # invalid input: the error is shown, no result
    _fill(page, {"tp": 7})
    page.click("#run")
    err = page.locator("#error")
    err.wait_for(state="visible")
    assert "accelerator_count" in err.inner_text()
    assert page.locator("#summary").count() == 0
    _fill(page, {"tp": "eight"})
    page.click("#run")
    page.wait_for_function("document.querySelector('#error').textContent.includes('tp: Input should be')")


def test_training_plan_pareto(page: Any, server: str, shots: Path) -> None:
    page.goto(f"{server}/training?mode=plan&model=llama-3-8b&cluster=dgx-h100:64&global_batch=256&top=5")
    page.locator('#summary dd[data-key="n_evaluated"]').wait_for()
    assert _chart_has_data(page, "pareto") >= 2
    assert int(page.locator('#summary dd[data-key="n_evaluated"]').get_attribute("data-value")) > 100
    page.screenshot(path=str(shots / "training-plan.png"), full_page=True)
    # --fix from the form (';' between fields, ',' between values): every listed plan keeps the fixed values
    page.goto(f"{server}/training?mode=plan&model=llama-3-8b&cluster=dgx-h100:64&global_batch=256&top=5"
              "&fix=recompute%3Dfull%3B%20tp%3D2%2C4")
    page.locator('#summary dd[data-key="n_evaluated"]').wait_for()
    assert "search restricted (--fix): recompute in {full}; tp in {2, 4}" in page.content()


def test_serving_compare_claims_validation(page: Any, server: str, shots: Path) -> None:
    page.goto(f"{server}/serving?mode=simulate&model=llama-3-8b&cluster=h100-sxm&replicas=1&rate=8"
              "&rates=2,4,16,24&requests=300")
    page.locator('#summary dd[data-key="requests"]').wait_for()
    assert _chart_has_data(page, "latency") >= 4
    page.screenshot(path=str(shots / "serving.png"), full_page=True)

    page.goto(f"{server}/compare")
    page.click("#run")
    page.locator("#chart-time svg.main-svg").first.wait_for()
    assert _chart_has_data(page, "time") >= 2
    page.screenshot(path=str(shots / "compare.png"), full_page=True)

    page.goto(f"{server}/claims")
    page.click("#run")
    page.locator('#summary dd[data-key="n"]').wait_for()
    page.screenshot(path=str(shots / "claims.png"), full_page=True)

    page.goto(f"{server}/validation?dataset=train&layer=curves")
    page.wait_for_function("document.querySelector('#summary') || !document.querySelector('#error').hidden")
    if page.locator("#summary").count():
        assert _chart_has_data(page, "scatter") >= 2
        page.screenshot(path=str(shots / "validation.png"), full_page=True)
    else:  # no measurements on this machine: the page says so
        assert "train-measured.csv" in page.locator("#error").inner_text()
