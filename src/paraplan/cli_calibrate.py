"""``paraplan calibrate`` and ``paraplan validate measured`` (issue 8), registered on the main CLI by
:func:`register`::

    from .cli_calibrate import register
    register(app, validate_app)

Measuring needs the ``calibrate`` extra (PyTorch, scipy); ``calibrate --from-runs`` needs only scipy. The
modules are imported inside the commands, so ``paraplan --help`` stays fast without torch. User errors are one
line ``error: ...`` on stderr with exit code 2, as elsewhere in the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class Grid(StrEnum):
    full = "full"
    quick = "quick"


# ===================================================================== plumbing
from .cli_common import _console, _one_line, _write_json, handle_errors  # noqa: E402,F401

_handle = handle_errors


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100.0 * x:.1f}%"


def _ms(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    return f"{s * 1e3:.2f}" if s < 10 else f"{s * 1e3:,.0f}"


def _progress(quiet: bool) -> Any:
    """A rich progress bar with one task per named step; ``None`` when quiet."""
    if quiet:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=False)


def _tracker(bar: Any) -> Callable[[str, int, int], None]:
    tasks: dict[str, Any] = {}

    def update(name: str, done: int, total: int) -> None:
        if bar is None:
            return
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=max(total, 1))
        bar.update(tasks[name], completed=done, total=max(total, 1))

    return update


# ===================================================================== calibrate
def print_profile(doc: dict[str, Any], path: str | None) -> None:
    con = _console()
    cal = doc["calibration"]
    base = cal.get("base") or {}
    t = Table(title=f"Calibrated accelerator ({cal.get('device')}, {cal.get('threads')} thread(s) per process, "
                    f"{cal.get('ranks')} rank(s), {cal.get('dtype')})", box=box.SIMPLE_HEAD)
    t.add_column("", no_wrap=True)
    t.add_column("spec sheet", justify="right")
    t.add_column("calibrated", justify="right")
    for k, v in sorted(doc.get("peak_tflops", {}).items()):
        t.add_row(f"peak {k} TFLOP/s", f"{(base.get('peak_tflops') or {}).get(k, float('nan')):.4g}", f"{v:.4g}")
    t.add_row("memory GB/s", f"{base.get('memory_bw_gbs', float('nan')):.4g}",
              f"{doc['memory_bw_gbs']:.4g} (STREAM triad)")
    link = cal.get("link") or {}
    if link:
        t.add_row("local link GB/s", f"{base.get('scaleup_bw_gbs', 0):.4g}",
                  f"{link['bw_gbs']:.4g}, {link['latency_us']:.0f} µs ({escape(link['name'])})")
    load = cal.get("loaded") or {}
    if load:
        t.add_row("one of all ranks busy", "-", f"compute x {load['compute_factor']:.2f}, "
                                                f"bandwidth x {load['bandwidth_factor']:.2f}")
    con.print(t)
    curves = cal["curves"]
    ct = Table(title="Fitted curves (efficiency.yaml forms; fit APE over the microbenchmark points)",
               box=box.SIMPLE_HEAD)
    for c in ("curve", "parameters", "APE med / p90", "points"):
        ct.add_column(c, overflow="fold")
    for dt_, g in curves.get("gemm", {}).items():
        ct.add_row(f"GEMM {dt_}", f"eff_max {g['eff_max']:.3g}, halves m/n/k {g['m_half']:.3g}/{g['n_half']:.3g}/"
                   f"{g['k_half']:.3g}, eff_mem {g['eff_mem']:.3g}, t0 {g['t0_us']:.3g} µs",
                   f"{g['ape_median_pct']:.1f} / {g['ape_p90_pct']:.1f} %", str(g["rows"]))
    a = curves["attention"]
    pf, dc = a["prefill"]["bf16"], a["decode"]["bf16"]
    ct.add_row("attention prefill", f"eff_max {pf['eff_max']:.3g}, l_half {pf['l_half']:.3g}, t0 {pf['t0_us']:.3g} µs",
               f"{pf['ape_median_pct']:.1f} / {pf['ape_p90_pct']:.1f} %", str(pf["rows"]))
    ct.add_row("attention decode", f"eff_kv {dc['eff_kv']:.3g}, t0 {dc['t0_us']:.3g} µs",
               f"{dc['ape_median_pct']:.1f} / {dc['ape_p90_pct']:.1f} %", str(dc["rows"]))
    m = curves["memory"]
    ops = ", ".join(f"{k} {v:.2f}" for k, v in m["eff_by_op"].items())
    ct.add_row("streaming memory", f"eff {m['eff']:.3g} ({ops}), t0 {m['t0_us']:.3g} µs",
               f"{m['ape_median_pct']:.1f} / {m['ape_p90_pct']:.1f} %", str(m["rows"]))
    for op, c in (curves.get("collectives") or {}).get("scaleup", {}).items():
        ct.add_row(f"{op}", f"alpha {c['alpha_us']:.4g} µs, eff {c['eff']:.3g} of {c['link_gbs'][0]:.4g} GB/s",
                   f"{c['ape_median_pct']:.1f} / {c['ape_p90_pct']:.1f} %", str(c["rows"]))
    con.print(ct)
    fit = cal.get("fit") or {}
    st = Table(title="Shared parameters (from probe steps: configurations validate measured never uses)",
               box=box.SIMPLE_HEAD)
    for c in ("estimator", "parameters", "probe APE before -> after", "leave-one-out APE med / p90"):
        st.add_column(c, overflow="fold")
    for key, label, params in (("training_probes", "training", cal.get("training") or {}),
                               ("inference_probes", "inference", cal.get("inference") or {})):
        f = fit.get(key)
        ptxt = ", ".join(f"{k} {v:.4g}" for k, v in params.items())
        if not f:
            st.add_row(label, ptxt, "-", "-")
            continue
        cv = f.get("cross_validation") or {}
        st.add_row(label, ptxt, f"{_pct(f['baseline']['median_ape'])} -> {_pct(f['in_sample']['median_ape'])}",
                   f"{_pct(cv.get('median_ape'))} / {_pct(cv.get('p90_ape'))}")
    con.print(st)
    timings = cal.get("timings_s") or {}
    con.print("Microbenchmark seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
              + f"; total {cal.get('elapsed_s', 0):.0f} s")
    if path:
        con.print(f"Profile written to [bold]{escape(path)}[/bold]: apply it with paraplan.calibrate.load_profile "
                  f"(paraplan train --calibration {escape(path)})")


def print_runs(res: Any, path: str | None) -> None:
    con = _console()
    t = Table(title=f"Shared training parameters fitted on {escape(res.data)}", box=box.SIMPLE_HEAD)
    for c in ("family", "rows", "parameter", "catalog", "fitted ± s.e.", "APE catalog -> fitted",
              "cross-validated APE med / p90"):
        t.add_column(c, overflow="fold")
    for fam, r in res.families.items():
        j = r.to_json()
        cv = j["cross_validation"] or {}
        first = True
        for name in r.names:
            se = r.uncertainty.get(name)
            t.add_row(fam if first else "", str(r.n_rows) if first else "", name,
                      f"{j['baseline']['params'].get(name, float('nan')):.4g}",
                      f"{r.params[name]:.4g}" + (f" ± {se:.2g}" if se is not None else " (no CV: 1 row)"),
                      f"{_pct(j['baseline']['median_ape'])} -> {_pct(j['in_sample']['median_ape'])}" if first else "",
                      (f"{_pct(cv.get('median_ape'))} / {_pct(cv.get('p90_ape'))} ({cv.get('method')})"
                       if cv and first else ("-" if first else "")))
            first = False
    con.print(t)
    if res.skipped:
        con.print(f"{len(res.skipped)} row(s) skipped: " + "; ".join(
            f"{escape(s['row_id'])}: {escape(s['reason'])}" for s in res.skipped[:5]) + (" ..." if len(
                res.skipped) > 5 else ""))
    if path:
        con.print(f"Profile written to [bold]{escape(path)}[/bold] (kind: runs; applies to clusters of the fitted "
                  "families)")


@_handle
def calibrate_cmd(
    device: Annotated[Device, typer.Option("--device", help="Device to measure.")] = Device.cpu,
    out: Annotated[str, typer.Option("--out", "-o", metavar="FILE", help="Where to write the profile (YAML).")]
    = "profile.yaml",
    quick: Annotated[bool, typer.Option("--quick", help="Fewer points per microbenchmark (CI; about 15 s on CPU).")]
    = False,
    from_runs: Annotated[Path | None, typer.Option(
        "--from-runs", metavar="CSV", help="Fit the shared training parameters on your measured runs "
        "(train-measured.csv columns) instead of measuring this machine.")] = None,
    params: Annotated[str | None, typer.Option(
        "--params", help="With --from-runs: parameters to fit, comma separated (default: what the row count "
        "supports).")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, help="CPU threads per process (default: the cores shared by --ranks processes).")]
    = None,
    ranks: Annotated[int, typer.Option("--ranks", min=1, help="Local processes for collectives (and the "
                                                                "data-parallel rank the profile describes).")] = 2,
    no_probes: Annotated[bool, typer.Option("--no-probes", help="Skip the probe steps (no shared parameters).")]
    = False,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Also write the profile (or "
                                                                                "fit) as JSON ('-' = stdout).")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure this machine (or fit your own runs) into a profile that the estimators apply.

    Microbenchmarks of a few seconds each: GEMM, STREAM and layer memory ops, attention, collectives.

    They are fitted into the catalog's efficiency-curve forms; small probe steps then fit the shared overheads."""
    from .calibrate.device import CalibrationError
    from .calibrate.profile import save_profile

    bar = _progress(quiet or json_out == "-")
    if from_runs is not None:
        from .calibrate.runs import fit_runs

        names = tuple(x.strip() for x in params.split(",") if x.strip()) if params else None
        if bar is not None:
            with bar:
                res = fit_runs(from_runs, names=names, progress=_tracker(bar))
        else:
            res = fit_runs(from_runs, names=names)
        doc = res.to_profile()
        save_profile(doc, out, header=f"# paraplan calibrate --from-runs {from_runs}")
        if json_out is not None:
            _write_json(doc, json_out)
        if json_out != "-":
            print_runs(res, out)
        return
    if params is not None:
        raise CalibrationError("--params applies to --from-runs only")
    from .calibrate.run import calibrate

    kwargs = dict(quick=quick, threads=threads, ranks=ranks, probes=not no_probes)
    if bar is not None:
        with bar:
            doc = calibrate(device.value, progress=_tracker(bar), **kwargs)  # type: ignore[arg-type]
    else:
        doc = calibrate(device.value, **kwargs)  # type: ignore[arg-type]
    save_profile(doc, out, header=f"# paraplan calibrate --device {device.value}{' --quick' if quick else ''}: "
                                  "an accelerator entry plus calibration (see docs/calibration.md)")
    if json_out is not None:
        _write_json(doc, json_out)
    if json_out != "-":
        print_profile(doc, out)


# ===================================================================== validate measured
def print_measured(report: Any) -> None:
    con = _console()
    t = Table(title=f"validate measured: {report.device}, grid {report.grid}, {report.threads} thread(s), "
                    f"{report.dtype} (times in ms; APE of the calibrated prediction)", box=box.SIMPLE_HEAD)
    for c, j in (("row", "left"), ("kind", "left"), ("configuration", "left"), ("measured", "right"),
                 ("spec", "right"), ("curves", "right"), ("kernels", "right"), ("calibrated", "right"),
                 ("APE %", "right")):
        t.add_column(c, justify=j, no_wrap=c != "configuration")  # type: ignore[arg-type]
    for r in report.rows:
        ape = r.ape()
        t.add_row(escape(r.row_id), r.kind, escape(r.label), _ms(r.measured),
                  *(_ms(r.by_layer.get(k)) for k in ("spec", "curves", "kernels", "calibrated")),
                  f"{100 * ape:.1f}" if ape is not None else escape(f"skipped: {r.skipped or 'no prediction'}"))
    con.print(t)
    st = report.stats()
    s = Table(title="Median / p90 APE by layer", box=box.SIMPLE_HEAD)
    s.add_column("layer")
    s.add_column("training steps", justify="right")
    s.add_column("inference steps", justify="right")
    for lay, d in st["by_layer"].items():
        s.add_row(lay, *(f"{_pct(d[f]['median_ape'])} / {_pct(d[f]['p90_ape'])} (n={d[f]['n_predicted']})"
                         for f in ("training", "inference")))
    con.print(s)
    for fam, tg in st["targets"].items():
        con.print(f"target {fam}: median APE {_pct(tg['median_ape'])} <= {_pct(tg['target_median_ape'])}: "
                  + ("[green]met[/green]" if tg["met"] else "[red]not met[/red]"))
    con.print(f"[bold]n_rows[/bold] {st['n_rows']}  [bold]n_predicted[/bold] {st['n_predicted']}  "
              f"[bold]median APE[/bold] {_pct(st['median_ape'])}  [bold]p90 APE[/bold] {_pct(st['p90_ape'])}  "
              f"({report.elapsed_s:.0f} s)")
    for n in report.notes:
        con.print(f"note: {escape(n)}")


@_handle
def validate_measured_cmd(
    device: Annotated[Device, typer.Option("--device", help="Device to run the steps on.")] = Device.cpu,
    profile: Annotated[Path | None, typer.Option(
        "--profile", metavar="FILE", help="Calibration profile (default: calibrate now, --quick with --grid quick).")]
    = None,
    grid: Annotated[Grid, typer.Option("--grid", help="full: 14 + 4 data-parallel training configurations and 6 "
                                                      "inference batches; quick: the CI subset.")] = Grid.full,
    json_out: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the report as JSON "
                                                                                "('-' = stdout).")] = None,
    save_profile: Annotated[str | None, typer.Option(
        "--save-profile", metavar="FILE", help="When calibrating now, keep the profile.")] = None,
    max_median_ape: Annotated[float | None, typer.Option(
        "--max-median-ape", metavar="X", help="Exit 1 if the calibrated median APE exceeds X (a fraction).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Time real training and inference steps of a small plain-PyTorch GPT against paraplan's predictions.

    Layers compared: spec sheet, catalog curves, calibrated kernels, and the full calibration."""
    from .calibrate.profile import Profile, load_profile
    from .calibrate.profile import save_profile as _save
    from .validate.measured import validate_measured

    bar = _progress(quiet or json_out == "-")
    track = _tracker(bar)
    if bar is not None:
        bar.start()
    try:
        if profile is not None:
            prof = load_profile(profile)
        else:
            from .calibrate.run import calibrate

            doc = calibrate(device.value, quick=grid == Grid.quick, progress=track)
            if save_profile:
                _save(doc, save_profile)
            prof = Profile(doc, save_profile)
        report = validate_measured(prof, device.value, grid=grid.value, progress=track)
    finally:
        if bar is not None:
            bar.stop()
    if json_out is not None:
        _write_json(report.to_json(), json_out)
    if json_out != "-":
        print_measured(report)
    if max_median_ape is not None:
        med = report.stats()["median_ape"]
        if med is None or med > max_median_ape:
            typer.echo(f"median APE {_pct(med)} exceeds --max-median-ape {_pct(max_median_ape)}", err=True)
            raise typer.Exit(1)


def register(app: typer.Typer, plan_app: typer.Typer | None = None, validate_app: typer.Typer | None = None) -> None:
    """Add ``calibrate`` to ``app`` and ``measured`` to the ``validate`` group."""
    app.command("calibrate")(calibrate_cmd)
    if validate_app is not None:
        validate_app.command("measured")(validate_measured_cmd)


def main() -> None:
    """``python -m paraplan.cli_calibrate calibrate ...`` / ``... validate measured ...``: the two commands on
    their own (scripts, and before the main CLI registers them)."""
    app = typer.Typer(name="paraplan", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    val = typer.Typer(help="Compare predictions with measurements.", no_args_is_help=True)
    app.add_typer(val, name="validate")
    register(app, None, val)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
