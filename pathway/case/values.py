"""The case's value objects and the checks every operation applies to its input.

A step is one occurrence of a checkpoint (or an ad-hoc step); its ``state`` is driven by ``STEP_MACHINE``, whose
after-callbacks (``on_activate``, ``on_end``) set its timestamps, so no operation writes them by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pathway.errors import N_, InvalidArgument
from pathway.machine import OPEN_STEP_STATES

HANDOVER_STATUSES = ("requested", "accepted", "declined", "completed", "cancelled")
OPEN_HANDOVER = ("requested", "accepted")  # still to be accepted or completed: the only tasks that can be late
ANSWERED = ("accepted", "declined", "completed")  # an agency's answers (a task cancelled was the crisis centre's)
BACKDATE_TOLERANCE = timedelta(hours=1)
MAX_TEXT = 2000
REASON_REQUIRED = N_("a reason is required for this operation")  # marked: said in the reader's language
LATE_NOTE_REQUIRED = N_("the deadline has passed: give the reason for the deviation as a note")

DUE_SOON = timedelta(hours=24)
DeadlineStatus = Literal["overdue", "due_soon"]

# Every time a case is given lies in this window: deadlines and reminder rungs reach years beyond it
# (offsets are bounded to ten years), and year 1 or 9999 would overflow datetime on the way.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


def utc(at: datetime, field_name: str = "at") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidArgument(field_name, "timestamps must carry a time zone")
    if not EARLIEST <= at < LATEST:
        raise InvalidArgument(field_name, "must lie between {earliest} and {latest}", earliest=EARLIEST.year,
                              latest=LATEST.year)
    return at.astimezone(timezone.utc)


def iso(at: datetime | None) -> str | None:
    """A time as the events and the state digest write it: UTC, ISO 8601."""
    if at is None:
        return None
    return _utc_iso(at if at.tzinfo is timezone.utc else at.astimezone(timezone.utc))


@lru_cache(maxsize=16_384)
def _utc_iso(at: datetime) -> str:
    # A case's times are written again with every event (its steps', consents' and milestones' in the state digest):
    # remembered, about 14x cheaper (timeit: 2.3 µs -> 0.17 µs). Keyed by the time in UTC, not as given: two local
    # times equal but for ``fold`` are an hour apart, while UTC has one time per instant.
    return at.isoformat()


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def deadline_status(due_at: datetime | None, now: datetime, closed: bool = False) -> DeadlineStatus | None:
    """The one rule for late work: "overdue" once the deadline has passed, "due_soon" within ``DUE_SOON`` before it;
    None without a deadline and for a closed case or an ended step (it keeps its history, but is late no more)."""
    if closed or due_at is None:
        return None
    if due_at < now:
        return "overdue"
    return "due_soon" if due_at < now + DUE_SOON else None


def text(field_name: str, value: str | None, *, required: bool, missing: str = REASON_REQUIRED) -> str | None:
    """A free text as an operation stores it: stripped, bounded, and present where the rule requires it."""
    if value is not None:
        value = value.strip()
    if not value:
        if required:
            raise InvalidArgument(field_name, missing)
        return None
    if len(value) > MAX_TEXT:
        raise InvalidArgument(field_name, "longer than {n} characters", n=MAX_TEXT)
    return value


def actor_name(actor: str) -> str:
    if not actor or not actor.strip() or len(actor) > 200:
        raise InvalidArgument("actor", "who made the change must be given (1–200 characters)")
    return actor.strip()


@dataclass(slots=True)
class Step:
    """One occurrence of a checkpoint, or an ad-hoc step."""

    id: uuid.UUID
    code: str
    occurrence: int
    owner: str
    created_at: datetime
    state: str = "pending"
    adhoc: bool = False
    title: str | None = None
    anchor_at: datetime | None = None
    due_at: datetime | None = None
    activated_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STEP_STATES

    def overdue(self, now: datetime) -> bool:
        return deadline_status(self.due_at, now, closed=not self.is_open) == "overdue"

    # -- STEP_MACHINE's after-callbacks (the trigger's keyword arguments carry who and when) ----------------

    def on_activate(self, event: Any) -> None:
        self.activated_at = event.kwargs["at"]

    def on_end(self, event: Any) -> None:
        self.ended_at, self.ended_by = event.kwargs["at"], event.kwargs["actor"]


@dataclass(slots=True)
class Consent:
    agency: str
    scope: tuple[str, ...]
    given: bool
    recorded_at: datetime
    recorded_by: str

    def covers(self, scope: Iterable[str]) -> list[str]:
        """The part of ``scope`` this consent does not cover (empty: all covered)."""
        return [s for s in scope if not self.given or s not in self.scope]


def shareable(task_scope: Iterable[str], basis: str, consent_scope: Iterable[str] | None) -> tuple[str, ...]:
    """What of a handover task's scope its agency may be shown now. Consent is read when the task is read, not only
    when it was created: a consent narrowed after the handover narrows what every open task shows at once, and a
    withdrawn one (``None``) shows nothing. A task on a legal basis shares no consent scope."""
    allowed = set(consent_scope or ()) if basis == "consent" else set()
    return tuple(s for s in task_scope if s in allowed)


@dataclass(slots=True)
class HandoverTask:
    id: uuid.UUID
    code: str
    agency: str
    scope: tuple[str, ...]
    basis: str  # "consent" or a legal basis of the definition's (``legal_bases``)
    status: str
    created_at: datetime
    created_by: str
    due_at: datetime | None
    updated_at: datetime
    note: str | None = None  # the coordinator's note to the agency, written at the handover; the agency's alone
    urgency: str | None = None  # the case's threat level when the task was made (a RISK_LEVELS value)
    updated_by: str | None = None  # who last answered it (accepted, declined, completed) or cancelled it
    reply: str | None = None  # the agency's reason for declining or its note on completing

    # Kept since tasks had them: in a snapshot only when set, so that states from before hash as they did.
    EXTRAS: ClassVar[tuple[str, ...]] = ("note", "urgency", "updated_by", "reply")
    TEXTS: ClassVar[tuple[str, ...]] = ("note", "reply")  # of the extras, the free text (sealed under the case's key)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_HANDOVER
