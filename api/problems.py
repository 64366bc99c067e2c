"""RFC 9457 problem+json for every error the API answers; no stack traces, no case content."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

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


def problem(status: int, detail: str, *, instance: str, type: str = "about:blank",
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type, "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# A quoted value in a domain message is kept only when it looks like a code ('K6', 'police', 'move_out_planned')
# or a single character; anything else the caller typed ('Kari Nordmann', a date, an address) is not echoed.
_QUOTED = re.compile(r"'([^']*)'")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}|[A-Z]{1,3}[0-9]{1,3}|.")


def _said(exc: Exception) -> str:
    return _QUOTED.sub(lambda m: m.group(0) if _CODE.fullmatch(m.group(1)) else "'…'", str(exc))


def describe(exc: ForlopError) -> tuple[int, str, str, dict[str, Any]]:
    """Domain and store errors as (status, detail, type, extra fields): what went wrong and where, in terms of
    phases, codes and versions only. The API answers it as problem+json; a page shows it beside the form."""
    if isinstance(exc, ConcurrencyConflict):
        return 409, str(exc), "/problems/stale-version", dict(expected_version=exc.expected,
                                                              current_version=exc.actual)
    if isinstance(exc, OperationNotAllowed):
        return 409, _said(exc), "/problems/operation-not-allowed", dict(
            phase=exc.phase, stage=exc.phase,  # stage: the old name of phase, kept for clients written against it
            allowed=exc.allowed)
    if isinstance(exc, ConsentRequired):
        return 409, str(exc), "/problems/consent-required", dict(agency=exc.agency, missing_scope=exc.missing_scope)
    if isinstance(exc, InvalidArgument):
        return 422, _said(exc), "/problems/invalid-argument", dict(errors=[{"loc": ["body", exc.field],
                                                                            "msg": _said(exc)}])
    if isinstance(exc, UnknownCheckpoint):
        return 404, _said(exc), "/problems/unknown-step", {}
    if isinstance(exc, NotFound):
        return 404, "not found", "about:blank", {}
    if isinstance(exc, DefinitionError):
        return 422, "the definition is invalid", "/problems/invalid-definition", dict(errors=[
            {"file": p.file, "line": p.line, "column": p.column, "field": p.field, "msg": p.message}
            for p in exc.problems])
    if isinstance(exc, DomainError):
        return 409, _said(exc), "/problems/refused", {}
    return 500, "an unexpected error occurred; it has been logged", "about:blank", {}


def _domain(exc: ForlopError, instance: str) -> JSONResponse:
    status, detail, kind, extra = describe(exc)
    return problem(status, detail, instance=instance, type=kind, **extra)


# A full disk is the server's lack of storage (507); the other states pass, so a client may retry (503).
DATABASE_STATUS = {"full": 507, "read_only": 503, "cannot_open": 503, "timeout": 503, "unavailable": 503}


def database_problem(exc: DatabaseUnavailable, *, instance: str) -> JSONResponse:
    status = DATABASE_STATUS[exc.kind]
    return problem(status, exc.message, instance=instance, type="/problems/database-" + exc.kind.replace("_", "-"),
                   headers={"Retry-After": "5"} if status == 503 else None)


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
        return _for(request, _domain(exc, request.url.path))

    @app.exception_handler(DatabaseUnavailable)
    async def _database_down(request: Request, exc: DatabaseUnavailable) -> Response:
        return _for(request, database_problem(exc, instance=request.url.path))

    @app.exception_handler(DatabaseError)
    async def _database_bug(request: Request, exc: DatabaseError) -> Response:
        # Not the database's state (a constraint broken, a statement it cannot run): a bug, answered as unexpected.
        return await _unexpected(request, exc)

    @app.exception_handler(ValueNotStorable)
    async def _unstorable(request: Request, exc: ValueNotStorable) -> Response:
        # A value the database refuses (PostgreSQL: a NUL character, a number out of range) came with the request.
        return _for(request, problem(
            422, "the request holds a value that cannot be stored or searched for (e.g. a NUL character)",
            instance=request.url.path))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _for(request, problem(exc.status_code, str(exc.detail), instance=request.url.path,
                                     headers=getattr(exc, "headers", None)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # Say where and what, never echo the rejected value (it may be personal data).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return _for(request, problem(422, "the request is invalid", instance=request.url.path, errors=errors))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The route template, not the URL or the exception text: neither may carry case data into the log.
        route = getattr(request.scope.get("route"), "path", "?")
        name = exc.driver_error if isinstance(exc, DatabaseError) else type(exc).__name__
        log.error("unexpected %s on %s %s", name, request.method, route)
        return _for(request, problem(500, "an unexpected error occurred; it has been logged",
                                     instance=request.url.path))
