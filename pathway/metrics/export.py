"""The report as files to download: an Excel workbook (one sheet per table) and an RFC 4180 CSV.

Both are written from one tabular model of the report (``tables``), so the two cannot disagree: each table has
its column headers and rows of plain values, one value per cell. A count is a number, or the text ``"<5"`` or
``"x"`` where it is suppressed (``pathway.metrics.suppression``); a share is a number from 0 to 1 (a percentage in
the workbook); hours are numbers; a figure that is not published is an empty cell. The tables:

- "About the figures": what the figures are (span, unit, when made, the suppression rule, what the share within
  deadline counts);
- "Deadlines per checkpoint": one row per checkpoint interval and period (the report's main table);
- "Cases": one row per period, the case figures;
- "Outcomes at closure": one row per period and outcome (and per unit, in the report of all units);
- "Deviation reasons": one row per period, interval and reason named;
- "Cases per unit" (the report of all units only): every unit's case figures, side by side per period.

A CSV holds one table, so the CSV is the tables one after another in one sheet: its first column names the table a
row belongs to (filter on it in a spreadsheet), the other columns are every table's columns, each row filling those
of its table. It is UTF-8 with a byte order mark (so that Excel reads æøå), comma-separated, CRLF, quoted as RFC
4180 says; numbers are written as in the JSON (``0.571``, ``5.5``).

Headers and names are in the reader's language: the pathway layer has no catalog, so the caller passes the words
(``Labels``: a translator for the texts marked here, and the names of intervals, deadlines, outcomes and units).
Text a spreadsheet could take for a formula is escaped with a leading apostrophe (CSV injection), in both files.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from pathway.errors import N_
from pathway.metrics.report import CaseFigures, IntervalFigures, Report
from pathway.metrics.suppression import OTHER

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_FILENAME = "forlop-timeliness.csv"  # the names a download of the report is saved under
XLSX_FILENAME = "forlop-timeliness.xlsx"
OSLO = ZoneInfo("Europe/Oslo")

Value = str | int | float | None  # one cell
Kind = Literal["text", "count", "share", "hours"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # no spreadsheet holds these (openpyxl refuses them)

# The texts of the files, in English, translated by the caller's ``Labels.translate``.
ABOUT, INTERVALS, CASES = N_("About the figures"), N_("Deadlines per checkpoint"), N_("Cases")
OUTCOMES, REASONS, BY_UNIT = N_("Outcomes at closure"), N_("Deviation reasons"), N_("Cases per unit")
TABLE, SUBJECT, VALUE = N_("Table"), N_("Subject"), N_("Value")
PATHWAY, PERIOD, NOT_OVER, UNIT = N_("Pathway"), N_("Period"), N_("Period not over yet"), N_("Unit")
CHECKPOINT, INTERVAL, DESCRIPTION, DEADLINE = N_("Checkpoint"), N_("Interval"), N_("Description"), N_("Deadline")
DONE, MEDIAN, P90 = (N_("Done in the period"), N_("Median lead time (hours)"),
                     N_("90th percentile lead time (hours)"))
DUE, ON_TIME, LATE = N_("Deadlines in the period"), N_("Done on time"), N_("Done late")
OVERDUE, SHARE = N_("Overdue now"), N_("Share within deadline")
OPENED, DECIDED = N_("Cases opened"), N_("Cases with the coordinator deadline decided")
COORDINATOR, CLOSED = N_("Coordinator within 2 working days"), N_("Closed")
RETURNED, REPEAT = N_("Returned to the abuser (share of closed)"), N_("Repeat contact")
REPEAT_SHARE = N_("Repeat contact (share of opened)")
OUTCOME_CODE, OUTCOME, COUNT = N_("Outcome code"), N_("Outcome"), N_("Number")
REASON = N_("Deviation reason")
ALL_UNITS, YES, MONTH, TERTIAL = N_("All units"), N_("yes"), N_("Month"), N_("Tertial")
OTHER_REASONS = N_("other (<5)")  # the reasons not named (``suppression.OTHER``), in the reader's words
FROM, TO, PARTIAL, GENERATED = N_("From"), N_("To"), N_("Periods not over yet"), N_("Generated at")
REPORT, REPORT_TEXT = N_("Report"), N_("Timeliness of the care pathway: aggregates only, never a person")
SMALL_COUNTS = N_("Small counts")
SMALL_TEXT = N_('A count from 1 to 4 is shown as "<5" (0 to 4), and a count of 5 or more that would give such a '
                'count away through a sum is shown as "x", so that no person can be recognised. A share, median or '
                'percentile whose base is hidden or under 5 is left empty.')
SHARE_TEXT = N_("Done on time among the steps whose deadline fell in the period: those done on time, those done "
                "late and those still open past the deadline now all count.")
LEAD, LEAD_TEXT = N_("Lead time"), N_("Hours from what the deadline counts from until the step was done, paused "
                                      "time left out, of the steps done in the period.")
REASONS_TEXT = N_('The reasons given for steps done late. A reason is named when it was given in at least 5 cases '
                  'and its count can be shown; the others are added up as "other (<5)".')

assert OTHER_REASONS == OTHER


def reason_words(reason: str, translate: Callable[[str], str]) -> str:
    """A deviation reason as it was given, or the reasons too rare to name, added up (``suppression.OTHER``), in
    the reader's words: the one text the files and the report page show for them."""
    return translate(OTHER_REASONS) if reason == OTHER else reason


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Labels:
    """The words of one language for the files. Left out, a text stays English and a name stays its code."""

    translate: Callable[[str], str] = _same  # a text marked here (English) in the reader's language
    unit_name: Callable[[str], str] = _same  # a unit's code -> its name
    intervals: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (pathway, "K0→K1") -> in words
    deadlines: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (pathway, "K0→K1") -> "24 timer"
    outcomes: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (pathway, code) -> its name


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Table:
    """One table of the report: a sheet of the workbook, the rows of the CSV named ``name``."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]


def _text(value: str) -> str:
    """Text a spreadsheet must not take for a formula, without characters no spreadsheet holds."""
    value = _CONTROL.sub("", value)
    return f"'{value}" if value.startswith(_FORMULA) else value


def _clean(value: Value) -> Value:
    return _text(value) if isinstance(value, str) else value


def _table(name: str, columns: Sequence[tuple[str, Kind]], rows: Sequence[Sequence[Value]],
           t: Callable[[str], str]) -> Table:
    return Table(name=_text(t(name)), columns=tuple(Column(_text(t(h)), k) for h, k in columns),
                 rows=tuple(tuple(_clean(v) for v in row) for row in rows))


def tables(report: Report, labels: Labels = Labels()) -> list[Table]:
    """The report as tables, in the order of the workbook's sheets (see the module's docstring)."""
    t = labels.translate
    not_over = set(report.partial)

    def where(pathway: str, period: str, unit: str | None) -> list[Value]:
        return [pathway, period, t(YES) if period in not_over else None,
                t(ALL_UNITS) if unit is None else labels.unit_name(unit)]

    def interval(r: IntervalFigures) -> list[Value]:
        return [r.checkpoint, r.interval, labels.intervals.get((r.pathway, r.interval), r.interval)]

    place: list[tuple[str, Kind]] = [(PATHWAY, "text"), (PERIOD, "text"), (NOT_OVER, "text"), (UNIT, "text")]
    named: list[tuple[str, Kind]] = [(CHECKPOINT, "text"), (INTERVAL, "text"), (DESCRIPTION, "text")]
    found = [
        _table(ABOUT, [(SUBJECT, "text"), (VALUE, "text")], _about(report, labels), t),
        _table(INTERVALS, [*place, *named, (DEADLINE, "text"), (DONE, "count"), (MEDIAN, "hours"), (P90, "hours"),
                           (DUE, "count"), (ON_TIME, "count"), (LATE, "count"), (OVERDUE, "count"),
                           (SHARE, "share")],
               [[*where(r.pathway, r.period, r.unit), *interval(r),
                 labels.deadlines.get((r.pathway, r.interval), r.deadline), r.completed, r.median_hours, r.p90_hours,
                 r.due, r.done_on_time, r.done_late, r.overdue_now, r.within_deadline_share]
                for r in report.intervals], t),
    ]
    case_columns: list[tuple[str, Kind]] = [
        *place, (OPENED, "count"), (DECIDED, "count"), (COORDINATOR, "share"), (CLOSED, "count"),
        (RETURNED, "share"), (REPEAT, "count"), (REPEAT_SHARE, "share")]

    def case(c: CaseFigures) -> list[Value]:
        return [*where(c.pathway, c.period, c.unit), c.opened, c.coordinator_decided, c.coordinator_within_share,
                c.closed, c.returned_to_abuser_share, c.repeat_contact, c.repeat_contact_share]

    order = {p: i for i, p in enumerate(report.periods)}
    # side by side: the units of one period together
    by_unit = sorted(report.by_unit, key=lambda c: (c.pathway, order.get(c.period, len(order))))
    found.append(_table(CASES, case_columns, [case(c) for c in report.cases], t))
    found.append(_table(OUTCOMES, [*place, (OUTCOME_CODE, "text"), (OUTCOME, "text"), (COUNT, "count")],
                        [[*where(c.pathway, c.period, c.unit), code, labels.outcomes.get((c.pathway, code), code), n]
                         for c in [*report.cases, *by_unit] for code, n in c.outcomes.items()], t))
    found.append(_table(REASONS, [*place, *named, (REASON, "text"), (COUNT, "count")],
                        [[*where(r.pathway, r.period, r.unit), *interval(r), reason_words(reason, t), n]
                         for r in report.intervals for reason, n in r.deviation_reasons.items()], t))
    if report.unit is None:
        found.append(_table(BY_UNIT, case_columns, [case(c) for c in by_unit], t))
    return found


def _about(report: Report, labels: Labels) -> list[list[Value]]:
    t = labels.translate
    made = report.generated_at.astimezone(OSLO)
    return [
        [t(REPORT), t(REPORT_TEXT)],
        [t(UNIT), t(ALL_UNITS) if report.unit is None else labels.unit_name(report.unit)],
        [t(PERIOD), t(MONTH) if report.period == "month" else t(TERTIAL)],
        [t(FROM), report.start.isoformat()],
        [t(TO), report.end.isoformat()],
        [t(PARTIAL), ", ".join(report.partial) or "–"],
        [t(GENERATED), f"{made:%Y-%m-%d %H:%M} (Europe/Oslo)"],
        [t(SMALL_COUNTS), t(SMALL_TEXT)],
        [t(SHARE), t(SHARE_TEXT)],
        [t(LEAD), t(LEAD_TEXT)],
        [t(REASONS), t(REASONS_TEXT)],
    ]


def _csv_cell(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(report: Report, labels: Labels = Labels()) -> bytes:
    """The report's tables one after another as one CSV (see the module's docstring), UTF-8 with a BOM."""
    found = tables(report, labels)
    table = _text(labels.translate(TABLE))
    header = list(dict.fromkeys(c.header for x in found for c in x.columns))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([table, *header])
    for x in found:
        at = {c.header: i for i, c in enumerate(x.columns)}
        for row in x.rows:
            writer.writerow([x.name, *(_csv_cell(row[at[h]]) if h in at else "" for h in header)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_FORMATS: dict[Kind, str] = {"share": "0.0%", "hours": "0.0", "count": "0"}
_SHEET_TITLE = re.compile(r"[\[\]:*?/\\]")


def to_xlsx(report: Report, labels: Labels = Labels()) -> bytes:
    """The report's tables as an Excel workbook, one sheet per table: numbers as numbers (shares with a percent
    format), a suppressed count as its text, a header row that stays in view and filters."""
    from openpyxl import Workbook  # only a download needs it
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for i, table in enumerate(tables(report, labels)):
        sheet = book.create_sheet(_SHEET_TITLE.sub(" ", table.name)[:31])
        sheet.append([c.header for c in table.columns])
        for row in table.rows:
            sheet.append(list(row))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        about = i == 0
        for n, column in enumerate(table.columns, start=1):
            cells = [row[n - 1] for row in table.rows]
            width = max([len(column.header) if not about else 0, *(len(str(v)) for v in cells if v is not None)])
            sheet.column_dimensions[get_column_letter(n)].width = min(max(width + 2, 8), 100 if about else 60)
            if column.kind in _FORMATS:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=n, max_col=n):
                    if isinstance(cell.value, (int, float)):
                        cell.number_format = _FORMATS[column.kind]
        if about:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=2, max_col=2):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        else:
            sheet.freeze_panes = "A2"
            if table.rows:
                sheet.auto_filter.ref = sheet.dimensions
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
