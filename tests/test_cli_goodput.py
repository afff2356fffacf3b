import json

from typer.testing import CliRunner

from paraplan.cli import app

runner = CliRunner()
BASE = ["train", "-m", "llama-2-7b", "-c", "dgx-a100:64", "--tp", "2", "--gb", "256"]


def test_goodput_only_with_tokens():
    r = runner.invoke(app, BASE)
    assert r.exit_code == 0, r.output
    assert "Goodput" not in r.output
    r = runner.invoke(app, BASE + ["--tokens", "1T"])
    assert r.exit_code == 0, r.output
    assert "Goodput" in r.output and "expected failures" in r.output


def test_goodput_json_and_options():
    r = runner.invoke(app, BASE + ["--tokens", "1T", "--json", "-"])
    d = json.loads(r.output)
    assert "summary" in d and "time_to_train_s" in d  # existing fields unchanged
    g = d["goodput"]
    assert abs(sum(g["components_s"].values()) - g["wall_time_s"]) < 1e-6 * g["wall_time_s"]
    r2 = runner.invoke(app, BASE + ["--tokens", "1T", "--json", "-", "--mtbf-hours", "5000", "--restart-min", "60",
                                    "--checkpoint-every", "50", "--storage-gbs", "0.05"])
    g2 = json.loads(r2.output)["goodput"]
    assert g2["goodput"] < g["goodput"] and g2["checkpoint_interval_steps"] == 50
    r3 = runner.invoke(app, BASE + ["--tokens", "1T", "--json", "-", "--async-checkpoint", "--storage-gbs", "0.05"])
    g3 = json.loads(r3.output)["goodput"]
    assert g3["asynchronous"] and g3["checkpoint_stall_s"] <= g2["checkpoint_stall_s"]
