"""RFC 9457 problem+json for every error the API answers; no stack traces, no case content."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from pathway.errors import (
    ConcurrencyConflict,
    ConsentRequired,
    DefinitionError,
    DomainError,
    ForlopError,
    InvalidArgument,
    NotFound,
    OperationNotAllowed,
    UnknownCheckpoint,
)

PROBLEM = "application/problem+json"
log = logging.getLogger("forlop.api")


def problem(status: int, detail: str, *, instance: str, type: str = "about:blank",
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type, "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            "instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _domain(exc: ForlopError, instance: str) -> JSONResponse:
    """Domain and store errors: what went wrong and where, in terms of stages, codes and versions only."""
    if isinstance(exc, ConcurrencyConflict):
        return problem(409, str(exc), instance=instance, type="/problems/stale-version",
                       expected_version=exc.expected, current_version=exc.actual)
    if isinstance(exc, OperationNotAllowed):
        return problem(409, str(exc), instance=instance, type="/problems/operation-not-allowed",
                       stage=exc.stage, allowed=exc.allowed)
    if isinstance(exc, ConsentRequired):
        return problem(409, str(exc), instance=instance, type="/problems/consent-required", agency=exc.agency,
                       missing_scope=exc.missing_scope)
    if isinstance(exc, InvalidArgument):
        return problem(422, str(exc), instance=instance, type="/problems/invalid-argument",
                       errors=[{"loc": ["body", exc.field], "msg": str(exc)}])
    if isinstance(exc, UnknownCheckpoint):
        return problem(404, str(exc), instance=instance, type="/problems/unknown-step")
    if isinstance(exc, NotFound):
        return problem(404, "not found", instance=instance)
    if isinstance(exc, DefinitionError):
        return problem(422, "the definition is invalid", instance=instance, type="/problems/invalid-definition",
                       errors=[{"file": p.file, "line": p.line, "column": p.column, "field": p.field,
                                "msg": p.message} for p in exc.problems])
    if isinstance(exc, DomainError):
        return problem(409, str(exc), instance=instance, type="/problems/refused")
    return problem(500, "an unexpected error occurred; it has been logged", instance=instance)


def status_for(exc: Exception) -> int:
    """The HTTP status an error will be answered with (for the access log)."""
    if isinstance(exc, ForlopError):
        return _domain(exc, "").status_code
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(ForlopError)
    async def _forlop(request: Request, exc: ForlopError) -> JSONResponse:
        return _domain(exc, request.url.path)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        return problem(503, "the database is unavailable; try again shortly", instance=request.url.path,
                       headers={"Retry-After": "5"})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), instance=request.url.path,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Say where and what, never echo the rejected value (it may be personal data).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem(422, "the request is invalid", instance=request.url.path, errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The route template, not the URL or the exception text: neither may carry case data into the log.
        route = getattr(request.scope.get("route"), "path", "?")
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, route)
        return problem(500, "an unexpected error occurred; it has been logged", instance=request.url.path)
