"""Managers' routes: timeliness figures, aggregates only (counts under 5 suppressed), as JSON or CSV."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from api.access import log_access
from api.deps import Core, Manager
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.metrics import periods
from pathway.metrics.export import FILENAME, MEDIA_TYPE, to_csv
from pathway.metrics.report import Report
from pathway.metrics.view import Scope, SpanRefused, read_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Period = Annotated[Literal["month", "tertial"], Query(description="month or tertial (Jan–Apr, May–Aug, Sep–Dec)")]


def _read(core: Forlop, user: User, period: periods.Period, start: date | None, end: date | None,
          scope: Scope) -> Report:
    try:
        return read_report(core, user, period, start, end, scope)
    except SpanRefused as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/timeliness", summary="Share within deadline, lead times, overdue now, deviation reasons, outcomes")
def timeliness(request: Request, core: Core, user: Manager, period: Period = "month",
               start: date | None = None, end: date | None = None,
               scope: Literal["unit", "all"] = "unit") -> dict[str, Any]:
    report = _read(core, user, period, start, end, scope)
    log_access(core.engine, request, user, "report.read")
    return dataclasses.asdict(report)


@router.get("/timeliness.csv", summary="The same figures as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def timeliness_csv(request: Request, core: Core, user: Manager, period: Period = "month",
                   start: date | None = None, end: date | None = None,
                   scope: Literal["unit", "all"] = "unit") -> Response:
    report = _read(core, user, period, start, end, scope)
    log_access(core.engine, request, user, "report.csv")
    return Response(to_csv(report), media_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{FILENAME}"'})
