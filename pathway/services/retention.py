"""Retention with crypto-shredding: a closed case is erased a set number of days after closure (``retention_days``,
per unit ``retention_days_by_unit``) unless a legal hold is in force on it or on the adult's case it is part of.

Erasing destroys the case's key (``pathway.store.casekeys.erase_key``: every free text sealed under it is unreadable
from then on, in backups too), deletes its person record with the blind index and its child record, and forgets the
sealed content of the police referral that opened it. The case row, its steps, events and handover tasks stay: the
references, checkpoints, times and outcome codes, so that the audit chain still verifies and every manager's figure
is unchanged. Each erasure is one row of the erasure log (reference, when, under which rule; nothing personal).

Any number of runs may overlap (two schedulers, a scheduler and ``forlop retention run``): each case is erased in a
transaction of its own that locks the case row and checks again that it is due, and a case erased already is left.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.errors import N_, DatabaseError, DomainError, InvalidArgument, NotFound
from pathway.settings import Settings
from pathway.store.access import case_owner
from pathway.store.casekeys import erase_key, key_of
from pathway.store.engine import WRITE, checkpoint
from pathway.store.tables import case_key_t, case_t, child_t, erasure_t, legal_hold_t, person_t, referral_t

log = logging.getLogger("forlop.retention")

MAX_REASON = 2000
SCHEDULER = "scheduler"  # who the erasure log says erased a case the daily job erased
# The tables whose deleted or overwritten rows held a key or personal data: vacuumed after a run on PostgreSQL.
VACUUMED = ("case_key", "person", "child_record", "referral")


class RetentionRefused(DomainError):
    """A legal hold or an erasure was refused: ``rule`` is ``held`` (a hold is in force already), ``not_held`` (no
    hold to lift), ``erased`` (the case is erased: nothing to hold) or ``open`` (an open case is never erased)."""

    code = "retention-refused"

    def __init__(self, rule: str, message: str, **params: Any) -> None:
        self.rule = rule
        super().__init__(message, **params)


@dataclass(frozen=True, slots=True)
class Due:
    """A closed case not yet erased, and when it will be."""

    case_id: uuid.UUID
    reference: str
    unit: str
    closed_at: datetime
    erase_from: datetime
    held: bool  # a legal hold on the case, on the adult's case it is part of, or on one of its children's pathways
    waiting: bool  # an adult's case with a child's pathway still open: erased after the child's
    rule: str  # the rule it is erased under, as the erasure log will say it

    def is_due(self, now: datetime) -> bool:
        return self.erase_from <= now and not self.held and not self.waiting


@dataclass
class RetentionResult:
    erased: list[str] = field(default_factory=list)  # the references erased by this run
    held: int = 0  # past their period, but held
    waiting: int = 0  # past their period, but a child's pathway is open
    skipped: int = 0  # due when the run began, but no longer (held meanwhile, or erased by another run)
    referrals: int = 0  # declined police referrals whose content and reason were forgotten


@dataclass(frozen=True, slots=True)
class Hold:
    id: uuid.UUID
    case_id: uuid.UUID
    set_at: datetime
    set_by: str
    reason: str
    lifted_at: datetime | None
    lifted_by: str | None
    lift_reason: str | None


@dataclass(frozen=True, slots=True)
class ActiveHold:
    reference: str
    unit: str
    hold: Hold


def rule_of(settings: Settings, unit: str) -> str:
    """The rule a case of ``unit`` is erased under, in words for the erasure log (at most 200 characters)."""
    days = settings.retention_days_of(unit)
    # The setting it comes from, as the administrator sets it: the same in every language.
    where = f"FORLOP_RETENTION_DAYS_BY_UNIT {unit}={days}" if unit in settings.retention_days_by_unit \
        else "FORLOP_RETENTION_DAYS"
    return f"retention: {days} days after closure ({where})"[:200]


def _candidates() -> sa.Select[Any]:
    """Closed cases whose key is not erased, with whether a hold stops them and whether a child's pathway is open."""
    child = case_t.alias("child")
    # A family is held together: a hold on the adult's case holds its children's pathways, and one on a child's
    # pathway holds the adult's case (the person a complaint about the child concerns is the parent too).
    children = sa.select(child.c.id).where(child.c.parent_id == case_t.c.id)
    held = sa.exists().where(legal_hold_t.c.lifted_at.is_(None),
                             sa.or_(legal_hold_t.c.case_id == case_t.c.id, legal_hold_t.c.case_id == case_t.c.parent_id,
                                    legal_hold_t.c.case_id.in_(children)))
    waiting = sa.exists().where(child.c.parent_id == case_t.c.id, child.c.closed_at.is_(None))
    return (sa.select(case_t.c.id, case_t.c.reference, case_t.c.unit, case_t.c.closed_at, held.label("held"),
                      waiting.label("waiting"))
            .select_from(case_t.outerjoin(case_key_t, case_key_t.c.case_id == case_t.c.id))
            .where(case_t.c.closed_at.is_not(None), case_key_t.c.erased_at.is_(None)))


def due_for_erasure(conn: sa.Connection, *, settings: Settings, now: datetime, until: datetime | None = None,
                    case_id: uuid.UUID | None = None) -> list[Due]:
    """Every closed case not yet erased, with when it will be (soonest first); with ``until``, only those whose
    period ends by then; with ``case_id``, that case only (if closed and not erased)."""
    query = _candidates()
    if case_id is not None:
        query = query.where(case_t.c.id == case_id)
    if until is not None:  # the shortest period bounds the closures that can be due: an indexed range, not every case
        shortest = min([settings.retention_days, *settings.retention_days_by_unit.values()])
        query = query.where(case_t.c.closed_at <= until - timedelta(days=shortest))
    found = []
    for r in conn.execute(query):
        erase_from = r.closed_at + timedelta(days=settings.retention_days_of(r.unit))
        if until is None or erase_from <= until:
            found.append(Due(r.id, r.reference, r.unit, r.closed_at, erase_from, bool(r.held), bool(r.waiting),
                             rule_of(settings, r.unit)))
    return sorted(found, key=lambda d: (d.erase_from, d.reference))


def erase_case(conn: sa.Connection, *, case_id: uuid.UUID, rule: str, at: datetime, by: str) -> bool:
    """Erase a closed case in the caller's transaction: destroy its key, delete its person record (and so its blind
    index) and child record, forget its referral's content, and log the erasure. False: it was erased already (by
    another run), and nothing was done. Never deletes the case, its steps, events or handover tasks."""
    case = conn.execute(sa.select(case_t.c.reference, case_t.c.unit, case_t.c.closed_at)
                        .where(case_t.c.id == case_id).with_for_update()).first()
    if case is None:
        raise NotFound("case", case_id)
    if case.closed_at is None:
        raise RetentionRefused("open", N_("case {reference} is open: only a closed case is erased"),
                               reference=case.reference)
    erased_at = conn.execute(sa.select(case_key_t.c.erased_at).where(case_key_t.c.case_id == case_id)).scalar()
    if erased_at is not None:
        return False
    erase_key(conn, case_id, at=at)
    conn.execute(sa.delete(person_t).where(person_t.c.case_id == case_id))
    conn.execute(sa.delete(child_t).where(child_t.c.case_id == case_id))
    conn.execute(sa.update(referral_t).where(referral_t.c.case_id == case_id).values(ciphertext=None, key_id=None))
    conn.execute(sa.insert(erasure_t).values(id=uuid.uuid4(), reference=case.reference, unit=case.unit,
                                             closed_at=case.closed_at, erased_at=at, rule=rule[:200],
                                             erased_by=by[:200]))
    return True


def run_retention(*, engine: sa.Engine, settings: Settings, now: datetime, by: str = SCHEDULER,
                  progress: Callable[[int], None] | None = None) -> RetentionResult:
    """Erase every case whose retention period has ended and that no hold stops, one transaction per case; then
    have the database let go of the old rows (PostgreSQL: VACUUM; SQLite: a WAL checkpoint; best effort)."""
    result = RetentionResult()
    with engine.connect() as conn:
        listed = due_for_erasure(conn, settings=settings, now=now, until=now)
    for due in listed:
        if due.held:
            result.held += 1
            continue
        if due.waiting:
            result.waiting += 1
            continue
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            # Another run erasing this case, or an administrator holding one of its family, holds a row of the family:
            # leave the case to the next run (PostgreSQL; SQLite has one writer). The hold's check and ours then see
            # each other's commit.
            locked = lock_family(conn, due.case_id, skip_locked=True)
            again = due_for_erasure(conn, settings=settings, now=now, until=now, case_id=due.case_id) if locked else []
            if not again or not again[0].is_due(now) \
                    or not erase_case(conn, case_id=due.case_id, rule=again[0].rule, at=now, by=by):
                result.skipped += 1
            else:
                result.erased.append(due.reference)
        if progress is not None:
            progress(1)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        result.referrals = forget_declined_referrals(conn, settings=settings, now=now)
    if result.erased or result.referrals:
        release_space(engine)
        log.info("retention: %d cases erased, %d held, %d waiting for a child's pathway", len(result.erased),
                 result.held, result.waiting)
    return result


def forget_declined_referrals(conn: sa.Connection, *, settings: Settings, now: datetime) -> int:
    """A declined police referral never became a case, but it names a person and says what happened: once its unit's
    retention period has passed since it was declined, forget its content and the reason given back (its status,
    times and who sent and decided it stay, as the police's list and the figures need). Returns how many."""
    forgotten = 0
    for unit in conn.execute(sa.select(referral_t.c.unit).distinct()).scalars():
        before = now - timedelta(days=settings.retention_days_of(unit))
        forgotten += conn.execute(sa.update(referral_t).where(
            referral_t.c.unit == unit, referral_t.c.status == "declined", referral_t.c.decided_at <= before,
            referral_t.c.ciphertext.is_not(None)).values(ciphertext=None, key_id=None, decline_reason=None)).rowcount
    return forgotten


def release_space(engine: sa.Engine) -> None:
    """Let the database drop the dead rows that held the destroyed keys and the deleted records: VACUUM on
    PostgreSQL, a truncating WAL checkpoint on SQLite. A failure is logged, never raised: autovacuum and the next
    checkpoint will do it later."""
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"VACUUM {', '.join(VACUUMED)}")
        else:
            checkpoint(engine)
    except (DatabaseError, sa.exc.SQLAlchemyError) as exc:
        name = exc.driver_error if isinstance(exc, DatabaseError) else type(exc).__name__
        log.warning("retention: releasing the erased rows' space failed (%s); autovacuum will do it later", name)


# -- legal holds --------------------------------------------------------------------------------------------------


def case_id_of(conn: sa.Connection, reference: str) -> uuid.UUID:
    """The id of the case with this reference (NotFound otherwise)."""
    owner = case_owner(conn, reference)
    if owner is None:
        raise NotFound("case", reference)
    return uuid.UUID(str(owner.id))


def _reason(field_name: str, reason: str | None) -> str:
    text = (reason or "").strip()
    if not 1 <= len(text) <= MAX_REASON:
        raise InvalidArgument(field_name, N_("give a reason of 1 to {max} characters"), max=MAX_REASON)
    return text


def lock_family(conn: sa.Connection, case_id: uuid.UUID, *, skip_locked: bool = False) -> bool:
    """Lock the rows of the case's whole family (the adult's case and its children's pathways, in id order), as a hold
    on one of them holds them all: a hold set while the family is being erased, or the reverse, waits for the other.
    With ``skip_locked`` (the eraser) nothing waits; False: some row of the family is held by another transaction."""
    root = sa.select(sa.func.coalesce(case_t.c.parent_id, case_t.c.id)).where(case_t.c.id == case_id).scalar_subquery()
    family = sa.or_(case_t.c.id == root, case_t.c.parent_id == root)
    wanted = conn.execute(sa.select(sa.func.count()).select_from(case_t).where(family)).scalar_one()
    locked = conn.execute(sa.select(case_t.c.id).where(family).order_by(case_t.c.id)
                          .with_for_update(skip_locked=skip_locked)).all()
    return wanted > 0 and len(locked) == wanted


def _locked(conn: sa.Connection, case_id: uuid.UUID) -> str:
    """Lock the case's family against a concurrent erasure or hold, and give the case's reference."""
    if not lock_family(conn, case_id):
        raise NotFound("case", case_id)
    return str(conn.execute(sa.select(case_t.c.reference).where(case_t.c.id == case_id)).scalar_one())


def _active(conn: sa.Connection, case_id: uuid.UUID) -> uuid.UUID | None:
    return conn.execute(sa.select(legal_hold_t.c.id).where(legal_hold_t.c.case_id == case_id,
                                                           legal_hold_t.c.lifted_at.is_(None))).scalar()


def set_hold(conn: sa.Connection, *, case_id: uuid.UUID, by: str, reason: str, at: datetime,
             keys: KeyRing | None) -> uuid.UUID:
    """Put a case on legal hold (in the caller's transaction): it is not erased while the hold is in force. The reason
    is sealed under the case's key. Refused if a hold is in force already or the case is erased."""
    text = _reason("reason", reason)
    reference = _locked(conn, case_id)
    if conn.execute(sa.select(case_key_t.c.erased_at).where(case_key_t.c.case_id == case_id)).scalar() is not None:
        raise RetentionRefused("erased", N_("case {reference} is erased: there is nothing left to hold"),
                               reference=reference)
    if _active(conn, case_id) is not None:
        raise RetentionRefused("held", N_("case {reference} is on legal hold already"), reference=reference)
    hold_id = uuid.uuid4()
    conn.execute(sa.insert(legal_hold_t).values(id=hold_id, case_id=case_id, set_at=at, set_by=by[:200],
                                                reason=key_of(conn, case_id, keys).seal(text)))
    return hold_id


def lift_hold(conn: sa.Connection, *, case_id: uuid.UUID, by: str, reason: str, at: datetime,
              keys: KeyRing | None) -> uuid.UUID:
    """Lift the hold in force on a case (in the caller's transaction), with a reason sealed under the case's key; the
    next run erases the case if its period has ended. Refused if no hold is in force."""
    text = _reason("reason", reason)
    reference = _locked(conn, case_id)
    hold_id = _active(conn, case_id)
    if hold_id is None:
        raise RetentionRefused("not_held", N_("case {reference} is not on legal hold"), reference=reference)
    conn.execute(sa.update(legal_hold_t).where(legal_hold_t.c.id == hold_id).values(
        lifted_at=at, lifted_by=by[:200], lift_reason=key_of(conn, case_id, keys).seal(text)))
    return hold_id


def _hold(r: Any, open_text: Callable[[str], str]) -> Hold:
    return Hold(r.id, r.case_id, r.set_at, r.set_by, open_text(r.reason), r.lifted_at, r.lifted_by,
                None if r.lift_reason is None else open_text(r.lift_reason))


def holds_of(conn: sa.Connection, case_id: uuid.UUID, keys: KeyRing | None) -> list[Hold]:
    """A case's holds, newest first, their reasons opened."""
    sealer = key_of(conn, case_id, keys)
    rows = conn.execute(sa.select(legal_hold_t).where(legal_hold_t.c.case_id == case_id)
                        .order_by(legal_hold_t.c.set_at.desc()))
    return [_hold(r, sealer.open) for r in rows]


def active_holds(conn: sa.Connection, keys: KeyRing | None) -> list[ActiveHold]:
    """Every hold in force, oldest first, with its case's reference and unit and its reason opened."""
    rows = conn.execute(sa.select(legal_hold_t, case_t.c.reference, case_t.c.unit)
                        .join(case_t, case_t.c.id == legal_hold_t.c.case_id)
                        .where(legal_hold_t.c.lifted_at.is_(None)).order_by(legal_hold_t.c.set_at))
    return [ActiveHold(r.reference, r.unit, _hold(r, key_of(conn, r.case_id, keys).open)) for r in rows]


def erasure_log(conn: sa.Connection, *, limit: int = 500) -> list[dict[str, Any]]:
    """The erasure log, newest first: reference, unit, closed, erased, rule, by whom."""
    rows = conn.execute(sa.select(erasure_t.c.reference, erasure_t.c.unit, erasure_t.c.closed_at,
                                  erasure_t.c.erased_at, erasure_t.c.rule, erasure_t.c.erased_by)
                        .order_by(erasure_t.c.erased_at.desc(), erasure_t.c.reference).limit(limit))
    return [dict(r._mapping) for r in rows]
