"""Shared plumbing for every paraplan CLI module: console, error handling, JSON output, human units.

Each command module (``cli``, ``cli_serve``, ``cli_calibrate``, ...) imports from here, so no module has to import
the half-initialised ``paraplan.cli`` while it is registering its commands.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from .errors import ParaplanError

F = TypeVar("F", bound=Callable[..., Any])


def _console() -> Console:
    """Rich console on stdout; 120 columns when not a terminal (pipes, tests) unless COLUMNS is set."""
    con = Console(highlight=False)
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con = Console(highlight=False, width=120)
    return con


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg', '')}" if loc else str(e.get("msg", "")))
        return f"invalid {exc.title}: " + "; ".join(parts)
    if isinstance(exc, FileNotFoundError):
        name = exc.filename or (exc.args[-1] if exc.args else "")
        return f"file not found: {name}"
    return " ".join(str(exc).split())


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def handle_errors(func: F) -> F:
    """User errors -> one ``error: ...`` line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ParaplanError, ValidationError, FileNotFoundError, IsADirectoryError) as exc:
            raise _fail(_one_line(exc)) from None

    return wrapper  # type: ignore[return-value]


def _write_json(obj: Any, dest: str) -> None:
    text = json.dumps(obj, indent=2, default=str)
    if dest == "-":
        typer.echo(text)
    else:
        path = Path(dest)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")


_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


def parse_count(text: str) -> float:
    """``1e12``, ``300B``, ``2T``, ``1.5t``, ``500M``, ``1_000_000`` -> a number."""
    t = text.strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)", t)
    if not m:
        raise typer.BadParameter(f"'{text}' is not a count (examples: 1e12, 300B, 2T)")
    value = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"'{text}' must be a positive count")
    return value


# ------------------------------------------------------------------ human units
def fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    if s < 120:
        return f"{s:.2f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def fmt_count(x: float | None, unit: str = "") -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}{unit}"
    return f"{x:.1f}{unit}" if x != int(x) else f"{int(x)}{unit}"


def fmt_gb(b: float) -> str:
    return f"{b / 1e9:.2f}"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100.0 * x:.1f}%"


def error_band_text(pct: float | None, engine: str | None = None, *, serving: bool = False) -> str:
    """The error band of an estimate in words (CLI and web page): training bands are the leave-one-source-out
    p90; serving bands the p90 of the engine kind ``engine`` after the fit."""
    if pct is None:
        return "none (unvalidated layer or engine kind)" if serving else "none (unvalidated layer)"
    basis = (f"published runs of engine kind '{engine}', after the fit" if serving
             else "published runs, each source held out of the fit")
    return f"±{pct:.0f}% (p90 APE on {basis})"


def _num_or_dash(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def time_table(components_s: dict[str, float], total_s: float, title: str = "Time per step (rows sum to the total)",
               share: str = "% of step") -> Table:
    """Seconds per named component (ms below a second), their share, the total as the footer; zero rows hidden."""
    t = Table(title=title, show_footer=True)
    t.add_column("component", footer="total")
    unit, scale, spec = ("s", 1.0, ".3f") if total_s >= 1.0 else ("ms", 1e3, ".2f")
    t.add_column(unit, justify="right", footer=format(total_s * scale, spec))
    t.add_column(share, justify="right", footer="100.0%")
    hidden = 0
    for k, v in components_s.items():
        if v == 0.0:
            hidden += 1
            continue
        t.add_row(k, format(v * scale, spec), fmt_pct(v / total_s if total_s else 0.0))
    t.caption = f"{hidden} zero rows hidden" if hidden else None
    return t


def memory_table(components_bytes: dict[str, float], total_bytes: float, capacity_bytes: float, fits: bool,
                 title: str = "Memory per accelerator (peak stage)") -> Table:
    """GB per named component, their share, the total as the footer and the capacity verdict as the caption."""
    mt = Table(title=title, show_footer=True)
    mt.add_column("component", footer="total")
    mt.add_column("GB", justify="right", footer=fmt_gb(total_bytes))
    mt.add_column("%", justify="right", footer="100.0%")
    for k, v in components_bytes.items():
        if v == 0.0:
            continue
        mt.add_row(k, fmt_gb(v), fmt_pct(v / total_bytes if total_bytes else 0.0))
    mt.caption = f"capacity {fmt_gb(capacity_bytes)} GB: " + ("fits" if fits else "does NOT fit")
    return mt


def choice_enum(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """A typer choice type over ``values`` (member names are the values with '-' as '_'; '1f1b' -> one_f_one_b)."""
    def member(v: str) -> str:
        key = v.replace("-", "_")
        return "one_f_one_b" if key == "1f1b" else key

    return StrEnum(name, {member(v): v for v in values})  # type: ignore[return-value]


#: the calibration layers (paraplan.cost.efficiency.LAYERS, not imported here to keep start-up light)
LayerName = choice_enum("LayerName", ("spec", "curves"))
