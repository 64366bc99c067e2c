"""The manager's report page: timeliness against the target, as SVG charts each with its data table, and the
CSV. The figures are the API's report (counts under 5 suppressed); the page only draws them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.access import access_writer, log_access
from api.deps import Core
from api.report_words import report_labels
from api.web import charts
from api.web.i18n import period_words, translator
from api.web.render import page, percent
from api.web.session import ManagerPage, language
from pathway import policy
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.metrics.export import Labels, reason_words
from pathway.metrics.periods import period_key
from pathway.metrics.report import RETURNED_TO_ABUSER, IntervalFigures, Report
from pathway.metrics.suppression import Count
from pathway.metrics.view import Scope, read_report
from pathway.views.break_glass import Uses, unit_uses

router = APIRouter(include_in_schema=False)


@router.get("/reports")
def report_page(request: Request, core: Core, session: ManagerPage,
                period: Literal["month", "tertial"] = "month", start: date | None = None, end: date | None = None,
                scope: Scope = "unit", at: Annotated[str, Query(max_length=10)] = "",
                interval: Annotated[str, Query(max_length=40)] = "",
                pathway: Annotated[str, Query(max_length=64)] = "") -> Response:
    report = read_report(core, policy.report_unit(session.user, scope), period, start, end, pathway or None)
    log_access(core.engine, request, session.user, "report.read")
    lang = language(request, session.user)
    t = translator(lang)
    # The words of the downloads (interval names counted from a checkpoint's name, deadlines, outcomes): the page
    # says what the workbook and the CSV say.
    labels = report_labels(report, lang, definition=core.catalog.latest, unit_name=core.settings.unit_name)
    partial = set(report.partial)
    full = [p for p in report.periods if p not in partial]
    # The period of the per-checkpoint charts: the last one that is over, unless another is asked for.
    shown_period = at if at in report.periods else (full or list(report.periods) or [""])[-1]
    named = {p: period_words(p, lang, partial=p in partial) for p in report.periods}
    registered = {p: core.catalog.latest(p).title.get(lang) for p in sorted({p for p, _, _ in core.catalog.versions()})}
    view = _View(report=report, labels=labels, t=t, target=core.settings.report_target_share,
                 shown_period=shown_period, named=named, in_words=named.get(shown_period, shown_period),
                 short={p: period_words(p, lang, short=True) for p in report.periods}, unit_name=core.settings.unit_name)
    # Each pathway's figures under its title: the installation's pathway (the adult's) first, then the others.
    sections = [view.section(p, registered.get(p, p), interval)
                for p in sorted(report.pathways, key=lambda p: (p != core.settings.default_pathway, p))]
    uses = _break_glass_uses(core, request, session.user, report)
    query = {"period": period, "start": report.start.isoformat(), "end": report.end.isoformat(), "scope": scope,
             **({"pathway": pathway} if pathway else {})}
    return page(request, "report.html", session, report=report, sections=sections, uses=uses,
                shown_period=shown_period, target=view.target, named=named,
                partial=[named[p] for p in report.periods if p in partial], pathways=registered,
                chosen_pathway=pathway, interval=interval, returned_code=RETURNED_TO_ABUSER,
                outcome_names=labels.outcomes, reason=lambda text: reason_words(text, t),
                query=query, download=urlencode(query))


@dataclass(frozen=True)
class _View:
    """What every pathway's section of the page shares: the report, its words, the period shown."""

    report: Report
    labels: Labels
    t: Callable[[str], str]
    target: float
    shown_period: str
    named: dict[str, str]
    in_words: str
    short: dict[str, str]
    unit_name: Callable[[str], str]

    def section(self, pathway: str, title: str, interval: str) -> dict[str, Any]:
        """One pathway's charts and tables: its intervals, its cases; chart ids carry the pathway's id."""
        report, labels, t, target, shown_period = self.report, self.labels, self.t, self.target, self.shown_period
        in_words, short = self.in_words, self.short
        partial_short = {short[p] for p in report.partial}
        rows = [r for r in report.intervals if r.unit == report.unit and r.pathway == pathway]
        words = {name: text for (p, name), text in labels.intervals.items() if p == pathway}
        deadlines = {name: text for (p, name), text in labels.deadlines.items() if p == pathway}
        label = {r.interval: words.get(r.interval, r.interval) for r in rows}
        checkpoint = {name: text.split(" → ")[-1] for name, text in label.items()}  # the chart's: where it ends
        names = list(dict.fromkeys(r.interval for r in rows))
        chosen = interval if interval in names else (names[0] if names else "")
        in_period = [r for r in rows if r.period == shown_period]
        over_time = [r for r in rows if r.interval == chosen]
        overdue: dict[str, tuple[int, bool]] = {}
        for r in rows:
            n, hidden = overdue.get(r.interval, (0, False))
            overdue[r.interval] = (n + r.overdue_now, hidden) if isinstance(r.overdue_now, int) else (n, True)
        target_label = t("Target") + f" {percent(target)}"
        hidden_text = t("hidden")

        def shown(n: Count) -> str:
            return str(n) if isinstance(n, int) else ("<5" if n == "<5" else hidden_text)

        def drawn(n: Count) -> int | None:
            return n if isinstance(n, int) else None

        def chart_id(name: str) -> str:
            return f"{name}-{pathway}"

        by_checkpoint = charts.share_bars(
            chart_id("share-checkpoint"), t("Share within deadline per checkpoint") + f" ({in_words})",
            target_label, [(checkpoint[r.interval], r.within_deadline_share, _share_text(r)) for r in in_period],
            target, target_label)
        deadline_chart = charts.stacked_bars(
            chart_id("deadlines-checkpoint"), t("Deadlines in the period per checkpoint") + f" ({in_words})",
            t("Done on time, done late, open past the deadline"),
            [(checkpoint[r.interval], [drawn(r.done_on_time), drawn(r.done_late), drawn(r.overdue_now)],
              " / ".join(shown(n) for n in (r.done_on_time, r.done_late, r.overdue_now))) for r in in_period],
            ["bar", "bar-late", "bar-overdue"])
        by_period = charts.share_bars(
            chart_id("share-period"), t("Share within deadline per period") + f": {checkpoint.get(chosen, chosen)}",
            target_label, [(short[r.period], r.within_deadline_share, _share_text(r)) for r in over_time], target,
            target_label, horizontal=False, partial=partial_short)
        lead = charts.range_bars(
            chart_id("lead-time"), t("Lead time per checkpoint (median and 90th percentile, hours)") + f" ({in_words})",
            "", [(checkpoint[r.interval], r.median_hours, r.p90_hours) for r in in_period], "h")
        overdue_chart = charts.count_bars(
            chart_id("overdue-now"), t("Overdue now per checkpoint"), "",
            [(checkpoint[name], n, f"{n}{' +' if hidden else ''}") for name, (n, hidden) in overdue.items()])
        cases = [c for c in report.cases if c.unit == report.unit and c.pathway == pathway]
        in_period_cases = [c for c in cases if c.period == shown_period]
        returned = charts.share_bars(
            chart_id("returned"), t("Returned to the abuser at closure, per period"), t("Share of the cases closed"),
            [(short[c.period], c.returned_to_abuser_share, percent(c.returned_to_abuser_share)) for c in cases], None,
            "", horizontal=False, partial=partial_short)
        outcomes = charts.count_bars(
            chart_id("outcomes"), t("Outcomes at closure") + f" ({in_words})", t("Cases closed per outcome"),
            [(labels.outcomes.get((c.pathway, code), code), drawn(n), shown(n))
             for c in in_period_cases for code, n in c.outcomes.items()], css="bar-count")
        repeat = charts.share_bars(
            chart_id("repeat"), t("Repeat contact within 12 months, per period"), t("Share of the cases opened"),
            [(short[c.period], c.repeat_contact_share, percent(c.repeat_contact_share)) for c in cases], None, "",
            horizontal=False, partial=partial_short)
        reasons = [(r, text, n) for r in in_period for text, n in r.deviation_reasons.items()]
        reasons_chart = charts.count_bars(
            chart_id("reasons"), t("Reasons given for deviations") + f" ({in_words})",
            t("Steps done late, per reason given"),
            [(f"{checkpoint[r.interval].split(' ')[0]}: {reason_words(text, t)}", drawn(n), shown(n))
             for r, text, n in reasons], css="bar-count")
        units = sorted((c for c in report.by_unit if c.period == shown_period and c.pathway == pathway),
                       key=lambda c: self.unit_name(c.unit or "").casefold())
        per_unit = charts.count_bars(
            chart_id("per-unit"), t("Cases opened per unit") + f" ({in_words})",
            t("Each unit's cases opened in the period"),
            [(self.unit_name(c.unit or ""), drawn(c.opened), shown(c.opened)) for c in units],
            css="bar-count") if units else None
        # returned to the abuser is the adult's outcome: a pathway without it (a child's) has no such chart
        has_returned = any(RETURNED_TO_ABUSER in c.outcomes for c in cases)
        return {"id": pathway, "title": title, "charts": [by_checkpoint, deadline_chart, by_period, lead, overdue_chart],
                "in_period": in_period, "over_time": over_time, "overdue": overdue, "cases": cases,
                "names": names, "chosen": chosen, "label": label, "deadlines": deadlines,
                "case_charts": {"returned": returned if has_returned else None, "outcomes": outcomes,
                                "repeat": repeat, "reasons": reasons_chart, "per_unit": per_unit},
                "in_period_cases": in_period_cases, "reasons": reasons, "units": units}


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
    return percent(row.within_deadline_share)  # "–" when not published: the table says why (its counts)

