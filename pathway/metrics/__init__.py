"""Timeliness figures for managers: aggregates only, never a person.

``timeliness`` answers, per checkpoint interval ("K0→K1": a checkpoint and the anchor its deadline counts from)
and per period (month "2026-11" or tertial "2026-T3"; January–April is T1, May–August T2, September–December
T3; dates are read in Europe/Oslo), for all units together or for one unit:

- ``completed``: occurrences done in the period (by the time they were done): the base of the lead times;
- ``due``: occurrences whose deadline fell in the period and was met or has passed, as ``done_on_time`` (done by
  it: ``ended_at <= due_at``, ``due_at`` already moved by the pauses a resume ended, or done during a pause that
  began before it), ``done_late`` and ``overdue_now`` (still open past it now; a deadline that fell inside a pause
  that still lasts is not overdue: the clock stands still); ``within_deadline_share`` is ``done_on_time / due``;
- ``median_hours`` / ``p90_hours``: lead time in hours from the anchor to completion, with every pause between
  the two left out whether or not it has ended (``lead_times``). Percentiles interpolate linearly between the
  nearest ranks (as PostgreSQL's ``percentile_cont``);
- ``deviation_reasons``: the documented reasons of late completions (the reason of ``complete`` events), counted
  per reason text (compared without case and surrounding or repeated spaces).

and per period the case figures: cases ``opened`` (by first contact), the share with a coordinator within the
deadline (the checkpoint completed by ``assign_coordinator``, K3: two working days), among the cases where that is
decided (done, or overdue now), cases ``closed`` and their ``outcomes``, the return-to-abuser rate at closure, and
``repeat_contact`` (a new contact within 12 months, ``pathway_case.repeat_contact``) among the cases opened.

Counts from 1 to 4 are suppressed, with whatever else would give them away (see ``suppression``).

The modules, in the order a report is made:

- ``periods``: period keys, their bounds in Europe/Oslo, the default span;
- ``checkpoints``: the checkpoint intervals of a definition;
- ``collect``: the SQL that collects the figures at the finest level (unit, month), and their roll-up;
- ``lead_times``: lead times with paused time left out, and their percentiles;
- ``suppression``: the small-number disclosure control (``suppress``, ``fold_reasons``);
- ``report``: the report, cut from the whole breakdown suppressed at once (``timeliness``);
- ``export``: the report as CSV and as an Excel workbook;
- ``snapshots``: each tertial's figures for every unit, stored as a block in ``report_snapshot`` (any span reads
  the blocks of its tertials), kept fresh by the scheduler;
- ``view``: the report as the API and the pages read it (from the blocks).
"""

from pathway.metrics.checkpoints import Interval, intervals
from pathway.metrics.collect import Resolver
from pathway.metrics.export import to_csv
from pathway.metrics.lead_times import done_on_time, lead_hours, percentile
from pathway.metrics.periods import Period, default_span, months_of, period_bounds, period_key, periods_covering
from pathway.metrics.report import (Breakdown, CaseFigures, IntervalFigures, Report, breakdown, reports_for_all_units,
                                    timeliness)
from pathway.metrics.suppression import HIDDEN, MIN_COUNT, OTHER, SMALL, Count, suppress

__all__ = [
    "HIDDEN", "MIN_COUNT", "OTHER", "SMALL", "Breakdown", "CaseFigures", "Count", "Interval", "IntervalFigures",
    "Period", "Report", "Resolver", "breakdown", "default_span", "done_on_time", "intervals",
    "lead_hours", "months_of", "percentile", "period_bounds", "period_key", "periods_covering",
    "reports_for_all_units", "suppress", "timeliness", "to_csv",
]
