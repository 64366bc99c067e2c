"""The access log as the API and the pages write it: every read and write of case data, allowed or refused, with who,
when, which case, what and from where (the request's client). The rows go through ``pathway.store.access``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from fastapi import Request

from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.errors import NotFound
from pathway.store.access import AccessWriter, apart
from pathway.store.access import access_writer as store_writer
from pathway.views.access import access_entries

if TYPE_CHECKING:
    from sqlalchemy import Engine

Shown = list[tuple[str | None, uuid.UUID | None]]  # (case reference, task) of each thing a list showed


def channel(request: Request) -> str:
    """Where a change came from, as its event records it: the pages (``web``) or the API (``api``)."""
    return "api" if request.url.path.startswith("/api/") else "web"


def access_writer(request: Request, user: User, action: str, *, case_reference: str | None = None,
                  task_id: uuid.UUID | None = None, status: int = 200, break_glass: bool = False,
                  reason: str | None = None, shown: Shown | None = None) -> AccessWriter:
    """The access-log rows of one request (``pathway.store.access.access_writer``), from the request's client."""
    return store_writer(username=user.username, role=user.role, action=action,
                        client=request.client.host if request.client else None, case_reference=case_reference,
                        task_id=task_id, status=status, break_glass=break_glass, reason=reason, shown=shown)


def log_access(engine: Engine, request: Request, user: User, action: str, *, case_reference: str | None = None,
               task_id: uuid.UUID | None = None, status: int = 200, break_glass: bool = False,
               reason: str | None = None, shown: Shown | None = None) -> None:
    """Log in a transaction of its own: a refused request (whose own transaction, if any, was rolled back), or one
    whose work ran in transactions that it does not hold (a report, a person record, a case just opened)."""
    apart(engine, access_writer(request, user, action, case_reference=case_reference, task_id=task_id, status=status,
                                break_glass=break_glass, reason=reason, shown=shown))


def refused(engine: Engine, request: Request, user: User, action: str, what: str, key: object, *,
            case_reference: str | None = None, task_id: uuid.UUID | None = None) -> NotFound:
    """Log a refused request with its 404 and return the error to raise: refused as if nothing were there."""
    log_access(engine, request, user, action, case_reference=case_reference, task_id=task_id, status=404)
    return NotFound(what, key)
