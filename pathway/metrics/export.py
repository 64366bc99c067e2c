"""The report as CSV, with text a spreadsheet could take for a formula escaped (CSV injection)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pathway.metrics.report import Report

ALL_UNITS_CSV = "*"
MEDIA_TYPE = "text/csv; charset=utf-8"
FILENAME = "forlop-timeliness.csv"  # the name a download of the report is saved under

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """Text a spreadsheet must not take for a formula."""
    return f"'{value}" if value.startswith(_FORMULA) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(report: Report) -> str:
    """The report as CSV (comma-separated, RFC 4180 quoting, UTF-8 text, header row): one row per interval ×
    period × unit (``section`` "interval"), then one per period × unit with the case figures (``section`` "case").
    All units is written as ``*``; a suppressed share is an empty cell; reasons are a JSON object."""
    codes: list[str] = []
    for row in report.cases:
        codes += [c for c in row.outcomes if c not in codes]
    header = ["section", "pathway", "period", "unit", "checkpoint", "interval", "deadline", "completed",
              "within_deadline_share", "median_hours", "p90_hours", "overdue_now", "deviation_reasons", "opened",
              "coordinator_decided", "coordinator_within_share", "closed",
              *[f"outcome_{c}" for c in codes], "returned_to_abuser_share", "repeat_contact",
              "repeat_contact_share"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for r in report.intervals:
        cells = dict(
            section="interval", pathway=_text(r.pathway), period=r.period,
            unit=ALL_UNITS_CSV if r.unit is None else _text(r.unit), checkpoint=_text(r.checkpoint),
            interval=_text(r.interval), deadline=r.deadline, completed=r.completed,
            within_deadline_share=r.within_deadline_share, median_hours=r.median_hours, p90_hours=r.p90_hours,
            overdue_now=r.overdue_now, deviation_reasons=json.dumps(r.deviation_reasons, ensure_ascii=False),
        )
        writer.writerow([_cell(cells.get(h)) for h in header])
    for c in report.cases:
        cells = dict(
            section="case", pathway=_text(c.pathway), period=c.period,
            unit=ALL_UNITS_CSV if c.unit is None else _text(c.unit), opened=c.opened,
            coordinator_decided=c.coordinator_decided, coordinator_within_share=c.coordinator_within_share,
            closed=c.closed, returned_to_abuser_share=c.returned_to_abuser_share, repeat_contact=c.repeat_contact,
            repeat_contact_share=c.repeat_contact_share, **{f"outcome_{k}": v for k, v in c.outcomes.items()},
        )
        writer.writerow([_cell(cells.get(h)) for h in header])
    return out.getvalue()
