"""The person record: encrypted at rest, found by a keyed blind index of the name, read only when asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from pathway.case import Case
from pathway.case.commands import NotePersonChange, SetCondition
from pathway.crypto import KeyRing, blind_index
from pathway.errors import ConcurrencyConflict, InvalidArgument, NotFound
from pathway.people import CASE_SEALED, PersonRecord, changed_fields, seal, unseal
from pathway.store.casekeys import key_of, keys_of, rewrap_keys
from pathway.store.engine import WRITE
from pathway.store.tables import case_t, child_t, person_t
from pathway.store.uow import UnitOfWork


def update_person(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, person: PersonRecord, actor: str,
    keys: KeyRing, index_key: str, reason: str | None = None, at: datetime | None = None,
    also: Callable[[sa.Connection], None] | None = None, channel: str | None = None,
) -> Case:
    at = at or datetime.now(timezone.utc)
    with uow:
        case = uow.cases.get(reference, lock=True)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrencyConflict(reference, expected_version, case.version)
        blob = uow.conn.execute(sa.select(person_t.c.ciphertext).where(person_t.c.case_id == case.id)).scalar()
        old = unseal(blob, case_id=case.id, keys=keys, sealer=case.sealer) if blob is not None else None
        fields = changed_fields(old, person)
        if not fields:
            raise InvalidArgument("person", "nothing changed")
        if person.has_children and "children" in case.definition.conditions and "children" not in case.conditions:
            case.execute(SetCondition("children", True, reason="children registered in the person record"), actor=actor, at=at,
                         channel=channel)
        write_person(uow.conn, case, person, keys=keys, index_key=index_key, at=at, insert=old is None)
        case.execute(NotePersonChange(tuple(fields), reason=reason), actor=actor, at=at, channel=channel)
        uow.cases.save(case, expected_version=expected_version)
        if also is not None:  # more in the same transaction: the access-log row of the write
            also(uow.conn)
        uow.commit()
    return case


def read_person(*, uow: UnitOfWork, reference: str, keys: KeyRing) -> PersonRecord | None:
    """The case's person record, decrypted (None if it has none); ``NotFound`` if no case has the reference."""
    with uow:
        return person_of(uow.conn, reference, keys)


def person_of(conn: sa.Connection, reference: str, keys: KeyRing) -> PersonRecord | None:
    """``read_person`` in the caller's transaction (the API reads, checks and logs in one)."""
    row = conn.execute(
        sa.select(person_t.c.case_id, person_t.c.ciphertext)
        .join(case_t, case_t.c.id == person_t.c.case_id).where(case_t.c.reference == reference)
    ).first()
    if row is None:
        if conn.execute(sa.select(case_t.c.id).where(case_t.c.reference == reference)).first() is None:
            raise NotFound("case", reference)
        return None
    return unseal(row.ciphertext, case_id=row.case_id, keys=keys, sealer=key_of(conn, row.case_id, keys))


@dataclass(frozen=True, slots=True)
class Shown:
    """The person of one case as a page shows it: the record (None: the case has none) and whether the case is a
    repeat contact (the same person, by blind index, had a case within 12 months before it opened)."""

    person: PersonRecord | None
    repeat_contact: bool
    opened_at: datetime
    closed_at: datetime | None


def people_of(conn: sa.Connection, references: list[str], keys: KeyRing) -> dict[str, Shown]:
    """The people of these cases, decrypted, by reference (one statement; a reference no case has is left out).
    The caller decides who may see them (``pathway.policy``) and logs each decryption in the same transaction."""
    if not references:
        return {}
    rows = conn.execute(
        sa.select(case_t.c.id, case_t.c.reference, case_t.c.repeat_contact, case_t.c.opened_at, case_t.c.closed_at,
                  person_t.c.ciphertext)
        .outerjoin(person_t, person_t.c.case_id == case_t.c.id).where(case_t.c.reference.in_(references))
    ).all()
    sealers = keys_of(conn, [r.id for r in rows if r.ciphertext is not None], keys)
    return {r.reference: Shown(unseal(r.ciphertext, case_id=r.id, keys=keys, sealer=sealers[r.id])
                               if r.ciphertext is not None else None,
                               bool(r.repeat_contact), r.opened_at, r.closed_at) for r in rows}


def find_cases_by_name(*, uow: UnitOfWork, name: str, index_key: str) -> list[str]:
    """References of the cases whose person has exactly this name (compared by blind index, nothing decrypted)."""
    with uow:
        return cases_named(uow.conn, name, index_key)


def cases_named(conn: sa.Connection, name: str, index_key: str) -> list[str]:
    """``find_cases_by_name`` in the caller's transaction."""
    rows = conn.execute(
        sa.select(case_t.c.reference).join(person_t, person_t.c.case_id == case_t.c.id)
        .where(person_t.c.name_index == blind_index(index_key, name)).order_by(case_t.c.opened_at)
    )
    return [r.reference for r in rows]


def recent_contact(conn: sa.Connection, name_index: str, *, since: datetime) -> bool:
    query = (
        sa.select(case_t.c.id).join(person_t, person_t.c.case_id == case_t.c.id)
        .where(person_t.c.name_index == name_index, sa.or_(case_t.c.closed_at.is_(None), case_t.c.closed_at >= since))
        .limit(1)
    )
    return conn.execute(query).first() is not None


def write_person(conn: sa.Connection, case: Case, person: PersonRecord, *, keys: KeyRing, index_key: str,
                  at: datetime, insert: bool) -> None:
    key_id, blob, name_index = seal(person, case_id=case.id, keys=keys, index_key=index_key, sealer=case.sealer)
    values = {"key_id": key_id, "ciphertext": blob, "name_index": name_index, "updated_at": at}
    if insert:
        conn.execute(sa.insert(person_t).values(case_id=case.id, **values))
    else:
        conn.execute(sa.update(person_t).where(person_t.c.case_id == case.id).values(**values))


def rotate_person_keys(*, engine: sa.Engine, keys: KeyRing, batch: int = 500,
                       progress: Callable[[int], None] | None = None) -> int:
    """Re-encrypt the person and child records under the master key not under its active key: those of cases from
    before case keys (a case's own key is re-wrapped instead: ``rewrap_case_keys``); returns how many."""
    return sum(rotate_table(engine=engine, keys=keys, table=table, key=table.c.case_id, batch=batch, progress=progress)
               for table in (person_t, child_t))


def rewrap_case_keys(*, engine: sa.Engine, keys: KeyRing, batch: int = 500,
                     progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap every case key not under the active master key; the records and texts it seals are not touched (one
    row per case is written). Returns how many keys were re-wrapped."""
    return rewrap_keys(engine=engine, keys=keys, batch=batch, progress=progress)


def rotate_table(*, engine: sa.Engine, keys: KeyRing, table: sa.Table, key: sa.Column[Any], batch: int = 500,
                 progress: Callable[[int], None] | None = None) -> int:
    """Re-encrypt every row of ``table`` whose ``ciphertext`` is not under the active key, its AAD the row's ``key``
    (the id it is bound to), a batch per transaction; returns how many were rewritten. Person, child and referral
    records alike, so that an old key can leave the ring."""
    done = 0
    while True:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            # A record sealed under its case's key is not the master key's to rotate (its case key is re-wrapped).
            rows = conn.execute(sa.select(key.label("id"), table.c.ciphertext)
                                .where(table.c.key_id != keys.active_id, table.c.key_id != CASE_SEALED,
                                       table.c.ciphertext.is_not(None)).limit(batch)).all()
            for row in rows:
                # Only the blob as it was read: one erased meanwhile (retention) stays erased.
                conn.execute(sa.update(table).where(key == row.id, table.c.ciphertext == row.ciphertext).values(
                    ciphertext=keys.rotate(row.ciphertext, aad=row.id.bytes), key_id=keys.active_id))
        done += len(rows)
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch:
            return done
