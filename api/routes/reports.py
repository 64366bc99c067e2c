"""Managers' routes: timeliness figures, aggregates only (counts under 5 suppressed), as JSON or CSV."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from api.access import log_access
from api.deps import Core, Manager
from pathway import metrics
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.cases import EARLIEST, LATEST
from pathway.store import snapshots

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Period = Annotated[Literal["month", "tertial"], Query(description="month or tertial (Jan–Apr, May–Aug, Sep–Dec)")]


def _report(core: Forlop, user: User, period: str, start: date | None, end: date | None,
            scope: str) -> metrics.Report:
    now = datetime.now(timezone.utc)
    default = start is None and end is None
    end = end or metrics.default_span(now)[1]
    if not EARLIEST.date() <= (start or end) or end >= LATEST.date():  # year 1 or 9999 overflows date arithmetic
        raise HTTPException(422, f"start and end must lie between {EARLIEST.year} and {LATEST.year}")
    start = start or metrics.default_span(end)[0]
    if start > end or (end - start).days > 3 * 366:
        raise HTTPException(422, "start must come before end, and the span be at most three years")
    # A manager sees their own unit, or every unit together; never another unit on its own.
    unit = user.unit if scope == "unit" and user.unit else None
    max_age = core.settings.report_snapshot_max_age
    if default and max_age is not None:
        # The default report is computed in the background (the national breakdown takes long); its
        # generated_at says when. A missing or stale snapshot (scheduler off or behind) is computed live.
        snapshot = snapshots.read_snapshot(core.engine, period=period, start=start, end=end, unit=unit,
                                           not_before=now - max_age)
        if snapshot is not None:
            return snapshot
    return metrics.timeliness(engine=core.engine, resolve=core.catalog.resolve, period=period,  # type: ignore[arg-type]
                              start=start, end=end, unit=unit, now=now)


@router.get("/timeliness", summary="Share within deadline, lead times, overdue now, deviation reasons, outcomes")
def timeliness(request: Request, core: Core, user: Manager, period: Period = "month",
               start: date | None = None, end: date | None = None,
               scope: Literal["unit", "all"] = "unit") -> dict[str, Any]:
    report = _report(core, user, period, start, end, scope)
    log_access(core.engine, request, user, "report.read")
    return dataclasses.asdict(report)


@router.get("/timeliness.csv", summary="The same figures as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def timeliness_csv(request: Request, core: Core, user: Manager, period: Period = "month",
                   start: date | None = None, end: date | None = None,
                   scope: Literal["unit", "all"] = "unit") -> Response:
    report = _report(core, user, period, start, end, scope)
    log_access(core.engine, request, user, "report.csv")
    return Response(metrics.to_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="forlop-timeliness.csv"'})
