"""The FastAPI app behind ``paraplan ui``: pages, their static files (Plotly.js from the ``plotly`` wheel, no CDN)
and the public JSON API (OpenAPI at ``/docs``).

Every API route calls :mod:`paraplan.ui.service` (the same Python functions as the CLI) and returns the CLI's
JSON plus ``view`` (summary, tables, charts; :mod:`paraplan.ui.views`). Invalid input is HTTP 422 with
``{"detail": "<one line>", "errors": [...]}``; a request over the server's time or size bounds is HTTP 503 with
the bound named. CORS is closed: no ``Access-Control-Allow-Origin`` header is ever sent unless origins are given.
"""

from __future__ import annotations

import json
from functools import cache
from html import escape
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from .. import __version__
from ..errors import ParaplanError
from . import service as S
from .pages import PAGES, render_page
from .views import build_view

API_DESCRIPTION = """The JSON API behind the paraplan web page. Request bodies use the names and defaults of the CLI
flags (and of the Python API); responses are the CLI's `--json` output plus `view` (summary lines, tables and
Plotly figures). Errors: 422 `{"detail": "..."}` for invalid input, 503 when a request hits the server's time or
size bounds. No request names a file: upload a Hugging Face config.json to `/api/upload/hf-config` and pass the
returned `hf_config` object."""


@cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode("utf-8")


def _static(name: str) -> bytes:
    return (resources.files("paraplan.ui") / "static" / name).read_bytes()


def _one_line_validation(exc: RequestValidationError | ValidationError) -> tuple[str, list[dict[str, Any]]]:
    errs = exc.errors()
    parts = []
    for e in errs:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path")]
        msg = str(e.get("msg", "invalid"))
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    clean = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")} for e in errs]
    return "invalid input: " + "; ".join(parts), clean


def create_app(cors_origins: list[str] | None = None) -> FastAPI:
    """The app. ``cors_origins``: origins allowed to call the API from other pages (default: none)."""
    app = FastAPI(title="paraplan", version=__version__, description=API_DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_tags=[{"name": "training"}, {"name": "serving"}, {"name": "reference"}])
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        msg, errs = _one_line_validation(exc)
        return JSONResponse({"detail": msg, "errors": errs}, status_code=422)

    @app.exception_handler(S.BoundExceeded)
    async def _bound(_req: Request, exc: S.BoundExceeded) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split()), "bound": True}, status_code=503)

    @app.exception_handler(ParaplanError)
    async def _paraplan(_req: Request, exc: ParaplanError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _pyd(_req: Request, exc: ValidationError) -> JSONResponse:
        msg, errs = _one_line_validation(exc)
        return JSONResponse({"detail": msg, "errors": errs}, status_code=422)

    def with_view(payload: dict[str, Any]) -> dict[str, Any]:
        payload["view"] = build_view(payload)
        return payload

    # ----------------------------------------------------------------- pages
    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/training")

    for slug, _title in PAGES:
        def page(slug: str = slug) -> HTMLResponse:
            return HTMLResponse(render_page(slug))

        app.add_api_route(f"/{slug}", page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(api_docs_html(app.openapi()))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: Literal["app.js", "app.css"]) -> Response:
        media = "application/javascript" if name.endswith(".js") else "text/css"
        return Response(_static(name), media_type=media)

    # ----------------------------------------------------------------- API
    @app.get("/api/catalog", tags=["reference"], summary="Model, accelerator and cluster names for the pickers")
    def catalog() -> dict[str, Any]:
        return S.catalog()

    @app.post("/api/upload/hf-config", tags=["reference"],
              summary="Parse a Hugging Face config.json in memory (at most 256 KiB); returns hf_config to send back")
    async def upload(file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
        data = await file.read(S.MAX_UPLOAD_BYTES + 1)
        return S.parse_hf_upload(data, file.filename)

    @app.post("/api/train/estimate", tags=["training"], summary="paraplan train: estimate one strategy")
    def train_estimate(req: S.TrainRequest) -> dict[str, Any]:
        return with_view(S.train_estimate(req))

    @app.post("/api/train/plan", tags=["training"],
              summary="paraplan plan train: search every legal strategy (bounded in time and size)")
    def train_plan(req: S.PlanRequest) -> dict[str, Any]:
        return with_view(S.train_plan(req))

    @app.post("/api/train/compare", tags=["training"], summary="Two or more training estimates side by side")
    def compare(req: S.CompareRequest) -> dict[str, Any]:
        return with_view(S.compare(req))

    @app.post("/api/serve/estimate", tags=["serving"], summary="paraplan serve: one static batch")
    def serve_estimate(req: S.ServeRequest) -> dict[str, Any]:
        return with_view(S.serve_estimate(req))

    @app.post("/api/serve/simulate", tags=["serving"],
              summary="paraplan simulate serve: a generated request stream (and a sweep over rates)")
    def simulate(req: S.SimulateRequest) -> dict[str, Any]:
        return with_view(S.simulate(req))

    @app.post("/api/serve/plan", tags=["serving"], summary="paraplan plan serve: cheapest configuration meeting an SLO")
    def serve_plan(req: S.ServePlanRequest) -> dict[str, Any]:
        return with_view(S.serve_plan(req))

    @app.get("/api/validation/{dataset}", tags=["reference"],
             summary="paraplan validate train|infer on the server's copy of the measurements")
    def validation(dataset: Literal["train", "infer"], layer: Literal["spec", "curves"] = "curves") -> dict[str, Any]:
        payload = S.validation(dataset, layer)
        return {**payload, "view": build_view(payload)}

    @app.get("/api/claims", tags=["reference"], summary="paraplan claims: the papers' numbers reproduced")
    def claims(paper: str | None = None) -> dict[str, Any]:
        if paper is not None and len(paper) > 100:
            raise HTTPException(422, "paper: at most 100 characters")
        return with_view(S.claims(paper or None))

    return app


def _schema_rows(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    rows = []
    for name, prop in schema.get("properties", {}).items():
        kinds = [x.get("type") or x.get("$ref", "").rsplit("/", 1)[-1] for x in prop.get("anyOf", [prop])]
        enum = prop.get("enum") or next((x.get("enum") for x in prop.get("anyOf", []) if x.get("enum")), None)
        kind = " | ".join(k for k in kinds if k) + (f" ({', '.join(map(str, enum))})" if enum else "")
        req = name in schema.get("required", [])
        default = "required" if req else json.dumps(prop.get("default"))
        rows.append(f"<tr><td><code>{escape(name)}</code></td><td>{escape(kind)}</td><td>{escape(default)}</td>"
                    f"<td>{escape(prop.get('description', ''))}</td></tr>")
    return "".join(rows)


def api_docs_html(spec: dict[str, Any]) -> str:
    """The API reference from the OpenAPI document, as a plain page (Swagger UI would load from a CDN)."""
    parts = [f"<h1>{escape(spec['info']['title'])} API {escape(spec['info']['version'])}</h1>",
             f"<p>{escape(spec['info'].get('description', ''))}</p>",
             '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
             f"{escape(spec.get('openapi', ''))}).</p>"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            parts.append(f'<h3 id="{escape(op.get("operationId", ""))}"><code>{method.upper()} {escape(path)}</code>'
                         f"</h3><p>{escape(op.get('summary', ''))}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th></tr>" + "".join(
                    f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                    f"<td>{escape(json.dumps(p.get('schema', {})))}</td></tr>" for p in params) + "</table>")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                parts.append(f"<p>body ({escape(media)}):</p><table><tr><th>field</th><th>type</th><th>default</th>"
                             f"<th>meaning</th></tr>{_schema_rows(spec, content.get('schema', {}))}</table>")
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>paraplan API</title>'
            '<link rel="stylesheet" href="/static/app.css"></head><body><header><a class="brand" href="/">paraplan'
            '</a><nav><a href="/training">Training</a><a class="active" href="/docs">API</a></nav></header><main>'
            + "".join(parts) + "</main></body></html>")


app = create_app()
