"""The audit: every case's hash-chained events are contiguous, unaltered, and (optionally) replay to its state."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import sqlalchemy as sa

from pathway.case import GENESIS, Event, event_hash, replay
from pathway.crypto import KeyRing
from pathway.definition import PathwayDefinition
from pathway.errors import CryptoError, DomainError
from pathway.store.casekeys import ERASED, key_of
from pathway.store.repository import CaseRepository
from pathway.store.tables import case_t, event_t


@dataclass
class AuditReport:
    cases: int = 0
    events: int = 0
    erased: int = 0  # erased cases: their chains verified (they cover the sealed texts), not replayed (no key)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit(*, engine: sa.Engine, replay_with: Callable[..., PathwayDefinition] | None = None,
                 keys: KeyRing | None = None, progress: Callable[[int], None] | None = None) -> AuditReport:
    """Check every case's event chain: contiguous, each hash recomputes, head and count match the case row. The
    hashes cover the texts as stored (sealed under each case's key), so the chain verifies without any key, and an
    erased case's chain verifies as before.

    With ``replay_with`` (the catalog's ``resolve``, which takes the connection to read on as ``conn``) and ``keys``
    (the master key ring, which opens each case's key), also replay each case's events and compare the rebuilt state
    with the stored one; an erased case cannot be replayed (its texts are gone) and is counted in ``erased``.
    """
    report = AuditReport()
    with engine.connect() as conn:
        heads = {r.id: r for r in conn.execute(
            sa.select(case_t.c.id, case_t.c.reference, case_t.c.version, case_t.c.head_hash, case_t.c.head_digest))}
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
                sealer = key_of(conn, case_id, keys)
                if sealer is ERASED:
                    report.erased += 1
                else:
                    report.problems.extend(_replay_problems(ref, rows, partial(replay_with, conn=conn), conn, case_id,
                                                            keys))
            if progress is not None:
                progress(1)
        for case_id, head in heads.items():
            if case_id not in seen:
                report.cases += 1
                report.problems.append(f"{head.reference}: no events at all (expected {head.version})")
    return report


def _events_by_case(conn: sa.Connection) -> Iterator[tuple[uuid.UUID, list[sa.RowMapping]]]:
    """Each case's events in order, one case at a time (the whole log is never held in memory)."""
    rows = conn.execute(sa.select(event_t).order_by(event_t.c.case_id, event_t.c.seq)).mappings()
    batch: list[sa.RowMapping] = []
    for row in rows:
        if batch and row["case_id"] != batch[0]["case_id"]:
            yield batch[0]["case_id"], batch
            batch = []
        batch.append(row)
    if batch:
        yield batch[0]["case_id"], batch


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
    elif head.head_digest is not None and head.head_digest.startswith(f"{head.version}:") and rows \
            and head.head_digest != f"{head.version}:{rows[-1]['state_after'].get('digest')}":
        # the kept digest of the last event's state (the next event's state_before) is not that event's
        problems.append(f"{ref}: the case row's state digest is not its last event's (the case row altered)")
    return problems


def _replay_problems(ref: str, rows: list[sa.RowMapping], resolve: Callable[[str, int], PathwayDefinition],
                     conn: sa.Connection, case_id: uuid.UUID, keys: KeyRing | None) -> list[str]:
    stored = CaseRepository(conn, resolve, keys).get_by_id(case_id)
    try:
        rebuilt = replay([Event(**dict(r)) for r in rows], resolve, stored.sealer)
    except CryptoError as exc:
        return [f"{ref}: cannot replay: {exc}"]
    except DomainError as exc:
        return [f"{ref}: replay failed: {exc}"]
    if rebuilt.digest() != stored.digest():
        return [f"{ref}: the stored case differs from the state its events rebuild"]
    return []
