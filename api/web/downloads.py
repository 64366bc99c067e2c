"""The manager's report as files to save from the report page: the CSV and the Excel workbook, with the same
figures as the page and the API (one read, ``read_report``), headers and names in the page's language."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.access import log_access
from api.deps import Core
from api.report_words import FileKind, download
from api.web.session import ManagerPage, Session, language
from pathway import policy
from pathway.bootstrap import Forlop
from pathway.metrics.view import Scope, read_report

router = APIRouter(include_in_schema=False)
Pathway = Annotated[str, Query(max_length=64)]


@router.get("/reports/timeliness.csv")
def report_csv(request: Request, core: Core, session: ManagerPage, period: Literal["month", "tertial"] = "month",
               start: date | None = None, end: date | None = None, scope: Scope = "unit",
               pathway: Pathway = "") -> Response:
    return _download(request, core, session, "csv", period, start, end, scope, pathway)


@router.get("/reports/timeliness.xlsx")
def report_xlsx(request: Request, core: Core, session: ManagerPage, period: Literal["month", "tertial"] = "month",
                start: date | None = None, end: date | None = None, scope: Scope = "unit",
               pathway: Pathway = "") -> Response:
    return _download(request, core, session, "xlsx", period, start, end, scope, pathway)


def _download(request: Request, core: Forlop, session: Session, kind: FileKind,
              period: Literal["month", "tertial"], start: date | None, end: date | None, scope: Scope,
              pathway: str) -> Response:
    report = read_report(core, policy.report_unit(session.user, scope), period, start, end, pathway or None)
    log_access(core.engine, request, session.user, f"report.{kind}")
    return download(core, report, kind, language(request, session.user))
