"""Each case's own data key: created with the case, unwrapped with the master key ring when the case is read,
re-wrapped when the master key rotates, destroyed when the case is erased (``pathway.services.retention``).

What a case's key seals: its person and child records, and every free text of it (event reasons and the free text of
their payloads, added steps' titles, the transfer target, notes and replies of handover tasks, emergency-access
reasons). A case opened before case keys existed has no row here and keeps its texts as they were (``PLAIN``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa

from pathway.case.events import PLAIN, Sealer, Singleton
from pathway.crypto import CaseKey, KeyRing, is_sealed
from pathway.errors import CaseErased, CryptoError
from pathway.store.engine import WRITE
from pathway.store.fixed import Call, Fixed
from pathway.store.tables import case_key_t

ERASED_TEXT = "[—]"  # what a free text of an erased case reads as: the same in every language, and nothing of it


class Erased(Singleton):
    """The key of an erased case: nothing can be read, nothing new sealed."""

    def seal(self, text: str) -> str:
        raise CaseErased()

    def open(self, token: str) -> str:
        return ERASED_TEXT if is_sealed(token) else token


class Locked(Singleton):
    """A sealed case read without the master key ring (a process that was given none)."""

    def seal(self, text: str) -> str:
        raise CryptoError("the case's texts are sealed and no key ring was given")

    def open(self, token: str) -> str:
        raise CryptoError("the case's texts are sealed and no key ring was given")


ERASED = Erased()
LOCKED = Locked()

_KEY_OF = sa.select(case_key_t.c.wrapped, case_key_t.c.erased_at).where(case_key_t.c.case_id == sa.bindparam("id"))
_INSERT_KEY = Fixed(sa.insert(case_key_t))  # on the hot path of an open: built once, run on the DBAPI cursor


def key_insert(case_id: uuid.UUID, key: CaseKey, *, keys: KeyRing, at: datetime) -> Call:
    """The insert of a new case's key, wrapped under the active master key, to run in the caller's transaction after
    its case's (with the case's other rows, ``fixed.together``)."""
    return _INSERT_KEY, {"case_id": case_id, "master_key_id": keys.active_id,
                         "wrapped": keys.wrap(key, case_id=case_id.bytes), "created_at": at, "erased_at": None}


def sealer_of(wrapped: bytes | None, erased_at: datetime | None, case_id: uuid.UUID, keys: KeyRing | None,
              *, has_row: bool = True) -> Sealer:
    """The sealer of a case from its ``case_key`` row (``has_row`` False: a case from before case keys)."""
    if not has_row:
        return PLAIN
    if wrapped is None or erased_at is not None:
        return ERASED
    if keys is None:
        return LOCKED
    return keys.unwrap(wrapped, case_id=case_id.bytes)


def key_of(conn: sa.Connection, case_id: uuid.UUID, keys: KeyRing | None) -> Sealer:
    """The case's sealer: its key, ``ERASED``, or ``PLAIN`` for a case from before case keys."""
    row = conn.execute(_KEY_OF, {"id": case_id}).first()
    if row is None:
        return PLAIN
    return sealer_of(row.wrapped, row.erased_at, case_id, keys)


def keys_of(conn: sa.Connection, case_ids: Iterable[uuid.UUID], keys: KeyRing | None) -> dict[uuid.UUID, Sealer]:
    """The sealers of many cases in one query (a case without a row: ``PLAIN``)."""
    wanted = list(set(case_ids))
    found: dict[uuid.UUID, Sealer] = {i: PLAIN for i in wanted}
    for start in range(0, len(wanted), 500):
        rows = conn.execute(sa.select(case_key_t.c.case_id, case_key_t.c.wrapped, case_key_t.c.erased_at)
                            .where(case_key_t.c.case_id.in_(wanted[start:start + 500])))
        for r in rows:
            found[r.case_id] = sealer_of(r.wrapped, r.erased_at, r.case_id, keys)
    return found


def opener(conn: sa.Connection, keys: KeyRing | None) -> Callable[[uuid.UUID, str | None], str | None]:
    """``open(case_id, text)``: a stored free text made readable, each case's key unwrapped once (for reads that meet
    texts of many cases, such as the report's deviation reasons)."""
    cache: dict[uuid.UUID, Sealer] = {}

    def open_text(case_id: uuid.UUID, value: str | None) -> str | None:
        if value is None:
            return None
        sealer = cache.get(case_id)
        if sealer is None:
            sealer = cache[case_id] = key_of(conn, case_id, keys)
        return sealer.open(value)

    return open_text


def erase_key(conn: sa.Connection, case_id: uuid.UUID, *, at: datetime) -> None:
    """Destroy the case's key (in the caller's transaction): its sealed data is unreadable from then on, in this
    database and in every backup of it, as long as the key is kept apart from those backups."""
    updated = conn.execute(sa.update(case_key_t).where(case_key_t.c.case_id == case_id)
                           .values(wrapped=None, master_key_id=None, erased_at=at)).rowcount
    if updated == 0:  # a case from before case keys: record that it is erased all the same
        conn.execute(sa.insert(case_key_t).values(case_id=case_id, master_key_id=None, wrapped=None, created_at=at,
                                                  erased_at=at))


def rewrap_keys(*, engine: sa.Engine, keys: KeyRing, batch: int = 500,
                progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap every case key not under the active master key, a batch per transaction; the data the keys seal is
    not touched (one row per case is written, whatever its size). Returns how many keys were re-wrapped."""
    done = 0
    while True:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            rows = conn.execute(sa.select(case_key_t.c.case_id, case_key_t.c.wrapped)
                                .where(case_key_t.c.wrapped.is_not(None),
                                       case_key_t.c.master_key_id != keys.active_id).limit(batch)).all()
            if rows:
                # Only the key as it was read: a key erased meanwhile (retention, committed after the read) stays
                # erased, never written back re-wrapped.
                conn.execute(sa.update(case_key_t).where(case_key_t.c.case_id == sa.bindparam("b_id"),
                                                         case_key_t.c.wrapped == sa.bindparam("b_old"),
                                                         case_key_t.c.erased_at.is_(None))
                             .values(wrapped=sa.bindparam("b_wrapped"), master_key_id=keys.active_id),
                             [{"b_id": r.case_id, "b_old": r.wrapped,
                               "b_wrapped": keys.rewrap(r.wrapped, case_id=r.case_id.bytes)} for r in rows])
        done += len(rows)
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch:
            return done
