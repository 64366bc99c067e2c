"""Who may see and do what, and which fields: the one access policy, asked by every read and write of the API and the
pages (their role gate, ``api.deps.Allow``, only decides who may call a route at all).

- A coordinator sees and changes the cases of their own unit, in full. A case of another unit they see while they
  hold a running emergency (break-glass) grant for it, and change only if that grant was asked for with its own
  stated write reason: read-only is the default. Any coordinator may ask for such a grant, with a reason; the owning
  unit's coordinators and managers are told at once. A grant runs out after ``BREAK_GLASS_TTL``, or is ended early
  by its holder or by a coordinator of the owning unit. A unit's manager reviews its grants (who, which case, when).
- A partner sees the handover tasks of their own agency only, and of a task's scope what the consent shares now; the
  person's name only while the task is open and that scope includes it. Never an address.
- The person's copy (right of access: everything recorded about the person) is exported by an administrator, or by
  the coordinator assigned to the case while it is theirs to see (``may_export_copy``): not by the unit's other
  coordinators, nor through emergency access, nor by managers or partners.
- Everything else is refused as if it were not there (404, never 403), so that a refusal does not reveal a case.
  Managers see aggregated figures and administrators no case content but the person's copy: nothing else here
  grants them a case or a task.

Whether allowed or refused, the request is logged by its entry point (``api.access``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from pathway.accounts import User, active_user
from pathway.case import OPEN_HANDOVER, shareable
from pathway.errors import NotPermitted
from pathway.store.access import break_glass_held, case_owner

BREAK_GLASS_TTL = timedelta(hours=12)  # how long an emergency grant lasts
OPEN_TASK = OPEN_HANDOVER  # a task that still needs the name to be carried out


@dataclass(frozen=True, slots=True)
class CaseAccess:
    """The answer for one case: its id (None if no case has the reference), whether the user may see it
    (``allowed``) and change it (``write``: the case, its person record, its handovers), and whether only through an
    emergency grant (which the access log then says)."""

    case_id: uuid.UUID | None
    allowed: bool = False
    break_glass: bool = False
    write: bool = False

    @property
    def read_only(self) -> bool:
        """Seen, but not to be changed: an emergency grant asked for without a write reason."""
        return self.allowed and not self.write


def case_access(conn: sa.Connection, user: User, reference: str, *, now: datetime) -> CaseAccess:
    """May the user see this case, and change it (in the caller's transaction, so the read that follows sees the
    case as it was when this was answered)? The API, the pages and the CLI all ask here, for reads and writes."""
    owner = case_owner(conn, reference)
    if owner is None:
        return CaseAccess(None)
    if user.role != "coordinator":
        return CaseAccess(owner.id)
    if owner.unit == user.unit:
        return CaseAccess(owner.id, allowed=True, write=True)
    # A grant to the case itself, or to the adult's case of a child's pathway (which covers the family).
    held = break_glass_held(conn, username=user.username, case_id=owner.id, now=now)
    if held is None and owner.family != owner.id:
        held = break_glass_held(conn, username=user.username, case_id=owner.family, now=now)
    if held is not None:
        return CaseAccess(owner.id, allowed=True, break_glass=True, write=held == "write")
    return CaseAccess(owner.id)


def may_export_copy(conn: sa.Connection, user: User, reference: str, *, now: datetime) -> CaseAccess:
    """May the user export the person's copy of this case (``allowed``)? An administrator may (answering the
    person's request is the controller's duty, not a coordinator's choice); so may the case's own coordinator, as
    long as the case is one of their unit's (``case_access`` without emergency access). Refused: as if not there."""
    owner = case_owner(conn, reference)
    if owner is None:
        return CaseAccess(None)
    if user.role == "admin":
        return CaseAccess(owner.id, allowed=True)
    access = case_access(conn, user, reference, now=now)
    if access.allowed and not access.break_glass and owner.coordinator == user.username:
        return CaseAccess(owner.id, allowed=True)
    return CaseAccess(owner.id)


def acting_user(conn: sa.Connection, username: str) -> User:
    """The user the CLI acts as (``--as``): an active user, whose role and unit the rules here then apply to."""
    user = active_user(conn, username)
    if user is None:
        raise NotPermitted(username, "act: there is no active user of that name (forlop users add)")
    return user


def may_open_in(user: User, unit: str) -> bool:
    """A case is opened by a coordinator of the unit that will own it."""
    return user.role == "coordinator" and user.unit == unit


def may_migrate(user: User) -> bool:
    """Moving cases to another version of their pathway is the administrator's (it changes no case's content)."""
    return user.role == "admin"


def listed_unit(user: User) -> str | None:
    """The unit whose cases the user may list, count and search: a coordinator's own; None lists nothing."""
    return user.unit if user.role == "coordinator" else None


def break_glass_case(conn: sa.Connection, user: User, reference: str) -> uuid.UUID | None:
    """The case a coordinator may ask emergency access to (any case there is), or None. A grant to a child's pathway
    covers only it; one to the adult's case also its children's pathways (``case_access``)."""
    owner = case_owner(conn, reference) if user.role == "coordinator" else None
    return owner.id if owner is not None else None


@dataclass(frozen=True, slots=True)
class BreakGlassEnd:
    """Which running grants to a case the user may end: their own (``holder``), or, a coordinator of the owning
    unit, anyone's (``holder`` None)."""

    case_id: uuid.UUID
    holder: str | None


def break_glass_end(conn: sa.Connection, user: User, reference: str, *, now: datetime) -> BreakGlassEnd | None:
    """May the user end emergency access to this case early, and whose? None: refused (as if there were no case)."""
    owner = case_owner(conn, reference) if user.role == "coordinator" else None
    if owner is None:
        return None
    if owner.unit == user.unit:
        return BreakGlassEnd(owner.id, None)
    if break_glass_held(conn, username=user.username, case_id=owner.id, now=now) is not None:
        return BreakGlassEnd(owner.id, user.username)
    return None


def break_glass_reviewed(user: User) -> str | None:
    """The unit whose emergency grants the user may review (who, which case, when): a manager's own; None: none."""
    return user.unit if user.role == "manager" else None


def report_unit(user: User, scope: Literal["unit", "all"]) -> str | None:
    """The unit whose figures a manager's report shows (``pathway.metrics.view.read_report``): their own for
    ``scope="unit"``; None means every unit together, each unit beside the others (``scope="all"``). A manager
    without a unit who asks for their own unit also gets every unit together, on purpose: the report holds
    aggregates only (counts under 5 suppressed), which any manager may read for all units, so there is nothing to
    withhold, and an empty report would only hide that the account lacks a unit. (The break-glass review, which
    names case references, gives such a manager nothing: ``break_glass_reviewed``.)"""
    return user.unit if scope == "unit" and user.unit else None


def task_agency(user: User) -> str | None:
    """The agency whose handover tasks the user may see and move: a partner's own; None sees none."""
    return user.agency if user.role == "partner" else None


@dataclass(frozen=True, slots=True)
class TaskFields:
    """What a partner sees of one of its agency's tasks beyond what every task shows."""

    scope: tuple[str, ...]  # of the task's scope, what the consent shares now
    name: bool  # the person's name
    contact: bool = False  # the person's safe contact channel (never an address)
    note: bool = False  # the coordinator's note to the agency: written under the task's basis, shown while it holds


def task_fields(task_scope: Iterable[str], basis: str, consent_scope: Iterable[str] | None,
                status: str) -> TaskFields:
    """The fields of a task its agency may see now: the consent is read when the task is, so a narrowed or
    withdrawn consent (``consent_scope`` None) narrows every open task at once."""
    scope = shareable(task_scope, basis, consent_scope)
    open_task = status in OPEN_TASK
    holds = basis != "consent" or consent_scope is not None  # a withdrawn consent takes the note with it
    return TaskFields(scope, "name" in scope and open_task, "contact" in scope and open_task, open_task and holds)


# -- police referrals (pathway.services.referrals) ------------------------------------------------------------------

REFERRING_AGENCY = "police"  # the agency whose contacts may send a unit a referral


def may_refer(user: User) -> bool:
    """A referral is sent by a contact of the police (a partner of that agency), to any unit."""
    return user.role == "partner" and user.agency == REFERRING_AGENCY


def referrals_sent_by(user: User) -> str | None:
    """Whose referrals the user may follow (their status and a decline's reason, never the case): a police contact's
    own; None: none."""
    return user.username if may_refer(user) else None


def referral_queue(user: User) -> str | None:
    """The unit whose received referrals the user may read and decide (accept, opening a case, or decline): a
    coordinator's own; None: none (another unit's referral is refused as if it were not there)."""
    return user.unit if user.role == "coordinator" else None
