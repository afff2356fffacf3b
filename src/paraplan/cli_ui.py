"""``paraplan ui`` (the local web page) and ``paraplan report`` (a static HTML / PNG report of any --json output).

Both need the ``ui`` extra (``pip install 'paraplan[ui]'``: fastapi, uvicorn, plotly, python-multipart,
matplotlib); without it they fail with one line naming the extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_common import _console, handle_errors
from .errors import ConfigError


def _need(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"this command needs {', '.join(missing)}: pip install 'paraplan[ui]'")


def ui_cmd(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    cors_origin: Annotated[list[str] | None, typer.Option(
        "--cors-origin", help="Allow the API to be called from this origin (repeatable; default: none).")] = None,
) -> None:
    """Serve the web page (Training, Serving, Compare, Claims, Validation) and its JSON API (/docs)."""
    _need("fastapi", "uvicorn", "plotly", "multipart")
    import uvicorn

    from .ui.app import create_app

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"note: listening on {host}: the page is reachable from other machines", err=True)
    _console().print(f"paraplan ui on http://{host}:{port}/  (API docs: http://{host}:{port}/docs; Ctrl-C to stop)")
    uvicorn.run(create_app(cors_origins=cors_origin or None), host=host, port=port, log_level="warning")


def report_cmd(
    json_in: Annotated[Path, typer.Option("--json-in", help="A --json output of train, plan train, serve, simulate "
                                                            "serve, plan serve, validate or claims.")],
    html: Annotated[Path | None, typer.Option("--html", help="Write one self-contained HTML file here.")] = None,
    png: Annotated[Path | None, typer.Option("--png", help="Write the charts as one PNG here (matplotlib).")] = None,
) -> None:
    """A static report (tables and the same charts as the web page) of a paraplan JSON result."""
    if html is None and png is None:
        raise ConfigError("give --html FILE and/or --png FILE")
    try:
        payload: Any = json.loads(json_in.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {json_in} as JSON: {exc}") from None
    write_report(payload, html=html, png=png)


def write_report(payload: dict[str, Any], html: str | Path | None = None, png: str | Path | None = None) -> str:
    """Write the HTML and/or PNG report of a paraplan JSON result; returns its kind. This is what ``--html FILE``
    on ``train``, ``plan train``, ``serve``, ``simulate serve``, ``plan serve`` and ``validate`` calls."""
    from .ui.views import build_view, detect_kind

    try:
        kind = detect_kind(payload)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    view = build_view(payload, kind)
    if html is not None:
        _need("plotly")
        from .ui.report import render_html

        Path(html).parent.mkdir(parents=True, exist_ok=True)
        Path(html).write_text(render_html(view), encoding="utf-8")
        typer.echo(f"wrote {html} ({kind} report)", err=True)
    if png is not None:
        _need("matplotlib")
        from .ui.png import render_png

        n = render_png(view, png)
        typer.echo(f"wrote {png} ({n} chart(s))", err=True)
    return kind


def register(app: typer.Typer, plan_app: Any = None, validate_app: Any = None) -> None:
    """Add ``ui`` and ``report`` to the paraplan CLI."""
    app.command("ui")(handle_errors(ui_cmd))
    app.command("report")(handle_errors(report_cmd))
