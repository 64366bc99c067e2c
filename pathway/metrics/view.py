"""The managers' timeliness report as the API and the pages read it: one read, with one rule for what a manager
may see, answered from the stored blocks of its tertials."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Literal

from pathway.case import EARLIEST, LATEST
from pathway.errors import N_, ForlopError
from pathway.metrics.periods import Period, default_span
from pathway.metrics.report import Report, timeliness
from pathway.metrics.snapshots import blocks_report

if TYPE_CHECKING:
    from pathway.bootstrap import Forlop

Scope = Literal["unit", "all"]


class SpanRefused(ForlopError):
    """The span asked for cannot be reported on; the message says why (it names no value but the limits). The API
    and the pages answer it as a 422 problem (``api.problems``), in the reader's language."""

    code = "span-refused"
    engine_params = ("earliest", "latest")


def report_span(start: date | None, end: date | None, *, now: datetime) -> tuple[date, date]:
    """The days a report covers, ``start``..``end``: by default the last 12 full months and the current one up to
    ``now`` (``default_span``), at most three years between 1970 and 2100. Raises ``SpanRefused``."""
    end = end or default_span(now)[1]
    if not EARLIEST.date() <= (start or end) or end >= LATEST.date():  # year 1 or 9999 overflows date arithmetic
        raise SpanRefused(N_("start and end must lie between {earliest} and {latest}"), earliest=EARLIEST.year,
                          latest=LATEST.year)
    start = start or default_span(end)[0]
    if start > end or (end - start).days > 3 * 366:
        raise SpanRefused(N_("start must come before end, and the span be at most three years"))
    return start, end


def read_report(core: Forlop, unit: str | None, period: Period, start: date | None, end: date | None,
                pathway: str | None = None) -> Report:
    """The report of ``unit``, or of every unit together (None), each unit beside the others, by ``period``, over
    ``start``..``end`` (by default the last 12 full months and the current one, ``default_span``), from the
    stored blocks of the tertials it touches (``snapshots``; a missing or stale one is computed then); of one
    ``pathway`` only if given (else every pathway's figures, each under its own id). Which unit a manager may see is
    the access policy's (``pathway.policy.report_unit``). Raises ``SpanRefused``, and ``InvalidArgument`` for a
    pathway that is not registered."""
    now = datetime.now(timezone.utc)
    start, end = report_span(start, end, now=now)
    if pathway:
        core.catalog.named(pathway)
    max_age = core.settings.report_snapshot_max_age
    if max_age is None:  # blocks off: every report is computed now
        report = timeliness(engine=core.engine, resolve=core.catalog.resolve, period=period, start=start, end=end,
                            unit=unit, now=now, keys=core.keys)
    else:
        report = blocks_report(engine=core.engine, resolve=core.catalog.resolve, period=period, start=start,
                               end=end, unit=unit, now=now, max_age=max_age, keys=core.keys)
    return report.of_pathway(pathway or None)
