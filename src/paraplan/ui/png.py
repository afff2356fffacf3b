"""PNG export of a view's charts with matplotlib (offline; Plotly's static export needs kaleido and a Chrome).

Draws the subset of Plotly the figures of :mod:`paraplan.ui.charts` use: bars (vertical, horizontal, stacked,
grouped, with ``base`` for the pipeline Gantt), lines and markers, log axes and a second y axis."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _title(fig: dict[str, Any]) -> str:
    t = fig.get("layout", {}).get("title", {})
    return t.get("text", "") if isinstance(t, dict) else str(t)


def _axis_title(ax: dict[str, Any]) -> str:
    t = ax.get("title", {})
    return t.get("text", "") if isinstance(t, dict) else str(t or "")


def _draw(ax: Any, fig: dict[str, Any]) -> None:
    lay = fig.get("layout", {})
    stack = lay.get("barmode") == "stack"
    group = lay.get("barmode") == "group"
    bars = [t for t in fig["data"] if t.get("type") == "bar"]
    ax2 = None
    bottoms: dict[Any, float] = {}
    cats: list[Any] = []
    for t in bars:
        for v in (t["x"] if t.get("orientation") != "h" else t["y"]):
            if v not in cats:
                cats.append(v)
    pos = {c: i for i, c in enumerate(cats)}
    width = 0.8 / max(len(bars), 1) if group else 0.8
    for bi, t in enumerate(bars):
        color = t.get("marker", {}).get("color")
        color = color if isinstance(color, str) else None
        if t.get("orientation") == "h":
            ys = [pos[y] for y in t["y"]]
            left = t.get("base")
            if stack and left is None:  # horizontal stack: each trace starts where the previous ones ended
                left = [bottoms.get(y, 0.0) for y in t["y"]]
                for y, x in zip(t["y"], t["x"], strict=True):
                    bottoms[y] = bottoms.get(y, 0.0) + (x or 0.0)
            ax.barh(ys, t["x"], left=left, color=color, label=t.get("name"), height=0.7,
                    edgecolor="white", linewidth=0.4 if len(ys) < 200 else 0.0)
            ax.set_yticks(range(len(cats)), [str(c) for c in cats])
            if lay.get("yaxis", {}).get("autorange") == "reversed":
                ax.set_ylim(len(cats) - 0.5, -0.5)
        else:
            xs = [pos[x] + (bi - (len(bars) - 1) / 2) * width if group else pos[x] for x in t["x"]]
            base = [bottoms.get(x, 0.0) for x in t["x"]] if stack else None
            ax.bar(xs, t["y"], bottom=base, width=width, color=color, label=t.get("name"))
            if stack:
                for x, y in zip(t["x"], t["y"], strict=True):
                    bottoms[x] = bottoms.get(x, 0.0) + (y or 0.0)
            ax.set_xticks(range(len(cats)), [str(c).replace("<br>", "\n") for c in cats],
                          rotation=20 if len(cats) > 4 else 0, fontsize=7)
    for t in fig["data"]:
        if t.get("type") != "scatter":
            continue
        target = ax
        if t.get("yaxis") == "y2":
            if ax2 is None:
                ax2 = ax.twinx()
                ax2.set_ylabel(_axis_title(lay.get("yaxis2", {})))
                if lay.get("yaxis2", {}).get("type") == "log":
                    ax2.set_yscale("log")
            target = ax2
        xs = [pos.get(x, x) if cats else x for x in t["x"]]
        ys = [math.nan if y is None else y for y in t["y"]]
        mode = t.get("mode", "lines")
        line = t.get("line", {})
        style = {"dash": "--", "dot": ":"}.get(line.get("dash", "solid"), "-")
        color = line.get("color") or t.get("marker", {}).get("color")
        color = color if isinstance(color, str) else None
        if "lines" in mode:
            target.plot(xs, ys, style, color=color, label=t.get("name"), marker="o" if "markers" in mode else None,
                        markersize=3)
        else:
            if str(t.get("marker", {}).get("symbol", "")).startswith("line-ew"):
                target.scatter(xs, ys, s=3000, marker="_", linewidths=3, color=color, label=t.get("name"))
            else:
                target.scatter(xs, ys, s=12, color=color, label=t.get("name"), alpha=0.8)
    for key, setter in (("xaxis", ax.set_xscale), ("yaxis", ax.set_yscale)):
        if lay.get(key, {}).get("type") == "log":
            setter("log")
    ax.set_xlabel(_axis_title(lay.get("xaxis", {})))
    ax.set_ylabel(_axis_title(lay.get("yaxis", {})))
    ax.set_title(_title(fig).replace("<br>", " "), fontsize=9)
    if len(fig["data"]) > 1:
        ax.legend(fontsize=6, loc="best")


def render_png(view: dict[str, Any], path: str | Path, dpi: int = 110) -> int:
    """Write every chart of ``view`` into one PNG (a column of panels); returns how many were drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = view.get("charts") or {}
    n = max(len(figs), 1)
    fig, axes = plt.subplots(n, 1, figsize=(10, 3.6 * n), squeeze=False)
    if not figs:
        axes[0][0].text(0.5, 0.5, view.get("title", "no charts"), ha="center", va="center")
        axes[0][0].axis("off")
    for ax, f in zip((a[0] for a in axes), figs.values(), strict=False):
        _draw(ax, f)
    fig.suptitle(view.get("title", ""), fontsize=11)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return len(figs)
