"""RFC 9457 problem+json for every error the API answers; no stack traces, no case content."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from api.i18n import N_, gettext, invalid, names, negotiate, say
from pathway.errors import (
    ConcurrencyConflict,
    ConsentRequired,
    DatabaseError,
    DatabaseUnavailable,
    DefinitionError,
    DomainError,
    ForlopError,
    InvalidArgument,
    NotFound,
    OperationNotAllowed,
    UnknownCheckpoint,
    ValueNotStorable,
)
from pathway.metrics.view import SpanRefused

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An error answer (RFC 9457). Some types add fields: errors, agency, missing_scope, phase, allowed, ..."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(examples=["/problems/stale-version"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(ge=400, le=599, examples=[409])
    detail: str
    instance: str = Field(examples=["/api/v1/cases/BGO-2026-0042/steps/K1/complete"])


# Every error of every route, in the OpenAPI document (instead of FastAPI's default 422, which is not what we send).
DOCUMENTED: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {PROBLEM: {"schema": Problem.model_json_schema()}}}
    for code, text in (("4XX", "The request was refused: problem+json saying what and where, never a value sent"),
                       ("5XX", "The server could not answer (database unavailable, or an unexpected error)"))
}
log = logging.getLogger("forlop.api")


class Refused(HTTPException):
    """A route's refusal, said in the caller's language: an English template of the catalog and its parameters
    (codes and references only)."""

    def __init__(self, status: int, template: str, *, headers: dict[str, str] | None = None, **params: Any) -> None:
        super().__init__(status, template.format(**params), headers=headers)
        self.template = template
        self.params = params


def problem(status: int, detail: str, *, instance: str, type: str = "about:blank",
            headers: dict[str, str] | None = None, lang: str | None = None, **extra: Any) -> JSONResponse:
    """A problem+json answer; ``lang`` is the language ``detail`` is said in (Content-Language)."""
    body = {"type": type, "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "instance": instance, **extra}
    headers = {**(headers or {}), **({"Content-Language": lang} if lang else {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


# A parameter of a domain error is shown only when it looks like a code ('K6', 'police', 'move_out_planned'), a
# single character or a case reference; anything else the caller typed ('Kari Nordmann', a date, an address) is not
# echoed. The engine's own parameters (a phase, what is allowed) are shown as they are.
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}|[A-Z]{1,3}[0-9]{1,3}|.")
_REFERENCE = re.compile(r"[A-Z]{2,5}-\d{4}-\d{1,7}")


def _code_only(value: Any) -> Any:
    """A parameter as a message may show it: numbers, codes and case references; anything else typed is not."""
    if not isinstance(value, str) or _CODE.fullmatch(value) or _REFERENCE.fullmatch(value):
        return value
    return "…"


def describe(exc: ForlopError, lang: str = "en", named: Mapping[str, Callable[[Any], Any]] | None = None,
             ) -> tuple[int, str, str, dict[str, Any]]:
    """Domain and store errors as (status, detail, type, extra fields): what went wrong and where, in terms of
    phases, codes and versions only, said in ``lang`` (``named`` names the codes in it). The API answers it as
    problem+json; a page shows it beside the form. ``code`` and the extra fields are the same in every language."""
    detail = say(exc, lang, named, _code_only)
    extra: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, ConcurrencyConflict):
        return 409, detail, "/problems/stale-version", extra | dict(expected_version=exc.expected,
                                                                     current_version=exc.actual)
    if isinstance(exc, OperationNotAllowed):
        return 409, detail, "/problems/operation-not-allowed", extra | dict(
            operation=_code_only(exc.operation), phase=exc.phase,
            stage=exc.phase,  # stage: the old name of phase, kept for clients written against it
            allowed=exc.allowed)
    if isinstance(exc, ConsentRequired):
        return 409, detail, "/problems/consent-required", extra | dict(agency=exc.agency,
                                                                       missing_scope=exc.missing_scope)
    if isinstance(exc, InvalidArgument):
        return 422, detail, "/problems/invalid-argument", extra | dict(
            errors=[{"loc": ["body", exc.field], "msg": detail}])
    if isinstance(exc, SpanRefused):  # a report's start and end: the API's and the pages' 422, said once here
        return 422, detail, "/problems/span-refused", extra
    if isinstance(exc, UnknownCheckpoint):
        return 404, detail, "/problems/unknown-step", extra
    if isinstance(exc, NotFound):  # the same bare 404 as a route hidden from a role: existence is not revealed
        return 404, gettext(lang)("not found"), "about:blank", {}
    if isinstance(exc, DefinitionError):
        return 422, gettext(lang)("the definition is invalid"), "/problems/invalid-definition", extra | dict(errors=[
            {"file": p.file, "line": p.line, "column": p.column, "field": p.field, "msg": p.message}
            for p in exc.problems])
    if isinstance(exc, DomainError):
        return 409, detail, "/problems/refused", extra
    return 500, gettext(lang)(UNEXPECTED), "about:blank", {}


UNEXPECTED = N_("an unexpected error occurred; it has been logged")


def language_of(request: Request) -> str:
    """The language an answer is said in: a page's (its user's choice or cookie), else the API caller's
    Accept-Language (bokmål by default)."""
    page_language: Callable[[Request], str] | None = getattr(request.app.state, "page_language", None)
    if request.url.path.startswith(NOT_PAGES) or page_language is None:
        return negotiate(request.headers.get("accept-language"))
    return page_language(request)  # the pages' choice (api/web installs it)


def names_for(request: Request, lang: str) -> Mapping[str, Callable[[Any], Any]]:
    core = getattr(request.app.state, "core", None)
    return names(core.catalog.known() if core is not None else (), lang)


def _domain(exc: ForlopError, request: Request) -> JSONResponse:
    lang = language_of(request)
    status, detail, kind, extra = describe(exc, lang, names_for(request, lang))
    return problem(status, detail, instance=request.url.path, type=kind, lang=lang, **extra)


# A full disk is the server's lack of storage (507); the other states pass, so a client may retry (503).
DATABASE_STATUS = {"full": 507, "read_only": 503, "cannot_open": 503, "timeout": 503, "unavailable": 503}


def database_problem(exc: DatabaseUnavailable, *, instance: str, lang: str = "en") -> JSONResponse:
    status = DATABASE_STATUS[exc.kind]
    return problem(status, gettext(lang)(exc.message), instance=instance,
                   type="/problems/database-" + exc.kind.replace("_", "-"),
                   headers={"Retry-After": "5"} if status == 503 else None, lang=lang)


def status_for(exc: Exception) -> int:
    """The HTTP status an error will be answered with (for the access log)."""
    if isinstance(exc, DatabaseUnavailable):
        return DATABASE_STATUS[exc.kind]
    if isinstance(exc, ValueNotStorable):
        return 422
    if isinstance(exc, ForlopError):
        return describe(exc)[0]  # any other DatabaseError is a bug: 500
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


NOT_PAGES = ("/api/", "/openapi.json", "/docs", "/healthz", "/readyz")


def _for(request: Request, answer: JSONResponse) -> Response:
    """The problem for an API caller; for a page (when the app serves pages), the same problem as a page."""
    render: Callable[[Request, JSONResponse], Response] | None = getattr(request.app.state, "render_problem", None)
    if render is None or request.url.path.startswith(NOT_PAGES):
        return answer
    return render(request, answer)


def install(app: FastAPI) -> None:
    @app.exception_handler(ForlopError)
    async def _forlop(request: Request, exc: ForlopError) -> Response:
        return _for(request, _domain(exc, request))

    @app.exception_handler(DatabaseUnavailable)
    async def _database_down(request: Request, exc: DatabaseUnavailable) -> Response:
        return _for(request, database_problem(exc, instance=request.url.path, lang=language_of(request)))

    @app.exception_handler(DatabaseError)
    async def _database_bug(request: Request, exc: DatabaseError) -> Response:
        # Not the database's state (a constraint broken, a statement it cannot run): a bug, answered as unexpected.
        return await _unexpected(request, exc)

    @app.exception_handler(ValueNotStorable)
    async def _unstorable(request: Request, exc: ValueNotStorable) -> Response:
        # A value the database refuses (PostgreSQL: a NUL character, a number out of range) came with the request.
        return _for(request, problem(
            422, gettext(language_of(request))(N_("the request holds a value that cannot be stored or searched for "
                                                   "(e.g. a NUL character)")), instance=request.url.path))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        # A route's refusal is one of the catalog's texts (HTTPException's detail is marked for it).
        lang = language_of(request)
        if isinstance(exc, Refused):
            detail = gettext(lang)(exc.template).format(**exc.params)
        else:
            detail = gettext(lang)(str(exc.detail))
        return _for(request, problem(exc.status_code, detail, instance=request.url.path,
                                     headers=getattr(exc, "headers", None), lang=lang))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # Say where and what, never echo the rejected value (it may be personal data).
        lang = language_of(request)
        errors = [{"loc": list(e.get("loc", ())), "msg": invalid(e, lang)[1]} for e in exc.errors()]
        return _for(request, problem(422, gettext(lang)(N_("the request is invalid")), instance=request.url.path,
                                     errors=errors, lang=lang))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The route template, not the URL or the exception text: neither may carry case data into the log.
        route = getattr(request.scope.get("route"), "path", "?")
        name = exc.driver_error if isinstance(exc, DatabaseError) else type(exc).__name__
        log.error("unexpected %s on %s %s", name, request.method, route)
        return _for(request, problem(500, gettext(language_of(request))(UNEXPECTED),
                                     instance=request.url.path))
