"""Who hears of a reminder, and by which channels: a pure decision over plain facts (no database, no clock).

The caller (the reminder scan's routing step, in the store layer) fetches the reminders with the facts of their steps
(the step's owners, which of them are agencies, and which agencies hold an open handover task for it that their
basis still allows), and the candidates (the active coordinators and managers of the reminders' units, the partners
of the agencies that hold such a task, and the cases' coordinators by name), and writes what :func:`route_reminders`
returns: an inbox row per recipient, an outbox row per channel.

A partner hears only of tasks its agency holds. A rung addressed to an agency (``owner`` where the owner is an
agency, or the agency by name) reaches that agency's contacts only while the agency holds an open handover task for
the step (requested or accepted) whose basis is a legal basis or a consent that still covers the task's scope;
otherwise the work is the coordinator's to chase, and the case's coordinator hears of it (else the unit's).

A rung addressed to the managers gets no route: the managers hear of such steps in their unit's daily digest
(``notifications.notices.overdue_digest_notices``), whose readers :func:`managers_of` chooses.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

__all__ = ["Candidate", "Recipient", "Reminder", "Route", "channels_of", "managers_of", "route_reminders"]

CHANNELS: tuple[str, ...] = ("email", "webhook")  # besides the inbox, which everyone has
# The role, and the addressee of the rungs the daily digest tells of: ``pathway.reminders.MANAGER``, which this
# library may not import (tests/unit/test_role_names.py holds the two to the same name).
MANAGER = "manager"


@dataclass(frozen=True, slots=True)
class Reminder:
    """A raised reminder with the facts of its step and case that routing needs."""

    id: uuid.UUID
    kind: str  # the rung's kind: due_soon, due_now, overdue, escalation, handover_unaccepted
    to: str  # the rung's addressee: "owner", "coordinator", "manager" (not routed), or an agency or role
    due_at: datetime
    step_code: str
    owners: tuple[str, ...]  # the step's owners: agencies (police) or roles (crisis_centre); K9 has two
    case_reference: str
    unit: str
    coordinator: str | None
    agencies: frozenset[str]  # which names are agencies (the pathway's); the others are roles
    holders: frozenset[str]  # the agencies holding an open handover task for the step that its basis still allows


@dataclass(frozen=True, slots=True)
class Candidate:
    """An active user who may receive some reminder of the batch, with the addresses they gave."""

    username: str
    role: str
    unit: str | None = None
    agency: str | None = None
    email: str | None = None
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    username: str
    channels: tuple[str, ...]  # outside the inbox: each of CHANNELS the user has an address for


@dataclass(frozen=True, slots=True)
class Route:
    """What one reminder becomes: the notification's facts, and who gets it (nobody: no one could be found)."""

    reminder_id: uuid.UUID
    kind: str
    due_at: datetime
    link: str
    case_reference: str
    step_code: str
    unit: str
    recipients: tuple[Recipient, ...]

    def payload(self) -> dict[str, Any]:
        """The outbox payload (JSON) that ``notifications.dispatcher.to_message`` turns back into a Message."""
        return {"kind": self.kind, "due_at": self.due_at.isoformat(), "link": self.link,
                "case_reference": self.case_reference, "step_code": self.step_code, "unit": self.unit, "count": 1}


def route_reminders(reminders: Iterable[Reminder], candidates: Iterable[Candidate], *, public_url: str) -> list[Route]:
    """A route for each reminder, in order, but those addressed to the managers (told in the daily digest): its
    recipients among ``candidates`` and its case's link under ``public_url``."""
    public_url = public_url.rstrip("/")
    people = _Directory(candidates)
    routes = []
    for reminder in reminders:
        if reminder.to == MANAGER:
            continue
        found = people.recipients(reminder)
        # References are safe, but encode anyway: a link that is no URL cannot be rendered.
        routes.append(Route(
            reminder_id=reminder.id, kind=reminder.kind, due_at=reminder.due_at,
            link=f"{public_url}/cases/{quote(reminder.case_reference, safe='')}",
            case_reference=reminder.case_reference, step_code=reminder.step_code, unit=reminder.unit,
            recipients=tuple(Recipient(user.username, channels_of(user)) for user in found)))
    return routes


def managers_of(candidates: Iterable[Candidate], unit: str) -> list[Candidate]:
    """Who hears what a unit's managers should: its managers among ``candidates``, or, in a unit without one, its
    coordinators, so that it goes unheard by nobody. In name order."""
    members = sorted((c for c in candidates if c.unit == unit), key=lambda c: c.username)
    return ([c for c in members if c.role == MANAGER]
            or [c for c in members if c.role == "coordinator"])


def channels_of(user: Candidate) -> tuple[str, ...]:
    """Each of CHANNELS the user gave an address for (the inbox they always have)."""
    addresses = {"email": user.email, "webhook": user.webhook_url}
    return tuple(channel for channel in CHANNELS if addresses[channel])


class _Directory:
    """The candidates, indexed once by name, by role and unit, and (partners) by agency."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.by_name: dict[str, Candidate] = {}
        self.by_unit: dict[tuple[str, str | None], list[Candidate]] = defaultdict(list)
        self.by_agency: dict[str, list[Candidate]] = defaultdict(list)
        for user in candidates:
            self.by_name[user.username] = user
            self.by_unit[(user.role, user.unit)].append(user)
            if user.role == "partner" and user.agency:
                self.by_agency[user.agency].append(user)

    def recipients(self, reminder: Reminder) -> list[Candidate]:
        """Who hears of a rung: the contacts of an agency that holds a task for the step, or the case's coordinator;
        when nobody fits, the unit's coordinators, so that no reminder goes unheard."""
        if reminder.to == "coordinator":
            found = self._coordinator(reminder)
        else:
            found = []
            for name in reminder.owners if reminder.to == "owner" else (reminder.to,):
                if name in reminder.holders:
                    found += self.by_agency.get(name, [])
                elif name in reminder.agencies:  # an agency without a task to act on: the coordinator chases it
                    found += self._coordinator(reminder) or self.by_unit[("coordinator", reminder.unit)]
                # a role (crisis_centre, housing) has no contacts by name: the unit's coordinators below
        unique = list({user.username: user for user in found}.values())
        return unique or self.by_unit[("coordinator", reminder.unit)]

    def _coordinator(self, reminder: Reminder) -> list[Candidate]:
        coordinator = self.by_name.get(reminder.coordinator) if reminder.coordinator else None
        return [coordinator] if coordinator else []
