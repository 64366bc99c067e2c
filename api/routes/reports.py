"""Managers' routes: timeliness figures, aggregates only (counts under 5 suppressed), as JSON, CSV or an Excel
workbook (the downloads in the language Accept-Language asks for, bokmål by default); and the uses of
emergency access to their unit's cases (who, which case reference, when: the review the access policy asks for)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from api.access import access_writer, log_access
from api.deps import Core, Manager
from api.i18n import negotiate
from api.report_words import FileKind, download
from pathway import policy
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.metrics import periods
from pathway.metrics.export import XLSX_MEDIA_TYPE
from pathway.metrics.view import Scope, read_report, report_span
from pathway.views.break_glass import unit_uses

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Period = Annotated[Literal["month", "tertial"], Query(description="month or tertial (Jan–Apr, May–Aug, Sep–Dec)")]
Pathway = Annotated[str | None, Query(max_length=64, description="only this pathway's figures (a registered "
                                                                  "pathway's id, e.g. krisesenter or barn)")]


@router.get("/timeliness", summary="Share within deadline, lead times, overdue now, deviation reasons, outcomes",
            description="Every pathway's figures, each row naming its pathway (`pathway`: one pathway's only).")
def timeliness(request: Request, core: Core, user: Manager, period: Period = "month",
               start: date | None = None, end: date | None = None,
               scope: Literal["unit", "all"] = "unit", pathway: Pathway = None) -> dict[str, Any]:
    report = read_report(core, policy.report_unit(user, scope), period, start, end, pathway)
    log_access(core.engine, request, user, "report.read")
    return dataclasses.asdict(report)


@router.get("/timeliness.csv", summary="The same figures as CSV: every table in one, named in its first column",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def timeliness_csv(request: Request, core: Core, user: Manager, period: Period = "month",
                   start: date | None = None, end: date | None = None,
                   scope: Literal["unit", "all"] = "unit", pathway: Pathway = None) -> Response:
    return _download(request, core, user, "csv", period, start, end, scope, pathway)


@router.get("/timeliness.xlsx", summary="The same figures as an Excel workbook, one sheet per table",
            response_class=Response, responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}})
def timeliness_xlsx(request: Request, core: Core, user: Manager, period: Period = "month",
                    start: date | None = None, end: date | None = None,
                    scope: Literal["unit", "all"] = "unit", pathway: Pathway = None) -> Response:
    return _download(request, core, user, "xlsx", period, start, end, scope, pathway)


def _download(request: Request, core: Forlop, user: User, kind: FileKind, period: periods.Period,
              start: date | None, end: date | None, scope: Scope, pathway: str | None) -> Response:
    report = read_report(core, policy.report_unit(user, scope), period, start, end, pathway)
    log_access(core.engine, request, user, f"report.{kind}")
    return download(core, report, kind, negotiate(request.headers.get("accept-language")))


@router.get("/break-glass", summary="Emergency access to my unit's cases: who, which case, when, read or write, ended")
def break_glass_uses(request: Request, core: Core, user: Manager, period: Period = "month",
                     start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """The span is the timeliness report's (by default the last 365 days); each case reference shown is logged."""
    start, end = report_span(start, end, now=datetime.now(timezone.utc))
    unit = policy.break_glass_reviewed(user)
    if unit is None:  # a manager without a unit reviews none
        raise HTTPException(404, "not found")
    with core.uow(snapshot=True) as uow:
        uses = unit_uses(uow.conn, unit, start=start, end=end,
                         period_of=lambda at: periods.period_key(at, period))
        access_writer(request, user, "break_glass.review",
                      shown=[(r, None) for r in dict.fromkeys(u["case_reference"] for u in uses.uses)])(uow.conn)
        uow.commit()
    return dataclasses.asdict(uses)
