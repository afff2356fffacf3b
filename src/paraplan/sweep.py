"""Sweeps: the cross product models x clusters x global batches x sequence lengths x accelerator counts, each
cell a full plan search (:func:`paraplan.search.search`), run locally or on a Ray cluster.

A sweep file (YAML)::

    models: [gpt-3-175b, llama-3-70b]
    clusters: [dgx-a100, dgx-h100]
    global_batch: [1024, 2048]
    seq_len: [2048, 4096]
    gpus: [512, 1024, "2048..8192:x2"]    # counts or ranges; whole nodes of each cluster
    objective: throughput                   # throughput | cost | time-to-train
    framework: megatron
    allow: [fp8]
    fix: [recompute=selective, "tp=4,8"]   # optional: search only these values (plan train --fix)
    top: 1                                  # plans kept per cell
    tokens: 1T                              # optional: time and cost to train

Results are one row per (cell, rank) with the same columns for every row (a cell with no feasible plan gets
one row with ``feasible = False`` and the reason), in cell order whatever the backend, so the local and the
Ray backends give equal tables (``elapsed_s`` aside). ``to_dataframe`` needs pandas; Parquet needs pyarrow.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import _yaml, hf
from .errors import ConfigError, ParaplanError

#: most cells one sweep may have
MAX_CELLS = 100_000

COLUMNS: tuple[str, ...] = (
    "cell", "model", "cluster", "accelerator", "gpus", "global_batch", "seq_len", "framework", "objective", "rank",
    "feasible", "tp", "pp", "vpp", "dp", "cp", "ep", "sp", "micro_batch", "zero", "hsdp", "recompute", "schedule",
    "precision", "step_time_s", "tokens_per_s", "tokens_per_s_per_accelerator", "mfu", "memory_gb", "headroom_gb",
    "usd_per_million_tokens", "time_to_train_s", "cost_usd", "n_candidates", "n_evaluated", "n_feasible",
    "elapsed_s", "reason",
)


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]


class SweepConfig(BaseModel):
    """The sweep file: lists are crossed; scalars are lists of one."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    models: list[str] = Field(min_length=1)
    clusters: list[str] = Field(min_length=1)
    global_batch: list[int] = Field(min_length=1, alias="global_batches")
    seq_len: list[int] = Field(default=[2048], min_length=1, alias="seq_lens")
    gpus: list[int | str] = []  # empty: each cluster's own size
    objective: str = "throughput"
    framework: str = "megatron"
    allow: list[str] = []
    fix: list[str] = []  # FIELD=V[,V] as plan train --fix
    top: int = Field(default=1, ge=1, le=100)
    tokens: float | str | None = None
    optimizer: str = "adamw"
    layer: str = "curves"

    @field_validator("models", "clusters", "global_batch", "seq_len", "gpus", "allow", "fix", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> list[Any]:
        return _as_list(v)


def load_config(path: str | Path) -> SweepConfig:
    """Read a sweep file; :class:`ConfigError` with one line for anything wrong in it."""
    p = Path(path)
    doc = _yaml.read_user_file(p, ConfigError)
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: expected a mapping with models, clusters, global_batch, ...")
    for key in ("models", "clusters"):
        if key not in doc:
            raise ConfigError(f"{p}: missing '{key}'")
    if "global_batch" not in doc and "global_batches" not in doc:
        raise ConfigError(f"{p}: missing 'global_batch'")
    return SweepConfig.model_validate(doc)


def cells(config: SweepConfig) -> list[dict[str, Any]]:
    """The cells of the sweep, in order (model, cluster, global batch, sequence length, accelerator count).
    Names and ranges are checked here, so a bad sweep fails before any search runs."""
    from .catalog import get_cluster, get_model
    from .search import check_request, parse_gpus, search_options

    if config.objective not in ("throughput", "cost", "time-to-train"):
        raise ConfigError(f"objective '{config.objective}': expected throughput, cost or time-to-train")
    from .rules import get_framework

    get_framework(config.framework)
    names = []
    for m in config.models:  # catalog entries by their canonical name, files by their path
        try:
            names.append(get_model(m).name)
        except ParaplanError:
            hf.load_model(m)
            names.append(m)
    out: list[dict[str, Any]] = []
    for m_name in names:
        for c in config.clusters:
            cl = get_cluster(c)
            search_options(cl, config.allow, config.fix)  # an unknown --allow or a malformed --fix fails here
            counts: list[int] = []
            for g in config.gpus or [cl.n_accelerators]:
                counts += parse_gpus(str(g), cl.per_node)
            for gb in config.global_batch:
                for seq in config.seq_len:
                    check_request(gb, seq)
                    for n in sorted(set(counts)):
                        out.append({"cell": len(out), "model": m_name, "cluster": c, "gpus": n,
                                    "global_batch": gb, "seq_len": seq})
                        if len(out) > MAX_CELLS:
                            raise ConfigError(f"the sweep has more than {MAX_CELLS:,} cells; narrow it")
    return out


def _settings(config: SweepConfig) -> dict[str, Any]:
    from .cli import parse_count

    tokens = config.tokens
    if isinstance(tokens, str):
        try:
            tokens = parse_count(tokens)
        except Exception as exc:  # typer.BadParameter
            raise ConfigError(f"tokens: {exc}") from None
    return {"objective": config.objective, "framework": config.framework, "allow": list(config.allow),
            "top": config.top, "tokens": tokens, "optimizer": config.optimizer, "layer": config.layer,
            "fix": list(config.fix)}


def run_cell(cell: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One full plan search; rows with the :data:`COLUMNS` (pure: strings and numbers in, out)."""
    from .catalog import get_cluster
    from .search import allows_offload, search, search_options
    from .train import Workload

    base = {k: None for k in COLUMNS}
    base.update({k: cell[k] for k in ("cell", "gpus", "global_batch", "seq_len")})
    base.update(framework=settings["framework"], objective=settings["objective"], model=cell["model"],
                cluster=cell["cluster"])
    t0 = time.perf_counter()
    try:
        model = hf.load_model(cell["model"])
        cluster = get_cluster(cell["cluster"], cell["gpus"])
        precisions, _, across, restrict = search_options(cluster, settings["allow"], settings["fix"])
        res = search(model, cluster, cell["global_batch"], Workload(seq_len=cell["seq_len"], tokens=settings["tokens"]),
                     framework=settings["framework"], objective=settings["objective"], precisions=precisions,
                     optimizer=settings["optimizer"], top=settings["top"], layer=settings["layer"],
                     tp_across_nodes=True if across else None, offload=allows_offload(settings["allow"]),
                     restrict=restrict or None)
    except (ParaplanError, ValueError) as exc:
        return [{**base, "rank": None, "feasible": False, "reason": " ".join(str(exc).split()),
                 "elapsed_s": time.perf_counter() - t0}]
    base.update(accelerator=res.accelerator, n_candidates=res.n_candidates, n_evaluated=res.n_evaluated,
                n_feasible=res.n_feasible, elapsed_s=res.elapsed_s)
    if not res.top:
        worst = next(iter(res.rejected_by_rule), None)
        reason = ("no legal strategy (most broken rule: " + str(worst) + ")") if res.n_evaluated == 0 else \
            f"nothing fits in memory (largest component: {next(iter(res.rejected_by_memory), '?')})"
        return [{**base, "rank": None, "feasible": False, "reason": reason}]
    rows = []
    for i, pl in enumerate(res.top, 1):
        j = pl.to_json(res.price_per_hour, res.tokens)
        st = pl.strategy
        rows.append({**base, "rank": i, "feasible": True, "tp": st.tp, "pp": st.pp, "vpp": st.vpp, "dp": st.dp,
                     "cp": st.cp, "ep": st.ep, "sp": st.sp, "micro_batch": st.micro_batch, "zero": st.zero,
                     "hsdp": st.hsdp, "recompute": st.recompute, "schedule": st.schedule, "precision": st.precision,
                     "step_time_s": j["step_time_s"], "tokens_per_s": j["tokens_per_s"],
                     "tokens_per_s_per_accelerator": j["tokens_per_s_per_accelerator"], "mfu": j["mfu"],
                     "memory_gb": j["memory_bytes"] / 1e9, "headroom_gb": j["memory_headroom_bytes"] / 1e9,
                     "usd_per_million_tokens": j["usd_per_million_tokens"] if res.price_per_hour > 0 else None,
                     "time_to_train_s": j.get("time_to_train_s"),
                     "cost_usd": j.get("cost_usd") if res.price_per_hour > 0 else None})
    return rows


def _run_cell_remote(cell: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return run_cell(cell, settings)


def run_sweep(config: SweepConfig, *, backend: str = "local", address: str | None = None,
              num_cpus: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run every cell; rows in cell order. ``backend='ray'`` sends each cell to a Ray worker: an existing
    cluster at ``address`` (``ray://host:10001`` or ``auto``; paraplan must be installed on its nodes), else a
    local Ray started here with ``num_cpus`` (and shut down after)."""
    todo = cells(config)
    settings = _settings(config)
    done = 0
    results: list[list[dict[str, Any]]] = []
    if backend == "local":
        for c in todo:
            results.append(run_cell(c, settings))
            done += 1
            if progress:
                progress(done, len(todo))
    elif backend == "ray":
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'paraplan[ray]'") from None
        started = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=num_cpus, **kw)
            started = True
        try:
            remote = ray.remote(_run_cell_remote)
            refs = [remote.remote(c, settings) for c in todo]
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                done += len(ready)
                if progress:
                    progress(done, len(todo))
            results = ray.get(refs)
        finally:
            if started:
                ray.shutdown()
    else:
        raise ConfigError(f"--backend '{backend}': expected local or ray")
    return [row for rows in results for row in rows]


def to_dataframe(rows: Sequence[dict[str, Any]]) -> Any:
    """The rows as a pandas DataFrame with the :data:`COLUMNS` (pandas needed)."""
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError("pandas is needed for a DataFrame: pip install 'paraplan[sweep]'") from None
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


def write_results(rows: Sequence[dict[str, Any]], out: str | Path) -> tuple[Path, str | None]:
    """Write the rows to ``out`` (``.parquet`` or ``.csv``). Parquet without pyarrow (or pandas) falls back
    to CSV next to it; returns the path written and a note saying so."""
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    note = None
    if path.suffix.lower() == ".parquet":
        try:
            import pandas  # noqa: F401
            import pyarrow  # noqa: F401
        except ImportError:
            csv_path = path.with_suffix(".csv")
            note = (f"Parquet needs pandas and pyarrow (pip install 'paraplan[parquet]'); wrote CSV to {csv_path} "
                    "instead")
            path = csv_path
        else:
            to_dataframe(rows).to_parquet(path, index=False)
            return path, None
    elif path.suffix.lower() != ".csv":
        raise ConfigError(f"--out {out}: expected a .parquet or .csv file")
    try:
        import pandas  # noqa: F401
    except ImportError:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    else:
        to_dataframe(rows).to_csv(path, index=False)
    return path, note
