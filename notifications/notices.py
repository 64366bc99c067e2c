"""Notices that are no reminder: who hears that someone took emergency (break-glass) access to a case, or that an
agency declined a handover task, and what each of them is told. Pure decisions over plain facts (no database, no
clock); the store writes what they return, in the transaction of what they tell of.

Emergency access: the owning unit's coordinators are sent to the case page (where they may end the access), its
managers to the report page (where the uses are listed). Every notice names the case reference, the unit and the user
who took the access, and nothing else: never the reason they gave, never anything of the person.

A declined handover: the case's coordinator (else the unit's coordinators) is sent to the case page, where the reason
is read. The notice names the case reference and the checkpoint, and nothing else: never the agency (its name alone
says that children or the police are involved, and email is no safe channel), never the reason it gave, never anything
of the person.

The daily digest of overdue steps: once a working day, each unit with steps past their manager rung tells its managers
(else its coordinators, :func:`~notifications.routing.managers_of`) how many there are, and links to the timeliness
report. Counts only: never a case reference, a step's title or anything of a person. Email and webhook say only the
total, the unit's name, the date and the link: a checkpoint's name says too much on an unsafe channel (K5 says children,
K6 the police). The inbox, read signed in, has the counts per checkpoint, with the report's small-count rule
(:func:`inbox_digest`).

A police referral: when one arrives, the receiving unit's coordinators are sent to the unit's intake queue; when a
coordinator declines one, the police contact who sent it is sent to their list of referrals, where the reason is read.
Neither names the person, says what happened, gives the reason or (to the police) any case: only that there is a
referral, the unit and the link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from notifications.message import SMALL, shown_count
from notifications.routing import Candidate, channels_of, managers_of

__all__ = ["BREAK_GLASS", "HANDOVER_DECLINED", "OVERDUE_DIGEST", "REFERRAL_DECLINED", "REFERRAL_RECEIVED",
           "CheckpointCount", "Notice", "break_glass_notices", "handover_declined_notices", "inbox_digest",
           "overdue_digest_notices", "referral_declined_notices", "referral_received_notices"]

BREAK_GLASS = "break_glass"  # the notices' kinds, in the inbox and in the outbox payload
HANDOVER_DECLINED = "handover_declined"
OVERDUE_DIGEST = "overdue_digest"
REFERRAL_RECEIVED = "referral_received"
REFERRAL_DECLINED = "referral_declined"


@dataclass(frozen=True, slots=True)
class CheckpointCount:
    """How many of a unit's steps at one checkpoint are past their manager rung. ``code`` None: steps added to a case
    (ad hoc), whose titles are free text and never told; ``names``: the checkpoint's name by language (nb, en)."""

    code: str | None
    names: Mapping[str, str]
    count: int

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "names": dict(self.names), "count": self.count}


@dataclass(frozen=True, slots=True)
class Notice:
    """One recipient's notice: the inbox row's facts, and the channels (besides the inbox) it also goes by."""

    username: str
    channels: tuple[str, ...]
    kind: str
    case_reference: str | None  # None in the digest, which is about no case
    unit: str
    actor: str | None  # who took the emergency access (None otherwise)
    due_at: datetime  # when the access runs out; the step's deadline; when the digest's steps were counted
    link: str
    step_code: str | None = None
    count: int = 1  # the digest: how many steps in all
    checkpoints: tuple[CheckpointCount, ...] = field(default=())  # the digest: how many per checkpoint
    unit_name: str | None = None  # the digest: the unit's display name, if it has one

    def payload(self) -> dict[str, Any]:
        """The outbox payload (JSON) that ``notifications.dispatcher.to_message`` turns back into a Message. The
        digest's: its total only (None for 1 to 4) and the unit's name, never a checkpoint."""
        payload: dict[str, Any] = {
            "kind": self.kind, "due_at": self.due_at.isoformat(), "link": self.link,
            "case_reference": self.case_reference, "step_code": self.step_code, "unit": self.unit, "count": self.count,
            "actor": self.actor}
        if self.kind == OVERDUE_DIGEST:
            payload.update(count=shown_count(self.count), unit_name=self.unit_name)
        return payload

    def inbox_digest(self) -> dict[str, Any] | None:
        """What the inbox row keeps of the digest's counts (:func:`inbox_digest`); None for any other notice."""
        return inbox_digest(self.checkpoints) if self.kind == OVERDUE_DIGEST else None


def break_glass_notices(*, case_reference: str, unit: str, actor: str, expires_at: datetime,
                        candidates: Iterable[Candidate], public_url: str) -> list[Notice]:
    """A notice for each active coordinator and manager of the owning ``unit`` among ``candidates`` (but the one who
    took the access), in name order."""
    base = public_url.rstrip("/")
    links = {"coordinator": f"{base}/cases/{quote(case_reference, safe='')}",
             "manager": f"{base}/reports?unit={quote(unit, safe='')}"}
    notices = []
    for user in sorted(candidates, key=lambda c: c.username):
        if user.unit != unit or user.role not in links or user.username == actor:
            continue
        notices.append(Notice(username=user.username, channels=channels_of(user),
                              kind=BREAK_GLASS, case_reference=case_reference, unit=unit, actor=actor,
                              due_at=expires_at, link=links[user.role]))
    return notices


def handover_declined_notices(*, case_reference: str, unit: str, coordinator: str | None, step_code: str,
                              due_at: datetime, candidates: Iterable[Candidate], public_url: str) -> list[Notice]:
    """A notice for the case's ``coordinator`` when they are an active coordinator of ``unit`` among ``candidates``,
    else for each of the unit's active coordinators, in name order: the work of chasing a declined handover is
    theirs. ``due_at``: the step's deadline (or when the task was declined, for a step without one)."""
    link = f"{public_url.rstrip('/')}/cases/{quote(case_reference, safe='')}"
    coordinators = sorted((c for c in candidates if c.role == "coordinator" and c.unit == unit),
                          key=lambda c: c.username)
    chosen = [c for c in coordinators if c.username == coordinator] or coordinators
    return [Notice(username=user.username, channels=channels_of(user), kind=HANDOVER_DECLINED,
                   case_reference=case_reference, unit=unit, actor=None, due_at=due_at, link=link,
                   step_code=step_code) for user in chosen]


def inbox_digest(checkpoints: Iterable[CheckpointCount]) -> dict[str, Any]:
    """The digest as the inbox shows it, with the managers' report's small-count rule: ``{"total": int | None,
    "lines": [{"code": str | None, "names": {"nb": ..., "en": ...}, "count": int | None, "other": bool}, ...]}``,
    None standing for a count from 1 to 4 ("fewer than 5").

    The rule: a checkpoint (or the steps added ad hoc, code None) with 5 or more steps keeps its line and its count.
    Those with 1 to 4 are never named: they are folded into one last line, ``other`` ("Other checkpoints"), whose
    count is their sum, itself "fewer than 5" when that is 1 to 4. So no named line ever has a count below 5, and
    the total (exact from 5, as in the email) gives away at most the folded line's sum, which names no checkpoint.
    """
    lines = [c for c in checkpoints if c.count > 0]
    kept: list[dict[str, Any]] = [{**c.payload(), "other": False} for c in lines if c.count >= SMALL]
    folded = sum(c.count for c in lines if c.count < SMALL)
    if folded:
        kept.append({"code": None, "names": {}, "count": shown_count(folded), "other": True})
    return {"total": shown_count(sum(c.count for c in lines)), "lines": kept}


def overdue_digest_notices(*, unit: str, checkpoints: Iterable[CheckpointCount], candidates: Iterable[Candidate],
                           public_url: str, at: datetime, unit_name: str | None = None) -> list[Notice]:
    """The unit's digest for each of its managers among ``candidates`` (else its coordinators), in name order: the
    steps past their manager rung per checkpoint, counted at ``at``, and the link to the timeliness report (for a
    coordinator: to the unit's overdue cases). ``unit_name``: the unit's display name, for the email (None: its code).
    None when there are no such steps. What each channel may tell of the counts: the module's docstring."""
    lines = tuple(c for c in checkpoints if c.count > 0)
    if not lines:
        return []
    base = public_url.rstrip("/")
    # A manager reads the timeliness report; a coordinator (a unit without a manager) may not, and is sent to the
    # unit's overdue cases instead.
    links = {"manager": f"{base}/reports", "coordinator": f"{base}/cases?deadline=overdue"}
    total = sum(c.count for c in lines)
    return [Notice(username=user.username, channels=channels_of(user), kind=OVERDUE_DIGEST, case_reference=None,
                   unit=unit, actor=None, due_at=at, link=links.get(user.role, links["coordinator"]), count=total,
                   checkpoints=lines, unit_name=unit_name if unit_name and unit_name != unit else None)
            for user in managers_of(candidates, unit)]


def referral_received_notices(*, unit: str, received_at: datetime, candidates: Iterable[Candidate],
                              public_url: str) -> list[Notice]:
    """A notice for each active coordinator of ``unit`` among ``candidates``, in name order: a police referral
    waits in the unit's queue (the link), received at ``received_at``."""
    link = f"{public_url.rstrip('/')}/referrals/queue"
    return [Notice(username=user.username, channels=channels_of(user), kind=REFERRAL_RECEIVED, case_reference=None,
                   unit=unit, actor=None, due_at=received_at, link=link)
            for user in sorted(candidates, key=lambda c: c.username)
            if user.role == "coordinator" and user.unit == unit]


def referral_declined_notices(*, sender: str, unit: str, decided_at: datetime, candidates: Iterable[Candidate],
                              public_url: str) -> list[Notice]:
    """A notice for the police contact who sent a referral that ``unit`` declined (if still among the active
    ``candidates``): the reason is read on their list of referrals (the link), never in the notice."""
    link = f"{public_url.rstrip('/')}/referrals"
    return [Notice(username=user.username, channels=channels_of(user), kind=REFERRAL_DECLINED, case_reference=None,
                   unit=unit, actor=None, due_at=decided_at, link=link)
            for user in candidates if user.username == sender]
