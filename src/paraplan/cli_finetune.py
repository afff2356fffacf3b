"""``paraplan finetune``: LoRA, QLoRA, adapters or full fine-tuning as a workload (paraplan.finetune)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import _console, _write_json, fmt_count, fmt_gb, fmt_time, handle_errors, memory_table, time_table


class MethodName(StrEnum):
    lora = "lora"
    qlora = "qlora"
    adapter = "adapter"
    full = "full"


def finetune_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog model name, or a HF config.json / folder.")],
    cluster: Annotated[str, typer.Option("--cluster", "-c", help="Preset, NAME:COUNT or an accelerator name.")],
    method: Annotated[MethodName, typer.Option("--method", help="lora, qlora, adapter or full.")] = MethodName.lora,
    rank: Annotated[int, typer.Option("--rank", "-r", min=1, help="LoRA rank.")] = 8,
    targets: Annotated[str, typer.Option("--targets", help="LoRA targets: q,k,v,o,qkv,up,gate,down or all.")]
    = "q,v",
    base_bits: Annotated[float | None, typer.Option("--base-bits", min=1.0, max=32.0,
                                                    help="Bits of the frozen base weights (16, 8, 4; qlora defaults "
                                                    "to 4).")] = None,
    adapter_size: Annotated[int, typer.Option("--adapter-size", min=1, help="Bottleneck of adapters.")] = 64,
    gpus: Annotated[int | None, typer.Option("--gpus", "-n", min=1, help="Rescale the cluster.")] = None,
    tp: Annotated[int, typer.Option("--tp", min=1)] = 1,
    pp: Annotated[int, typer.Option("--pp", min=1)] = 1,
    seq_len: Annotated[int, typer.Option("--seq", "--seq-len", min=1, help="Sequence length.")] = 2048,
    micro_batch: Annotated[int, typer.Option("--micro-batch", "--mb", min=1)] = 1,
    global_batch: Annotated[int | None, typer.Option("--global-batch", "--gb", min=1)] = None,
    recompute: Annotated[str, typer.Option("--recompute", help="none, selective or full.")] = "none",
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write JSON ('-' = stdout).")]
    = None,
) -> None:
    """Estimate one fine-tuning step: trainable parameters, time and memory breakdowns (frozen base: no base
    weight gradients or optimizer states), throughput and whether it fits."""
    from .cli import resolve_cluster, resolve_model
    from .errors import ConfigError
    from .finetune import FinetuneConfig, estimate_finetune
    from .strategy import Strategy

    m = resolve_model(model)
    c = resolve_cluster(cluster, gpus)
    n = c.n_accelerators
    if n % (tp * pp):
        raise ConfigError(f"{n} accelerators are not a multiple of tp*pp = {tp * pp}")
    dp = n // (tp * pp)
    gb = global_batch or dp * micro_batch
    meth = method.value
    bits = base_bits if base_bits is not None else (4.0 if meth == "qlora" else 16.0)
    cfg = FinetuneConfig(method=meth, rank=rank, targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
                         base_bits=bits, adapter_size=adapter_size)
    st = Strategy(tp=tp, pp=pp, dp=dp, micro_batch=micro_batch, global_batch=gb, recompute=recompute)  # type: ignore
    est = estimate_finetune(m, c, cfg, st, seq_len)
    if json_out is not None:
        payload: dict[str, Any] = est.model_dump(mode="json")
        payload["summary"] = est.summary()
        _write_json(payload, json_out)
        if json_out == "-":
            return
    con = _console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Model", escape(f"{est.model} ({est.total_params / 1e9:.1f}B params, {seq_len}-token sequences)"))
    grid.add_row("Cluster", escape(f"{est.cluster}: {est.n_accelerators} x {est.accelerator}"))
    what = {"lora": f"LoRA r={rank} on {','.join(cfg.targets)}", "qlora": f"QLoRA r={rank} on "
            f"{','.join(cfg.targets)}, base {cfg.effective_base_bits:.3g} bits", "adapter":
            f"adapters (bottleneck {adapter_size})", "full": "full fine-tuning"}[meth]
    if meth in ("lora", "adapter") and bits != 16.0:
        what += f", base {bits:g} bits"
    grid.add_row("Method", escape(what))
    grid.add_row("Strategy", f"tp={tp} pp={pp} dp={dp} | micro-batch {micro_batch}, global batch {gb} | "
                 f"recompute {recompute}")
    grid.add_row("Trainable", f"{fmt_count(est.trainable_params)} parameters ({est.trainable_fraction:.4%} of "
                 f"{fmt_count(est.total_params)}); checkpoint {fmt_gb(est.checkpoint_bytes)} GB")
    grid.add_row("Step time", f"{fmt_time(est.step_time_s)} (full fine-tuning: {fmt_time(est.full_step_time_s)}, "
                 f"{est.full_step_time_s / est.step_time_s:.2f}x)")
    grid.add_row("Throughput", f"{fmt_count(est.tokens_per_s)} tokens/s, "
                 f"{fmt_count(est.tokens_per_s_per_accelerator)} per accelerator")
    mem = est.memory
    grid.add_row("Memory", f"{fmt_gb(mem.total_bytes)} GB of {fmt_gb(mem.capacity_bytes)} GB per accelerator "
                 f"({'[green]fits[/green]' if est.fits else '[red bold]does NOT fit[/red bold]'}); model states "
                 f"{fmt_gb(est.model_states_bytes_total)} GB over all accelerators")
    con.print(grid)
    con.print()
    con.print(time_table(est.time.components_s, est.step_time_s))
    con.print(memory_table(mem.components_bytes, mem.total_bytes, mem.capacity_bytes, est.fits,
                           title="Memory per accelerator"))
    con.print("[bold]Assumptions[/bold]")
    for a in est.assumptions:
        con.print(f"  - {a}", markup=False)


def register(app: typer.Typer, plan_app: typer.Typer, validate_app: typer.Typer) -> None:
    app.command("finetune")(handle_errors(finetune_cmd))
