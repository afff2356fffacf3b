"""HTML of the pages: a shared shell (navigation, Plotly, app.js) and one form per page.

Forms hold no logic: ``static/app.js`` turns a form into the URL query (so a result can be shared as a link) and
into the JSON body of the API call, and draws the returned view (summary, tables, Plotly charts).
"""

from __future__ import annotations

from html import escape
from typing import Any

PAGES = (("training", "Training"), ("serving", "Serving"), ("compare", "Compare"), ("claims", "Claims"),
         ("validation", "Validation"))



def _input(name: str, label: str, kind: str, default: Any, modes: tuple[str, ...], help_: str = "") -> str:
    mode_attr = f' data-modes="{" ".join(modes)}"' if modes else ""
    dv = "" if default is None else escape(str(default))
    if kind.startswith("select:"):
        opts = kind.split(":", 1)[1].split(",")
        inner = "".join(f'<option value="{escape(o)}"{" selected" if o == str(default) else ""}>'
                        f'{escape(o) if o else "(default)"}</option>' for o in opts)
        ctl = f'<select id="f-{name}" name="{name}">{inner}</select>'
    elif kind.startswith("datalist:"):
        lst = kind.split(":", 1)[1]
        ctl = (f'<input id="f-{name}" name="{name}" list="dl-{lst}" value="{dv}" autocomplete="off" '
               f'placeholder="type to search">')
    elif kind == "number":
        ctl = f'<input id="f-{name}" name="{name}" type="text" inputmode="decimal" value="{dv}">'
    else:
        ctl = f'<input id="f-{name}" name="{name}" type="text" value="{dv}">'
    title = f' title="{escape(help_)}"' if help_ else ""
    return f'<label class="field"{mode_attr}{title}><span>{escape(label)}</span>{ctl}</label>'


MODEL_FIELDS = (
    '<label class="field wide"><span>Model</span><input id="f-model" name="model" list="dl-models" '
    'autocomplete="off" placeholder="type to search the catalog"></label>'
    '<label class="field wide"><span>or a Hugging Face config.json</span><input id="f-upload" type="file" '
    'accept=".json,application/json"><input type="hidden" id="f-hf_config" name="hf_config">'
    '<input type="hidden" id="f-hf_name" name="hf_name"><small id="upload-status"></small></label>'
)

TRAIN_FIELDS: list[tuple[Any, ...]] = [
    ("cluster", "Cluster", "datalist:clusters", "", (), "preset, NAME:COUNT or accelerator name"),
    ("gpus", "Accelerators (plan: 512,1024 or 256..2048)", "text", "", (), ""),
    ("global_batch", "Global batch", "number", "", (), "sequences per step"),
    ("seq_len", "Sequence length", "number", "2048", (), ""),
    ("tp", "TP", "number", "1", ("estimate",), ""),
    ("pp", "PP", "number", "1", ("estimate",), ""),
    ("dp", "DP", "number", "", ("estimate",), "default: n / (tp*pp*cp)"),
    ("cp", "CP", "number", "1", ("estimate",), ""),
    ("ep", "EP", "number", "1", ("estimate",), ""),
    ("vpp", "VPP", "number", "1", ("estimate",), ""),
    ("micro_batch", "Micro-batch", "number", "1", ("estimate",), ""),
    ("schedule", "Schedule", "select:,gpipe,1f1b,interleaved,zero-bubble", "", ("estimate",), ""),
    ("zero", "ZeRO", "select:,0,1,2,3", "", ("estimate",), ""),
    ("sp", "Sequence parallel", "select:,true,false", "", ("estimate",), ""),
    ("recompute", "Recompute", "select:none,selective,full", "none", ("estimate",), ""),
    ("precision", "Precision", "select:bf16,fp16,fp8,fp32", "bf16", ("estimate",), ""),
    ("offload", "Offload optimizer", "select:none,cpu,nvme", "none", ("estimate",), "ZeRO-Offload / -Infinity"),
    ("offload_params", "Offload parameters", "select:none,cpu,nvme", "none", ("estimate",), "needs ZeRO 3"),
    ("objective", "Objective", "select:throughput,cost,time-to-train", "throughput", ("plan",), ""),
    ("allow", "Allow (comma list)", "text", "", ("plan",), "fp8, fp16, fp32, tp-across-nodes, offload"),
    ("fix", "Fix (FIELD=V[,V]; ...)", "text", "", ("plan",), "recompute=full; tp=4,8; sp=off"),
    ("top", "Top K", "number", "10", ("plan",), ""),
    ("tokens", "Training tokens", "number", "", (), "e.g. 3e11"),
    ("framework", "Framework", "select:megatron,fsdp,deepspeed", "megatron", (), ""),
    ("optimizer", "Optimizer", "select:adamw,adam,sgd", "adamw", (), ""),
    ("layer", "Layer", "select:curves,spec", "curves", (), ""),
]

SERVE_FIELDS: list[tuple[Any, ...]] = [
    ("cluster", "Cluster", "datalist:clusters", "", ("estimate", "simulate"), ""),
    ("gpus", "Accelerators", "number", "", ("estimate", "simulate"), ""),
    ("tp", "TP", "number", "1", ("estimate", "simulate"), ""),
    ("pp", "PP", "number", "1", ("estimate", "simulate"), ""),
    ("batch", "Batch", "number", "1", ("estimate",), ""),
    ("input_len", "Input tokens", "number", "1024", ("estimate",), ""),
    ("output_len", "Output tokens", "number", "256", ("estimate",), ""),
    ("rate", "Request rate (req/s)", "number", "4", ("simulate", "plan"), ""),
    ("rates", "Also at rates (comma list)", "text", "1,2,8", ("simulate",), ""),
    ("requests", "Requests", "number", "", ("simulate", "plan"), ""),
    ("input_dist", "Lengths", "text", "sharegpt", ("simulate", "plan"), "sharegpt, lmsys, fixed:N, ..."),
    ("scheduler", "Scheduler", "select:vllm,sarathi,orca,static", "vllm", ("simulate", "plan"), ""),
    ("replicas", "Replicas", "number", "", ("simulate",), ""),
    ("slo_ttft", "SLO TTFT (s)", "number", "", ("simulate", "plan"), ""),
    ("slo_tpot", "SLO TPOT (s)", "number", "", ("simulate", "plan"), ""),
    ("accelerators", "Accelerators to try (comma list)", "text", "", ("plan",), ""),
    ("tps", "TP sizes (comma list)", "text", "", ("plan",), ""),
    ("weight_bits", "Weight bits", "number", "16", (), ""),
    ("act_bits", "Activation bits", "select:16,8,4", "16", (), ""),
    ("kv_bits", "KV bits", "number", "16", (), ""),
    ("engine", "Engine", "select:default,trtllm,vllm,sglang,deepspeed,hf", "default", (), ""),
]


def _fields(rows: list[tuple[Any, ...]]) -> str:
    return "".join(_input(*r) for r in rows)


def _mode_select(modes: list[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{m}">{escape(label)}</option>' for m, label in modes)
    return f'<label class="field"><span>What</span><select id="f-mode" name="mode">{opts}</select></label>'


def _form(body: str, button: str = "Run") -> str:
    return (f'<form id="query" autocomplete="off"><div class="grid">{body}</div>'
            f'<div class="actions"><button id="run" type="submit">{escape(button)}</button>'
            '<a id="share" href="#" hidden>link to this result</a>'
            '<a id="to-compare" href="#" hidden>add to Compare</a></div></form>')


def page_body(page: str) -> str:
    if page == "training":
        return ("<h1>Training</h1><p>Estimate one strategy, or let the planner search every legal one.</p>"
                + _form(_mode_select([("estimate", "estimate a strategy"), ("plan", "plan (search)")]) + MODEL_FIELDS
                        + _fields(TRAIN_FIELDS)))
    if page == "serving":
        return ("<h1>Serving</h1><p>Estimate a static batch, simulate a request stream, or find the cheapest "
                "configuration meeting an SLO.</p>"
                + _form(_mode_select([("estimate", "estimate a batch"), ("simulate", "simulate a request stream"),
                                      ("plan", "plan (cheapest meeting the SLO)")]) + MODEL_FIELDS
                        + _fields(SERVE_FIELDS)))
    if page == "compare":
        example = ("model=gpt-3-175b cluster=dgx-a100:1024 tp=8 pp=16 micro_batch=1 global_batch=1536 recompute=full\n"
                   "model=gpt-3-175b cluster=dgx-a100:1024 tp=8 pp=8 vpp=2 micro_batch=1 global_batch=1536 "
                   "recompute=selective")
        return ("<h1>Compare</h1><p>Two or more training plans side by side: one per line, as <code>key=value</code> "
                "pairs with the names of the Training form (<code>model cluster gpus tp pp dp cp ep vpp schedule "
                "micro_batch global_batch zero recompute precision seq_len framework</code>).</p>"
                + _form(f'<label class="field full"><span>Plans</span><textarea id="f-plans" name="plans" rows="6" '
                        f'placeholder="{escape(example)}">{escape(example)}</textarea></label>', "Compare"))
    if page == "claims":
        return ("<h1>Claims</h1><p>The systems papers' headline numbers against paraplan's own predictions, computed "
                "live (<code>paraplan claims</code>).</p>"
                + _form('<label class="field"><span>Paper (key or part of the title)</span>'
                        '<input id="f-paper" name="paper" type="text"></label>', "Run the claims"))
    if page == "validation":
        return ("<h1>Validation</h1><p>Predicted against measured, per dataset (<code>paraplan validate</code>, on "
                "the server's copy of the measurements).</p>"
                + _form('<label class="field"><span>Dataset</span><select id="f-dataset" name="dataset">'
                        '<option value="train">training runs</option><option value="infer">serving measurements'
                        '</option></select></label><label class="field"><span>Layer</span><select id="f-layer" '
                        'name="layer"><option>curves</option><option>spec</option></select></label>', "Validate"))
    raise KeyError(page)


def render_page(page: str) -> str:
    nav = "".join(f'<a href="/{p}"{" class=active" if p == page else ""}>{escape(t)}</a>' for p, t in PAGES)
    title = dict(PAGES)[page]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>paraplan: {escape(title)}</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/plotly.min.js"></script>
<script src="/static/app.js" defer></script></head>
<body data-page="{page}">
<header><a class="brand" href="/">paraplan</a><nav>{nav}<a href="/docs">API</a></nav></header>
<main>
{page_body(page)}
<div id="error" role="alert" hidden></div>
<div id="status" aria-live="polite"></div>
<section id="result"></section>
</main>
<datalist id="dl-models"></datalist><datalist id="dl-clusters"></datalist>
</body></html>
"""
