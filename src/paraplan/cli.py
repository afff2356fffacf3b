"""Command line interface: ``paraplan train | plan train | sweep | catalog | validate | version``.

The CLI only calls the public API and converts units at the edge (ms/s, GB, TFLOP/s). Every user
error (:class:`~paraplan.errors.ParaplanError`, a pydantic ``ValidationError`` from a bad flag combination,
a missing file) becomes one line ``error: ...`` on stderr and exit code 2, never a traceback. Heavy modules
are imported inside the commands so ``paraplan version`` and ``paraplan catalog`` start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .errors import ConfigError, InvalidStrategyError, ParaplanError
from .strategy import OFFLOAD_TIERS, OPTIMIZERS, PRECISIONS, RECOMPUTES, SCHEDULES

if TYPE_CHECKING:  # pragma: no cover
    from .specs import AcceleratorSpec, ClusterSpec, ModelSpec
    from .train import TrainingEstimate

app = typer.Typer(
    name="paraplan",
    help="Plan parallel LLM training before renting a GPU: memory, step time, MFU, cost, explained.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="List the built-in models, accelerators and clusters (or show one in detail).", no_args_is_help=True
)
validate_app = typer.Typer(help="Compare predictions with published measurements.", no_args_is_help=True)
plan_app = typer.Typer(
    help="Search every legal parallel strategy and rank the ones that fit (the planner).", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(validate_app, name="validate")
app.add_typer(plan_app, name="plan")

F = TypeVar("F", bound=Callable[..., Any])

#: where ``paraplan validate train`` looks for the measured runs when --data is not given (relative to cwd)
DEFAULT_TRAIN_DATA = ("../shared/data/train-measured.csv", "./shared/data/train-measured.csv")


# ===================================================================== plumbing (shared with the other CLI modules)
from .cli_common import (  # noqa: E402,F401  (re-exported: other modules use C.handle_errors etc.)
    LayerName,
    _console,
    _fail,
    _num_or_dash,
    _one_line,
    _write_json,
    choice_enum,
    error_band_text,
    fmt_count,
    fmt_gb,
    fmt_pct,
    fmt_time,
    handle_errors,
    memory_table,
    parse_count,
    time_table,
)


# ===================================================================== resolution
def resolve_model(name_or_path: str) -> ModelSpec:
    """A catalog model name, or a path to a Hugging Face ``config.json`` / folder / ModelSpec YAML."""
    from .hf import load_model

    return load_model(name_or_path)


def resolve_cluster(spec: str, gpus: int | None) -> ClusterSpec:
    from .catalog import get_cluster
    from .search import MAX_ACCELERATORS

    try:
        cluster = get_cluster(spec, gpus)
    except ParaplanError:
        raise
    except ValueError as exc:  # e.g. a count that is not a whole number of nodes
        raise ConfigError(f"cluster '{spec}': {exc}") from None
    if cluster.n_accelerators > MAX_ACCELERATORS:
        raise ConfigError(f"cluster '{spec}': {cluster.n_accelerators:,} accelerators is outside what paraplan "
                          f"models (at most {MAX_ACCELERATORS:,})")
    return cluster


# ===================================================================== train
Schedule = choice_enum("Schedule", SCHEDULES)
Recompute = choice_enum("Recompute", RECOMPUTES)
Precision = choice_enum("Precision", PRECISIONS)
Optimizer = choice_enum("Optimizer", OPTIMIZERS)
OffloadTier = choice_enum("OffloadTier", OFFLOAD_TIERS)
FrameworkName = choice_enum("FrameworkName", ("megatron", "fsdp", "deepspeed"))


def _val(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


def build_strategy(
    model: ModelSpec,
    cluster: ClusterSpec,
    *,
    tp: int,
    pp: int,
    dp: int | None,
    cp: int,
    ep: int,
    sp: bool | None,
    vpp: int,
    schedule: str | None,
    micro_batch: int,
    global_batch: int | None,
    zero: int | None,
    hsdp: bool,
    recompute: str,
    precision: str,
    optimizer: str,
    framework: str,
    offload: str = "none",
    offload_params: str = "none",
) -> tuple[Any, list[str]]:
    """The :class:`~paraplan.strategy.Strategy` the flags describe, plus the defaults it filled in."""
    from .strategy import RULES, Strategy

    notes: list[str] = []
    n = cluster.n_accelerators
    if dp is None:
        mp = tp * pp * cp
        if mp <= 0 or n % mp != 0:
            raise InvalidStrategyError(
                "accelerator_count",
                f"{RULES['accelerator_count']}: {n} accelerators is not divisible by tp*pp*cp = "
                f"{tp}*{pp}*{cp} = {mp}; pass --dp or change --gpus",
            )
        dp = n // mp
        notes.append(f"dp={dp} from {n} accelerators / (tp*pp*cp = {mp})")
    if global_batch is None:
        global_batch = dp * micro_batch
        notes.append(
            f"global batch = dp * micro_batch = {global_batch} sequences (no gradient accumulation; "
            "set --global-batch)"
        )
    if sp is None:
        sp = tp > 1
        if sp:
            notes.append("sequence parallelism on (default with tp > 1; --no-sp to turn off)")
    if schedule is None:
        schedule = "interleaved" if vpp > 1 else "1f1b"
        if vpp > 1:
            notes.append("interleaved schedule (vpp > 1)")
    if zero is None:
        zero = 3 if framework == "fsdp" and dp > 1 else 0
        if zero:
            notes.append("ZeRO-3 / FSDP FULL_SHARD (the fsdp default; set --zero)")
    strategy = Strategy(
        tp=tp,
        pp=pp,
        dp=dp,
        cp=cp,
        ep=ep,
        sp=sp,
        vpp=vpp,
        schedule=schedule,  # type: ignore[arg-type]
        micro_batch=micro_batch,
        global_batch=global_batch,
        zero=zero,
        hsdp=hsdp,
        recompute=recompute,
        precision=precision,
        optimizer=optimizer,
        offload=offload,
        offload_params=offload_params,
    )  # type: ignore[arg-type]
    return strategy, notes


def _emit(payload: dict[str, Any], json_out: str | None, html_out: str | None) -> bool:
    """Write ``payload`` as JSON (``--json``) and as an HTML report (``--html``); True when the JSON went to stdout
    (then nothing else is printed)."""
    if json_out is not None:
        _write_json(payload, json_out)
    if html_out is not None:
        from .cli_ui import write_report

        write_report(payload, html=html_out)
    return json_out == "-"


@app.command()
@handle_errors
def train(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Catalog model name, or a HF config.json / folder.")
    ],
    cluster: Annotated[
        str,
        typer.Option(
            "--cluster", "-c", help="Preset (dgx-h100), NAME:COUNT (h100-sxm:1024) or an accelerator name."
        ),
    ],
    gpus: Annotated[
        int | None, typer.Option("--gpus", "-n", min=1, help="Rescale the cluster to this many accelerators.")
    ] = None,
    tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor parallel size.")] = 1,
    pp: Annotated[int, typer.Option("--pp", min=1, help="Pipeline parallel size.")] = 1,
    dp: Annotated[
        int | None, typer.Option("--dp", min=1, help="Data parallel size (default: n / (tp*pp*cp)).")
    ] = None,
    cp: Annotated[int, typer.Option("--cp", min=1, help="Context parallel size.")] = 1,
    ep: Annotated[int, typer.Option("--ep", min=1, help="Expert parallel size (MoE).")] = 1,
    sp: Annotated[
        bool | None, typer.Option("--sp/--no-sp", help="Sequence parallelism (default: on when tp > 1).")
    ] = None,
    vpp: Annotated[
        int, typer.Option("--vpp", min=1, help="Virtual pipeline stages per rank (interleaved schedule).")
    ] = 1,
    schedule: Annotated[
        Schedule | None,
        typer.Option("--schedule", help="Pipeline schedule (default: 1f1b, interleaved when vpp > 1)."),
    ] = None,
    micro_batch: Annotated[
        int,
        typer.Option(
            "--micro-batch", "--mb", min=1, help="Sequences per micro-batch per data-parallel rank."
        ),
    ] = 1,
    global_batch: Annotated[
        int | None,
        typer.Option(
            "--global-batch", "--gb", min=1, help="Sequences per optimizer step (default: dp * micro-batch)."
        ),
    ] = None,
    zero: Annotated[
        int | None,
        typer.Option(
            "--zero", min=0, max=3, help="ZeRO stage 0-3 (default: 3 with --framework fsdp, else 0)."
        ),
    ] = None,
    hsdp: Annotated[
        bool, typer.Option("--hsdp", help="Shard within a scale-up domain, replicate across domains (HSDP).")
    ] = False,
    recompute: Annotated[
        Recompute, typer.Option("--recompute", help="Activation recomputation.")
    ] = Recompute.none,
    precision: Annotated[
        Precision, typer.Option("--precision", help="Training precision (mixed precision for 16/8-bit).")
    ] = Precision.bf16,
    optimizer: Annotated[Optimizer, typer.Option("--optimizer")] = Optimizer.adamw,
    offload: Annotated[
        OffloadTier,
        typer.Option("--offload", help="Optimizer states (and, from ZeRO-2, gradients) in host memory or on NVMe; "
                     "the optimizer step on the CPU (ZeRO-Offload / ZeRO-Infinity)."),
    ] = OffloadTier.none,
    offload_params: Annotated[
        OffloadTier,
        typer.Option("--offload-params", help="ZeRO-3 parameter shards in host memory or on NVMe (needs --zero 3)."),
    ] = OffloadTier.none,
    seq_len: Annotated[
        int, typer.Option("--seq-len", "--seq", min=1, help="Sequence length in tokens.")
    ] = 2048,
    tokens: Annotated[
        str | None,
        typer.Option("--tokens", help="Total training tokens, for time and cost to train (1e12, 300B, 2T)."),
    ] = None,
    framework: Annotated[
        FrameworkName, typer.Option("--framework", help="Framework whose overlap rules and defaults apply.")
    ] = FrameworkName.megatron,
    layer: Annotated[
        LayerName,
        typer.Option("--layer", help="spec: spec-sheet peaks only; curves: plus fitted efficiency curves."),
    ] = LayerName.curves,
    json_out: Annotated[
        str | None, typer.Option("--json", metavar="FILE", help="Write the estimate as JSON ('-' = stdout).")
    ] = None,
    html_out: Annotated[
        str | None, typer.Option("--html", metavar="FILE", help="Write a self-contained HTML report (ui extra).")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Name the largest loss against the roofline and the strategy change that shrinks it most; "
            "compare with the planner's best on the same accelerators.",
        ),
    ] = False,
    sensitivity_: Annotated[
        bool,
        typer.Option(
            "--sensitivity",
            help="Rank the inputs (peak FLOP/s, memory, link and host bandwidths, fitted derates) by how much the "
            "step time grows when each is 10% worse.",
        ),
    ] = False,
    calibration_file: Annotated[
        str | None,
        typer.Option("--calibration", metavar="PROFILE",
                     help="A profile from `paraplan calibrate` (this machine, or --from-runs) to apply."),
    ] = None,
    mtbf_hours: Annotated[
        float | None,
        typer.Option("--mtbf-hours", min=0.001, help="With --tokens: mean hours between failures PER ACCELERATOR "
                     "(the job's MTBF is this / accelerators; default from Llama 3's 16K-GPU run, "
                     "catalog/rules/resilience.yaml)."),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option("--checkpoint-every", min=1, help="With --tokens: steps between checkpoints "
                     "(default: Young/Daly optimum)."),
    ] = None,
    storage_gbs: Annotated[
        float | None,
        typer.Option("--storage-gbs", min=1e-6, help="With --tokens: checkpoint write bandwidth, GB/s PER "
                     "ACCELERATOR (the job's share of storage; default 0.122, Llama 3's 2 TB/s over 16K GPUs)."),
    ] = None,
    async_checkpoint: Annotated[
        bool, typer.Option("--async-checkpoint", help="With --tokens: lazy asynchronous checkpoints "
                           "(DataStates-LLM style) instead of synchronous saves."),
    ] = False,
    restart_min: Annotated[
        float | None,
        typer.Option("--restart-min", min=0.0, help="With --tokens: minutes from a failure to training again "
                     "(detection + restart + reload; default 10 + 20)."),
    ] = None,
) -> None:
    """Estimate one training step: time and memory breakdown, throughput, MFU, fit, time and cost to train.

    A plan that does not fit lists the cheapest fixes, ranked by predicted throughput after the fix. With --tokens,
    also the goodput with failures and checkpoints (--mtbf-hours, --checkpoint-every, --storage-gbs,
    --async-checkpoint, --restart-min)."""
    n_tokens = parse_count(tokens) if tokens is not None else None
    schedule_, recompute_, precision_ = _val(schedule), _val(recompute), _val(precision)
    optimizer_, framework_, layer_ = _val(optimizer), _val(framework), _val(layer)
    m = resolve_model(model)
    c = resolve_cluster(cluster, gpus)
    strategy, notes = build_strategy(
        m,
        c,
        tp=tp,
        pp=pp,
        dp=dp,
        cp=cp,
        ep=ep,
        sp=sp,
        vpp=vpp,
        schedule=schedule_,
        micro_batch=micro_batch,
        global_batch=global_batch,
        zero=zero,
        hsdp=hsdp,
        recompute=recompute_,
        precision=precision_,
        optimizer=optimizer_,
        framework=framework_,
        offload=_val(offload),
        offload_params=_val(offload_params),
    )
    from .rules import get_framework

    fw = get_framework(framework_)
    if strategy.zero not in fw.zero_stages:
        notes.append(f"framework '{fw.name}' does not offer ZeRO stage {strategy.zero}; priced anyway")
    if strategy.schedule not in fw.schedules:
        notes.append(f"framework '{fw.name}' does not offer the {strategy.schedule} schedule; priced anyway")
    from .train import Workload, estimate_training

    workload = Workload(seq_len=seq_len, tokens=n_tokens)
    calibration, calibration_source = None, None
    if calibration_file is not None:
        from .calibrate.profile import load_profile

        profile = load_profile(calibration_file)
        c, calibration = profile.apply(c)
        calibration_source = profile.describe()
    est = estimate_training(m, c, strategy, workload, framework=framework_, layer=layer_, calibration=calibration,
                            calibration_source=calibration_source)
    est = est.model_copy(update={"assumptions": notes + list(est.assumptions)})
    from . import search as S

    fixes = None if est.fits else S.cheapest_fixes(m, c, strategy, workload, fw, layer=layer_)
    why = S.explain(m, c, strategy, workload, fw, layer=layer_) if explain else None
    sens = None
    if sensitivity_:
        from .sensitivity import sensitivity

        sens = sensitivity(m, c, strategy, workload, framework=framework_, layer=layer_, calibration=calibration,
                           base=est)
    gp = None
    if n_tokens is not None:
        from .techniques.resilience import training_goodput

        gp = training_goodput(est, m, n_tokens, mtbf_hours_per_accelerator=mtbf_hours,
                              checkpoint_every_steps=checkpoint_every, storage_gbs_per_accelerator=storage_gbs,
                              asynchronous=async_checkpoint, restart_minutes=restart_min)
    if json_out is not None or html_out is not None:
        payload = est.model_dump(mode="json")
        payload["summary"] = est.summary()
        if gp is not None:
            payload["goodput"] = gp.model_dump(mode="json")
        if fixes is not None:
            payload["fixes"] = fixes.to_json()
        if why is not None:
            payload["explain"] = why.to_json()
        if sens is not None:
            payload["sensitivity"] = sens.to_json()
        if _emit(payload, json_out, html_out):
            return
    print_training(est, m, c, goodput=gp)
    if fixes is not None:
        print_fixes(fixes, est)
    if why is not None:
        print_explanation(why, est)
    if sens is not None:
        print_sensitivity(sens)


def print_sensitivity(sens: Any) -> None:
    """Inputs ranked by how much the step grows when each is made worse (paraplan.sensitivity)."""
    con = _console()
    con.print()
    t = Table(title=f"Sensitivity: each input {sens.delta:.0%} worse (peaks and bandwidths x{1 - sens.delta:g}, "
              f"derates x{1 + sens.delta:g})")
    for col, just in (("input", "left"), ("step", "right"), ("tokens/s", "right"), ("moves most", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in sens.rows:
        moved = ", ".join(f"{k} {v:+.3g} s" for k, v in list(r.components_s.items())[:2]) or "nothing"
        t.add_row(r.factor, f"{r.step_change:+.1%}", f"{r.throughput_change:+.1%}", escape(moved))
    con.print(t)
    if sens.largest is not None:
        con.print(f"[bold]Moves the estimate most[/bold]: {escape(sens.largest.factor)} "
                  f"({escape(sens.largest.description)}).")


def _change_row(t: Table, label: str, tokens_per_s: float, n: int, base_tps: float, base_n: int, step_s: float,
                mem: float, cap: float) -> None:
    per, base_per = tokens_per_s / n, base_tps / base_n
    gain = f"{per / base_per - 1.0:+.1%}" if base_per else "-"
    t.add_row(escape(label), fmt_count(tokens_per_s), fmt_count(per), gain, fmt_time(step_s),
              f"{fmt_gb(mem)} / {fmt_gb(cap)}")


def print_fixes(fixes: Any, est: TrainingEstimate) -> None:
    """The cheapest ways to make a plan that does not fit fit (paraplan.search.cheapest_fixes)."""
    con = _console()
    con.print()
    if fixes.fixes:
        t = Table(title=f"Cheapest fixes: {fmt_gb(fixes.overflow_bytes)} GB over, largest component "
                  f"'{fixes.overflow_component}' (ranked by predicted throughput per accelerator after the fix)")
        for col, just in (("change", "left"), ("tokens/s", "right"), ("per accel", "right"), ("vs as given", "right"),
                          ("step", "right"), ("memory GB", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for f in fixes.fixes:
            v = f.values
            _change_row(t, f.label, v["tokens_per_s"], f.n_accelerators, est.tokens_per_s, est.n_accelerators,
                        v["step_time_s"], v["memory_bytes"], v["memory_capacity_bytes"])
        con.print(t)
    else:
        con.print("[bold]No single change makes this plan fit[/bold] (more TP/PP, recompute, ZeRO, a smaller "
                  "micro-batch, FP8, more accelerators were tried).")
    if fixes.best_plan is not None:
        b = fixes.best_plan
        con.print(f"[bold]Planner[/bold] ({escape(fixes.best_plan_note)}): {escape(b.label())} on "
                  f"{b.n_accelerators} accelerators: {fmt_count(b.tokens_per_s)} tokens/s, "
                  f"{fmt_gb(b.memory_bytes)} GB")
    elif fixes.best_plan_note:
        con.print(f"[bold]Planner[/bold]: {escape(fixes.best_plan_note)}")
    for n in fixes.notes:
        con.print(f"  - {n}", markup=False)


def print_explanation(why: Any, est: TrainingEstimate) -> None:
    """Losses against the roofline and the changes that shrink them (paraplan.search.explain)."""
    con = _console()
    con.print()
    t = Table(title=f"Where the step goes against the roofline ({fmt_time(why.roofline_s)} of model FLOPs at "
              "peak; rows sum to the step)", show_footer=True)
    t.add_column("part", footer="step")
    t.add_column("s", justify="right", footer=f"{why.step_time_s:.3f}")
    t.add_column("% of step", justify="right", footer="100.0%")
    t.add_row("roofline (model FLOPs at peak)", f"{why.roofline_s:.3f}", fmt_pct(why.roofline_s / why.step_time_s))
    for k, v in sorted(why.losses.items(), key=lambda kv: -kv[1]):
        t.add_row(k + (" (largest loss)" if k == why.largest else ""), f"{v:.3f}", fmt_pct(v / why.step_time_s))
    con.print(t)
    if why.shrink is not None:
        v = why.shrink.values
        con.print(f"[bold]Shrinks the {escape(why.largest)} most[/bold]: {escape(why.shrink.label)}: "
                  f"{why.losses[why.largest]:.3f} s -> {why.shrink_loss_s:.3f} s; step {fmt_time(why.step_time_s)} "
                  f"-> {fmt_time(v['step_time_s'])} ({v['tokens_per_s'] / est.tokens_per_s - 1.0:+.1%} tokens/s)")
    else:
        con.print(f"No single change that still fits shrinks the {escape(why.largest)}.")
    if why.best_change is not None and why.best_change is not why.shrink:
        v = why.best_change.values
        con.print(f"[bold]Best single change[/bold]: {escape(why.best_change.label)}: "
                  f"{v['tokens_per_s'] / est.tokens_per_s - 1.0:+.1%} tokens/s")
    if why.planner_best is not None:
        b = why.planner_best
        parts = ", ".join(f"{k} {d:+.3f} s" for k, d in list(why.planner_diff.items())[:5])
        con.print(f"[bold]Planner's best on {b.n_accelerators} accelerators[/bold]: {escape(b.label())}: "
                  f"{b.tokens_per_s / est.tokens_per_s:.2f}x the tokens/s; where it gains: {escape(parts)}")
    elif why.n_feasible == 0:
        con.print("[bold]Planner[/bold]: no strategy fits on these accelerators (the cheapest fixes above add "
                  "accelerators or memory savings).")
    else:
        con.print("[bold]Planner[/bold]: no feasible strategy on these accelerators is predicted faster.")
    if why.share_faster is not None:
        con.print(f"[bold]Rank[/bold]: {fmt_pct(why.share_faster)} of the {why.n_feasible:,} feasible strategies "
                  f"the planner prices on these accelerators are predicted faster.")


def print_training(est: TrainingEstimate, model: ModelSpec, cluster: ClusterSpec, goodput: Any = None) -> None:
    con = _console()
    s = est.strategy
    acc = cluster.accelerator
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "Model",
        f"{escape(est.model)} ({model.n_params() / 1e9:.1f}B params, {model.n_layers} layers, "
        f"hidden {model.hidden}, {est.seq_len}-token sequences)",
    )
    grid.add_row(
        "Cluster",
        escape(
            f"{est.cluster}: {est.n_accelerators} x {est.accelerator} "
            f"({cluster.n_nodes} node(s) of {cluster.per_node}; {cluster.scaleup.name or 'scale-up'} "
            f"{cluster.scaleup.bw / 1e9:.0f} GB/s, {cluster.scaleout.name or 'scale-out'} "
            f"{cluster.scaleout.bw / 1e9:.1f} GB/s per accelerator)"
        ),
    )
    strat = (
        f"tp={s.tp} pp={s.pp} dp={s.dp} cp={s.cp} ep={s.ep} sp={'on' if s.sp else 'off'}"
        + (f" vpp={s.vpp}" if s.vpp > 1 else "")
        + f" | {s.schedule} | micro-batch {s.micro_batch}, global batch {s.global_batch} "
        f"({est.n_micro_batches} micro-batches/step) | ZeRO-{s.zero}{' HSDP' if s.hsdp else ''} | "
        f"recompute {s.recompute} | {s.precision} | {s.optimizer} | {est.framework}"
    )
    grid.add_row("Strategy", strat)
    grid.add_row("Step time", fmt_time(est.step_time_s))
    grid.add_row(
        "Throughput",
        f"{fmt_count(est.tokens_per_s)} tokens/s total, "
        f"{fmt_count(est.tokens_per_s_per_accelerator)} tokens/s per accelerator",
    )
    grid.add_row(
        "Model TFLOP/s",
        f"{est.model_tflops_per_accelerator:.1f} per accelerator "
        f"(peak {acc.peak(s.precision) / 1e12:.0f} {s.precision})",
    )
    grid.add_row("MFU / HFU", f"{fmt_pct(est.mfu)} / {fmt_pct(est.hfu)}")
    mem = est.memory
    used = (
        f"{fmt_gb(mem.total_bytes)} GB of {fmt_gb(mem.capacity_bytes)} GB per accelerator "
        f"({fmt_pct(mem.total_bytes / mem.capacity_bytes) if mem.capacity_bytes else 'n/a'})"
    )
    grid.add_row("Memory", used)
    if est.fits:
        grid.add_row("Fits", "[green]yes[/green]")
    else:
        comp = mem.overflow_component or max(mem.components_bytes, key=lambda k: mem.components_bytes[k])
        grid.add_row(
            "Fits",
            f"[red bold]NO[/red bold]: {fmt_gb(mem.overflow_bytes)} GB over capacity; largest "
            f"component '{comp}' = {fmt_gb(mem.components_bytes.get(comp, 0.0))} GB "
            "(cheapest fixes below)",
        )
    if est.time_to_train_s is not None:
        grid.add_row(
            "Time to train",
            f"{fmt_time(est.time_to_train_s)} for {fmt_count(est.time_to_train_s * est.tokens_per_s)} tokens "
            f"({fmt_count(est.time_to_train_s / 3600 * est.n_accelerators)} accelerator-hours)",
        )
        if est.cost_usd is not None:
            grid.add_row("Cost", f"${est.cost_usd:,.0f} at ${acc.price_per_hour:.2f} per accelerator-hour")
    grid.add_row("Error band", error_band_text(est.error_band_pct))
    grid.add_row("Provenance", escape(est.provenance))
    con.print(grid)
    con.print()

    con.print(time_table(est.time.components_s, est.step_time_s))
    con.print(memory_table(mem.components_bytes, mem.total_bytes, mem.capacity_bytes, est.fits))

    if goodput is not None:  # paraplan.techniques.resilience.GoodputEstimate (with --tokens)
        g = goodput
        every = (f"every {g.checkpoint_interval_steps} steps" if g.checkpoint_interval_steps else
                 f"every {fmt_time(g.checkpoint_interval_s)}")
        gt = Table(title=f"Goodput with failures and checkpoints: {fmt_pct(g.goodput)} "
                   f"(wall time {fmt_time(g.wall_time_s)}; rows sum to it)", show_footer=True)
        gt.add_column("component", footer="wall time")
        gt.add_column("time", justify="right", footer=fmt_time(g.wall_time_s))
        gt.add_column("% of wall", justify="right", footer="100.0%")
        for k, v in g.components_s.items():
            gt.add_row(k.replace("_", " "), fmt_time(v), fmt_pct(v / g.wall_time_s if g.wall_time_s else 0.0))
        con.print(gt)
        con.print(f"{g.expected_failures:,.1f} expected failures (job MTBF {fmt_time(g.mtbf_job_s)}, "
                  f"{fmt_time(g.restart_s)} to restart); checkpoint {fmt_gb(g.checkpoint_bytes or 0.0)} GB "
                  f"{every} ({'async' if g.asynchronous else 'sync'}, {fmt_time(g.checkpoint_stall_s)} stall "
                  f"each; overhead {fmt_pct(g.checkpoint_overhead)})", markup=False)
        for a in g.assumptions:
            con.print(f"  - {a}", markup=False)

    if est.assumptions:
        con.print("[bold]Assumptions[/bold]")
        for a in est.assumptions:
            con.print(f"  - {a}", markup=False)


# ===================================================================== catalog
JsonOpt = Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write JSON ('-' = stdout).")]


def _moe_text(m: ModelSpec) -> str:
    if not m.moe:
        return "-"
    shared = f"+{m.moe.n_shared_experts}s" if m.moe.n_shared_experts else ""
    return f"{m.moe.n_experts}{shared}e top-{m.moe.top_k}"


def _tflops(acc: AcceleratorSpec, dtype: str) -> str:
    v = acc.peak_flops.get(dtype)
    if v is None and dtype == "bf16":
        v = acc.peak_flops.get("fp16")
    return "-" if v is None else f"{v / 1e12:.0f}"


def _detail_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in rows:
        if v is None or v == "" or v == () or v == []:
            continue
        t.add_row(k, escape(str(v)))
    return t


def _show_one(doc: dict[str, Any], json_out: str | None, title: str, rows: list[tuple[str, Any]]) -> None:
    """``catalog X NAME``: the entry as JSON (``--json``) and/or as a field/value table."""
    if json_out is not None:
        _write_json(doc, json_out)
        if json_out == "-":
            return
    _console().print(_detail_table(title, rows))


def _list_all(docs: list[dict[str, Any]], json_out: str | None, title: str, columns: tuple[tuple[str, str], ...],
              rows: list[tuple[str, ...]]) -> None:
    """``catalog X``: every entry as JSON (``--json``) and/or one table row each."""
    if json_out is not None:
        _write_json(docs, json_out)
        if json_out == "-":
            return
    t = Table(title=title)
    for col, just in columns:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for row in rows:
        t.add_row(*row)
    _console().print(t)


def _model_json(m: ModelSpec) -> dict[str, Any]:
    return {
        **m.model_dump(mode="json"),
        "n_params": m.n_params(),
        "n_active_params": m.n_active_params(),
        "attention_kind": m.attention_kind,
    }


def _cluster_json(c: ClusterSpec) -> dict[str, Any]:
    d = c.model_dump(mode="json")
    d["n_accelerators"] = c.n_accelerators
    d["scaleup_domain"] = c.domain
    return d


@catalog_app.command("models")
@handle_errors
def catalog_models(
    name: Annotated[str | None, typer.Argument(
        help="Show one model in detail: a catalog name, or a HF config.json / folder / ModelSpec YAML (what "
             "paraplan reads from it).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Models: parameters, shape, attention, MoE."""
    from . import catalog

    if name is not None:
        m = resolve_model(name)
        rows = [
            ("name", m.name),
            ("aliases", ", ".join(m.aliases)),
            ("family", m.family),
            ("params", f"{m.n_params() / 1e9:.3f}B"),
            ("active params", f"{m.n_active_params() / 1e9:.3f}B"),
            ("published params", None if m.params_published is None else f"{m.params_published / 1e9:.3f}B"),
            ("layers", m.n_layers),
            ("hidden", m.hidden),
            ("heads", m.n_heads),
            ("kv heads", m.kv_heads),
            ("head dim", m.dim_head),
            ("ffn hidden", f"{m.ffn_hidden} ({m.ffn_kind})"),
            ("vocab", m.vocab),
            ("attention", m.attention_kind),
            ("max seq len", m.max_seq_len),
            ("tied embeddings", m.tied_embeddings),
            ("learned positions", m.learned_pos_emb),
            ("norm", m.norm),
            ("bias", m.bias),
            ("sliding window", None if m.sliding_window is None else
             f"{m.sliding_window} tokens on {m.sliding_window_fraction:.0%} of layers"),
            ("MLA", m.mla and m.mla.model_dump()),
            ("MoE", m.moe and m.moe.model_dump()),
            ("source", m.source),
            *(("caveat", c) for c in m.caveats),
        ]
        _show_one(_model_json(m), json_out, f"model {m.name}", rows)
        return
    ms = catalog.models()
    _list_all([_model_json(m) for m in ms], json_out, f"{len(ms)} models", (
        ("name", "left"),
        ("params B", "right"),
        ("active B", "right"),
        ("layers", "right"),
        ("hidden", "right"),
        ("heads/kv", "right"),
        ("ffn", "right"),
        ("vocab", "right"),
        ("attn", "left"),
        ("MoE", "left"),
    ), [
        (
            escape(m.name),
            f"{m.n_params() / 1e9:.2f}",
            f"{m.n_active_params() / 1e9:.2f}",
            str(m.n_layers),
            str(m.hidden),
            f"{m.n_heads}/{m.kv_heads}",
            f"{m.ffn_hidden} {m.ffn_kind}",
            str(m.vocab),
            m.attention_kind,
            _moe_text(m),
        )
        for m in ms
    ])


@catalog_app.command("accelerators")
@handle_errors
def catalog_accelerators(
    name: Annotated[str | None, typer.Argument(help="Show one accelerator in detail.")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Accelerators: peak TFLOP/s, memory, bandwidth, scale-up fabric."""
    from . import catalog

    if name is not None:
        a = catalog.get_accelerator(name)
        peaks = ", ".join(f"{k} {v / 1e12:g}" for k, v in a.peak_flops.items())
        rows = [
            ("name", a.name),
            ("aliases", ", ".join(a.aliases)),
            ("vendor", a.vendor),
            ("family", a.family),
            ("kind", a.kind),
            ("peak TFLOP/s (dense)", peaks),
            ("memory", f"{a.memory_bytes / 1e9:g} GB"),
            ("memory bandwidth", f"{a.memory_bw / 1e12:.2f} TB/s"),
            (
                "scale-up",
                f"{a.scaleup_name or '-'} {a.scaleup_bw / 1e9:g} GB/s per direction, "
                f"domain {a.scaleup_domain}",
            ),
            ("PCIe", f"{a.pcie_bw / 1e9:g} GB/s per direction"),
            ("TDP", f"{a.tdp_w:g} W" if a.tdp_w else None),
            ("cores", a.cores),
            ("price", f"${a.price_per_hour:.2f}/h (rough default)" if a.price_per_hour else None),
            ("notes", a.notes),
            ("source", a.source),
        ]
        _show_one(a.model_dump(mode="json"), json_out, f"accelerator {a.name}", rows)
        return
    accs = catalog.accelerators()
    _list_all([a.model_dump(mode="json") for a in accs], json_out, f"{len(accs)} accelerators", (
        ("name", "left"),
        ("family", "left"),
        ("bf16 TFLOP/s", "right"),
        ("fp8 TFLOP/s", "right"),
        ("memory GB", "right"),
        ("bandwidth TB/s", "right"),
        ("scale-up", "left"),
    ), [
        (
            a.name,
            a.family,
            _tflops(a, "bf16"),
            _tflops(a, "fp8"),
            f"{a.memory_bytes / 1e9:g}",
            f"{a.memory_bw / 1e12:.2f}",
            f"{a.scaleup_name} {a.scaleup_bw / 1e9:g} GB/s x{a.scaleup_domain}" if a.scaleup_bw else "-",
        )
        for a in accs
    ])


@catalog_app.command("clusters")
@handle_errors
def catalog_clusters(
    name: Annotated[str | None, typer.Argument(help="Show one cluster (or NAME:COUNT).")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Cluster presets: accelerator, node size, scale-up and scale-out bandwidth."""
    from . import catalog

    if name is not None:
        c = resolve_cluster(name, None)
        rows = [
            ("name", c.name),
            ("aliases", ", ".join(c.aliases)),
            ("accelerator", c.accelerator.name),
            ("accelerators", f"{c.n_accelerators} ({c.n_nodes} node(s) x {c.per_node})"),
            (
                "scale-up",
                f"{c.scaleup.name} {c.scaleup.bw / 1e9:g} GB/s per accelerator per direction, "
                f"{c.scaleup.latency_s * 1e6:g} us, domain {c.domain}",
            ),
            (
                "scale-out",
                f"{c.scaleout.name} {c.scaleout.bw / 1e9:g} GB/s per accelerator per direction, "
                f"{c.scaleout.latency_s * 1e6:g} us",
            ),
            ("notes", c.notes),
            ("source", c.source),
        ]
        _show_one(_cluster_json(c), json_out, f"cluster {c.name}", rows)
        return
    cs = catalog.clusters()
    _list_all([_cluster_json(c) for c in cs], json_out, f"{len(cs)} cluster presets (NAME:COUNT rescales)", (
        ("name", "left"),
        ("accelerator", "left"),
        ("per node", "right"),
        ("nodes", "right"),
        ("scale-up (GB/s per accelerator)", "left"),
        ("scale-out (GB/s per accelerator)", "left"),
    ), [
        (
            c.name,
            c.accelerator.name,
            str(c.per_node),
            str(c.n_nodes),
            escape(f"{c.scaleup.bw / 1e9:g} {c.scaleup.name}"),
            escape(f"{c.scaleout.bw / 1e9:g} {c.scaleout.name}"),
        )
        for c in cs
    ])


# ===================================================================== validate
def default_train_data() -> Path:
    for cand in DEFAULT_TRAIN_DATA:
        p = Path(cand)
        if p.is_file():
            return p
    raise ConfigError(
        "no measured-runs CSV found (looked for "
        + ", ".join(DEFAULT_TRAIN_DATA)
        + " relative to the current directory); pass --data PATH/train-measured.csv"
    )


@validate_app.command("train")
@handle_errors
def validate_train(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="CSV of measured runs (default: shared/data/train-measured.csv)."),
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", metavar="FILE", help="Write the report as JSON ('-' = stdout).")
    ] = None,
    html_out: Annotated[
        str | None, typer.Option("--html", metavar="FILE", help="Write a self-contained HTML report (ui extra).")
    ] = None,
    layer: Annotated[
        LayerName, typer.Option("--layer", help="Calibration layer to validate.")
    ] = LayerName.curves,
    max_median_ape: Annotated[
        float | None,
        typer.Option(
            "--max-median-ape",
            metavar="X",
            help="Exit 1 if the median APE exceeds X (a fraction: 0.15 = 15%).",
        ),
    ] = None,
) -> None:
    """Predict every published training run in the CSV and report the absolute percentage errors."""
    path = data if data is not None else default_train_data()
    if not path.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    from .validate.train import validate_training

    layer = _val(layer)
    report = validate_training(path, layer=layer)
    stats = report.stats()
    quiet = json_out == "-"
    if json_out is not None or html_out is not None:
        _emit(report.to_json(), json_out, html_out)
    if not quiet:
        con = _console()
        t = Table(title=f"validate train: {path} (layer={layer})")
        t.add_column("row_id", justify="right", no_wrap=True)
        t.add_column("model", no_wrap=True, overflow="ellipsis", max_width=22)
        t.add_column("gpu", no_wrap=True, overflow="ellipsis", max_width=16)
        t.add_column("metric", no_wrap=True)
        t.add_column("measured", justify="right", no_wrap=True)
        t.add_column("predicted", justify="right", no_wrap=True)
        t.add_column("APE % / skipped", overflow="fold", ratio=1, min_width=12)
        for r in report.rows:
            verdict = (
                f"{100 * r.ape:.1f}" if r.ape is not None else f"skipped: {r.skipped or 'no prediction'}"
            )
            t.add_row(
                escape(r.row_id),
                escape(r.model),
                escape(r.gpu),
                r.metric or "-",
                _num_or_dash(r.measured),
                _num_or_dash(r.predicted),
                escape(verdict),
            )
        con.print(t)
        med, p90, mean = stats.get("median_ape"), stats.get("p90_ape"), stats.get("mean_ape")
        con.print(
            f"[bold]n_rows[/bold] {stats['n_rows']}  [bold]n_predicted[/bold] {stats['n_predicted']}  "
            f"[bold]median APE[/bold] {fmt_pct(med)}  [bold]p90 APE[/bold] {fmt_pct(p90)}  "
            f"[bold]mean APE[/bold] {fmt_pct(mean)}"
        )
    if max_median_ape is not None:
        med = stats.get("median_ape")
        if med is None or med > max_median_ape:
            typer.echo(
                f"median APE {fmt_pct(med)} exceeds --max-median-ape {fmt_pct(max_median_ape)}", err=True
            )
            raise typer.Exit(1)


# ===================================================================== plan / sweep
class ObjectiveName(StrEnum):
    throughput = "throughput"
    cost = "cost"
    time_to_train = "time-to-train"


def _parse_allow(items: list[str] | None) -> list[str]:
    return [x.strip() for item in items or [] for x in item.split(",") if x.strip()]


def _losses_text(plan: Any, model: ModelSpec, cluster: ClusterSpec, seq_len: int) -> str:
    from .search import roofline_losses, scaled_cluster

    _, losses = roofline_losses(plan.values, model, scaled_cluster(cluster, plan.n_accelerators), plan.strategy,
                                seq_len)
    step = plan.step_time_s
    top = sorted(losses.items(), key=lambda kv: -kv[1])[:2]
    short = {"pipeline bubble": "bubble", "exposed communication": "comm", "recompute": "recomp",
             "low GEMM/attention efficiency": "gemm", "memory-bound ops and overheads": "membw",
             "offload traffic and CPU optimizer": "offload"}
    return " ".join(f"{short[k]} {v / step:.0%}" for k, v in top if v > 0)


def print_plan(res: Any, model: ModelSpec, cluster: ClusterSpec, pareto_rows: int = 12) -> None:
    """The planner's answer: what was searched, the top plans with breakdowns, the Pareto frontier, the best
    plan per accelerator count and why everything else was rejected."""
    from . import search as S
    from .strategy import RULES

    con = _console()
    many = len(res.gpus) > 1
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Model", f"{escape(model.name)} ({model.n_params() / 1e9:.1f}B params, {model.n_layers} layers)")
    counts = (f"{res.gpus[0]}" if not many else f"{len(res.gpus)} counts from {res.gpus[0]} to {res.gpus[-1]}")
    grid.add_row("Cluster", escape(f"{res.cluster}: {counts} x {res.accelerator}"))
    grid.add_row("Workload", f"global batch {res.global_batch} sequences of {res.seq_len} tokens"
                 + (f", {fmt_count(res.tokens)} tokens to train" if res.tokens else ""))
    grid.add_row("Search", escape(f"framework {res.framework}, objective {res.objective}, precisions "
                                  f"{', '.join(res.precisions)}"))
    rate = f", {fmt_count(res.n_evaluated / res.elapsed_s)} strategies/s" if res.elapsed_s > 0 else ""
    grid.add_row("Evaluated", f"{res.n_evaluated:,} legal strategies (of {res.n_candidates:,} in the grid) in "
                 f"{res.elapsed_s:.3f} s{rate}")
    grid.add_row("Feasible", f"{res.n_feasible:,} fit in memory ({fmt_pct(res.n_feasible / res.n_evaluated)} of "
                 "the legal)" if res.n_evaluated else "0")
    con.print(grid)
    con.print()
    if res.top:
        obj = {"throughput": "tokens/s", "cost": "$ per 1M tokens", "time-to-train": "time to train"}[res.objective]
        show_usd = res.objective == "cost"
        show_ttt = res.objective == "time-to-train" and bool(res.tokens)
        t = Table(title=f"Top {len(res.top)} plans by {res.objective} ({obj})", box=box.SIMPLE_HEAD,
                  padding=(0, 1), show_edge=False)
        t.add_column("#", justify="right", no_wrap=True)
        if many:
            t.add_column("gpus", justify="right")
        t.add_column("strategy", no_wrap=True, min_width=30)
        for col in ("step", "tokens/s", "MFU", "mem GB") + (("$/1M tok",) if show_usd else ()) + (
                ("train",) if show_ttt else ()):
            t.add_column(col, justify="right", no_wrap=True)
        t.add_column("largest losses", overflow="fold", min_width=16)
        for i, pl in enumerate(res.top, 1):
            row = [str(i) + (f" +{len(pl.equivalents)}" if pl.equivalents else "")]
            row += [str(pl.n_accelerators)] if many else []
            row += [escape(S.short_label(pl.strategy)), fmt_time(pl.step_time_s), fmt_count(pl.tokens_per_s),
                    fmt_pct(pl.mfu),
                    fmt_gb(pl.memory_bytes)]
            if show_usd:
                usd = pl.to_json(res.price_per_hour, res.tokens)["usd_per_million_tokens"]
                row.append(f"{usd:,.2f}" if res.price_per_hour > 0 else "n/a")
            row += [fmt_time(res.tokens / pl.tokens_per_s)] if show_ttt else []
            row.append(_losses_text(pl, model, cluster, res.seq_len))
            t.add_row(*row)
        con.print(t)
        legend = ("strategy: tp, pp/vpp, dp, cp, ep, sp, micro-batch, ZeRO stage (h: HSDP), recompute, schedule "
                  "(intl: interleaved, zb: zero-bubble), off:/poff: optimizer/parameter offload tier, precision; "
                  "largest losses against the roofline in % of the step")
        if any(pl.equivalents for pl in res.top):
            legend += "; +k: k more strategies with identical numbers (listed in the JSON)"
        con.print(f"  {legend}", markup=False, style="dim")
        best = res.top[0]
        bt = Table(title=f"Plan #1 breakdown: {escape(best.label())} on {best.n_accelerators} accelerators",
                   show_footer=True)
        bt.add_column("time component", footer="step")
        bt.add_column("s", justify="right", footer=f"{best.step_time_s:.3f}")
        bt.add_column("%", justify="right", footer="100.0%")
        bt.add_column("memory component", footer="total / capacity")
        bt.add_column("GB", justify="right", footer=f"{fmt_gb(best.memory_bytes)} / {fmt_gb(best.capacity_bytes)}")
        tc = [(k, v) for k, v in best.time_components.items() if v]
        mc = [(k, v) for k, v in best.memory_components.items() if v]
        for i in range(max(len(tc), len(mc))):
            a = tc[i] if i < len(tc) else ("", None)
            b = mc[i] if i < len(mc) else ("", None)
            bt.add_row(a[0], "" if a[1] is None else f"{a[1]:.3f}",
                       "" if a[1] is None else fmt_pct(a[1] / best.step_time_s), b[0],
                       "" if b[1] is None else fmt_gb(b[1]))
        con.print(bt)
        front = res.pareto
        if front:
            shown = front if len(front) <= pareto_rows else \
                [front[round(i * (len(front) - 1) / (pareto_rows - 1))] for i in range(pareto_rows)]
            pt = Table(title=f"Pareto frontier: tokens/s against memory headroom{' and accelerators' if many else ''}"
                       f" ({len(front)} plans{', some shown' if len(shown) < len(front) else ''})")
            if many:
                pt.add_column("gpus", justify="right")
            pt.add_column("strategy")
            pt.add_column("tokens/s", justify="right")
            pt.add_column("headroom GB", justify="right")
            pt.add_column("MFU", justify="right")
            for pl in shown:
                pt.add_row(*([str(pl.n_accelerators)] if many else []), escape(pl.label()), fmt_count(pl.tokens_per_s),
                           fmt_gb(pl.headroom_bytes), fmt_pct(pl.mfu))
            con.print(pt)
        if many and res.best_by_gpus:
            items = sorted(res.best_by_gpus.items())
            shown_b = items if len(items) <= 24 else [items[round(i * (len(items) - 1) / 23)] for i in range(24)]
            gt = Table(title=f"Best plan per accelerator count ({len(items)} counts with a feasible plan"
                       f"{', some shown' if len(shown_b) < len(items) else ''})")
            for col in ("gpus", "tokens/s", "per accel", "MFU", "$/1M tok", "strategy"):
                gt.add_column(col, justify="left" if col == "strategy" else "right")
            for n, pl in shown_b:
                usd = pl.to_json(res.price_per_hour, res.tokens)["usd_per_million_tokens"]
                gt.add_row(str(n), fmt_count(pl.tokens_per_s), fmt_count(pl.tokens_per_s / n), fmt_pct(pl.mfu),
                           f"{usd:,.2f}" if res.price_per_hour > 0 else "n/a", escape(pl.label()))
            con.print(gt)
    rt = Table(title=f"Why the rest were rejected ({res.n_illegal:,} illegal, {res.n_not_fitting:,} legal but over "
               "memory)")
    rt.add_column("reason")
    rt.add_column("strategies", justify="right")
    rt.add_column("% of grid", justify="right")
    rt.add_column("explanation", overflow="fold")
    for r, k in res.rejected_by_rule.items():
        rt.add_row(f"rule {r}", f"{k:,}", fmt_pct(k / res.n_candidates), escape(RULES[r]))
    for comp, k in res.rejected_by_memory.items():
        rt.add_row(f"memory: {comp}", f"{k:,}", fmt_pct(k / res.n_candidates),
                   f"legal, over capacity, '{comp}' the largest component")
    rt.caption = "a strategy breaking several rules is counted under each"
    con.print(rt)
    for note in res.notes:
        con.print(f"  - {note}", markup=False)


def print_no_plan(res: Any, remedy: tuple[Any, str], model: ModelSpec, cluster: ClusterSpec) -> None:
    con = _console()
    con.print()
    if res.n_evaluated == 0:
        con.print("[bold red]No legal strategy[/bold red]: every strategy in the grid breaks a rule (counts above).")
    else:
        con.print(f"[bold red]Nothing fits[/bold red]: all {res.n_evaluated:,} legal strategies are over the "
                  f"{fmt_gb(res.closest[0].capacity_bytes) if res.closest else '?'} GB per accelerator (counts "
                  "above).")
        for pl in res.closest:
            comp = max(pl.memory_components.items(), key=lambda kv: kv[1])
            con.print(f"  nearest miss: {escape(pl.label())} on {pl.n_accelerators}: {fmt_gb(pl.memory_bytes)} GB "
                      f"({fmt_gb(-pl.headroom_bytes)} GB over; largest {comp[0]} {fmt_gb(comp[1])} GB)")
    plan, note = remedy
    if plan is not None:
        con.print(f"[bold]Cheapest way to a feasible plan[/bold]: {escape(note)}: {escape(plan.label())} on "
                  f"{plan.n_accelerators} accelerators, {fmt_count(plan.tokens_per_s)} tokens/s, "
                  f"{fmt_gb(plan.memory_bytes)} GB")
    else:
        con.print(f"[bold]No feasible plan found nearby[/bold]: {escape(note)}")


@plan_app.command("train")
@handle_errors
def plan_train(
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog model name, or a HF config.json / folder.")],
    cluster: Annotated[
        str, typer.Option("--cluster", "-c", help="Preset (dgx-h100), NAME:COUNT or an accelerator name.")
    ],
    global_batch: Annotated[int, typer.Option("--global-batch", "--gb", help="Sequences per optimizer step.")],
    seq_len: Annotated[int, typer.Option("--seq-len", "--seq", help="Sequence length in tokens.")] = 2048,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus", "-n",
            help="Accelerator count, or counts: 1024 | 256..2048 (every whole number of nodes) | 256..4096:x2 | "
            "512,1024. Default: the cluster's.",
        ),
    ] = None,
    objective: Annotated[
        ObjectiveName, typer.Option("--objective", help="Rank by tokens/s, $ per token, or time to train.")
    ] = ObjectiveName.throughput,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Also search: fp8, fp16, fp32 (precisions), tp-across-nodes, offload."),
    ] = None,
    fix: Annotated[
        list[str] | None,
        typer.Option("--fix", metavar="FIELD=V[,V]",
                     help="Search only these values of a strategy field (repeatable): recompute=full, tp=4,8, "
                     "sp=off, zero=0,1, schedule=1f1b, micro_batch=1,2 ..."),
    ] = None,
    framework: Annotated[
        FrameworkName, typer.Option("--framework", help="Framework whose rules, schedules and ZeRO stages apply.")
    ] = FrameworkName.megatron,
    top: Annotated[int, typer.Option("--top", "-k", help="How many plans to list.")] = 10,
    tokens: Annotated[
        str | None, typer.Option("--tokens", help="Training tokens, for time and cost to train (1e12, 300B, 2T).")
    ] = None,
    optimizer: Annotated[Optimizer, typer.Option("--optimizer")] = Optimizer.adamw,
    layer: Annotated[
        LayerName, typer.Option("--layer", help="spec: spec-sheet peaks only; curves: plus fitted curves.")
    ] = LayerName.curves,
    json_out: Annotated[
        str | None, typer.Option("--json", metavar="FILE", help="Write the result as JSON ('-' = stdout).")
    ] = None,
    html_out: Annotated[
        str | None, typer.Option("--html", metavar="FILE", help="Write a self-contained HTML report (ui extra).")
    ] = None,
) -> None:
    """Search every legal strategy (tp, pp, vpp, dp, cp, ep, sp, micro-batch, ZeRO, recompute, schedule,
    precision), price them all with the cost model of `paraplan train`, rank the ones that fit.

    Exit code 0 with plans, 1 when nothing is legal or nothing fits (the reasons and the cheapest way to a
    feasible plan are printed), 2 for bad input."""
    from . import search as S
    from .train import Workload

    n_tokens = parse_count(tokens) if tokens is not None else None
    S.check_request(global_batch, seq_len)
    if top < 1 or top > 1000:
        raise ConfigError(f"--top must be between 1 and 1000 (got {top})")
    m = resolve_model(model)
    c = resolve_cluster(cluster, None)
    counts = S.parse_gpus(gpus, c.per_node) if gpus is not None else [c.n_accelerators]
    base = S.scaled_cluster(c, counts[0])
    precisions, notes, across, restrict = S.search_options(base, _parse_allow(allow), fix or [])
    workload = Workload(seq_len=seq_len, tokens=n_tokens)
    res = S.search(m, base, global_batch, workload, gpus=counts, framework=_val(framework),
                   objective=_val(objective), precisions=precisions, optimizer=_val(optimizer), top=top,
                   layer=_val(layer), tp_across_nodes=True if across else None,
                   offload=S.allows_offload(_parse_allow(allow)), restrict=restrict or None)
    res.notes[:0] = notes
    remedy = None
    if not res.top:
        remedy = S.nearest_feasible(m, base, global_batch, workload, _val(framework), counts[-1], precisions,
                                    _val(layer))
    if json_out is not None or html_out is not None:
        payload = res.to_json()
        if remedy is not None:
            plan, note = remedy
            payload["remedy"] = {"note": note, "plan": None if plan is None else plan.to_json(res.price_per_hour,
                                                                                                res.tokens)}
        _emit(payload, json_out, html_out)
    if json_out != "-":
        print_plan(res, m, base)
        if remedy is not None:
            print_no_plan(res, remedy, m, base)
    if not res.top:
        raise typer.Exit(1)


class BackendName(StrEnum):
    local = "local"
    ray = "ray"


@app.command()
@handle_errors
def sweep(
    config: Annotated[
        Path, typer.Option("--config", help="Sweep YAML: models, clusters, global_batch, seq_len, gpus, ...")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Results file: .parquet (needs pyarrow) or .csv.")
    ] = Path("results.parquet"),
    backend: Annotated[
        BackendName, typer.Option("--backend", help="local: in this process; ray: one Ray task per cell.")
    ] = BackendName.local,
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster to use (ray://host:10001 or auto); default: a local Ray."),
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option("--num-cpus", min=1, help="CPUs of the local Ray (default: all).")
    ] = None,
) -> None:
    """Run a full plan search for every cell of models x clusters x batches x sequence lengths x GPU counts and
    save the best plans of each cell as a table (Parquet or CSV)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import sweep as SW

    cfg = SW.load_config(config)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: expected a .parquet or .csv file")
    if address and _val(backend) != "ray":
        raise ConfigError("--address needs --backend ray")
    n_cells = len(SW.cells(cfg))
    t0 = __import__("time").perf_counter()
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("cells", total=n_cells)
        rows = SW.run_sweep(cfg, backend=_val(backend), address=address, num_cpus=num_cpus,
                            progress=lambda done, total: bar.update(task, completed=done))
    path, note = SW.write_results(rows, out)
    if note:
        typer.echo(f"note: {note}", err=True)
    feasible = sum(1 for r in rows if r["feasible"] and r["rank"] == 1)
    evaluated = sum(r["n_evaluated"] or 0 for r in rows if r["rank"] in (1, None))
    elapsed = __import__("time").perf_counter() - t0
    typer.echo(f"{n_cells} cells ({feasible} with a feasible plan), {evaluated:,} strategies evaluated in "
               f"{elapsed:.1f} s; {len(rows)} rows written to {path}")


# ===================================================================== version
@app.command()
def version() -> None:
    """Print the paraplan version."""
    typer.echo(f"paraplan {__version__}")


# Command modules: each defines ``register(app, plan_app, validate_app)`` and adds its commands. New command
# families go in their own ``cli_<name>.py`` and get one entry here.
_COMMAND_MODULES = ("cli_serve", "cli_calibrate", "cli_claims", "cli_finetune", "cli_testtime", "cli_ui")


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet; never hide a missing dependency
            if exc.name != f"{__package__}.{name}":
                raise
            continue
        mod.register(app, plan_app, validate_app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
