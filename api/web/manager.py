"""The manager's report page: timeliness against the target, as SVG charts each with its data table, and the
CSV. The figures are the API's report (counts under 5 suppressed); the page only draws them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from api.access import access_writer, log_access
from api.deps import Core
from api.web import charts
from api.web.i18n import deadline_words, interval_words, translator
from api.web.render import page, percent
from api.web.session import ManagerPage, language
from pathway import policy
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.metrics.checkpoints import intervals
from pathway.metrics.export import FILENAME, MEDIA_TYPE, to_csv
from pathway.metrics.periods import Period, period_key
from pathway.metrics.report import IntervalFigures, Report
from pathway.metrics.view import Scope, SpanRefused, read_report
from pathway.views.break_glass import Uses, unit_uses

router = APIRouter(include_in_schema=False)


def _read(core: Forlop, user: User, period: Period, start: date | None, end: date | None, scope: Scope) -> Report:
    try:
        return read_report(core, user, period, start, end, scope)
    except SpanRefused as exc:  # the API's 422, shown as a problem page
        raise HTTPException(422, str(exc)) from exc


@router.get("/reports")
def report_page(request: Request, core: Core, session: ManagerPage,
                period: Literal["month", "tertial"] = "month", start: date | None = None, end: date | None = None,
                scope: Scope = "unit", at: Annotated[str, Query(max_length=10)] = "",
                interval: Annotated[str, Query(max_length=40)] = "") -> Response:
    report = _read(core, session.user, period, start, end, scope)
    log_access(core.engine, request, session.user, "report.read")
    t = translator(language(request, session.user))
    target = core.settings.report_target_share
    shown_period = at if at in report.periods else (report.periods[-1] if report.periods else "")
    rows = [r for r in report.intervals if r.unit == report.unit]
    words = _interval_words(core, rows, language(request, session.user))
    label = {r.interval: words.get((r.pathway, r.interval), (r.interval, r.deadline))[0] for r in rows}
    names = list(dict.fromkeys(r.interval for r in rows))
    chosen = interval if interval in names else (names[0] if names else "")
    in_period = [r for r in rows if r.period == shown_period]
    over_time = [r for r in rows if r.interval == chosen]
    overdue: dict[str, tuple[int, bool]] = {}
    for r in rows:
        n, hidden = overdue.get(r.interval, (0, False))
        overdue[r.interval] = (n + r.overdue_now, hidden) if isinstance(r.overdue_now, int) else (n, True)
    target_label = t("Target") + f" {percent(target)}"
    by_checkpoint = charts.share_bars(
        "share-checkpoint", t("Share within deadline per checkpoint") + f" ({shown_period})",
        target_label, [(label[r.interval], r.within_deadline_share, _share_text(r)) for r in in_period], target,
        target_label)
    by_period = charts.share_bars(
        "share-period", t("Share within deadline per period") + f": {label.get(chosen, chosen)}", target_label,
        [(r.period, r.within_deadline_share, _share_text(r)) for r in over_time], target, target_label,
        horizontal=False)
    lead = charts.range_bars(
        "lead-time", t("Lead time per checkpoint (median and 90th percentile, hours)") + f" ({shown_period})", "",
        [(label[r.interval], r.median_hours, r.p90_hours) for r in in_period], "h")
    overdue_chart = charts.count_bars(
        "overdue-now", t("Overdue now per checkpoint"), "",
        [(label[name], n, f"{n}{' +' if hidden else ''}") for name, (n, hidden) in overdue.items()])
    cases = [c for c in report.cases if c.unit == report.unit]
    uses = _break_glass_uses(core, request, session.user, report)
    return page(request, "report.html", session, report=report, charts=[by_checkpoint, by_period, lead,
                overdue_chart], in_period=in_period, over_time=over_time, overdue=overdue, cases=cases, uses=uses,
                shown_period=shown_period, names=names, chosen=chosen, target=target,
                words=words, label=label,
                query={"period": period, "start": report.start.isoformat(), "end": report.end.isoformat(),
                       "scope": scope})


def _interval_words(core: Forlop, rows: list[IntervalFigures], lang: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Each interval shown in words of the page's language, by (pathway, interval): its name and its deadline rule."""
    words = {}
    for pathway_id in {r.pathway for r in rows}:
        definition = core.catalog.latest(pathway_id)
        for i in intervals(definition):
            words[pathway_id, i.name] = (interval_words(definition, i, lang),
                                         deadline_words(definition.checkpoint[i.checkpoint], i.repeat, lang))
    return words


def _break_glass_uses(core: Forlop, request: Request, user: User, report: Report) -> Uses | None:
    """The emergency grants to the manager's own unit's cases in the report's span (whatever unit the figures are
    for), and the access-log row of each case reference shown, in the read's transaction."""
    unit = policy.break_glass_reviewed(user)
    if unit is None:
        return None
    with core.uow(snapshot=True) as uow:
        uses = unit_uses(uow.conn, unit, start=report.start, end=report.end,
                         period_of=lambda at: period_key(at, report.period))
        access_writer(request, user, "break_glass.review",
                      shown=[(r, None) for r in dict.fromkeys(u["case_reference"] for u in uses.uses)])(uow.conn)
        uow.commit()
    return uses


def _share_text(row: IntervalFigures) -> str:
    if row.within_deadline_share is None:
        return "–" if row.completed == 0 else str(row.completed)
    return percent(row.within_deadline_share)


@router.get("/reports/timeliness.csv")
def report_csv(request: Request, core: Core, session: ManagerPage, period: Literal["month", "tertial"] = "month",
               start: date | None = None, end: date | None = None, scope: Scope = "unit") -> Response:
    report = _read(core, session.user, period, start, end, scope)
    log_access(core.engine, request, session.user, "report.csv")
    return Response(to_csv(report), media_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{FILENAME}"'})
