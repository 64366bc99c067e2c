"""A partner agency's handover tasks, with only what each handover needs (the policy's ``task_fields``), and, when the
consent has been narrowed or withdrawn since the handover, which of the task's scope is no longer shared and since
when: the partner sees that the scope changed, not only that it is smaller."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from pathway.case import ANSWERED, HANDOVER_STATUSES, OPEN_HANDOVER
from pathway.crypto import KeyRing
from pathway.definition import LegalBasis, PathwayDefinition
from pathway.errors import InvalidArgument
from pathway.people import unseal, unseal_child
from pathway.policy import task_fields
from pathway.store.catalog import DefinitionCatalog
from pathway.store.casekeys import keys_of
from pathway.store.tables import case_t, child_t, handover_t, person_t, user_t
from pathway.views.cursor import BadCursor, decode_cursor, encode_cursor

@dataclass(frozen=True, slots=True)
class PartnerTaskView:
    """What a partner agency may see of one handover task (built from a ``HandoverTask`` and its case)."""

    id: uuid.UUID
    case_reference: str  # pseudonymous
    code: str  # checkpoint code, e.g. "K6"
    title_nb: str
    title_en: str
    agency: str
    agency_name: str
    status: str  # Forløp's: requested, accepted, declined, completed, cancelled
    basis: str  # "consent", or the definition's legal basis (e.g. "avert_crime", "child_welfare_duty")
    scope: tuple[str, ...]  # consent scope codes
    due_at: datetime | None  # aware
    created_at: datetime  # aware
    updated_at: datetime  # aware
    contact: str  # who to call at the crisis centre: a staff username or unit label
    person_name: str | None = None  # only when the consent's scope includes "name"
    withheld: tuple[str, ...] = ()  # of the scope the task asked for, the codes the consent no longer shares
    withheld_nb: tuple[str, ...] = ()  # the same, named (the definition's consent scopes), in bokmål
    withheld_en: tuple[str, ...] = ()  # and in English
    consent_changed_at: datetime | None = None  # when the consent was last changed; given when something is withheld
    scope_nb: tuple[str, ...] = ()  # the shared scope, named, in bokmål
    scope_en: tuple[str, ...] = ()  # and in English
    basis_nb: str = ""  # the basis, named ("Samtykke", "Opplysningsplikt til barnevernet (barnevernsloven § 13-2)")
    basis_en: str = ""
    note: str | None = None  # the coordinator's note to this agency, written at the handover
    urgency: str | None = None  # low, medium, high: the case's threat level when the task was sent
    same_day: bool = False  # at this urgency the task is due the same day it was sent (high risk, the police)
    coordinator: str | None = None  # the case's coordinator (a staff username), None before one is assigned
    phone: str | None = None  # the coordinator's work phone, where they gave one
    safe_contact: str | None = None  # the person's safe contact channel: only when the consent shares "contact"
    answered_by: str | None = None  # who last answered (accepted, declined, completed)
    reply: str | None = None  # what they wrote: the reason for declining, the note on completing

    def __post_init__(self) -> None:
        if self.status not in HANDOVER_STATUSES:
            raise ValueError(f"unknown handover status {self.status!r}")
        if self.person_name is not None and "name" not in self.scope:
            raise ValueError("person_name may only be shared when the consent scope includes 'name'")
        if self.safe_contact is not None and "contact" not in self.scope:
            raise ValueError("safe_contact may only be shared when the consent scope includes 'contact'")
        if set(self.withheld) & set(self.scope):
            raise ValueError("a scope is either shared or withheld, not both")
        if not len(self.withheld) == len(self.withheld_nb) == len(self.withheld_en):
            raise ValueError("each withheld scope needs its name in bokmål and English")
        for label, at in (("due_at", self.due_at), ("created_at", self.created_at), ("updated_at", self.updated_at),
                          ("consent_changed_at", self.consent_changed_at)):
            if at is not None and at.utcoffset() is None:
                raise ValueError(f"{label} must be timezone-aware")


def agency_tasks(conn: sa.Connection, *, agency: str | None, catalog: DefinitionCatalog, keys: KeyRing,
                 task_id: uuid.UUID | None = None, status: str | Collection[str] | None = None,
                 overdue: bool = False, now: datetime | None = None, cursor: str | None = None, limit: int = 100,
                 unit_name: Callable[[str], str] = str) -> list[PartnerTaskView]:
    """An agency's tasks (or the one ``task_id``, if it is the agency's), at most ``limit`` after ``cursor``, in
    ``task_page``'s order; ``status`` keeps one or more statuses ("open": requested and accepted), ``overdue`` the
    open ones past their deadline at ``now``; None sees none; the
    contact is named with its unit's name (``unit_name``, the installation's). A
    person record is decrypted only for a task whose fields include the name. Of a consent narrowed or withdrawn
    since the handover, a task says what it no longer shares and when the consent changed. A task of a child's
    pathway names the child by first name (its child record) and gives the parent's safe contact channel (the
    adult's person record): never the child's school, never an address."""
    query = (sa.select(handover_t, case_t.c.reference, case_t.c.unit, case_t.c.coordinator, case_t.c.pathway_id,
                       case_t.c.definition_version, case_t.c.consents, person_t.c.ciphertext,
                       person_t.c.case_id.label("person_case_id"), child_t.c.ciphertext.label("child_ciphertext"),
                       user_t.c.phone.label("coordinator_phone"))
             .join(case_t, case_t.c.id == handover_t.c.case_id)
             .outerjoin(person_t, person_t.c.case_id == sa.func.coalesce(case_t.c.parent_id, handover_t.c.case_id))
             .outerjoin(child_t, child_t.c.case_id == handover_t.c.case_id)
             .outerjoin(user_t, sa.and_(user_t.c.username == case_t.c.coordinator, user_t.c.active.is_(True)))
             .where(_of_agency(agency), *_filters(status, overdue, now, cursor))
             .order_by(*_ORDER).limit(limit))
    if task_id is not None:
        query = query.where(handover_t.c.id == task_id)
    views = []
    rows = conn.execute(query).all()
    # Each case's key, for the texts sealed under it: the person (the adult's case), the child, the note and reply.
    sealers = keys_of(conn, {i for r in rows for i in (r.case_id, r.person_case_id) if i is not None}, keys)
    for r in rows:
        sealer = sealers[r.case_id]
        d = catalog.resolve(r.pathway_id, r.definition_version, conn=conn)
        checkpoint = d.checkpoint.get(r.code)
        consent = r.consents.get(r.agency)
        shown = task_fields(r.scope, r.basis, consent["scope"] if consent and consent["given"] else None, r.status)
        name = safe_contact = None
        if (shown.name or shown.contact) and r.ciphertext is not None:
            person = unseal(r.ciphertext, case_id=r.person_case_id, keys=keys, sealer=sealers[r.person_case_id])
            name = person.name if shown.name else None
            safe_contact = person.safe_contact if shown.contact else None
        if shown.name and r.child_ciphertext is not None:
            name = unseal_child(r.child_ciphertext, case_id=r.case_id, keys=keys, sealer=sealer).first_name
        handover = checkpoint.handover if checkpoint else None
        basis = d.legal_bases.get(r.basis)
        withheld = tuple(code for code in r.scope if code not in shown.scope)
        views.append(PartnerTaskView(
            id=r.id, case_reference=r.reference, code=r.code,
            title_nb=checkpoint.name.nb if checkpoint else r.code, title_en=checkpoint.name.en if checkpoint else r.code,
            agency=r.agency, agency_name=d.agencies[r.agency].nb if r.agency in d.agencies else r.agency,
            status=r.status, basis=r.basis, scope=shown.scope, due_at=r.due_at, created_at=r.created_at,
            updated_at=r.updated_at, contact=f"{r.coordinator or 'koordinator'} ({unit_name(r.unit)})", person_name=name,
            withheld=withheld, withheld_nb=_named(d, withheld, "nb"), withheld_en=_named(d, withheld, "en"),
            consent_changed_at=datetime.fromisoformat(consent["recorded_at"]) if withheld and consent else None,
            scope_nb=_named(d, shown.scope, "nb"), scope_en=_named(d, shown.scope, "en"),
            basis_nb=_basis_named(r.basis, basis, "nb"), basis_en=_basis_named(r.basis, basis, "en"),
            note=sealer.open(r.note) if shown.note and r.note is not None else None, urgency=r.urgency, coordinator=r.coordinator,
            phone=r.coordinator_phone, same_day=bool(handover and r.status in OPEN_HANDOVER and handover.same_day(r.urgency)),
            safe_contact=safe_contact, answered_by=r.updated_by if r.status in ANSWERED else None,
            reply=None if r.reply is None else sealer.open(r.reply)))
    return views


def _basis_named(code: str, basis: LegalBasis | None, lang: str) -> str:
    """A task's basis in words: consent, or the legal basis by the definition's name and its provision (one the
    definition no longer names stays its code)."""
    if code == "consent":
        return "Samtykke" if lang == "nb" else "Consent"
    return f"{basis.get(lang)} ({basis.law})" if basis is not None else code


def _named(definition: PathwayDefinition, scope: tuple[str, ...], lang: str) -> tuple[str, ...]:
    """Consent scopes by the definition's names for them (a code it does not name stays a code)."""
    return tuple(definition.consent_scopes[code].get(lang) if code in definition.consent_scopes else code
                 for code in scope)


# -- paging: every task reachable, whatever their number --------------------------------------------------------

PAGE, MAX_PAGE = 50, 200
_FAR = datetime(9999, 12, 31, tzinfo=timezone.utc)  # an open task without a deadline: after every one with one
_open = handover_t.c.status.in_(OPEN_HANDOVER)
_deadline = sa.func.coalesce(handover_t.c.due_at, sa.literal(_FAR, handover_t.c.due_at.type))
# The open tasks first, by deadline (the overdue first, those without one last), then the others, last changed
# first; then by id. A cursor is a position in this order: (0, deadline, id) or (1, last change, id).
_ORDER = (sa.case((_open, 0), else_=1), sa.case((_open, _deadline)),
          sa.case((sa.not_(_open), handover_t.c.updated_at)).desc(), handover_t.c.id)


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of an agency's tasks, and the cursor of the next (None on the last)."""

    items: list[PartnerTaskView]
    next_cursor: str | None


def task_page(conn: sa.Connection, *, agency: str | None, catalog: DefinitionCatalog, keys: KeyRing, now: datetime,
              status: str | Collection[str] | None = None, overdue: bool = False, cursor: str | None = None,
              limit: int = PAGE, unit_name: Callable[[str], str] = str) -> TaskPage:
    """At most ``limit`` (1 to 200) of an agency's tasks after ``cursor`` (the one the page before handed out), by
    ``agency_tasks``: following the cursors reaches every task once. A cursor is the position of a page's last task,
    so a task that changes status meanwhile may move past the reader or come round again."""
    limit = max(1, min(limit, MAX_PAGE))
    views = agency_tasks(conn, agency=agency, catalog=catalog, keys=keys, status=status, overdue=overdue, now=now,
                         cursor=cursor, limit=limit + 1, unit_name=unit_name)
    if len(views) <= limit:
        return TaskPage(views, None)
    last = views[limit - 1]
    done = last.status not in OPEN_HANDOVER
    at = last.updated_at if done else last.due_at or _FAR
    return TaskPage(views[:limit], encode_cursor([str(int(done)), at.isoformat(), str(last.id)]))


def task_counts(conn: sa.Connection, *, agency: str | None, now: datetime) -> dict[str, int]:
    """How many of the agency's tasks are in each status, and how many open ones are past their deadline at ``now``
    (``overdue``), in one query."""
    late = sa.func.sum(sa.case((_late(now), 1), else_=0))
    counts = dict.fromkeys((*HANDOVER_STATUSES, "overdue"), 0)
    for status, n, overdue in conn.execute(sa.select(handover_t.c.status, sa.func.count(), late)
                                           .where(_of_agency(agency)).group_by(handover_t.c.status)):
        counts[status] = n
        counts["overdue"] += overdue or 0
    return counts


def _of_agency(agency: str | None) -> sa.ColumnElement[bool]:
    return handover_t.c.agency == agency if agency is not None else sa.false()


def _late(now: datetime) -> sa.ColumnElement[bool]:
    """The one rule for late work (``deadline_status``) as SQL: open, and its deadline passed."""
    return sa.and_(_open, handover_t.c.due_at < now)


def _filters(status: str | Collection[str] | None, overdue: bool, now: datetime | None,
             cursor: str | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if status is not None:
        where.append(handover_t.c.status.in_(_statuses(status)))
    if overdue:
        where.append(_late(now or datetime.now(timezone.utc)))
    if cursor:
        done, at, last_id = _position(cursor)
        if done:  # after a task no longer open: those changed before it
            where += [sa.not_(_open), sa.or_(handover_t.c.updated_at < at,
                                             sa.and_(handover_t.c.updated_at == at, handover_t.c.id > last_id))]
        else:  # after an open task: the open ones due after it, then all the others
            where.append(sa.or_(sa.not_(_open), _deadline > at, sa.and_(_deadline == at, handover_t.c.id > last_id)))
    return where


def _statuses(status: str | Collection[str]) -> list[str]:
    """One or more statuses, "open" for requested and accepted; anything else is refused."""
    given = [status] if isinstance(status, str) else list(status)
    if any(s != "open" and s not in HANDOVER_STATUSES for s in given):
        raise InvalidArgument("status", "must be one of {choices}", choices=[*HANDOVER_STATUSES, "open"])
    return sorted({s for g in given for s in (OPEN_HANDOVER if g == "open" else (g,))})


def _position(cursor: str) -> tuple[bool, datetime, uuid.UUID]:
    """Where the page before ended: (past the open tasks, that task's deadline or last change, its id)."""
    (done, at), last_id = decode_cursor(cursor, ["rank", "time"])
    if done not in (0, 1):
        raise BadCursor()
    return bool(done), at, last_id
