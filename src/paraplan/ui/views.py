"""What a result looks like: summary lines, tables and charts for each kind of paraplan JSON.

:func:`detect_kind` recognises the ``--json`` output of ``train``, ``plan train``, ``serve``, ``simulate serve``,
``plan serve``, ``validate train|infer`` and ``claims``; :func:`build_view` turns it into ``{"title", "summary",
"tables", "charts"}``, drawn by the page (``static/app.js``) and by the static report alike. Cells are plain text
or ``{"text": ..., "value": ...}`` (the raw number, kept for the browser tests: shown text = formatted value).
"""

from __future__ import annotations

import math
from typing import Any

from ..cli_common import error_band_text, fmt_count, fmt_gb, fmt_pct, fmt_time
from . import charts

KINDS = ("train", "plan", "compare", "serve", "simulate", "serve_plan", "validate_train", "validate_infer", "claims")


def detect_kind(payload: dict[str, Any]) -> str:
    """Which command wrote this JSON (``ValueError`` when none did)."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    k = payload.get("kind")
    if k in KINDS:
        return str(k)
    if "claims" in payload and isinstance(payload["claims"], list):
        return "claims"
    if "top" in payload and "n_evaluated" in payload:
        return "plan"
    if "candidates" in payload and "slo_ttft_s" in payload:
        return "serve_plan"
    if "counts" in payload and "timeseries" in payload:
        return "simulate"
    if "prefill" in payload and "ttft_s" in payload:
        return "serve"
    if "step_time_s" in payload and "strategy" in payload and "time" in payload:
        return "train"
    if "rows" in payload and "median_ape" in payload:
        return "validate_infer" if "by_category" in payload or "target_coverage" in payload else "validate_train"
    if "estimates" in payload:
        return "compare"
    raise ValueError("not a paraplan JSON result (expected the --json output of train, plan train, serve, "
                     "simulate serve, plan serve, validate or claims)")


def _cell(text: str, value: Any = None) -> dict[str, Any]:
    return {"text": text, "value": value}


def _table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows, "note": note}


def _sum(key: str, label: str, text: str, value: Any = None) -> dict[str, Any]:
    return {"key": key, "label": label, "text": text, "value": value}


def _band(p: dict[str, Any]) -> dict[str, Any]:
    """The error band row of a training or serving result (serving results name their engine kind)."""
    band = p.get("error_band_pct")
    text = error_band_text(band, p.get("error_band_engine"), serving="error_band_engine" in p)
    return _sum("error_band_pct", "Error band", text, band)


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _ms(s: float | None) -> str:
    return "n/a" if s is None or not math.isfinite(s) else f"{s * 1e3:.1f}"


# ===================================================================== training
def _train(p: dict[str, Any]) -> dict[str, Any]:
    s = p["strategy"]
    strat = (f"tp={s['tp']} pp={s['pp']} dp={s['dp']} cp={s['cp']} ep={s['ep']} sp={'on' if s['sp'] else 'off'} "
             f"vpp={s['vpp']} | {s['schedule']} | micro-batch {s['micro_batch']}, global batch {s['global_batch']} "
             f"({p.get('n_micro_batches', '?')} micro-batches/step) | ZeRO {s['zero']}"
             f"{' HSDP' if s.get('hsdp') else ''}"
             f" | recompute {s['recompute']} | {s['precision']} | {s['optimizer']}")
    mem = p["memory"]
    summary = [
        _sum("model", "Model", f"{p['model']} ({p.get('seq_len', '?')}-token sequences)"),
        _sum("cluster", "Cluster", f"{p['cluster']}: {p['n_accelerators']} x {p['accelerator']}", p["n_accelerators"]),
        _sum("strategy", "Strategy", strat),
        _sum("step_time_s", "Step time", fmt_time(p["step_time_s"]), p["step_time_s"]),
        _sum("tokens_per_s", "Throughput", f"{fmt_count(p['tokens_per_s'])} tokens/s total, "
             f"{fmt_count(p['tokens_per_s_per_accelerator'])} per accelerator", p["tokens_per_s"]),
        _sum("model_tflops", "Model TFLOP/s", f"{p['model_tflops_per_accelerator']:.1f} per accelerator",
             p["model_tflops_per_accelerator"]),
        _sum("mfu", "MFU / HFU", f"{fmt_pct(p['mfu'])} / {fmt_pct(p['hfu'])}", p["mfu"]),
        _sum("memory_gb", "Memory", f"{fmt_gb(mem['total_bytes'])} GB of {fmt_gb(mem['capacity_bytes'])} GB per "
             f"accelerator ({fmt_pct(mem['total_bytes'] / mem['capacity_bytes'])})", mem["total_bytes"] / 1e9),
        _sum("fits", "Fits", "yes" if p["fits"] else f"NO ({mem.get('overflow_component')} dominates)", p["fits"]),
        _band(p),
    ]
    if p.get("time_to_train_s"):
        summary.append(_sum("time_to_train_s", "Time to train", fmt_time(p["time_to_train_s"]), p["time_to_train_s"]))
    if p.get("cost_usd") is not None:
        summary.append(_sum("cost_usd", "Cost", f"${p['cost_usd']:,.0f}", p["cost_usd"]))
    step = p["step_time_s"]
    trows = [[k, _cell(f"{v:.4f}", v), fmt_pct(v / step if step else None)]
             for k, v in p["time"]["components_s"].items() if v]
    trows.append(["total", _cell(f"{step:.4f}", step), "100.0%"])
    mrows = [[k, _cell(fmt_gb(v), v / 1e9), fmt_pct(v / mem["total_bytes"])]
             for k, v in mem["components_bytes"].items() if v]
    mrows.append(["total", _cell(fmt_gb(mem["total_bytes"]), mem["total_bytes"] / 1e9), "100.0%"])
    mrows.append(["capacity", _cell(fmt_gb(mem["capacity_bytes"]), mem["capacity_bytes"] / 1e9),
                  "fits" if p["fits"] else "does NOT fit"])
    tables = [_table("Time per step (rows sum to the total)", ["component", "s", "% of step"], trows),
              _table("Memory per accelerator (worst stage)", ["component", "GB", "%"], mrows)]
    fixes = p.get("fixes")
    if fixes and fixes.get("fixes"):
        rows = [[ch.get("change", ""), str(ch.get("n_accelerators", "")), _num(ch.get("tokens_per_s")),
                 fmt_gb(ch["memory_bytes"]) if ch.get("memory_bytes") is not None else "-"]
                for ch in fixes["fixes"][:10]]
        tables.append(_table("Cheapest fixes (single changes that make it fit)",
                             ["change", "accelerators", "tokens/s", "GB"], rows))
    if fixes and fixes.get("best_plan"):
        bp = fixes["best_plan"]
        tables.append(_table("Planner's best instead", ["plan", "accelerators", "tokens/s", "GB"],
                             [[bp["label"], str(bp["n_accelerators"]), _num(bp["tokens_per_s"]),
                               fmt_gb(bp["memory_bytes"])]], bp.get("note", "")))
    ex = p.get("explain")
    if ex:
        step_s = ex["step_time_s"]
        rows = [["roofline (model FLOPs at peak)", _cell(f"{ex['roofline_s']:.4f}", ex["roofline_s"]),
                 fmt_pct(ex["roofline_s"] / step_s)]]
        rows += [[k + (" (largest loss)" if k == ex["largest_loss"] else ""), _cell(f"{v:.4f}", v),
                  fmt_pct(v / step_s)] for k, v in sorted(ex["losses_s"].items(), key=lambda kv: -kv[1])]
        notes = []
        if ex.get("shrink_largest"):
            notes.append(f"shrinks the {ex['largest_loss']} most: {ex['shrink_largest']['change']}")
        if ex.get("best_single_change"):
            b = ex["best_single_change"]
            notes.append(f"best single change: {b['change']} ({b['tokens_per_s'] / p['tokens_per_s'] - 1:+.1%} "
                         "tokens/s)")
        if ex.get("planner_best"):
            pb = ex["planner_best"]
            notes.append(f"planner's best: {pb['label']} ({pb['tokens_per_s'] / p['tokens_per_s']:.2f}x)")
        if ex.get("rank"):
            notes.append(f"{fmt_pct(ex['rank']['share_faster'])} of the {ex['rank']['n_feasible']:,} feasible "
                         "strategies on these accelerators are predicted faster")
        tables.append(_table("Where the step goes against the roofline (rows sum to the step)",
                             ["part", "s", "% of step"], rows, "; ".join(notes)))
    tables.append(_table("Assumptions", ["assumption"], [[a] for a in p.get("assumptions", [])]))
    return {"title": f"Training estimate: {p['model']} on {p['n_accelerators']} x {p['accelerator']}",
            "summary": summary, "tables": tables}


def _plan(p: dict[str, Any]) -> dict[str, Any]:
    rate = p.get("strategies_per_s")
    summary = [
        _sum("model", "Model", str(p["model"])),
        _sum("cluster", "Cluster", f"{p['cluster']}: {', '.join(map(str, p['gpus'][:8]))}"
             f"{'...' if len(p['gpus']) > 8 else ''} x {p['accelerator']}"),
        _sum("workload", "Workload", f"global batch {p['global_batch']} sequences of {p['seq_len']} tokens"),
        _sum("search", "Search", f"framework {p['framework']}, objective {p['objective']}, precisions "
             f"{', '.join(p['precisions'])}"),
        _sum("n_evaluated", "Evaluated", f"{p['n_evaluated']:,} legal strategies (of {p['n_candidates']:,} in the "
             f"grid) in {p['elapsed_s']:.3f} s" + (f", {fmt_count(rate)} strategies/s" if rate else ""),
             p["n_evaluated"]),
        _sum("n_feasible", "Feasible", f"{p['n_feasible']:,} fit in memory", p["n_feasible"]),
    ]
    rows = []
    for t in p.get("top", []):
        rows.append([str(t["rank"]) + (f" +{len(t['equivalent_strategies'])}" if t["equivalent_strategies"] else ""),
                     str(t["n_accelerators"]), t["label"], _cell(fmt_time(t["step_time_s"]), t["step_time_s"]),
                     _cell(fmt_count(t["tokens_per_s"]), t["tokens_per_s"]), _cell(fmt_pct(t["mfu"]), t["mfu"]),
                     _cell(fmt_gb(t["memory_bytes"]), t["memory_bytes"] / 1e9),
                     f"{t['usd_per_million_tokens']:,.2f}"])
    tables = [_table(f"Top plans by {p['objective']}", ["#", "gpus", "strategy", "step", "tokens/s", "MFU",
                                                        "mem GB", "$/1M tok"], rows)]
    if p.get("pareto"):
        tables.append(_table("Pareto frontier: tokens/s against memory headroom", ["gpus", "strategy", "tokens/s",
                                                                                   "headroom GB", "MFU"],
                             [[str(x["n_accelerators"]), x["label"], fmt_count(x["tokens_per_s"]),
                               fmt_gb(x["memory_headroom_bytes"]), fmt_pct(x["mfu"])] for x in p["pareto"]]))
    rej = [[f"rule {r}", f"{v['count']:,}", v["rule"]] for r, v in p.get("rejected_by_rule", {}).items()]
    rej += [[f"memory: {c}", f"{k:,}", f"legal, over capacity, '{c}' the largest component"]
            for c, k in p.get("rejected_by_memory", {}).items()]
    tables.append(_table("Why the rest were rejected", ["reason", "strategies", "explanation"], rej))
    notes = list(p.get("notes", []))
    if p.get("remedy"):
        r = p["remedy"]
        notes.append(f"cheapest way to a feasible plan: {r['note']}" + (f": {r['plan']['label']} on "
                                                                         f"{r['plan']['n_accelerators']}"
                                                                         if r.get("plan") else ""))
    if notes:
        tables.append(_table("Notes", ["note"], [[n] for n in notes]))
    return {"title": f"Plan: {p['model']} on {p['accelerator']}", "summary": summary, "tables": tables}


def _compare(p: dict[str, Any]) -> dict[str, Any]:
    ests = p["estimates"]
    cols = ["", *[f"#{i + 1}" for i in range(len(ests))]]
    keys = [("model", lambda e: e["model"]), ("accelerators", lambda e: f"{e['n_accelerators']} x {e['accelerator']}"),
            ("strategy", lambda e: charts._short(e["strategy"]) + f" {e['strategy']['schedule']}"),
            ("step time", lambda e: _cell(fmt_time(e["step_time_s"]), e["step_time_s"])),
            ("tokens/s", lambda e: _cell(fmt_count(e["tokens_per_s"]), e["tokens_per_s"])),
            ("tokens/s per accelerator", lambda e: fmt_count(e["tokens_per_s_per_accelerator"])),
            ("MFU", lambda e: _cell(fmt_pct(e["mfu"]), e["mfu"])),
            ("memory GB", lambda e: _cell(fmt_gb(e["memory"]["total_bytes"]), e["memory"]["total_bytes"] / 1e9)),
            ("fits", lambda e: "yes" if e["fits"] else "NO")]
    rows = [[k, *[f(e) for e in ests]] for k, f in keys]
    for c in ests[0]["time"]["components_s"]:
        vals = [e["time"]["components_s"].get(c, 0.0) for e in ests]
        if any(vals):
            rows.append([f"time: {c} (s)", *[f"{v:.4f}" for v in vals]])
    return {"title": f"Comparison of {len(ests)} plans", "summary": [],
            "tables": [_table("Side by side", cols, rows)]}


# ===================================================================== serving
def _serve(p: dict[str, Any]) -> dict[str, Any]:
    cfg = p["config"]
    mem = p["memory"]
    summary = [
        _sum("model", "Model", str(p["model"])),
        _sum("cluster", "Cluster", f"{p['cluster']}: {p['replicas']} replica(s) x {p['accelerators_per_replica']} "
             f"{p['accelerator']} (tp={cfg['tp']} pp={cfg['pp']} ep={cfg['ep']})"),
        _sum("workload", "Workload", f"batch {p['batch']} per replica, {p['input_len']} in / {p['output_len']} out"),
        _sum("ttft_s", "TTFT", fmt_time(p["ttft_s"]), p["ttft_s"]),
        _sum("tpot_s", "TPOT", fmt_time(p["tpot_s"]), p["tpot_s"]),
        _sum("e2e_s", "End to end", fmt_time(p.get("e2e_s")), p.get("e2e_s")),
        _sum("output_tokens_per_s", "Throughput", f"{fmt_count(p['output_tokens_per_s'])} output tokens/s total, "
             f"{fmt_count(p['output_tokens_per_s_per_accelerator'])} per accelerator", p["output_tokens_per_s"]),
        _sum("memory_gb", "Memory", f"{fmt_gb(mem['total_bytes'])} of {fmt_gb(mem['capacity_bytes'])} GB per "
             f"accelerator; largest batch at these lengths: {p['max_batch']}", mem["total_bytes"] / 1e9),
    ]
    if p.get("cost_per_million_output_tokens") is not None:
        summary.append(_sum("cost", "Cost", f"${p['cost_per_million_output_tokens']:,.3f} per million output tokens",
                            p["cost_per_million_output_tokens"]))
    summary.append(_band(p))
    pre, dec = p["prefill"]["components_s"], p["decode"]["components_s"]
    rows = [[k, _ms(pre[k]), _ms(dec.get(k, 0.0))] for k in pre if pre[k] or dec.get(k)]
    rows.append(["total", _ms(p["prefill"]["total_s"]), _ms(p["decode"]["total_s"])])
    mrows = [[k, fmt_gb(v)] for k, v in mem["components_bytes"].items()]
    mrows.append(["total", fmt_gb(mem["total_bytes"])])
    return {"title": f"Serving estimate: {p['model']} on {p['accelerator']}", "summary": summary,
            "tables": [_table("Time (rows sum to the totals)", ["component", "prefill ms", "decode ms (all steps)"],
                              rows),
                       _table("Memory per accelerator", ["component", "GB"], mrows),
                       _table("Assumptions", ["assumption"], [[a] for a in p.get("assumptions", [])])]}


def _simulate(p: dict[str, Any]) -> dict[str, Any]:
    c = p["counts"]
    summary = [
        _sum("model", "Model", f"{p['model']} on {p['cluster']}"),
        _sum("setup", "Setup", f"{p['config']['replicas']} replica(s), tp={p['inference']['tp']}, "
             f"{p['config']['scheduler']}, router {p['config']['router']}"),
        _sum("workload", "Workload", str(p["workload"])),
        _sum("requests", "Requests", f"{c['arrived']} arrived = {c['completed']} completed + {c['rejected']} rejected"
             f" + {c['running']} running + {c['queued']} queued", c["arrived"]),
        _sum("output_tokens_per_s", "Throughput", f"{fmt_count(p['output_tokens_per_s'])} output tokens/s, "
             f"{p['requests_per_s']:.2f} requests/s", p["output_tokens_per_s"]),
        _sum("kv", "KV cache", f"utilisation mean {fmt_pct(p['kv_utilization_mean'])}, max "
             f"{fmt_pct(p['kv_utilization_max'])}"),
        _sum("overloaded", "Overloaded", "yes" if p.get("overloaded") else "no", p.get("overloaded")),
        _band(p),
    ]
    if p.get("slo_attainment") is not None:
        summary.append(_sum("slo", "SLO attainment", fmt_pct(p["slo_attainment"]), p["slo_attainment"]))
    rows = []
    for name, key in (("TTFT ms", "ttft_s"), ("TPOT ms", "tpot_s"), ("end-to-end ms", "e2e_s"),
                      ("normalized ms/token", "normalized_latency_s")):
        st = p.get(key) or {}
        rows.append([name, *[_cell(_ms(st.get(q)), st.get(q)) for q in ("mean", "p50", "p90", "p99")]])
    tables = [_table("Latency (completed requests)", ["metric", "mean", "p50", "p90", "p99"], rows)]
    if p.get("rate_sweep"):
        tables.append(_table("Against request rate", ["req/s", "TTFT p50 ms", "TTFT p90 ms", "TPOT p50 ms",
                                                      "TPOT p90 ms", "overloaded"],
                             [[f"{r['rate']:g}", _ms(r["ttft_s"]["p50"]), _ms(r["ttft_s"]["p90"]),
                               _ms(r["tpot_s"]["p50"]), _ms(r["tpot_s"]["p90"]), "yes" if r["overloaded"] else "no"]
                              for r in p["rate_sweep"]]))
    return {"title": f"Serving simulation: {p['model']}", "summary": summary, "tables": tables}


def _serve_plan(p: dict[str, Any]) -> dict[str, Any]:
    b = p.get("best")
    summary = [_sum("model", "Model", str(p["model"])),
               _sum("target", "Target", f"{p['rate']:g} req/s, TTFT <= {p['slo_ttft_s']:g} s, TPOT <= "
                    f"{p['slo_tpot_s']:g} s for {p['attainment']:.0%} of requests")]
    if b:
        summary.append(_sum("best", "Cheapest", f"{b['replicas']} x {b['accelerator']} tp={b['tp']} "
                            f"({b['n_accelerators']} accelerators, ${b['usd_per_hour']:,.2f}/h)", b["usd_per_hour"]))
    else:
        summary.append(_sum("best", "Cheapest", "no configuration meets the SLO"))
    rows = [[x["accelerator"], str(x["tp"]), f"{x['max_rate_per_replica']:.2f}", str(x["replicas"]),
             str(x["n_accelerators"]), f"{x['usd_per_hour']:,.2f}"] for x in p.get("candidates", [])]
    tables = [_table("Configurations meeting the SLO (cheapest first)", ["accelerator", "tp", "max req/s per replica",
                                                                          "replicas", "accelerators", "USD/h"], rows)]
    if p.get("skipped"):
        tables.append(_table("Skipped", ["configuration", "why"], [[k, v] for k, v in p["skipped"].items()]))
    return {"title": f"Serving plan: {p['model']} at {p['rate']:g} req/s", "summary": summary, "tables": tables}


# ===================================================================== validation, claims
def _validate(p: dict[str, Any], kind: str) -> dict[str, Any]:
    summary = [_sum("dataset", "Dataset", str(p.get("dataset", ""))),
               _sum("n_rows", "Rows", f"{p['n_rows']} rows, {p['n_predicted']} predicted", p["n_predicted"]),
               _sum("median_ape", "Median APE", fmt_pct(p.get("median_ape")), p.get("median_ape")),
               _sum("p90_ape", "p90 APE", fmt_pct(p.get("p90_ape")), p.get("p90_ape"))]
    tables = []
    if p.get("by_category"):
        tables.append(_table("By kind", ["kind", "rows", "median APE", "p90 APE"],
                             [[k, str(v["n"]), fmt_pct(v["median_ape"]), fmt_pct(v["p90_ape"])]
                              for k, v in p["by_category"].items()]))
    rows = [[r["row_id"], r.get("model", ""), r.get("gpu") or r.get("hardware", ""), r.get("metric") or "-",
             _num(r.get("measured")), _num(r.get("predicted")),
             f"{100 * r['ape']:.1f}" if r.get("ape") is not None else f"skipped: {r.get('skipped') or '-'}"]
            for r in p.get("rows", [])]
    tables.append(_table("Rows", ["row", "model", "hardware", "metric", "measured", "predicted", "APE % / skipped"],
                         rows))
    what = "training" if kind == "validate_train" else "serving"
    return {"title": f"Validation of the {what} model", "summary": summary, "tables": tables}


def _claims(p: dict[str, Any]) -> dict[str, Any]:
    from ..cli_claims import fmt_value

    cl = p["claims"]
    n_ok = sum(1 for c in cl if c["status"] != "not_reproduced" and c["ok"])
    n_nr = sum(1 for c in cl if c["status"] == "not_reproduced")
    rows = []
    for c in cl:
        ok = "not reproduced" if c["status"] == "not_reproduced" else ("yes" if c["ok"] else "NO")
        tol = (f"±{100 * c['tolerance']:.0f}%" if c.get("tolerance") is not None else
               f"±{c['tolerance_abs']:g}" if c.get("tolerance_abs") is not None else "")
        why = c.get("error") or (c.get("reason") if c["status"] == "not_reproduced" else c.get("mechanism")) or ""
        rows.append([c["paper_key"], c["claim"], fmt_value(c["expected"], c["unit"]),
                     fmt_value(c["predicted"], c["unit"]), f"{c['kind']} {tol}", ok, why])
    summary = [_sum("n", "Claims", f"{n_ok} within tolerance, {len(cl) - n_ok - n_nr} out of tolerance, {n_nr} not "
                    f"reproduced, {len(cl)} claims from {len({c['paper_key'] for c in cl})} papers", len(cl))]
    return {"title": "Paper claims, reproduced by paraplan's model", "summary": summary,
            "tables": [_table("Claims", ["paper", "claim", "paper's", "paraplan", "tolerance", "ok",
                                         "mechanism / reason"], rows)]}


_BUILDERS = {"train": _train, "plan": _plan, "compare": _compare, "serve": _serve, "simulate": _simulate,
             "serve_plan": _serve_plan, "claims": _claims}
_CHARTS = {"train": charts.training_charts, "plan": charts.plan_charts, "serve": charts.serve_charts,
           "simulate": charts.simulate_charts, "serve_plan": charts.serve_plan_charts,
           "validate_train": charts.validation_charts, "validate_infer": charts.validation_charts}


def build_view(payload: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """Title, summary lines, tables and charts of any paraplan JSON result."""
    kind = kind or detect_kind(payload)
    view = _validate(payload, kind) if kind.startswith("validate") else _BUILDERS[kind](payload)
    figs = payload.get("charts")
    if figs is None:
        if kind == "compare":
            figs = charts.compare_charts(payload["estimates"])
        else:
            figs = _CHARTS[kind](payload) if kind in _CHARTS else {}
    view["kind"] = kind
    view["charts"] = figs
    return view
