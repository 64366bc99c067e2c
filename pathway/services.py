"""Use cases as plain functions: each takes its dependencies keyword-only and runs in one unit of work."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pathway.case.commands import Command, Migrate, NotePersonChange, SetCondition
from pathway.case import GENESIS, Case, Event, event_hash, replay, utc
from pathway.crypto import KeyRing, blind_index
from pathway.definition import PathwayDefinition
from pathway.errors import ConcurrencyConflict, DomainError, InvalidArgument, NotFound
from pathway.people import PersonRecord, changed_fields, seal, unseal
from pathway.store.tables import case_t, counter_t, event_t, person_t, step_t, user_t
from pathway.store.engine import WRITE
from pathway.store.repository import CaseRepository
from pathway.store.uow import UnitOfWork

T = TypeVar("T")
REPEAT_CONTACT_WINDOW = timedelta(days=365)


def now() -> datetime:
    return datetime.now(timezone.utc)


def next_reference(conn: sa.Connection, *, prefix: str, year: int) -> str:
    """The next pseudonymous reference, e.g. BGO-2026-0042: a counter, never derived from the person."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(counter_t).values(prefix=prefix, year=year, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[counter_t.c.prefix, counter_t.c.year], set_={"last": counter_t.c.last + 1}
    ).returning(counter_t.c.last)
    number = conn.execute(stmt).scalar_one()
    return f"{prefix}-{year}-{number:04d}"


def open_case(
    *,
    uow: UnitOfWork,
    pathway_id: str,
    unit: str,
    first_contact_at: datetime,
    actor: str,
    keys: KeyRing,
    index_key: str,
    reference_prefix: str,
    person: PersonRecord | None = None,
    conditions: Iterable[str] = (),
    reason: str | None = None,
    at: datetime | None = None,
) -> Case:
    """Open a case at first contact on the newest version of a pathway, with its (encrypted) person record."""
    at = at or now()
    with uow:
        definition = uow.catalog.latest(pathway_id, conn=uow.conn)
        conditions = set(conditions)
        if person is not None and person.has_children:
            conditions.add("children")
        case_id = uuid.uuid4()
        reference = next_reference(uow.conn, prefix=reference_prefix, year=utc(first_contact_at, "first_contact_at").year)
        case = Case.open(
            definition, case_id=case_id, reference=reference, unit=unit, first_contact_at=first_contact_at,
            actor=actor, at=at, conditions=sorted(conditions & set(definition.conditions)), reason=reason,
        )
        uow.cases.add(case)
        if person is not None:
            repeat = _recent_contact(uow.conn, blind_index(index_key, person.name), since=at - REPEAT_CONTACT_WINDOW)
            _write_person(uow.conn, case, person, keys=keys, index_key=index_key, at=at, insert=True)
            case.execute(NotePersonChange(changed_fields(None, person)), actor=actor, at=at)
            uow.cases.save(case)
            if repeat:
                uow.conn.execute(sa.update(case_t).where(case_t.c.id == case.id).values(repeat_contact=True))
        uow.commit()
    return case


def change_case(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, change: Callable[[Case], T],
    also: Callable[[sa.Connection], None] | None = None,
) -> tuple[Case, T]:
    """Load a case, change it and save it with its events, in one transaction; a stale version raises a conflict.

    ``also`` writes more in the same transaction (the access-log row of the write), so both or neither persist."""
    with uow:
        case = uow.cases.get(reference, lock=True)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrencyConflict(reference, expected_version, case.version)
        result = change(case)
        uow.cases.save(case, expected_version=expected_version)
        if also is not None:
            also(uow.conn)
        uow.commit()
    return case, result


def execute(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, command: Command, actor: str,
    at: datetime | None = None, also: Callable[[sa.Connection], None] | None = None,
) -> tuple[Case, Any]:
    """The one handler of a command on a stored case, for the API, the pages, the CLI and the demo alike.
    Returns the case and what the command yields (an ad-hoc step's code, a handover task's id)."""
    when = at or now()
    return change_case(uow=uow, reference=reference, expected_version=expected_version, also=also,
                       change=lambda case: case.execute(command, actor=actor, at=when))


def get_case(*, uow: UnitOfWork, reference: str) -> Case:
    with uow:
        return uow.cases.get(reference)


def update_person(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, person: PersonRecord, actor: str,
    keys: KeyRing, index_key: str, reason: str | None = None, at: datetime | None = None,
) -> Case:
    at = at or now()
    with uow:
        case = uow.cases.get(reference, lock=True)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrencyConflict(reference, expected_version, case.version)
        blob = uow.conn.execute(sa.select(person_t.c.ciphertext).where(person_t.c.case_id == case.id)).scalar()
        old = unseal(blob, case_id=case.id, keys=keys) if blob is not None else None
        fields = changed_fields(old, person)
        if not fields:
            raise InvalidArgument("person", "nothing changed")
        if person.has_children and "children" in case.definition.conditions and "children" not in case.conditions:
            case.execute(SetCondition("children", True, reason="children registered in the person record"), actor=actor, at=at)
        _write_person(uow.conn, case, person, keys=keys, index_key=index_key, at=at, insert=old is None)
        case.execute(NotePersonChange(fields, reason=reason), actor=actor, at=at)
        uow.cases.save(case, expected_version=expected_version)
        uow.commit()
    return case


def read_person(*, uow: UnitOfWork, reference: str, keys: KeyRing) -> PersonRecord | None:
    with uow:
        row = uow.conn.execute(
            sa.select(person_t.c.case_id, person_t.c.ciphertext)
            .join(case_t, case_t.c.id == person_t.c.case_id).where(case_t.c.reference == reference)
        ).first()
        if row is None:
            if uow.conn.execute(sa.select(case_t.c.id).where(case_t.c.reference == reference)).first() is None:
                raise NotFound("case", reference)
            return None
        return unseal(row.ciphertext, case_id=row.case_id, keys=keys)


def find_cases_by_name(*, uow: UnitOfWork, name: str, index_key: str) -> list[str]:
    """References of the cases whose person has exactly this name (compared by blind index, nothing decrypted)."""
    with uow:
        rows = uow.conn.execute(
            sa.select(case_t.c.reference).join(person_t, person_t.c.case_id == case_t.c.id)
            .where(person_t.c.name_index == blind_index(index_key, name)).order_by(case_t.c.opened_at)
        )
        return [r.reference for r in rows]


def _recent_contact(conn: sa.Connection, name_index: str, *, since: datetime) -> bool:
    query = (
        sa.select(case_t.c.id).join(person_t, person_t.c.case_id == case_t.c.id)
        .where(person_t.c.name_index == name_index, sa.or_(case_t.c.closed_at.is_(None), case_t.c.closed_at >= since))
        .limit(1)
    )
    return conn.execute(query).first() is not None


def _write_person(conn: sa.Connection, case: Case, person: PersonRecord, *, keys: KeyRing, index_key: str,
                  at: datetime, insert: bool) -> None:
    key_id, blob, name_index = seal(person, case_id=case.id, keys=keys, index_key=index_key)
    values = {"key_id": key_id, "ciphertext": blob, "name_index": name_index, "updated_at": at}
    if insert:
        conn.execute(sa.insert(person_t).values(case_id=case.id, **values))
    else:
        conn.execute(sa.update(person_t).where(person_t.c.case_id == case.id).values(**values))


# -- keys ------------------------------------------------------------------------------------------------------


def rotate_person_keys(*, engine: sa.Engine, keys: KeyRing, batch: int = 500,
                       progress: Callable[[int], None] | None = None) -> int:
    """Re-encrypt every person record not under the active key; returns how many were rewritten."""
    done = 0
    while True:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            rows = conn.execute(
                sa.select(person_t.c.case_id, person_t.c.ciphertext)
                .where(person_t.c.key_id != keys.active_id).limit(batch)
            ).all()
            for row in rows:
                blob = keys.rotate(row.ciphertext, aad=row.case_id.bytes)
                conn.execute(sa.update(person_t).where(person_t.c.case_id == row.case_id)
                             .values(ciphertext=blob, key_id=keys.active_id))
        done += len(rows)
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch:
            return done


# -- audit -------------------------------------------------------------------------------------------------------


@dataclass
class AuditReport:
    cases: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit(*, engine: sa.Engine, replay_with: Callable[[str, int], PathwayDefinition] | None = None,
                 progress: Callable[[int], None] | None = None) -> AuditReport:
    """Check every case's event chain: contiguous, each hash recomputes, head and count match the case row.

    With ``replay_with``, also replay each case's events and compare the rebuilt state with the stored one.
    """
    report = AuditReport()
    with engine.connect() as conn:
        heads = {r.id: r for r in conn.execute(
            sa.select(case_t.c.id, case_t.c.reference, case_t.c.version, case_t.c.head_hash))}
        seen: set[uuid.UUID] = set()
        for case_id, rows in _events_by_case(conn):
            seen.add(case_id)
            report.cases += 1
            report.events += len(rows)
            head = heads.get(case_id)
            ref = head.reference if head is not None else str(case_id)
            chain = _chain_problems(ref, rows, head)
            report.problems.extend(chain)
            if replay_with is not None and not chain:
                report.problems.extend(_replay_problems(ref, rows, partial(replay_with, conn=conn), conn, case_id))
            if progress is not None:
                progress(1)
        for case_id, head in heads.items():
            if case_id not in seen:
                report.cases += 1
                report.problems.append(f"{head.reference}: no events at all (expected {head.version})")
    return report


def _events_by_case(conn: sa.Connection) -> Iterator[tuple[uuid.UUID, list[sa.Row]]]:
    rows = conn.execute(sa.select(event_t).order_by(event_t.c.case_id, event_t.c.seq)).mappings()
    current: uuid.UUID | None = None
    batch: list[sa.Row] = []
    for row in rows:
        if row["case_id"] != current and batch:
            yield current, batch  # type: ignore[misc]
            batch = []
        current = row["case_id"]
        batch.append(row)
    if batch:
        yield current, batch  # type: ignore[misc]


def _chain_problems(ref: str, rows: list[sa.RowMapping], head: sa.Row | None) -> list[str]:
    problems = []
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        e = Event(**dict(row))
        if e.seq != expected_seq:
            problems.append(f"{ref}: event {expected_seq} is missing (found {e.seq} next)")
            return problems
        if e.prev_hash != prev:
            problems.append(f"{ref}: event {e.seq} does not follow event {e.seq - 1} (chain broken)")
        if event_hash(e.prev_hash, e.body()) != e.hash:
            problems.append(f"{ref}: event {e.seq} ({e.operation}) was altered after it was written")
        prev = e.hash
    if head is None:
        problems.append(f"{ref}: events exist for a case that does not")
    elif head.version != len(rows) or head.head_hash != prev:
        problems.append(f"{ref}: the case is at version {head.version} but its chain ends at event {len(rows)} "
                        "(events deleted or the case row altered)")
    return problems


def _replay_problems(ref: str, rows: list[sa.RowMapping], resolve: Callable[[str, int], PathwayDefinition],
                     conn: sa.Connection, case_id: uuid.UUID) -> list[str]:
    try:
        rebuilt = replay([Event(**dict(r)) for r in rows], resolve)
    except DomainError as exc:
        return [f"{ref}: replay failed: {exc}"]
    stored = CaseRepository(conn, resolve).get_by_id(case_id)
    if rebuilt.digest() != stored.digest():
        return [f"{ref}: the stored case differs from the state its events rebuild"]
    return []


# -- definition versions ---------------------------------------------------------------------------------------


@dataclass
class MigrationSummary:
    open_cases: int = 0
    moved: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)


def migrate_cases(
    *, uow_factory: Callable[[], UnitOfWork], source: PathwayDefinition, target: PathwayDefinition,
    mapping: dict[str, str], actor: str, reason: str, apply: bool = False,
    progress: Callable[[int], None] | None = None,
) -> MigrationSummary:
    """Move open cases from one definition version to another. Refuses (moves nothing) if any code in use is unmapped."""
    summary = MigrationSummary()
    with uow_factory() as uow:
        ids = list(uow.cases.iter_case_ids(open_only=True, pathway=source.key))
        in_use = uow.conn.execute(
            sa.select(step_t.c.code).distinct().join(case_t, case_t.c.id == step_t.c.case_id).where(
                step_t.c.adhoc.is_(False), case_t.c.closed_at.is_(None),
                case_t.c.pathway_id == source.id, case_t.c.definition_version == source.version)
        ).scalars().all()
    summary.open_cases = len(ids)
    for code in sorted(set(in_use) - set(mapping)):
        summary.unmapped[code] += 1
    bad_targets = sorted(v for v in mapping.values() if v not in target.checkpoint)
    if summary.unmapped or bad_targets:
        for code in bad_targets:
            summary.refused[f"'{code}' is not a checkpoint of v{target.version}"] += 1
        return summary
    for case_id in ids:
        try:
            uow = uow_factory()
            with uow:
                case = uow.cases.get_by_id(case_id, lock=True)
                case.execute(Migrate(target.id, target.version, mapping, reason), actor=actor, at=now(),
                             resolve=lambda *_: target)
                if apply:
                    uow.cases.save(case)
                    uow.commit()
            summary.moved += 1
        except (DomainError, ConcurrencyConflict) as exc:
            summary.refused[str(exc)] += 1
        if progress is not None:
            progress(1)
    return summary


# -- users ----------------------------------------------------------------------------------------------------

ROLES = ("coordinator", "partner", "manager", "admin")


def add_user(*, engine: sa.Engine, username: str, role: str, unit: str | None = None, agency: str | None = None,
             language: str = "nb", email: str | None = None, webhook_url: str | None = None) -> None:
    """Create a user. Coordinators and managers belong to a unit, partner contacts to an agency."""
    if role not in ROLES:
        raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}")
    if role in ("coordinator", "manager") and not unit:
        raise InvalidArgument("unit", f"a {role} belongs to a unit")
    if role == "partner" and not agency:
        raise InvalidArgument("agency", "a partner contact belongs to an agency")
    if language not in ("nb", "en"):
        raise InvalidArgument("language", "nb or en")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidArgument("username", "1–64 letters, digits, '.', '-' or '_'")
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.execute(sa.select(user_t.c.id).where(user_t.c.username == username)).first() is not None:
            raise InvalidArgument("username", f"'{username}' exists already")
        conn.execute(sa.insert(user_t).values(
            id=uuid.uuid4(), username=username, role=role, unit=unit, agency=agency, language=language,
            email=email, webhook_url=webhook_url, active=True, created_at=now()))
