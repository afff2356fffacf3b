"""One self-contained HTML file of a result: the tables and the same Plotly charts as the page, with Plotly.js
inlined (no CDN, no network: it opens offline, from an e-mail attachment or a repository)."""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from typing import Any

from .. import __version__


def _cell(c: Any) -> str:
    if isinstance(c, dict):
        return f'<td class="num">{escape(str(c.get("text", "")))}</td>'
    return f"<td>{escape(str(c))}</td>"


def render_tables(view: dict[str, Any]) -> str:
    parts = []
    if view.get("summary"):
        parts.append('<dl class="summary">' + "".join(
            f"<dt>{escape(s['label'])}</dt><dd>{escape(s['text'])}</dd>" for s in view["summary"]) + "</dl>")
    for t in view.get("tables", []):
        head = "".join(f"<th>{escape(c)}</th>" for c in t["columns"])
        body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in t["rows"])
        parts.append(f"<h3>{escape(t['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                     "</table>" + (f'<p class="note">{escape(t["note"])}</p>' if t.get("note") else ""))
    return "\n".join(parts)


def render_html(view: dict[str, Any]) -> str:
    """The report of a view (:func:`paraplan.ui.views.build_view`)."""
    from plotly.offline import get_plotlyjs

    css = (resources.files("paraplan.ui") / "static" / "app.css").read_text(encoding="utf-8")
    charts = view.get("charts") or {}
    divs = "".join(f'<div class="chart{" full" if n in ("timeline", "scatter") else ""}" id="chart-{escape(n)}">'
                   "</div>" for n in charts)
    figs = json.dumps(charts).replace("</", "<\\/")
    summary_tables = render_tables(view)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paraplan report: {escape(view.get('title', ''))}</title>
<style>{css}</style>
<script>{get_plotlyjs()}</script></head>
<body><main>
<h1>{escape(view.get('title', ''))}</h1>
{summary_tables.split('<h3>', 1)[0] if '<dl' in summary_tables else ''}
<div class="charts">{divs}</div>
{('<h3>' + summary_tables.split('<h3>', 1)[1]) if '<h3>' in summary_tables else ''}
<p class="note">paraplan {escape(__version__)} report ({escape(view.get('kind', ''))}); charts drawn with the bundled
Plotly.js, no network needed.</p>
</main>
<script>
const FIGS = {figs};
for (const [name, fig] of Object.entries(FIGS)) {{
  Plotly.newPlot(document.getElementById("chart-" + name), fig.data, fig.layout, {{responsive: true,
    displaylogo: false}});
}}
</script></body></html>
"""
