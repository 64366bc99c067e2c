"""Notices that are no reminder: who hears that someone took emergency (break-glass) access to a case, and what
each of them is told. A pure decision over plain facts (no database, no clock); the store writes what it returns.

The owning unit's coordinators are sent to the case page (where they may end the access), its managers to the report
page (where the uses are listed). Every notice names the case reference, the unit and the user who took the access,
and nothing else: never the reason they gave, never anything of the person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from notifications.routing import CHANNELS, Candidate

__all__ = ["BREAK_GLASS", "Notice", "break_glass_notices"]

BREAK_GLASS = "break_glass"  # the notice's kind, in the inbox and in the outbox payload


@dataclass(frozen=True, slots=True)
class Notice:
    """One recipient's notice: the inbox row's facts, and the channels (besides the inbox) it also goes by."""

    username: str
    channels: tuple[str, ...]
    kind: str
    case_reference: str
    unit: str
    actor: str
    due_at: datetime  # when the access runs out
    link: str

    def payload(self) -> dict[str, Any]:
        """The outbox payload (JSON) that ``notifications.dispatcher.to_message`` turns back into a Message."""
        return {"kind": self.kind, "due_at": self.due_at.isoformat(), "link": self.link,
                "case_reference": self.case_reference, "step_code": None, "unit": self.unit, "count": 1,
                "actor": self.actor}


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
        addresses = {"email": user.email, "webhook": user.webhook_url}
        notices.append(Notice(username=user.username, channels=tuple(c for c in CHANNELS if addresses[c]),
                              kind=BREAK_GLASS, case_reference=case_reference, unit=unit, actor=actor,
                              due_at=expires_at, link=links[user.role]))
    return notices
