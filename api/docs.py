"""The OpenAPI description (/openapi.json) and its interactive form (/docs, Swagger UI), both from the app itself.

Swagger UI's script and styles come from a packaged copy (``fastapi-offline``) under /static/swagger-ui/ and its
start-up is a static file, so /docs works on a closed network and has the same Content-Security-Policy as every
other answer: no foreign host, no inline script. ReDoc is not served: it injects <style> elements and starts its
search worker from a blob: URL, which that policy forbids, and one interactive form is enough.

In production both are for administrators only (a page session or a bearer token of role admin); anyone else gets
the bare 404 that answers for a case they may not see, so nothing says there is something to find. Elsewhere they
are open.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from fastapi.staticfiles import StaticFiles

from api.deps import get_core
from api.web.session import optional_session
from pathway.accounts import authenticate

SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css (v5)
OPENAPI_URL = "/openapi.json"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} – API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve /openapi.json, /docs and Swagger UI's files. Call it before the pages' /static mount, which would
    otherwise answer for /static/swagger-ui/ too. The app is built with ``docs_url``, ``redoc_url`` and
    ``openapi_url`` set to None, so that FastAPI serves none of them itself."""
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    page = PAGE.format(title=app.title, openapi_url=OPENAPI_URL)

    # Plain routes, as FastAPI's own docs routes are: they are not operations of the API, nor pages.
    def openapi(request: Request) -> JSONResponse:
        _only_for_an_administrator_in_production(request)
        return JSONResponse(app.openapi())

    def docs(request: Request) -> HTMLResponse:
        _only_for_an_administrator_in_production(request)
        return HTMLResponse(page)

    app.add_route(OPENAPI_URL, openapi, include_in_schema=False)
    app.add_route("/docs", docs, include_in_schema=False)


def _only_for_an_administrator_in_production(request: Request) -> None:
    core = get_core(request)
    if core.settings.env != "production":
        return
    session = optional_session(request)
    if session is not None and session.user.role == "admin":
        return
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    user = authenticate(core.engine, token) if scheme.lower() == "bearer" and token else None
    if user is None or user.role != "admin":
        raise HTTPException(404, "not found")
