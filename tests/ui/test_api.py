"""The JSON API (same numbers as the Python API and the CLI), its errors and bounds, and the static reports."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paraplan import Strategy, Workload, estimate_training, get_cluster, get_model

GPT3 = {"model": "gpt-3-175b", "cluster": "dgx-a100:1024", "tp": 8, "pp": 16, "micro_batch": 1,
        "global_batch": 1536, "recompute": "full"}


def test_estimate_equals_python_api(client: Any) -> None:
    r = client.post("/api/train/estimate", json=GPT3)
    assert r.status_code == 200
    got = r.json()
    est = estimate_training(get_model("gpt-3-175b"), get_cluster("dgx-a100:1024"),
                            Strategy(tp=8, pp=16, dp=8, sp=True, micro_batch=1, global_batch=1536, recompute="full"),
                            Workload(seq_len=2048))
    assert got["step_time_s"] == est.step_time_s
    assert got["memory"]["total_bytes"] == est.memory.total_bytes
    assert got["time"]["components_s"] == est.time.components_s
    assert set(got["view"]["charts"]) == {"memory", "time", "timeline", "roofline", "sensitivity"}
    from paraplan.search import explain
    ex = explain(get_model("gpt-3-175b"), get_cluster("dgx-a100:1024"), est.strategy, Workload(seq_len=2048))
    assert got["explain"]["losses_s"] == pytest.approx(ex.to_json()["losses_s"])
    assert got["explain"]["rank"]["share_faster"] == ex.share_faster
    assert any(t["title"].startswith("Where the step goes") for t in got["view"]["tables"])
    from paraplan.sensitivity import sensitivity
    sens = sensitivity(get_model("gpt-3-175b"), get_cluster("dgx-a100:1024"), est.strategy, Workload(seq_len=2048))
    assert got["sensitivity"] == sens.to_json()
    assert got["view"]["summary"][3]["value"] == est.step_time_s
    band = next(x for x in got["view"]["summary"] if x["key"] == "error_band_pct")
    assert band["value"] == est.error_band_pct and "held out" in band["text"]


def test_estimate_equals_cli_json(client: Any, tmp_path: Path) -> None:
    from paraplan.cli import app

    out = tmp_path / "t.json"
    res = CliRunner().invoke(app, ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:1024", "--tp", "8",
                                   "--pp", "16", "--global-batch", "1536", "--recompute", "full", "--json", str(out)])
    assert res.exit_code == 0, res.output
    cli = json.loads(out.read_text())
    api = client.post("/api/train/estimate", json=GPT3).json()
    for k in ("step_time_s", "tokens_per_s", "mfu", "memory", "time", "assumptions", "summary"):
        assert api[k] == cli[k], k


def test_plan_equals_search(client: Any) -> None:
    from paraplan.search import search

    r = client.post("/api/train/plan", json={"model": "llama-3-8b", "cluster": "dgx-h100:64", "global_batch": 256,
                                             "top": 3})
    assert r.status_code == 200
    got = r.json()
    res = search(get_model("llama-3-8b"), get_cluster("dgx-h100:64"), 256, Workload(seq_len=2048), top=3)
    assert got["n_evaluated"] == res.n_evaluated
    assert [t["label"] for t in got["top"]] == [p.label() for p in res.top]
    assert got["top"][0]["tokens_per_s"] == res.top[0].tokens_per_s
    assert "pareto" in got["view"]["charts"]
    fixed = client.post("/api/train/plan", json={"model": "llama-3-8b", "cluster": "dgx-h100:64",
                                                 "global_batch": 256, "top": 3, "fix": ["recompute=full", "tp=2"]})
    assert fixed.status_code == 200
    assert all(t["strategy"]["tp"] == 2 and t["strategy"]["recompute"] == "full" for t in fixed.json()["top"])
    bad = client.post("/api/train/plan", json={"model": "llama-3-8b", "cluster": "dgx-h100:64",
                                               "global_batch": 256, "fix": ["recomput=full"]})
    assert bad.status_code == 422 and "did you mean 'recompute'" in bad.text


@pytest.mark.parametrize(("body", "needle"), [
    ({**GPT3, "tp": "eight"}, "tp: Input should be a valid integer"),
    ({**GPT3, "tp": 7}, "accelerator_count"),
    ({**GPT3, "model": "gpt-17"}, "unknown model"),
    ({**GPT3, "schedule": "dualpipe"}, "schedule"),
    ({**GPT3, "model_path": "/etc/passwd"}, "Extra inputs are not permitted"),
    ({"cluster": "dgx-a100"}, "give a model"),
])
def test_invalid_input_is_422_with_a_message(client: Any, body: dict[str, Any], needle: str) -> None:
    r = client.post("/api/train/estimate", json=body)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_search_bounds(client: Any) -> None:
    r = client.post("/api/train/plan", json={"model": "gpt-3-175b", "cluster": "dgx-a100", "global_batch": 1536,
                                             "gpus": "8..4096"})
    assert r.status_code == 503 and "bound" in r.json()["detail"]
    from paraplan.ui import service as S

    with pytest.raises(S.BoundExceeded, match="time bound"):
        S.train_plan(S.PlanRequest(model="gpt-3-175b", cluster="dgx-a100", global_batch=1536, gpus="1024"),
                     timeout_s=1e-4)


def test_upload_in_memory_and_capped(client: Any) -> None:
    cfg = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
           "max_position_embeddings": 8192}
    r = client.post("/api/upload/hf-config", files={"file": ("config.json", json.dumps(cfg).encode())})
    assert r.status_code == 200 and r.json()["n_layers"] == 16
    est = client.post("/api/train/estimate", json={"hf_config": r.json()["hf_config"], "cluster": "dgx-h100"})
    assert est.status_code == 200 and est.json()["step_time_s"] > 0
    big = client.post("/api/upload/hf-config", files={"file": ("config.json", b" " * 300_000)})
    assert big.status_code == 422 and "limit" in big.json()["detail"]
    bad = client.post("/api/upload/hf-config", files={"file": ("config.json", b"not json")})
    assert bad.status_code == 422 and "JSON" in bad.json()["detail"]


def test_serving_endpoints(client: Any) -> None:
    from paraplan import InferenceConfig, estimate_inference

    r = client.post("/api/serve/estimate", json={"model": "llama-3-8b", "cluster": "dgx-h100", "batch": 8})
    assert r.status_code == 200
    est = estimate_inference(get_model("llama-3-8b"), get_cluster("dgx-h100"), InferenceConfig(), batch=8,
                             input_len=1024, output_len=256)
    assert r.json()["ttft_s"] == est.ttft_s
    s = client.post("/api/serve/simulate", json={"model": "llama-3-8b", "cluster": "h100-sxm", "rate": 2,
                                                 "requests": 100, "rates": [1, 4]})
    assert s.status_code == 200 and [p["rate"] for p in s.json()["rate_sweep"]] == [1, 2, 4]
    assert "latency" in s.json()["view"]["charts"]
    # every result shows its error band like the CLI
    for res in (r.json(), s.json()):
        band = next(x for x in res["view"]["summary"] if x["key"] == "error_band_pct")
        assert band["value"] == res["error_band_pct"] and "engine kind 'trtllm'" in band["text"]
    trace = client.post("/api/serve/simulate", json={"model": "llama-3-8b", "cluster": "h100-sxm",
                                                     "arrivals": "/tmp/trace.csv"})
    assert trace.status_code == 422  # no file paths from a request


def test_pages_docs_static_cors(client: Any) -> None:
    for p in ("/training", "/serving", "/compare", "/claims", "/validation"):
        r = client.get(p)
        assert r.status_code == 200 and "/static/plotly.min.js" in r.text
        assert "cdn" not in r.text.lower()
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/openapi.json").json()["paths"]["/api/train/estimate"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/train/estimate" in docs.text and "cdn" not in docs.text.lower()
    r = client.options("/api/train/estimate", headers={"Origin": "http://elsewhere.example",
                                                        "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_compare_and_claims(client: Any) -> None:
    r = client.post("/api/train/compare", json={"plans": [GPT3, {**GPT3, "pp": 8, "vpp": 2}]})
    assert r.status_code == 200 and len(r.json()["estimates"]) == 2
    assert client.post("/api/train/compare", json={"plans": [GPT3]}).status_code == 422
    c = client.get("/api/claims")
    assert c.status_code == 200 and isinstance(c.json()["claims"], list)


# ---------------------------------------------------------------- static reports
def _cli(*args: str) -> Any:
    from paraplan.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("cmd", [
    ["train", "--model", "gpt-3-175b", "--cluster", "dgx-a100:1024", "--tp", "8", "--pp", "16",
     "--global-batch", "1536", "--recompute", "full"],
    ["plan", "train", "--model", "llama-3-8b", "--cluster", "dgx-h100:64", "--global-batch", "256", "--top", "3"],
    ["serve", "--model", "llama-3-8b", "--cluster", "dgx-h100", "--batch", "8"],
    ["simulate", "serve", "--model", "llama-3-8b", "--cluster", "h100-sxm", "--rate", "2", "--requests", "100"],
])
def test_report_from_each_cli_json(cmd: list[str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert _cli(*cmd, "--json", str(out)).exit_code == 0
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    res = _cli("report", "--json-in", str(out), "--html", str(html), "--png", str(png))
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert "Plotly.newPlot" in text and "<table>" in text
    assert not re.search(r"<script[^>]+src=", text)  # Plotly.js inlined: nothing loaded from the network
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_detects_kinds_and_rejects_others(tmp_path: Path) -> None:
    from paraplan.ui.views import detect_kind

    assert detect_kind({"claims": []}) == "claims"
    assert detect_kind({"rows": [], "median_ape": None, "n_rows": 0}) == "validate_train"
    assert detect_kind({"rows": [], "median_ape": None, "by_category": {}}) == "validate_infer"
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    res = _cli("report", "--json-in", str(bad), "--html", str(tmp_path / "x.html"))
    assert res.exit_code == 2 and "not a paraplan JSON result" in res.output
    assert _cli("report", "--json-in", str(bad)).exit_code == 2
    assert math.isfinite(1.0)


def test_train_estimate_accepts_offload_and_names_the_rule_it_breaks() -> None:
    from fastapi.testclient import TestClient

    from paraplan.ui.app import create_app

    client = TestClient(create_app())
    body = {"model": "gpt-3-175b", "cluster": "dgx-a100:64", "tp": 8, "zero": 3, "global_batch": 512,
            "recompute": "full", "framework": "deepspeed", "offload": "cpu", "offload_params": "nvme"}
    r = client.post("/api/train/estimate", json=body)
    assert r.status_code == 200
    doc = r.json()
    assert doc["host_memory_bytes"] > 0 and doc["nvme_bytes"] > 0 and doc["time"]["components_s"]["offload"] > 0
    bad = client.post("/api/train/estimate", json={**body, "framework": "megatron"})
    assert bad.status_code == 422 and "offload_supported" in bad.json()["detail"]


def test_png_stacks_horizontal_bars_like_plotly() -> None:
    """The matplotlib renderer stacks horizontal traces under barmode 'stack' (the roofline chart) instead of
    drawing them over each other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paraplan.ui.charts import roofline_figure
    from paraplan.ui.png import _draw

    ex = {"step_time_s": 10.0, "roofline_s": 4.0, "largest_loss": "recompute",
          "losses_s": {"recompute": 3.0, "pipeline bubble": 2.0, "exposed communication": 1.0}}
    fig, ax = plt.subplots()
    _draw(ax, roofline_figure(ex))
    spans = sorted((round(r.get_x(), 9), round(r.get_x() + r.get_width(), 9)) for r in ax.patches)
    plt.close(fig)
    assert spans == [(0.0, 4.0), (4.0, 7.0), (7.0, 9.0), (9.0, 10.0)]
