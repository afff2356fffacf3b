import json

from typer.testing import CliRunner

from paraplan.cli import app

runner = CliRunner()


def test_finetune_table_and_json(tmp_path):
    r = runner.invoke(app, ["finetune", "-m", "llama-2-7b", "-c", "a100-sxm-80gb:1", "--method", "qlora",
                            "--rank", "16", "--targets", "q,k,v,o"])
    assert r.exit_code == 0, r.output
    assert "QLoRA" in r.output and "base_weights" in r.output and "dequantize" in r.output
    out = tmp_path / "ft.json"
    r = runner.invoke(app, ["finetune", "-m", "llama-2-7b", "-c", "a100-sxm-80gb:1", "--json", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["method"] == "lora" and d["trainable_params"] > 0
    assert abs(sum(d["time"]["components_s"].values()) - d["step_time_s"]) < 1e-9


def test_finetune_bad_target_is_one_line_error():
    r = runner.invoke(app, ["finetune", "-m", "llama-2-7b", "-c", "a100-sxm-80gb:1", "--targets", "zz"])
    assert r.exit_code == 2
