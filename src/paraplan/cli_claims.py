"""``paraplan claims``: the papers' headline numbers against paraplan's own predictions, computed live."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from .cli_common import _console, _write_json, handle_errors

_PREFIX = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def fmt_value(x: float | None, unit: str) -> str:
    """A claim value in human units: SI prefixes for physical units, plain for ratios, percent for fractions."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if unit in ("%", "fraction"):
        return f"{100 * x:.1f}%"
    if unit in ("x", "ratio", ""):
        return f"{x:.3g}{'x' if unit == 'x' else ''}"
    if unit == "s":
        if abs(x) >= 3600:
            return f"{x / 3600:.3g} h"
        if abs(x) >= 1 or x == 0:
            return f"{x:.3g} s"
        return f"{x * 1e3:.3g} ms" if abs(x) >= 1e-3 else f"{x * 1e6:.3g} µs"
    for scale, p in _PREFIX:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {p}{unit}"
    return f"{x:.3g} {unit}"


def claims_cmd(
    paper: Annotated[str | None, typer.Option("--paper", help="Only this paper (its key or part of its title).")]
    = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the results as JSON to FILE ('-': stdout).")]
    = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a modelled claim is out of tolerance.")]
    = False,
    list_papers: Annotated[bool, typer.Option("--list", help="List the papers with claims and exit.")] = False,
) -> None:
    """Reproduce the systems papers' headline numbers from paraplan's own model: paper, claim, the paper's
    number, paraplan's number, tolerance, within or not, and the mechanism. Computed live, never stored."""
    from .claims import load_claims, papers, run_claims

    if list_papers:
        t = Table(box=box.SIMPLE_HEAD, title="Papers with claims")
        t.add_column("key")
        t.add_column("paper")
        t.add_column("claims", justify="right")
        counts: dict[str, int] = {}
        for c in load_claims():
            counts[c.paper_key] = counts.get(c.paper_key, 0) + 1
        for k, title in papers().items():
            t.add_row(k, escape(title), str(counts[k]))
        _console().print(t)
        return
    results = run_claims(paper)
    if json_out:
        _write_json({"claims": [r.to_json() for r in results]}, json_out)
        if json_out == "-":
            return
    con = _console()
    t = Table(box=box.SIMPLE_HEAD, title="Paper claims, reproduced by paraplan's model", show_lines=False)
    for col, just in (("paper", "left"), ("claim", "left"), ("paper's", "right"), ("paraplan", "right"),
                      ("tolerance", "right"), ("ok", "center"), ("mechanism / reason", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    n_ok = n_bad = n_nr = 0
    for r in results:
        c = r.claim
        if c.status == "not_reproduced":
            mark, n_nr = "[yellow]not reproduced[/]", n_nr + 1
        elif r.ok:
            mark, n_ok = "[green]yes[/]", n_ok + 1
        else:
            mark, n_bad = "[red]NO[/]", n_bad + 1
        why = r.error or (c.reason if c.status == "not_reproduced" else c.mechanism)
        if r.note:
            why = f"{why} ({r.note})"
        t.add_row(escape(c.paper_key), escape(c.claim), fmt_value(c.expected, c.unit), fmt_value(r.predicted, c.unit),
                  c.tolerance_text, mark, escape(why))
    con.print(t)
    con.print(f"{n_ok} within tolerance, {n_bad} out of tolerance, {n_nr} not reproduced (reason given), "
              f"{len(results)} claims from {len({r.claim.paper_key for r in results})} papers")
    if strict and n_bad:
        raise typer.Exit(1)


def register(app: typer.Typer, plan_app: Any = None, validate_app: Any = None) -> None:
    """Add ``claims`` to the paraplan CLI."""
    app.command("claims")(handle_errors(claims_cmd))
