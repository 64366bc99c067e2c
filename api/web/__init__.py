"""The web pages: server-rendered Jinja2, served by the API's own app, bokmål first with English available.

``install(app)`` adds the pages, their static files, the security headers (on every answer, the API's too) and
the page form of every error (the API keeps problem+json).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from api.web import admin, auth, calendar, coordinator, downloads, manager, partner, person_copy, referrals
from api.web.headers import SecurityHeaders
from api.web.render import page
from api.web.session import BadForm, LoginRequired, PageNotFound, language, optional_session

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, coordinator, partner, referrals, manager, downloads, admin, calendar, person_copy):
        app.include_router(module.router)
    calendar.hide_feed_tokens()  # a feed's address is its credential: not in the server's access log
    core = app.state.core  # None in an app built only for its route table (the tests' matrices)
    app.add_middleware(SecurityHeaders, hsts=core is not None and core.settings.env == "production")
    app.state.render_problem = problem_page
    app.state.page_language = language

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return auth.see_other(f"/login?next={quote(exc.next_path, safe='/')}")

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, exc: PageNotFound) -> Response:
        return page(request, "error.html", optional_session(request), status=404, status_code=404, detail="")

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, exc: BadForm) -> Response:
        return page(request, "error.html", optional_session(request), status=403, status_code=403, detail="")


def problem_page(request: Request, answer: JSONResponse) -> Response:
    """An error of a page request, as a page: the same status and detail as the problem+json would have."""
    body = json.loads(bytes(answer.body))
    headers = {k: v for k, v in answer.headers.items() if k.lower() == "retry-after"}
    return page(request, "error.html", optional_session(request), status=answer.status_code, status_code=answer.status_code,
                detail=body.get("detail", ""), headers=headers)
