"""Plotly figures (plain ``{"data": [...], "layout": {...}}`` dicts) built from the JSON the CLI writes.

Nothing is computed here but units and layout: every number comes from the payload (the output of the same
functions the CLI calls), and the pipeline timeline from :mod:`paraplan.cost.timeline`. The same dicts are drawn
by Plotly.js on the page and in the static report, and by :mod:`paraplan.ui.png` with matplotlib.
"""

from __future__ import annotations

import math
from typing import Any

Figure = dict[str, Any]

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#2f4b7c", "#a05195"]
KIND_COLORS = {"F": "#4e79a7", "B": "#f28e2b", "W": "#59a14f"}
#: losses against the roofline (green): anything but green
LOSS_COLORS = ["#e15759", "#f28e2b", "#4e79a7", "#edc948", "#b07aa1", "#9c755f", "#76b7b2"]
KIND_NAMES = {"F": "forward", "B": "backward", "W": "weight gradient"}


def _layout(title: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"title": {"text": title}, "margin": {"l": 70, "r": 20, "t": 50, "b": 50},
                            "legend": {"orientation": "h", "y": -0.2}, "height": 380,
                            "template": "plotly_white"}
    base.update(kw)
    if "yaxis2" in kw:  # room for the right-hand axis
        base["margin"] = {**base["margin"], "r": 70}
    return base


def _fin(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


# ===================================================================== training
def memory_stack(components: dict[str, float], capacity: float, stages: dict[str, dict[str, float]] | None = None,
                 title: str = "Memory per accelerator by component (GB)") -> Figure:
    """Stacked bars of the memory components per pipeline stage, against the capacity line."""
    stages = stages or {"worst stage": components}
    names = list(stages)
    data = []
    for i, comp in enumerate(components):
        ys = [stages[s].get(comp, 0.0) / 1e9 for s in names]
        if not any(ys):
            continue
        data.append({"type": "bar", "name": comp, "x": names, "y": ys, "marker": {"color": PALETTE[i % 12]},
                     "hovertemplate": f"{comp}: %{{y:.2f}} GB<extra>%{{x}}</extra>"})
    cap = capacity / 1e9
    data.append({"type": "scatter", "mode": "markers", "name": f"capacity {cap:.0f} GB", "x": names,
                 "y": [cap] * len(names), "marker": {"symbol": "line-ew-open", "size": 90, "color": "#d62728",
                                                     "line": {"width": 3, "color": "#d62728"}},
                 "hovertemplate": f"capacity {cap:.1f} GB<extra></extra>"})
    return {"data": data, "layout": _layout(title, barmode="stack", yaxis={"title": {"text": "GB"}})}


def time_breakdown(components: dict[str, float], total: float, title: str = "Step time by component") -> Figure:
    items = sorted(((k, v) for k, v in components.items() if v), key=lambda kv: -kv[1])
    unit, scale = ("ms", 1e3) if total < 1 else ("s", 1.0)
    return {"data": [{"type": "bar", "orientation": "h", "name": "time",
                      "y": [k for k, _ in items][::-1], "x": [v * scale for _, v in items][::-1],
                      "text": [f"{100 * v / total:.1f}%" if total else "" for _, v in items][::-1],
                      "textposition": "auto", "marker": {"color": PALETTE[0]},
                      "hovertemplate": f"%{{y}}: %{{x:.3f}} {unit}<extra></extra>"}],
            "layout": _layout(title + f" (total {total * scale:.3g} {unit})", xaxis={"title": {"text": unit}},
                              showlegend=False, margin={"l": 120, "r": 20, "t": 50, "b": 50})}


def timeline_figure(tl: Any, title: str | None = None, n_micro_total: int | None = None) -> Figure:
    """Gantt of a :class:`paraplan.cost.timeline.Timeline`: one row per stage, one bar per pass."""
    unit, scale = ("ms", 1e3) if tl.makespan_s < 1 else ("s", 1.0)
    data = []
    for kind in ("F", "B", "W"):
        ivs = [iv for st in tl.stages for iv in st if iv.kind == kind]
        if not ivs:
            continue
        data.append({
            "type": "bar", "orientation": "h", "name": KIND_NAMES[kind],
            "y": [f"stage {iv.stage}" for iv in ivs], "x": [(iv.end - iv.start) * scale for iv in ivs],
            "base": [iv.start * scale for iv in ivs], "marker": {"color": KIND_COLORS[kind],
                                                                  "line": {"color": "white", "width": 0.5}},
            "text": [str(iv.micro_batch) for iv in ivs], "textposition": "inside", "insidetextanchor": "middle",
            "customdata": [[iv.micro_batch, iv.chunk] for iv in ivs],
            "hovertemplate": f"{KIND_NAMES[kind]} mb %{{customdata[0]}} chunk %{{customdata[1]}}: "
                             f"%{{base:.3f}}-%{{x:.3f}} {unit}<extra>%{{y}}</extra>"})
    sched = tl.schedule + (f", {tl.vpp} chunks per stage" if tl.vpp > 1 else "")
    shown = (f"{tl.n_micro} micro-batches" if not n_micro_total or n_micro_total == tl.n_micro else
             f"first {tl.n_micro} of {n_micro_total} micro-batches drawn")
    t = title or (f"Pipeline timeline: {sched}, pp={tl.pp}, {shown}; idle (bubble) "
                  f"{100 * tl.idle_fraction():.1f}% of the time drawn")
    n_rows = tl.pp
    return {"data": data, "layout": _layout(t, barmode="overlay", height=max(220, 60 + 32 * n_rows),
                                            xaxis={"title": {"text": unit}},
                                            yaxis={"autorange": "reversed", "type": "category"})}


def roofline_figure(ex: dict[str, Any]) -> Figure:
    """One stacked bar: the roofline time (model FLOPs at peak) and the named losses that make up the step."""
    step = ex["step_time_s"]
    unit, scale = ("ms", 1e3) if step < 1 else ("s", 1.0)
    parts = [("roofline", ex["roofline_s"])] + sorted(((k, v) for k, v in ex["losses_s"].items() if v),
                                                      key=lambda kv: -kv[1])
    data = [{"type": "bar", "orientation": "h", "name": k, "y": ["step"], "x": [v * scale],
             "marker": {"color": "#59a14f" if k == "roofline" else LOSS_COLORS[i % len(LOSS_COLORS)]},
             "text": [f"{100 * v / step:.0f}%"], "textposition": "inside",
             "hovertemplate": f"{k}: %{{x:.3f}} {unit}<extra></extra>"} for i, (k, v) in enumerate(parts)]
    return {"data": data, "layout": _layout(f"Step against the roofline: largest loss {ex['largest_loss']}",
                                            barmode="stack", height=220, xaxis={"title": {"text": unit}},
                                            yaxis={"visible": False})}


def sensitivity_figure(sens: dict[str, Any]) -> Figure:
    """Tornado of :mod:`paraplan.sensitivity`: step-time change per input made ``delta`` worse."""
    rows = sorted(sens["factors"], key=lambda r: r["step_change"])
    d = sens["delta"]
    return {"data": [{"type": "bar", "orientation": "h", "name": "step time",
                      "y": [r["factor"] for r in rows], "x": [100 * r["step_change"] for r in rows],
                      "text": [f"{100 * r['step_change']:+.1f}%" for r in rows], "textposition": "auto",
                      "customdata": [r["description"] for r in rows], "marker": {"color": PALETTE[2]},
                      "hovertemplate": "%{customdata}: step %{x:+.2f}%<extra>%{y}</extra>"}],
            "layout": _layout(f"Sensitivity: step time when each input is {100 * d:.0f}% worse",
                              xaxis={"title": {"text": "% change of the step time"}}, showlegend=False,
                              margin={"l": 140, "r": 20, "t": 50, "b": 50})}


def training_charts(payload: dict[str, Any]) -> dict[str, Figure]:
    from ..cost.timeline import estimate_timeline

    mem = payload["memory"]
    comps = mem["components_bytes"]
    stages = None
    acts = payload.get("stage_activations_bytes")
    if acts and payload.get("strategy", {}).get("pp", 1) > 1:
        stages = {"first stage": {**comps, "activations": acts["first"]},
                  "last stage": {**comps, "activations": acts["last"]}}
    out = {"memory": memory_stack(comps, mem["capacity_bytes"], stages,
                                  "Memory per accelerator by component (GB), first and last pipeline stage"
                                  if stages else "Memory per accelerator by component (GB)"),
           "time": time_breakdown(payload["time"]["components_s"], payload["step_time_s"])}
    st = payload.get("strategy", {})
    if st.get("pp", 1) > 1:
        try:
            tl = estimate_timeline(st, payload["time"]["components_s"], payload.get("n_micro_batches", 1))
            out["timeline"] = timeline_figure(tl, n_micro_total=payload.get("n_micro_batches"))
        except ValueError:
            pass
    if payload.get("explain"):
        out["roofline"] = roofline_figure(payload["explain"])
    if payload.get("sensitivity"):
        out["sensitivity"] = sensitivity_figure(payload["sensitivity"])
    return out


def plan_charts(payload: dict[str, Any]) -> dict[str, Figure]:
    """Pareto scatter of the search (tokens/s against memory headroom), the best plan's breakdowns."""
    out: dict[str, Figure] = {}
    front = payload.get("pareto", [])
    top = payload.get("top", [])
    data = []
    for name, pts, color, size in (("Pareto frontier", front, PALETTE[0], 9), ("top plans", top, PALETTE[1], 12)):
        if not pts:
            continue
        data.append({"type": "scatter", "mode": "markers" if name == "top plans" else "lines+markers", "name": name,
                     "x": [p["memory_headroom_bytes"] / 1e9 for p in pts], "y": [p["tokens_per_s"] for p in pts],
                     "text": [f"{p['label']} on {p['n_accelerators']}<br>step {p['step_time_s']:.3g} s, "
                              f"MFU {100 * p['mfu']:.1f}%, {p['memory_bytes'] / 1e9:.1f} GB" for p in pts],
                     "marker": {"color": color, "size": size, "symbol": "diamond" if name == "top plans" else "circle"},
                     "hovertemplate": "%{text}<br>%{y:.4s} tokens/s, headroom %{x:.1f} GB<extra>" + name
                     + "</extra>"})
    if data:
        out["pareto"] = {"data": data, "layout": _layout(
            f"Search: tokens/s against memory headroom ({payload.get('n_evaluated', 0):,} strategies priced)",
            xaxis={"title": {"text": "memory headroom per accelerator (GB)"}},
            yaxis={"title": {"text": "tokens/s"}})}
    if top:
        best = top[0]
        out["time"] = time_breakdown(best["time_components_s"], best["step_time_s"], "Plan #1: step time by component")
        out["memory"] = memory_stack(best["memory_components_bytes"], best["memory_capacity_bytes"],
                                     title="Plan #1: memory per accelerator (GB)")
        if best["strategy"].get("pp", 1) > 1:
            from ..cost.timeline import estimate_timeline

            n_micro = best["strategy"]["global_batch"] // max(best["strategy"]["micro_batch"]
                                                               * best["strategy"]["dp"], 1)
            try:
                out["timeline"] = timeline_figure(estimate_timeline(best["strategy"], best["time_components_s"],
                                                                    max(n_micro, 1)), n_micro_total=max(n_micro, 1))
            except ValueError:
                pass
    return out


def compare_charts(estimates: list[dict[str, Any]]) -> dict[str, Figure]:
    labels = [f"#{i + 1} {e['model']}<br>{_short(e['strategy'])}" for i, e in enumerate(estimates)]
    comps = list(estimates[0]["time"]["components_s"])
    tdata = []
    for i, c in enumerate(comps):
        ys = [e["time"]["components_s"].get(c, 0.0) for e in estimates]
        if any(ys):
            tdata.append({"type": "bar", "name": c, "x": labels, "y": ys, "marker": {"color": PALETTE[i % 12]}})
    mcomps = list(estimates[0]["memory"]["components_bytes"])
    mdata = []
    for i, c in enumerate(mcomps):
        ys = [e["memory"]["components_bytes"].get(c, 0.0) / 1e9 for e in estimates]
        if any(ys):
            mdata.append({"type": "bar", "name": c, "x": labels, "y": ys, "marker": {"color": PALETTE[i % 12]}})
    mdata.append({"type": "scatter", "mode": "markers", "name": "capacity", "x": labels,
                  "y": [e["memory"]["capacity_bytes"] / 1e9 for e in estimates],
                  "marker": {"symbol": "line-ew-open", "size": 40, "color": "#d62728", "line": {"width": 3}}})
    return {
        "time": {"data": tdata, "layout": _layout("Step time by component (s)", barmode="stack",
                                                  yaxis={"title": {"text": "s"}})},
        "memory": {"data": mdata, "layout": _layout("Memory per accelerator (GB)", barmode="stack",
                                                    yaxis={"title": {"text": "GB"}})},
        "throughput": {"data": [{"type": "bar", "name": "tokens/s per accelerator", "x": labels,
                                 "y": [e["tokens_per_s_per_accelerator"] for e in estimates],
                                 "marker": {"color": PALETTE[4]}}],
                       "layout": _layout("Tokens/s per accelerator", showlegend=False)},
    }


def _short(s: dict[str, Any]) -> str:
    parts = [f"tp{s['tp']}", f"pp{s['pp']}" + (f"/{s['vpp']}" if s.get("vpp", 1) > 1 else ""), f"dp{s['dp']}"]
    parts += [f"mb{s['micro_batch']}", f"z{s['zero']}", s["recompute"], s["precision"]]
    return " ".join(parts)


# ===================================================================== serving
def serve_charts(payload: dict[str, Any]) -> dict[str, Figure]:
    pre, dec = payload["prefill"]["components_s"], payload["decode"]["components_s"]
    comps = [k for k in pre if pre.get(k) or dec.get(k)]
    data = [{"type": "bar", "name": "prefill (TTFT)", "x": comps, "y": [pre.get(k, 0.0) * 1e3 for k in comps],
             "marker": {"color": PALETTE[0]}},
            {"type": "bar", "name": "decode (all steps)", "x": comps, "y": [dec.get(k, 0.0) * 1e3 for k in comps],
             "marker": {"color": PALETTE[1]}}]
    mem = payload["memory"]
    return {"time": {"data": data, "layout": _layout("Time by component (ms)", barmode="group",
                                                     yaxis={"title": {"text": "ms"}})},
            "memory": memory_stack(mem["components_bytes"], mem["capacity_bytes"], {"per accelerator":
                                                                                   mem["components_bytes"]})}


def simulate_charts(payload: dict[str, Any]) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    sweep = payload.get("rate_sweep") or []
    if sweep:
        rates = [p["rate"] for p in sweep]
        data = []
        for metric, axis, color in (("ttft_s", "y", PALETTE[0]), ("tpot_s", "y2", PALETTE[1])):
            for q, dash in (("p50", "solid"), ("p90", "dot")):
                ys = [p[metric][q] * 1e3 if _fin(p[metric].get(q)) else None for p in sweep]
                data.append({"type": "scatter", "mode": "lines+markers", "name": f"{metric[:4].upper()} {q}",
                             "x": rates, "y": ys, "yaxis": axis, "line": {"color": color, "dash": dash}})
        out["latency"] = {"data": data, "layout": _layout(
            "TTFT and TPOT against request rate (simulated)", xaxis={"title": {"text": "requests/s"}},
            yaxis={"title": {"text": "TTFT ms"}, "type": "log"},
            yaxis2={"title": {"text": "TPOT ms"}, "overlaying": "y", "side": "right", "type": "log"})}
    ts = payload.get("timeseries") or {}
    if ts.get("t"):
        out["queue"] = {"data": [
            {"type": "scatter", "mode": "lines", "name": "queued requests", "x": ts["t"], "y": ts.get("queue", []),
             "line": {"color": PALETTE[2]}},
            {"type": "scatter", "mode": "lines", "name": "KV utilisation", "x": ts["t"],
             "y": ts.get("kv_utilization", []), "yaxis": "y2", "line": {"color": PALETTE[3]}}],
            "layout": _layout("Queue and KV-cache use over time", xaxis={"title": {"text": "s"}},
                              yaxis={"title": {"text": "queued"}},
                              yaxis2={"title": {"text": "KV use"}, "overlaying": "y", "side": "right",
                                      "range": [0, 1]})}
    return out


def serve_plan_charts(payload: dict[str, Any]) -> dict[str, Figure]:
    c = payload.get("candidates") or []
    if not c:
        return {}
    labels = [f"{x['accelerator']} tp{x['tp']}" for x in c]
    return {"cost": {"data": [{"type": "bar", "name": "USD/h", "x": labels, "y": [x["usd_per_hour"] for x in c],
                               "text": [f"{x['replicas']} replicas" for x in c], "textposition": "auto",
                               "marker": {"color": PALETTE[0]}}],
                     "layout": _layout("Cost per hour of each configuration meeting the SLO", showlegend=False,
                                       yaxis={"title": {"text": "USD per hour"}})}}


# ===================================================================== validation
def validation_charts(payload: dict[str, Any]) -> dict[str, Figure]:
    rows = [r for r in payload.get("rows", []) if _fin(r.get("measured")) and _fin(r.get("predicted"))
            and r["measured"] > 0 and r["predicted"] > 0]
    if not rows:
        return {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("category") or r.get("metric") or "rows", []).append(r)
    data = []
    for i, (g, rs) in enumerate(sorted(groups.items())):
        data.append({"type": "scatter", "mode": "markers", "name": g, "x": [r["measured"] for r in rs],
                     "y": [r["predicted"] for r in rs], "marker": {"color": PALETTE[i % 12], "size": 7, "opacity": 0.8},
                     "text": [f"{r['row_id']}: {r.get('model', '')} on {r.get('gpu') or r.get('hardware', '')}, "
                              f"{r.get('metric', '')}, APE {100 * (r.get('ape') or 0):.1f}%" for r in rs],
                     "hovertemplate": "%{text}<br>measured %{x:.4g}, predicted %{y:.4g}<extra></extra>"})
    lo = min(min(r["measured"], r["predicted"]) for r in rows) / 1.5
    hi = max(max(r["measured"], r["predicted"]) for r in rows) * 1.5
    data.append({"type": "scatter", "mode": "lines", "name": "y = x", "x": [lo, hi], "y": [lo, hi],
                 "line": {"color": "#333", "dash": "dash"}})
    med = payload.get("median_ape")
    title = f"Predicted against measured ({len(rows)} rows" + (f", median APE {100 * med:.1f}%)" if med else ")")
    return {"scatter": {"data": data, "layout": _layout(title, height=520,
                                                        xaxis={"title": {"text": "measured"}, "type": "log"},
                                                        yaxis={"title": {"text": "predicted"}, "type": "log"})}}
