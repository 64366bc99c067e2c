"""The suite's own clock: a run at a chosen date is at that date in this process and in every process it starts."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from tests.suite import processes
from tests.suite.clock import OSLO, destination


def test_a_date_keeps_the_time_of_day_in_oslo() -> None:
    real = datetime(2026, 12, 6, 9, 15, tzinfo=timezone.utc)  # 10:15 in Oslo
    assert destination("2027-03-28", real=real) == datetime(2027, 3, 28, 10, 15, tzinfo=OSLO)


def test_a_time_with_its_offset_is_taken_as_it_is() -> None:
    moment = destination("2027-12-31T23:30+01:00", real=datetime.now(timezone.utc))
    assert moment.utcoffset() == timedelta(hours=1) and (moment.year, moment.hour, moment.minute) == (2027, 23, 30)


def test_a_time_without_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        destination("2027-03-28T01:30", real=datetime.now(timezone.utc))


def test_a_process_the_suite_starts_is_on_the_suite_s_clock() -> None:
    proc = processes.spawn([sys.executable, "-c", "import time; print(time.time())"], stdout=subprocess.PIPE,
                           text=True)
    try:
        before = datetime.now(timezone.utc).timestamp()
        out, _ = proc.communicate(timeout=60)
        after = datetime.now(timezone.utc).timestamp()
    finally:
        processes.end(proc)
    # Started after ``before`` and done before ``after`` on the same (possibly shifted) clock; a minute of slack for
    # a loaded machine, far less than any shift a run at another date makes.
    assert before - 60 <= float(out) <= after + 60
