"""Serving commands: ``serve``, ``simulate serve``, ``plan serve`` and ``validate infer``.

:func:`register` adds them to the main app (``paraplan.cli``) and its ``plan`` / ``validate`` sub-apps. Same
conventions as the training commands: rich tables, ``--json FILE`` (``-`` = stdout), user errors as one line
``error: ...`` on stderr with exit code 2 (no traceback); heavy modules are imported inside the commands.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import LayerName

#: where ``paraplan validate infer`` looks for the measurements when --data is not given (relative to cwd)
DEFAULT_INFER_DATA = ("../shared/data/infer-measured.csv", "./shared/data/infer-measured.csv")


class SchedulerName(StrEnum):  # paraplan.sim.engine.SCHEDULERS (not imported: it would slow every CLI start-up)
    static = "static"
    vllm = "vllm"
    orca = "orca"
    sarathi = "sarathi"


class RouterName(StrEnum):  # paraplan.sim.engine.ROUTERS
    round_robin = "round_robin"
    least_loaded = "least_loaded"
    random = "random"


class PreemptionName(StrEnum):
    recompute = "recompute"
    swap = "swap"


class EngineName(StrEnum):
    default = "default"
    trtllm = "trtllm"
    vllm = "vllm"
    sglang = "sglang"
    deepspeed = "deepspeed"
    hf = "hf"


class SpecMethod(StrEnum):
    draft_model = "draft_model"
    heads = "heads"
    lookup = "lookup"


def _rate(text: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "infinite", "max"):
        return math.inf
    try:
        v = float(t)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a rate (requests per second, or 'inf')") from None
    if not (v > 0 and math.isfinite(v)):
        raise typer.BadParameter(f"'{text}' must be a positive rate (or 'inf')")
    return v


# common options -------------------------------------------------------------------------------------------
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Catalog model name, or a HF config.json / folder.")]
ClusterOpt = Annotated[str, typer.Option("--cluster", "-c", help="Preset, NAME:COUNT or an accelerator name.")]
GpusOpt = Annotated[int | None, typer.Option("--gpus", "-n", min=1, help="Rescale the cluster to this many.")]
TpOpt = Annotated[int, typer.Option("--tp", min=1, help="Tensor parallel size per replica.")]
PpOpt = Annotated[int, typer.Option("--pp", min=1, help="Pipeline parallel size per replica.")]
EpOpt = Annotated[int, typer.Option("--ep", min=1, help="Expert parallel size (divides tp).")]
WBits = Annotated[float, typer.Option("--weight-bits", help="Weight bits, 1-16 (8/4 with --act-bits 8/4: FP8/FP4).")]
ABits = Annotated[int, typer.Option("--act-bits", help="Activation (GEMM) bits: 16, 8 (FP8/INT8) or 4 (FP4).")]
KBits = Annotated[float, typer.Option("--kv-bits", help="KV-cache bits, 1-16.")]
GSize = Annotated[int | None, typer.Option("--group-size", min=1, help="Weight quantization group (scales).")]
KGSize = Annotated[int | None, typer.Option("--kv-group-size", min=1, help="KV quantization group.")]
BlockOpt = Annotated[int, typer.Option("--block-size", min=1, help="Paged KV block size in tokens.")]
KvFrac = Annotated[float, typer.Option("--kv-fraction", min=0.01, max=1.0,
                                       help="Share of the free memory given to the KV cache.")]
EngineOpt = Annotated[EngineName, typer.Option("--engine", help="Engine kind (selects fitted shared overheads).")]
JsonOut = Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write JSON ('-' = stdout).")]
HtmlOut = Annotated[str | None, typer.Option("--html", metavar="FILE",
                                             help="Write a self-contained HTML report (ui extra).")]


def _icfg(tp: int, pp: int, ep: int, weight_bits: float, act_bits: int, kv_bits: float, group_size: int | None,
          kv_group_size: int | None, block_size: int, kv_fraction: float, engine: Any, max_tokens: int = 8192) -> Any:
    from .infer import InferenceConfig

    return InferenceConfig(tp=tp, pp=pp, ep=ep, weight_bits=weight_bits, act_bits=act_bits, kv_bits=kv_bits,
                           group_size=group_size, kv_group_size=kv_group_size, block_size=block_size,
                           kv_fraction=kv_fraction, engine=str(getattr(engine, "value", engine)),
                           max_tokens=max_tokens)


def _ms(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    return f"{s * 1e3:.1f}" if s < 10 else f"{s * 1e3:,.0f}"


def register(app: typer.Typer, plan_app: typer.Typer, validate_app: typer.Typer) -> None:
    """Add ``serve``, ``simulate serve``, ``plan serve`` and ``validate infer`` to the paraplan CLI."""
    from . import cli as C

    simulate_app = typer.Typer(help="Discrete-event serving simulation (continuous batching, KV blocks, routing).",
                               no_args_is_help=True)
    app.add_typer(simulate_app, name="simulate")

    # ================================================================= serve
    @app.command("serve")
    @C.handle_errors
    def serve(
        model: ModelOpt,
        cluster: ClusterOpt,
        gpus: GpusOpt = None,
        tp: TpOpt = 1,
        pp: PpOpt = 1,
        ep: EpOpt = 1,
        batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Sequences per replica (static).")] = 1,
        input_len: Annotated[int, typer.Option("--input-len", "-i", help="Prompt tokens.")] = 1024,
        output_len: Annotated[int, typer.Option("--output-len", "-o", help="Generated tokens.")] = 256,
        weight_bits: WBits = 16.0,
        act_bits: ABits = 16,
        kv_bits: KBits = 16.0,
        group_size: GSize = None,
        kv_group_size: KGSize = None,
        block_size: BlockOpt = 16,
        kv_fraction: KvFrac = 0.9,
        engine: EngineOpt = EngineName.default,
        spec_method: Annotated[SpecMethod | None, typer.Option(
            "--spec-method", help="Speculative decoding: draft_model, heads or lookup.")] = None,
        draft_model: Annotated[str | None, typer.Option("--draft-model", help="Draft model (draft_model).")] = None,
        draft_len: Annotated[int, typer.Option("--draft-len", min=1, help="Draft tokens per step.")] = 4,
        acceptance_rate: Annotated[float | None, typer.Option(
            "--acceptance-rate", help="Per-token acceptance probability (0-1).")] = None,
        mean_accepted: Annotated[float | None, typer.Option(
            "--mean-accepted", help="Mean tokens produced per verification step.")] = None,
        tree_size: Annotated[int | None, typer.Option("--tree-size", min=1, help="Verified tokens (trees).")] = None,
        head_params: Annotated[float, typer.Option("--head-params", help="Draft-head parameters (heads).")] = 0.0,
        price: Annotated[float | None, typer.Option("--price", help="USD per accelerator-hour.")] = None,
        layer: Annotated[LayerName, typer.Option("--layer", help="spec or curves (fitted).")] = LayerName.curves,
        json_out: JsonOut = None,
        html_out: HtmlOut = None,
    ) -> None:
        """Estimate serving one static batch: TTFT, TPOT, throughput, memory, cost (and speculative decoding)."""
        from .infer import SpeculativeConfig, estimate_inference

        m = C.resolve_model(model)
        c = C.resolve_cluster(cluster, gpus)
        cfg = _icfg(tp, pp, ep, weight_bits, act_bits, kv_bits, group_size, kv_group_size, block_size, kv_fraction,
                    engine)
        spec = None
        if spec_method is not None:
            dm = C.resolve_model(draft_model) if draft_model else None
            spec = SpeculativeConfig(method=spec_method.value, draft_model=dm, draft_len=draft_len,
                                     acceptance_rate=acceptance_rate, mean_accepted=mean_accepted,
                                     tree_size=tree_size, head_params=head_params)
        est = estimate_inference(m, c, cfg, batch=batch, input_len=input_len, output_len=output_len,
                                 speculative=spec, layer=layer.value, price_per_hour=price)
        from .techniques.nanoflow import throughput_bound

        bound = throughput_bound(est, m, c, layer=layer.value)
        if json_out is not None or html_out is not None:
            payload = est.model_dump(mode="json")
            payload["summary"] = est.summary()
            payload["throughput_bound"] = bound
            if C._emit(payload, json_out, html_out):
                return
        _print_estimate(C, est, bound)

    # ================================================================= simulate serve
    @simulate_app.command("serve")
    @C.handle_errors
    def simulate_serve(
        model: ModelOpt,
        cluster: ClusterOpt,
        gpus: GpusOpt = None,
        tp: TpOpt = 1,
        pp: PpOpt = 1,
        replicas: Annotated[int | None, typer.Option("--replicas", min=1,
                                                     help="Replicas (default: as many as the cluster holds).")] = None,
        arrivals: Annotated[str, typer.Option("--arrivals", help="poisson, gamma or a trace .csv file.")] = "poisson",
        rate: Annotated[str | None, typer.Option(
            "--rate", help="Requests per second ('inf': all at t = 0); rescales a trace's times.")] = None,
        cv: Annotated[float, typer.Option("--cv", help="Coefficient of variation of gamma gaps.")] = 2.0,
        requests: Annotated[int | None, typer.Option("--requests", min=1, help="Number of requests.")] = None,
        duration: Annotated[float | None, typer.Option("--duration", help="Seconds of arrivals.")] = None,
        input_dist: Annotated[str, typer.Option("--input-dist", help="fixed:N, uniform:A:B, normal:M:S, "
                                                "lognormal:M:S, exp:M, sharegpt, lmsys, splitwise.")] = "sharegpt",
        output_dist: Annotated[str | None, typer.Option("--output-dist", help="As --input-dist.")] = None,
        scheduler: Annotated[SchedulerName, typer.Option("--scheduler")] = SchedulerName.vllm,
        max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Sequences in flight per replica.")] = 256,
        max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Tokens per iteration.")] = 8192,
        chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Sarathi token budget.")] = 512,
        preemption: Annotated[PreemptionName, typer.Option("--preemption")] = PreemptionName.recompute,
        max_output: Annotated[int | None, typer.Option(
            "--max-output", min=1, help="Output cap reserved per request by orca (default: the context).")] = None,
        router: Annotated[RouterName, typer.Option("--router")] = RouterName.least_loaded,
        slo_ttft: Annotated[float | None, typer.Option("--slo-ttft", help="TTFT SLO, seconds.")] = None,
        slo_tpot: Annotated[float | None, typer.Option("--slo-tpot", help="TPOT SLO, seconds.")] = None,
        horizon: Annotated[float | None, typer.Option("--horizon", help="Stop at this time (s).")] = None,
        trace: Annotated[Path | None, typer.Option("--trace", help="Write a Chrome trace (JSON) here.")] = None,
        trace_iterations: Annotated[int, typer.Option("--trace-iterations", min=0,
                                                      help="Iterations per replica in the trace.")] = 200,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        weight_bits: WBits = 16.0,
        act_bits: ABits = 16,
        kv_bits: KBits = 16.0,
        group_size: GSize = None,
        kv_group_size: KGSize = None,
        block_size: BlockOpt = 16,
        kv_fraction: KvFrac = 0.9,
        engine: EngineOpt = EngineName.default,
        json_out: JsonOut = None,
        html_out: HtmlOut = None,
    ) -> None:
        """Simulate serving a request stream: latency percentiles, throughput, goodput, KV use, queue length."""
        from .errors import ParaplanError
        from .sim import SimConfig, make_requests, simulate_serving

        is_trace = arrivals.lower().endswith(".csv")
        if rate is None and not is_trace:
            raise ParaplanError("--rate is needed for poisson/gamma arrivals")
        r = _rate(rate) if rate is not None else None
        if (requests is None) == (duration is None) and not is_trace:
            raise ParaplanError("give exactly one of --requests and --duration")
        m = C.resolve_model(model)
        c = C.resolve_cluster(cluster, gpus)
        cfg = _icfg(tp, pp, 1, weight_bits, act_bits, kv_bits, group_size, kv_group_size, block_size, kv_fraction,
                    engine, max_tokens=max(max_tokens, chunk_size))
        reps = replicas or max(c.n_accelerators // cfg.accelerators, 1)
        req = make_requests(arrivals, r, n=requests, duration=duration, input_dist=input_dist,
                            output_dist=output_dist, seed=seed, cv=cv)
        sc = SimConfig(scheduler=scheduler.value, replicas=reps, router=router.value, max_batch=max_batch,
                       max_tokens=max_tokens, chunk_size=chunk_size, preemption=preemption.value, max_output=max_output,
                       horizon_s=horizon, trace_iterations=trace_iterations if trace else 0, seed=seed)
        res = simulate_serving(m, c, req, sc, cfg, slo_ttft_s=slo_ttft, slo_tpot_s=slo_tpot)
        if trace is not None:
            C._write_json(res.chrome_trace(), str(trace))
        if json_out is not None or html_out is not None:
            payload = res.model_dump(mode="json", exclude={"trace_events"})
            if C._emit(payload, json_out, html_out):
                return
        _print_sim(C, res, trace)

    # ================================================================= plan serve
    @plan_app.command("serve")
    @C.handle_errors
    def plan_serve(
        model: ModelOpt,
        rate: Annotated[float, typer.Option("--rate", help="Target requests per second.")],
        slo_ttft: Annotated[float, typer.Option("--slo-ttft", help="TTFT SLO, seconds.")],
        slo_tpot: Annotated[float, typer.Option("--slo-tpot", help="TPOT SLO, seconds.")],
        accelerators: Annotated[str | None, typer.Option(
            "--accelerators", help="Comma-separated accelerators to try (default: priced catalog GPUs).")] = None,
        tps: Annotated[str, typer.Option("--tps", help="Comma-separated TP sizes to try.")] = "1,2,4,8",
        attainment: Annotated[float, typer.Option("--attainment", min=0.01, max=1.0,
                                                  help="Share of requests that must meet the SLO.")] = 0.9,
        input_dist: Annotated[str, typer.Option("--input-dist")] = "sharegpt",
        output_dist: Annotated[str | None, typer.Option("--output-dist")] = None,
        scheduler: Annotated[SchedulerName, typer.Option("--scheduler")] = SchedulerName.vllm,
        max_batch: Annotated[int, typer.Option("--max-batch", min=1)] = 256,
        requests: Annotated[int, typer.Option("--requests", min=50, help="Requests per trial simulation.")] = 600,
        weight_bits: WBits = 16.0,
        act_bits: ABits = 16,
        kv_bits: KBits = 16.0,
        engine: EngineOpt = EngineName.default,
        json_out: JsonOut = None,
        html_out: HtmlOut = None,
    ) -> None:
        """Cheapest accelerator, TP and replica count meeting the SLO at a request rate (and each one's capacity)."""
        from .errors import ParaplanError
        from .sim import SimConfig
        from .sim.plan import plan_serving

        try:
            tp_list = [int(x) for x in tps.split(",") if x.strip()]
        except ValueError:
            raise ParaplanError(f"--tps '{tps}' is not a comma-separated list of integers") from None
        m = C.resolve_model(model)
        cfg = _icfg(1, 1, 1, weight_bits, act_bits, kv_bits, None, None, 16, 0.9, engine)
        accs = [a.strip() for a in accelerators.split(",")] if accelerators else None
        plan = plan_serving(m, rate, slo_ttft_s=slo_ttft, slo_tpot_s=slo_tpot, attainment=attainment,
                            accelerators=accs, tps=tp_list, inference=cfg,
                            sim=SimConfig(scheduler=scheduler.value, max_batch=max_batch), n_requests=requests,
                            input_dist=input_dist, output_dist=output_dist)
        if (json_out is not None or html_out is not None) and C._emit(plan.model_dump(mode="json"), json_out,
                                                                       html_out):
            return
        _print_plan(C, plan)

    # ================================================================= validate infer
    @validate_app.command("infer")
    @C.handle_errors
    def validate_infer(
        data: Annotated[Path | None, typer.Option(
            "--data", help="CSV of measurements (default: shared/data/infer-measured.csv).")] = None,
        json_out: JsonOut = None,
        html_out: HtmlOut = None,
        layer: Annotated[LayerName, typer.Option("--layer", help="Calibration layer.")] = LayerName.curves,
        max_median_ape: Annotated[float | None, typer.Option(
            "--max-median-ape", metavar="X", help="Exit 1 if the median APE exceeds X (fraction).")] = None,
    ) -> None:
        """Predict every published serving number in the CSV and report the absolute percentage errors."""
        from .errors import ConfigError
        from .validate.infer import validate_inference

        path = data
        if path is None:
            path = next((Path(p) for p in DEFAULT_INFER_DATA if Path(p).is_file()), None)
            if path is None:
                raise ConfigError("no measurements CSV found (looked for " + ", ".join(DEFAULT_INFER_DATA)
                                  + " relative to the current directory); pass --data PATH/infer-measured.csv")
        if not path.is_file():
            raise FileNotFoundError(2, "No such file or directory", str(path))
        report = validate_inference(path, layer=layer.value)
        stats = report.stats()
        if json_out is not None or html_out is not None:
            C._emit(report.to_json(), json_out, html_out)
        if json_out != "-":
            con = C._console()
            t = Table(title=f"validate infer: {path} (layer={layer.value})")
            t.add_column("row", justify="right", no_wrap=True)
            t.add_column("model", no_wrap=True, overflow="ellipsis", max_width=18)
            t.add_column("hardware", no_wrap=True, overflow="ellipsis", max_width=14)
            t.add_column("kind", no_wrap=True)
            t.add_column("metric", no_wrap=True, overflow="ellipsis", max_width=18)
            t.add_column("measured", justify="right", no_wrap=True)
            t.add_column("predicted", justify="right", no_wrap=True)
            t.add_column("APE % / skipped", overflow="fold", ratio=1, min_width=12)
            for r in report.rows:
                verdict = f"{100 * r.ape:.1f}" if r.ape is not None else f"skipped: {r.skipped or 'no prediction'}"
                t.add_row(escape(r.row_id), escape(r.model), escape(r.hardware), r.category, r.metric or "-",
                          C._num_or_dash(r.measured), C._num_or_dash(r.predicted), escape(verdict))
            con.print(t)
            cat = Table(title="By kind")
            for col in ("kind", "rows", "median APE", "p90 APE"):
                cat.add_column(col, justify="left" if col == "kind" else "right")
            for k, v in stats["by_category"].items():
                cat.add_row(k, str(v["n"]), C.fmt_pct(v["median_ape"]), C.fmt_pct(v["p90_ape"]))
            con.print(cat)
            con.print(
                f"[bold]n_rows[/bold] {stats['n_rows']}  [bold]n_predicted[/bold] {stats['n_predicted']}  "
                f"[bold]median APE[/bold] {C.fmt_pct(stats['median_ape'])}  [bold]p90 APE[/bold] "
                f"{C.fmt_pct(stats['p90_ape'])}  [bold]target rows predicted[/bold] "
                f"{stats['n_target_predicted']}/{stats['n_target_rows']} ({C.fmt_pct(stats['target_coverage'])})")
        if max_median_ape is not None:
            med = stats.get("median_ape")
            if med is None or med > max_median_ape:
                typer.echo(f"median APE {C.fmt_pct(med)} exceeds --max-median-ape {C.fmt_pct(max_median_ape)}",
                           err=True)
                raise typer.Exit(1)


# ===================================================================== printing
def _print_estimate(C: Any, est: Any, bound: dict[str, Any] | None = None) -> None:
    con = C._console()
    cfg = est.config
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Model", escape(est.model))
    grid.add_row("Cluster", escape(f"{est.cluster}: {est.replicas} replica(s) x {est.accelerators_per_replica} "
                                   f"{est.accelerator} (tp={cfg.tp} pp={cfg.pp} ep={cfg.ep})"))
    grid.add_row("Workload", f"batch {est.batch} per replica, {est.input_len} in / {est.output_len} out tokens")
    grid.add_row("Precision", f"weights {cfg.weight_bits:g} bit, GEMMs {cfg.act_bits} bit, KV {cfg.kv_bits:g} bit")
    grid.add_row("TTFT", C.fmt_time(est.ttft_s))
    grid.add_row("TPOT", f"{C.fmt_time(est.tpot_s)} ({1.0 / est.tpot_s:.1f} tokens/s per sequence)"
                 if est.tpot_s > 0 else "n/a (one output token)")
    grid.add_row("End to end", C.fmt_time(est.e2e_s))
    grid.add_row("Throughput", f"{C.fmt_count(est.output_tokens_per_s)} output tokens/s total, "
                 f"{C.fmt_count(est.output_tokens_per_s_per_accelerator)} per accelerator")
    grid.add_row("Memory", f"{C.fmt_gb(est.memory.total_bytes)} of {C.fmt_gb(est.memory.capacity_bytes)} GB per "
                 f"accelerator; largest batch at these lengths: {est.max_batch}")
    if est.cost_per_million_output_tokens is not None:
        grid.add_row("Cost", f"${est.cost_per_million_output_tokens:,.3f} per million output tokens "
                     f"(${est.cost_per_million_tokens:,.3f} per million tokens in + out) at "
                     f"${est.price_per_hour:.2f}/h")
    if bound is not None:
        frac = bound["fraction_of_bound"]
        grid.add_row("NanoFlow bound", f"{C.fmt_count(bound['tokens_per_s_per_accelerator_bound'])} tokens/s per "
                     f"accelerator (achieved {bound['gemm_dtype']} GEMM rate / 2 x active params, input + output "
                     f"tokens); this plan: {C.fmt_count(bound['plan_tokens_per_s_per_accelerator'])} = "
                     + ("n/a" if frac is None else f"{100 * frac:.1f}%") + " of it")
    if est.speculative is not None:
        s = est.speculative
        grid.add_row("Speculative", f"{s.method}: {s.mean_accepted:.2f} tokens/step, {s.verified_tokens} verified, "
                     f"draft {C.fmt_time(s.draft_s)} + verify {C.fmt_time(s.verify_s)} vs plain "
                     f"{C.fmt_time(s.plain_step_s)}: speedup {s.speedup:.2f}x")
    grid.add_row("Error band", C.error_band_text(est.error_band_pct, est.error_band_engine, serving=True))
    grid.add_row("Provenance", escape(est.provenance))
    con.print(grid)
    con.print()
    t = Table(title="Time (rows sum to the totals)", show_footer=True)
    t.add_column("component", footer="total")
    t.add_column("prefill ms", justify="right", footer=_ms(est.prefill.total_s))
    t.add_column("decode ms (all steps)", justify="right", footer=_ms(est.decode.total_s))
    for k in est.prefill.components_s:
        a, b = est.prefill.components_s[k], est.decode.components_s.get(k, 0.0)
        if a == 0.0 and b == 0.0:
            continue
        t.add_row(k, _ms(a), _ms(b))
    con.print(t)
    mt = Table(title="Memory per accelerator", show_footer=True, min_width=40)
    mt.add_column("component", footer="total")
    mt.add_column("GB", justify="right", footer=C.fmt_gb(est.memory.total_bytes))
    for k, v in est.memory.components_bytes.items():
        mt.add_row(k, C.fmt_gb(v))
    mt.caption = f"capacity {C.fmt_gb(est.memory.capacity_bytes)} GB: " + ("fits" if est.fits else "does NOT fit")
    con.print(mt)
    if est.assumptions:
        con.print("[bold]Assumptions[/bold]")
        for a in est.assumptions:
            con.print(f"  - {a}", markup=False)


def _spark(values: list[float], width: int = 48) -> str:
    if not values:
        return ""
    bars = " ▁▂▃▄▅▆▇█"
    step = max(len(values) // width, 1)
    pts = [max(values[i:i + step]) for i in range(0, len(values), step)][:width]
    hi = max(pts) or 1.0
    return "".join(bars[min(int(v / hi * (len(bars) - 1) + 0.5), len(bars) - 1)] for v in pts)


def _print_sim(C: Any, res: Any, trace: Path | None) -> None:
    con = C._console()
    c = res.counts
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Model", escape(f"{res.model} on {res.cluster}"))
    grid.add_row("Setup", escape(f"{res.config.replicas} replica(s), tp={res.inference.tp} pp={res.inference.pp}, "
                                 f"{res.config.scheduler}, router {res.config.router}"))
    grid.add_row("Workload", escape(res.workload))
    grid.add_row("Requests", f"{c['arrived']} arrived = {c['completed']} completed + {c['rejected']} rejected + "
                 f"{c['running']} running + {c['queued']} queued")
    for why, k in res.rejections.items():
        grid.add_row("  rejected", escape(f"{k}: {why}"))
    grid.add_row("Throughput", f"{C.fmt_count(res.output_tokens_per_s)} output tokens/s "
                 f"({C.fmt_count(res.output_tokens_per_s_per_accelerator)} per accelerator), "
                 f"{res.requests_per_s:.2f} requests/s over {C.fmt_time(res.duration_s)}")
    if res.goodput_requests_per_s is not None:
        grid.add_row("Goodput", f"{res.goodput_requests_per_s:.2f} requests/s within the SLO "
                     f"({C.fmt_pct(res.slo_attainment)} of requests)")
    grid.add_row("KV cache", f"{res.kv_blocks_per_replica} blocks of {res.block_size} tokens per replica; "
                 f"utilisation mean {C.fmt_pct(res.kv_utilization_mean)}, max {C.fmt_pct(res.kv_utilization_max)}")
    grid.add_row("Batch", f"mean {res.mean_batch:.1f} sequences; {res.preemptions} preemptions; "
                 f"{res.iterations} iterations")
    grid.add_row("Queue", _spark(res.timeseries.get("queue", [])))
    grid.add_row("KV use", _spark(res.timeseries.get("kv_utilization", [])))
    if trace is not None:
        grid.add_row("Trace", escape(f"{trace} ({len(res.trace_events)} iterations; open in chrome://tracing)"))
    grid.add_row("Simulated in", f"{res.wall_time_s:.2f} s")
    grid.add_row("Error band", C.error_band_text(res.error_band_pct, res.error_band_engine, serving=True))
    con.print(grid)
    t = Table(title="Latency (completed requests)")
    for col in ("metric", "mean", "p50", "p90", "p99"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for name, st in (("TTFT ms", res.ttft_s), ("TPOT ms", res.tpot_s), ("end-to-end ms", res.e2e_s),
                     ("normalized ms/token", res.normalized_latency_s)):
        t.add_row(name, _ms(st.mean), _ms(st.p50), _ms(st.p90), _ms(st.p99))
    con.print(t)


def _print_plan(C: Any, plan: Any) -> None:
    con = C._console()
    t = Table(title=f"{plan.model} at {plan.rate:g} req/s, SLO TTFT <= {plan.slo_ttft_s:g} s, TPOT <= "
              f"{plan.slo_tpot_s:g} s for {plan.attainment:.0%} of requests (cheapest first)")
    for col, just in (("accelerator", "left"), ("tp", "right"), ("max req/s per replica", "right"),
                      ("replicas", "right"), ("accelerators", "right"), ("USD/h", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for cnd in plan.candidates:
        t.add_row(escape(cnd.accelerator), str(cnd.tp), f"{cnd.max_rate_per_replica:.2f}", str(cnd.replicas),
                  str(cnd.n_accelerators), f"{cnd.usd_per_hour:,.2f}")
    con.print(t)
    if plan.best is None:
        con.print("[bold]No configuration meets the SLO[/bold] (see the skipped list in --json).")
    else:
        b = plan.best
        extra = f", verified attainment {C.fmt_pct(b.verified_attainment)}" if b.verified_attainment is not None \
            else ""
        cost = f", ${b.usd_per_million_output_tokens:,.3f} per million output tokens" \
            if b.usd_per_million_output_tokens is not None else ""
        con.print(f"[bold]Cheapest[/bold]: {b.replicas} x {escape(b.accelerator)} tp={b.tp} "
                  f"({b.n_accelerators} accelerators, ${b.usd_per_hour:,.2f}/h{cost}{extra}); one replica sustains "
                  f"{b.max_rate_per_replica:.2f} req/s")
    for k, v in plan.skipped.items():
        con.print(f"  skipped {escape(k)}: {escape(v)}", markup=True)
    con.print("[bold]Assumptions[/bold]")
    for a in plan.assumptions:
        con.print(f"  - {a}", markup=False)
