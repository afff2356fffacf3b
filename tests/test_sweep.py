"""``paraplan sweep``: the cross product of cells, each a full plan search, locally or on Ray."""

from __future__ import annotations

import builtins
import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paraplan import catalog
from paraplan.cli import app
from paraplan.errors import ConfigError
from paraplan.search import search
from paraplan.sweep import COLUMNS, SweepConfig, cells, load_config, run_sweep, write_results
from paraplan.train import Workload

runner = CliRunner()

SMALL = {"models": ["gpt-3-1.3b", "llama-2-7b"], "clusters": ["dgx-a100"], "global_batch": [64],
         "seq_len": 2048, "gpus": ["8..16:x2"], "top": 2, "tokens": "100B"}


def _write(tmp_path: Path, doc: dict, name: str = "sweep.yaml") -> Path:
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc))
    return p


def test_cells_are_the_cross_product_in_order() -> None:
    cfg = SweepConfig.model_validate({**SMALL, "seq_len": [1024, 2048], "global_batch": [32, 64]})
    cs = cells(cfg)
    assert len(cs) == 2 * 1 * 2 * 2 * 2
    assert [c["cell"] for c in cs] == list(range(len(cs)))
    assert (cs[0]["model"], cs[0]["global_batch"], cs[0]["seq_len"], cs[0]["gpus"]) == ("gpt-3-1.3b", 32, 1024, 8)
    assert cs[1]["gpus"] == 16 and cs[-1]["model"] == "llama-2-7b"


def test_local_sweep_rows_equal_single_searches() -> None:
    cfg = SweepConfig.model_validate(SMALL)
    rows = run_sweep(cfg)
    assert all(set(r) == set(COLUMNS) for r in rows)
    assert len(rows) == 4 * 2
    r = rows[0]
    res = search(catalog.get_model("gpt-3-1.3b"), catalog.get_cluster("dgx-a100", 8), 64,
                 Workload(seq_len=2048, tokens=1e11), top=2)
    assert r["feasible"] and r["rank"] == 1
    assert r["tokens_per_s"] == pytest.approx(res.best.tokens_per_s, rel=1e-12)
    assert (r["tp"], r["pp"], r["dp"]) == (res.best.strategy.tp, res.best.strategy.pp, res.best.strategy.dp)
    assert r["n_evaluated"] == res.n_evaluated
    assert r["time_to_train_s"] == pytest.approx(1e11 / r["tokens_per_s"])


def test_sweep_fix_restricts_every_cell_like_plan_train() -> None:
    cfg = SweepConfig.model_validate({**SMALL, "models": ["gpt-3-1.3b"], "fix": ["recompute=full", "tp=2"]})
    rows = run_sweep(cfg)
    assert rows and all(r["feasible"] and r["tp"] == 2 and r["recompute"] == "full" for r in rows)
    res = search(catalog.get_model("gpt-3-1.3b"), catalog.get_cluster("dgx-a100", 8), 64,
                 Workload(seq_len=2048, tokens=1e11), top=2, restrict={"recompute": ["full"], "tp": [2]})
    assert rows[0]["tokens_per_s"] == pytest.approx(res.best.tokens_per_s, rel=1e-12)


def test_a_cell_without_a_feasible_plan_is_a_row_with_the_reason() -> None:
    cfg = SweepConfig.model_validate({"models": "gpt-3-175b", "clusters": "dgx-a100", "global_batch": 64,
                                      "gpus": [8]})
    (row,) = run_sweep(cfg)
    assert row["feasible"] is False and row["rank"] is None and "nothing fits" in row["reason"]


@pytest.mark.parametrize("doc,needle", [
    ({"clusters": ["dgx-a100"], "global_batch": [64]}, "missing 'models'"),
    ({**SMALL, "models": ["no-such-model"]}, "unknown model"),
    ({**SMALL, "gpus": ["1000000"]}, "outside"),
    ({**SMALL, "global_batch": [0]}, "at least 1"),
    ({**SMALL, "objective": "speed"}, "objective"),
    ({**SMALL, "colour": "red"}, "colour"),
    ({**SMALL, "fix": ["recomput=full"]}, "did you mean 'recompute'"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path: Path, doc: dict, needle: str) -> None:
    r = runner.invoke(app, ["sweep", "--config", str(_write(tmp_path, doc)), "--out", str(tmp_path / "r.csv")])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr


def test_sweep_cli_writes_csv_and_parquet(tmp_path: Path) -> None:
    cfg = _write(tmp_path, SMALL)
    r = runner.invoke(app, ["sweep", "--config", str(cfg), "--out", str(tmp_path / "r.csv")])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and list(rows[0]) == list(COLUMNS)
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    r = runner.invoke(app, ["sweep", "--config", str(cfg), "--out", str(tmp_path / "r.parquet")])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(tmp_path / "r.parquet")
    assert list(df.columns) == list(COLUMNS) and len(df) == 8


def test_parquet_without_pyarrow_falls_back_to_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("no pyarrow here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    rows = run_sweep(SweepConfig.model_validate({**SMALL, "models": ["gpt-3-1.3b"], "gpus": [8]}))
    path, note = write_results(rows, tmp_path / "out.parquet")
    assert path == tmp_path / "out.csv" and path.is_file()
    assert note is not None and "pyarrow" in note and "out.csv" in note


def test_load_config_accepts_scalars_and_aliases(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"models": "gpt-3-1.3b", "clusters": "dgx-h100", "global_batches": 32,
                                        "seq_lens": [1024]}))
    assert cfg.models == ["gpt-3-1.3b"] and cfg.global_batch == [32] and cfg.seq_len == [1024]
    with pytest.raises(ConfigError, match="not valid YAML"):
        (tmp_path / "bad.yaml").write_text("models: [a\n")
        load_config(tmp_path / "bad.yaml")


@pytest.mark.slow
def test_ray_backend_equals_local_backend() -> None:
    """A small sweep on a local Ray (2 CPUs, no dashboard) gives the local backend's table."""
    ray = pytest.importorskip("ray")
    cfg = SweepConfig.model_validate(SMALL)
    local = run_sweep(cfg)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seen: list[int] = []
        remote = run_sweep(cfg, backend="ray", progress=lambda done, total: seen.append(done))
    finally:
        ray.shutdown()
    assert seen[-1] == len(cells(cfg))

    def strip(rows):
        return json.dumps([{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows], sort_keys=True)

    assert strip(remote) == strip(local)
