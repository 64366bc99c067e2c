"""The suite's "now": the real clock, or a chosen date (``FORLOP_TEST_TODAY``) in this process and every Python
process the suite starts.

``FORLOP_TEST_TODAY=2027-03-01 make test`` runs the suite as if today were 1 March 2027 at the current time of day
in Oslo; a full ISO time with its offset (``2027-03-28T01:30+01:00``) picks the minute. The clock runs on from there
(time-machine, ``tick=True``). Processes the suite starts inherit the offset through ``PYTHONPATH`` and
``site/sitecustomize.py``, so a server and the test that talks to it agree on the date.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine

TODAY = "FORLOP_TEST_TODAY"
OFFSET = "PYTEST_CLOCK_OFFSET"  # not FORLOP_*: the helpers that start `forlop` drop those from its environment
SITE = Path(__file__).resolve().parent / "site"
OSLO = ZoneInfo("Europe/Oslo")


def destination(value: str, *, real: datetime) -> datetime:
    """The moment ``value`` names: a date (at ``real``'s time of day in Oslo) or an ISO time with an offset."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(f"{TODAY}={value!r}: give a date (2027-03-01) or a time with its offset "
                             "(2027-03-28T01:30+01:00)") from None
        return moment
    return datetime.combine(day, real.astimezone(OSLO).timetz().replace(tzinfo=None), OSLO)


def start() -> str:
    """Put this process (and, through the environment, those it starts) at the chosen date; a line for the header."""
    if os.environ.get(OFFSET):  # an xdist worker: sitecustomize already moved this interpreter at its start
        return f"clock: {datetime.now(OSLO).isoformat(timespec='seconds')} ({TODAY}, inherited)"
    value = os.environ.get(TODAY, "").strip()
    if not value:
        return f"clock: real, {datetime.now(OSLO).isoformat(timespec='seconds')}"
    real = datetime.now(timezone.utc)
    moment = destination(value, real=real)
    time_machine.travel(moment, tick=True).start()
    os.environ[OFFSET] = repr(moment.timestamp() - real.timestamp())
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p)
    return f"clock: {TODAY}={value}, now is {moment.astimezone(OSLO).isoformat(timespec='seconds')} (Europe/Oslo)"
