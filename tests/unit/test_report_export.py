"""The report's downloads, from a report made by hand: the CSV is RFC 4180 with one value per cell, the workbook
has a sheet per table with numbers as numbers, both say the same and escape what a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import openpyxl

from pathway.metrics import HIDDEN, OTHER, SMALL, CaseFigures, IntervalFigures, Report
from pathway.metrics.export import Labels, tables, to_csv, to_xlsx

UTC = timezone.utc
HOSTILE_UNIT = "=HYPERLINK(1)"


def a_report(unit: str | None = HOSTILE_UNIT) -> Report:
    row = IntervalFigures(
        pathway="krisesenter", checkpoint="K1", interval="K0→K1", deadline="24 hours", period="2026-11",
        unit=unit, completed=12, within_deadline_share=0.571, median_hours=5.5, p90_hours=31.9,
        overdue_now=SMALL, deviation_reasons={"Ventet på tolk, igjen": 7, "-1 dag": 5, OTHER: SMALL},
        due=14, done_on_time=8, done_late=SMALL,
    )
    cases = CaseFigures(
        pathway="krisesenter", period="2026-11", unit=unit, opened=14, coordinator_decided=HIDDEN,
        coordinator_within_share=None, closed=8, outcomes={"safe_housing": 5, "returned_to_abuser": SMALL},
        returned_to_abuser_share=None, repeat_contact=SMALL, repeat_contact_share=None,
    )
    by_unit = () if unit is not None else (CaseFigures(**{**{f: getattr(cases, f) for f in CaseFigures.__slots__},
                                                          "unit": HOSTILE_UNIT}),)
    return Report(period="month", start=date(2026, 11, 1), end=date(2026, 12, 31), unit=unit,
                  generated_at=datetime(2026, 12, 1, 12, tzinfo=UTC), periods=("2026-11", "2026-12"),
                  intervals=(row,), cases=(cases,), partial=("2026-12",), by_unit=by_unit)


def test_the_csv_is_rfc_4180_utf8_with_a_bom_and_one_value_per_cell() -> None:
    body = to_csv(a_report())
    assert body.startswith("\ufeff".encode())  # so that Excel reads æøå
    text = body.decode("utf-8-sig")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    assert header[0] == "Table" and len({len(r) for r in rows}) == 1  # every row as wide as the header
    parsed = [dict(zip(header, r)) for r in rows[1:]]
    interval = next(r for r in parsed if r["Table"] == "Deadlines per checkpoint")
    assert (interval["Interval"], interval["Done in the period"], interval["Share within deadline"]) == (
        "K0→K1", "12", "0.571")
    assert (interval["Overdue now"], interval["Done late"], interval["Median lead time (hours)"]) == ("<5", "<5", "5.5")
    assert interval["Unit"] == "'" + HOSTILE_UNIT  # never a formula in a spreadsheet
    reasons = {r["Deviation reason"]: r["Number"] for r in parsed if r["Table"] == "Deviation reasons"}
    assert reasons == {"Ventet på tolk, igjen": "7", "'-1 dag": "5", OTHER: "<5"}  # one reason a row, no JSON
    outcomes = {r["Outcome code"]: r["Number"] for r in parsed if r["Table"] == "Outcomes at closure"}
    assert outcomes == {"safe_housing": "5", "returned_to_abuser": "<5"}
    case = next(r for r in parsed if r["Table"] == "Cases")
    assert (case["Cases with the coordinator deadline decided"], case["Coordinator within 2 working days"]) == ("x", "")
    assert not any(cell.startswith(("{", "=", "+", "@")) for r in rows for cell in r)


def test_the_workbook_has_a_sheet_per_table_with_numbers_as_numbers_and_suppressed_counts_as_text() -> None:
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(a_report(unit=None))))
    assert book.sheetnames == ["About the figures", "Deadlines per checkpoint", "Cases", "Outcomes at closure",
                               "Deviation reasons", "Cases per unit"]
    sheet = book["Deadlines per checkpoint"]
    header = [c.value for c in sheet[1]]
    cells = dict(zip(header, sheet[2]))
    assert cells["Done in the period"].value == 12 and cells["Done in the period"].data_type == "n"
    assert cells["Share within deadline"].value == 0.571 and cells["Share within deadline"].number_format == "0.0%"
    assert cells["Median lead time (hours)"].value == 5.5 and cells["Median lead time (hours)"].data_type == "n"
    assert cells["Overdue now"].value == SMALL and cells["Overdue now"].data_type == "s"
    assert cells["Unit"].value == "All units" and cells["Period not over yet"].value is None
    per_unit = dict(zip([c.value for c in book["Cases per unit"][1]], [c.value for c in book["Cases per unit"][2]]))
    assert per_unit["Unit"] == "'" + HOSTILE_UNIT and per_unit["Cases opened"] == 14
    assert not [c.coordinate for s in book for row in s.iter_rows() for c in row if c.data_type == "f"]
    about = {row[0]: row[1] for row in book["About the figures"].iter_rows(min_row=2, values_only=True)}
    assert about["Periods not over yet"] == "2026-12" and about["Unit"] == "All units"
    assert about["Generated at"] == "2026-12-01 13:00 (Europe/Oslo)"
    assert '"<5"' in about["Small counts"] and "done late" in about["Share within deadline"]


def test_the_csv_and_the_workbook_hold_the_same_tables() -> None:
    report = a_report(unit=None)
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(report)))
    rows = list(csv.DictReader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    for table in tables(report):
        sheet = [[c.value for c in r] for r in book[table.name].iter_rows()]
        assert sheet[0] == [c.header for c in table.columns]
        in_csv = [[r[c.header] for c in table.columns] for r in rows if r["Table"] == table.name]
        assert [["" if v is None else str(v) for v in r] for r in sheet[1:]] == in_csv


def test_the_callers_labels_name_the_tables_headers_intervals_outcomes_and_units() -> None:
    words = {"Deadlines per checkpoint": "Frister per sjekkpunkt", "Interval": "Intervall", "All units": "Alle enheter",
             "Description": "Beskrivelse", "Deadline": "Frist", "Outcome": "Utfall", "Table": "Tabell"}
    labels = Labels(translate=lambda text: words.get(text, text), unit_name=str.upper,
                    intervals={("krisesenter", "K0→K1"): "Første henvendelse → K1 Kartlegging"},
                    deadlines={("krisesenter", "K0→K1"): "24 timer"},
                    outcomes={("krisesenter", "safe_housing"): "Trygg bolig"})
    found = {t.name: t for t in tables(a_report(unit="sentrum"), labels)}
    interval = found["Frister per sjekkpunkt"]
    row = dict(zip([c.header for c in interval.columns], interval.rows[0]))
    assert (row["Intervall"], row["Beskrivelse"], row["Frist"], row["Unit"]) == (
        "K0→K1", "Første henvendelse → K1 Kartlegging", "24 timer", "SENTRUM")
    outcomes = found["Outcomes at closure"]
    assert [dict(zip([c.header for c in outcomes.columns], r))["Utfall"] for r in outcomes.rows] == [
        "Trygg bolig", "returned_to_abuser"]  # a name the caller does not know stays its code
    assert "Cases per unit" not in found  # one unit's report compares no units
    assert to_csv(a_report(), labels).decode("utf-8-sig").startswith("Tabell,")
