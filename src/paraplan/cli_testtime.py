"""``paraplan testtime``: choose a test-time scaling strategy and N under a latency or cost budget.

The accuracy curve is the user's (``--curve FILE`` YAML/CSV, or ``--points`` inline); latency and cost come
from the serving estimator, eFLOPs from the Kinetics cost model (:mod:`paraplan.testtime`). Guide:
``docs/testtime.md``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .cli_common import _console, _write_json, fmt_count, fmt_pct, fmt_time, handle_errors


def register(app: typer.Typer, plan_app: typer.Typer, validate_app: typer.Typer) -> None:
    """Add ``testtime`` to the paraplan CLI."""

    @app.command("testtime")
    @handle_errors
    def testtime(
        cluster: Annotated[str, typer.Option("--cluster", "-c", help="Preset, NAME:COUNT or an accelerator.")],
        model: Annotated[str | None, typer.Option("--model", "-m", help="Catalog model (default: the curve file's).")]
        = None,
        curve: Annotated[str | None, typer.Option("--curve", help="Accuracy curve: YAML or CSV file.")] = None,
        points: Annotated[str | None, typer.Option(
            "--points", help="Inline curve X:ACC,... (with --strategy; X = samples, or tokens for long_reasoning).")]
        = None,
        strategy: Annotated[str, typer.Option(
            "--strategy", help="best_of_n, self_consistency, parallel_reasoning or long_reasoning (--points).")]
        = "best_of_n",
        tokens_per_sample: Annotated[float | None, typer.Option(
            "--tokens-per-sample", help="Generated tokens per sample (sample curves given by --points).")] = None,
        input_len: Annotated[int | None, typer.Option("--input-len", "-i", help="Prompt tokens.")] = None,
        latency_budget: Annotated[float | None, typer.Option("--latency-budget", help="Seconds per problem.")]
        = None,
        cost_budget: Annotated[float | None, typer.Option("--cost-budget", help="USD per problem.")] = None,
        tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor parallel size per replica.")] = 1,
        weight_bits: Annotated[float, typer.Option("--weight-bits")] = 16.0,
        act_bits: Annotated[int, typer.Option("--act-bits")] = 16,
        kv_bits: Annotated[float, typer.Option("--kv-bits")] = 16.0,
        price: Annotated[float | None, typer.Option("--price", help="USD per accelerator-hour.")] = None,
        epsilon: Annotated[float, typer.Option("--epsilon", help="Saturation threshold (accuracy gain).")] = 0.01,
        json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write JSON ('-' = stdout).")]
        = None,
    ) -> None:
        """Pick best-of-N / self-consistency / long or parallel reasoning and N under a latency or cost budget."""
        from . import cli as C
        from .errors import ParaplanError
        from .infer import InferenceConfig
        from .testtime import Curve, load_curves, parse_points, plan_testtime

        if (curve is None) == (points is None):
            raise ParaplanError("give exactly one of --curve FILE and --points X:ACC,...")
        meta: dict[str, Any] = {}
        if curve is not None:
            curves, meta = load_curves(curve)
        else:
            x = "tokens" if strategy == "long_reasoning" else "samples"
            curves = [Curve(strategy=strategy, x=x, points=parse_points(points or ""),  # type: ignore[arg-type]
                            tokens_per_sample=tokens_per_sample, source="--points")]
        mname = model or meta.get("model")
        if not mname:
            raise ParaplanError("--model is needed (the curve file names none)")
        m = C.resolve_model(str(mname))
        c = C.resolve_cluster(cluster, None)
        ilen = int(input_len if input_len is not None else meta.get("input_len", 256))
        cfg = InferenceConfig(tp=tp, weight_bits=weight_bits, act_bits=act_bits, kv_bits=kv_bits)
        plan = plan_testtime(m, c, cfg, curves, input_len=ilen, latency_budget_s=latency_budget,
                             cost_budget_usd=cost_budget, price=price, epsilon=epsilon)
        payload = {"model": m.name, "cluster": c.name, "input_len": ilen, "curve_source": meta.get("source", curve or
                                                                                                     "--points"),
                   **plan.to_json()}
        if json_out is not None:
            _write_json(payload, json_out)
            if json_out == "-":
                return
        con = _console()
        t = Table(title=escape(f"Test-time options: {m.name} on {c.name} (prompt {ilen} tokens)"))
        for col in ("strategy", "N / tokens", "tokens/sample", "accuracy", "latency", "cost (USD)", "eFLOPs",
                    "budget"):
            t.add_column(col, justify="left" if col == "strategy" else "right")
        for o in plan.options:
            mark = "[bold green]best[/]" if o is plan.best else ("ok" if o.within_budget else "[red]over[/]")
            t.add_row(o.strategy, f"{o.x:g}" + ("" if o.measured else "*"), fmt_count(o.tokens_per_sample),
                      fmt_pct(o.accuracy), fmt_time(o.latency_s),
                      "n/a" if o.cost_usd is None else f"{o.cost_usd:.4f}", fmt_count(o.eflops), mark)
        con.print(t)
        for s, d in plan.saturation.items():
            parts = [f"empirical x = {d['empirical_x']:g}" if d.get("empirical_x") else "empirical: not reached"]
            if d.get("ttspm_p") is not None:
                parts.append(f"TTSPM p = {d['ttspm_p']:.3f}, N* = {d['ttspm_n_star']}")
            con.print(f"Saturation ({escape(s)}, gain < {epsilon:g}): " + "; ".join(parts))
        if plan.best is None:
            con.print("[red]No option fits the budget.[/]")
        else:
            b = plan.best
            usd = "" if b.cost_usd is None else f"{b.cost_usd:.4f} USD per problem"
            con.print(f"[bold]Choice:[/] {escape(b.strategy)} at {b.x:g} ({b.x_kind}): accuracy "
                      f"{fmt_pct(b.accuracy)}, {fmt_time(b.latency_s)}, {usd}")
        con.print("* interpolated between measured points")
