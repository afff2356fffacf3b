"""The inference estimator and the serving simulator against published numbers (../shared/data/infer-measured.csv).

Targets of issue 4: median APE <= 15 % over at least 80 % of the throughput, latency and speedup rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paraplan.validate.infer import (
    TARGET_METRICS,
    accepted_tokens,
    predict_row,
    read_rows,
    trtllm_bench_settings,
    validate_inference,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "infer-measured.csv"
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="../shared/data/infer-measured.csv not present")


@pytest.fixture(scope="module")
def report():
    return validate_inference(DATA)


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    return {r["row_id"]: r for r in read_rows(DATA)}


def test_validation_targets(report) -> None:
    st = report.stats()
    assert st["n_target_rows"] >= 400
    assert st["target_coverage"] >= 0.80, st
    assert st["target_median_ape"] <= 0.15, st
    assert st["median_ape"] <= 0.15


def test_report_json_contract(report) -> None:
    doc = report.to_json()
    assert {"n_rows", "n_predicted", "median_ape", "p90_ape", "rows"} <= set(doc)
    assert doc["n_rows"] == len(doc["rows"])
    for r in doc["rows"]:
        assert {"row_id", "metric", "measured", "predicted", "ape", "skipped"} <= set(r)
        assert (r["ape"] is None) == (r["predicted"] is None)
        if r["ape"] is None:
            assert r["skipped"]  # every unpredicted row says why


def test_every_category_is_predicted(report) -> None:
    cats = report.stats()["by_category"]
    for c in ("static", "max_load", "rate", "speculative"):
        assert cats[c]["n"] >= {"static": 150, "max_load": 130, "rate": 30, "speculative": 50}[c]


def test_static_and_max_load_rows_are_tight(report) -> None:
    cats = report.stats()["by_category"]
    assert cats["static"]["median_ape"] <= 0.15
    assert cats["max_load"]["median_ape"] <= 0.15


def test_target_metric_set_matches_the_file(rows) -> None:
    metrics = {r["metric"] for r in rows.values()}
    assert {"output_throughput", "output_throughput_total", "ttft", "normalized_latency",
            "speedup_vs_autoregressive", "throughput_per_gpu"} <= metrics & TARGET_METRICS


def test_trtllm_bench_heuristic_matches_its_rounding() -> None:
    """tensorrt_llm/bench/build/tuning.py: at least 64 sequences and 2048 tokens, rounded up to its steps."""
    from paraplan import catalog
    from paraplan.infer import InferenceConfig

    m = catalog.get_model("llama-3.1-70b")
    bs, tok = trtllm_bench_settings(m, catalog.get_cluster("h200-sxm:8"), InferenceConfig(tp=8, weight_bits=8,
                                                                                          act_bits=8, kv_bits=8),
                                    128, 128)
    assert bs == 4096 and tok == 8192
    bs, tok = trtllm_bench_settings(m, catalog.get_cluster("h200-sxm:1"), InferenceConfig(weight_bits=8, act_bits=8,
                                                                                          kv_bits=8), 20000, 2000)
    assert bs == 64 and tok == 2048


def test_speedup_rows_use_the_sources_accepted_tokens(rows) -> None:
    acc = accepted_tokens(list(rows.values()))
    assert len(acc) == 8 and all(1.0 < v < 5.0 for v in acc.values())
    eagle2 = next(r for r in rows.values() if "EAGLE2" in r["engine"] and r["metric"] == "speedup_vs_autoregressive")
    res = predict_row(eagle2, accepted=acc)
    assert res.ape is not None and res.config["tau"] == pytest.approx(4.36)
    res_no = predict_row(eagle2, accepted={})
    assert res_no.ape is None and "accepted tokens" in res_no.skipped


def test_fitted_layers_beat_the_spec_sheet() -> None:
    curves = validate_inference(DATA, categories={"static", "speculative"}).stats()
    spec = validate_inference(DATA, layer="spec", categories={"static", "speculative"}).stats()
    assert curves["median_ape"] < spec["median_ape"]
