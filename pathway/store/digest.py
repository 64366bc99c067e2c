"""The managers' daily digest of overdue steps: once a working day, from a set local time, each unit with steps past
their manager rung tells its managers (else its coordinators) how many there are per checkpoint.

Exactly once per unit and working day: the day's row in ``overdue_digest`` is inserted (or found, and then nothing is
written) in the transaction that writes every unit's inbox and outbox rows. Two schedulers at once: PostgreSQL makes
the second wait on the first's insert and then find the day taken; SQLite has one writer. A crash before the commit
leaves nothing behind, and the next scan of the day makes the digest. A day without working hours (weekend, public
holiday) sends nothing: the steps are still overdue on the next working day, whose digest counts them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notifications.notices import CheckpointCount, overdue_digest_notices
from notifications.routing import Candidate
from pathway.calendar import OSLO, is_working_day
from pathway.definition import PathwayDefinition
from pathway.reminders import escalated
from pathway.store.engine import WRITE
from pathway.store.inbox import write_notices
from pathway.store.tables import case_t, digest_t, step_t, user_t

Resolver = Callable[..., PathwayDefinition]
_KEYS = uuid.UUID("5f0b7a52-4d0e-4c61-9f47-0c2b3a8e6d11")  # the digests' ids derive from this, the day and the unit


@dataclass
class DigestResult:
    units: int = 0  # units told
    steps: int = 0  # steps past their manager rung, in those units
    notifications: int = 0
    outbox: int = 0


def digest_day(now: datetime, at: time) -> date | None:
    """The working day whose digest is due at ``now`` (from ``at``, Europe/Oslo wall clock), or None."""
    local = now.astimezone(OSLO)
    return local.date() if is_working_day(local.date()) and local.time() >= at else None


def send_overdue_digest(*, engine: sa.Engine, resolve: Resolver, public_url: str, now: datetime,
                        at: time, unit_name: Callable[[str], str] = str) -> DigestResult:
    """Make the day's digest, unless the day has none (not a working day, before ``at``) or it was made already.
    ``unit_name``: a unit's display name (the installation's), which the email calls it by."""
    day = digest_day(now, at)
    result = DigestResult()
    if day is None:
        return result
    with engine.connect() as conn:  # the common case all day long: made already, and no write needed to see it
        if conn.execute(sa.select(digest_t.c.day).where(digest_t.c.day == day)).first() is not None:
            return result
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        claim = (dialect.insert(digest_t).values(day=day, made_at=now, units=0, steps=0)
                 .on_conflict_do_nothing(index_elements=["day"]).returning(digest_t.c.day))
        if conn.execute(claim).first() is None:
            return result  # another scheduler made it meanwhile
        counts = _escalated(conn, resolve, now)
        people = _people(conn, set(counts))
        for unit, lines in sorted(counts.items()):
            notices = overdue_digest_notices(unit=unit, checkpoints=lines, candidates=people, public_url=public_url,
                                             at=now, unit_name=unit_name(unit))
            if notices:
                write_notices(conn, notices, key=uuid.uuid5(_KEYS, f"{day.isoformat()}/{unit}"), at=now)
                result.units += 1
                result.steps += notices[0].count
                result.notifications += len(notices)
                result.outbox += sum(len(n.channels) for n in notices)
        conn.execute(sa.update(digest_t).where(digest_t.c.day == day).values(units=result.units, steps=result.steps))
    return result


def _escalated(conn: sa.Connection, resolve: Resolver, now: datetime) -> dict[str, list[CheckpointCount]]:
    """Per unit, the open steps of running (not paused) cases that are past a manager rung at ``now``, counted per
    checkpoint in the definition's order (a checkpoint's name from the newest version its cases are on), steps added
    ad hoc last. Only overdue steps can be: one indexed query over them."""
    rows = conn.execute(
        sa.select(step_t.c.code, step_t.c.adhoc, step_t.c.due_at, case_t.c.unit, case_t.c.pathway_id,
                  case_t.c.definition_version)
        .join(case_t, case_t.c.id == step_t.c.case_id)
        .where(step_t.c.ended_at.is_(None), step_t.c.due_at.is_not(None), step_t.c.due_at <= now,
               case_t.c.closed_at.is_(None), case_t.c.paused_since.is_(None)))
    # (unit, pathway, code or None) -> [count, newest version, its definition]
    found: dict[tuple[str, str, str | None], list[Any]] = {}
    for r in rows:
        definition = resolve(r.pathway_id, r.definition_version, conn=conn)
        if not escalated(definition, r.code, r.due_at, now, adhoc=r.adhoc):
            continue
        entry = found.setdefault((r.unit, r.pathway_id, None if r.adhoc else r.code), [0, -1, definition])
        entry[0] += 1
        if r.definition_version > entry[1]:
            entry[1:] = [r.definition_version, definition]
    counts: dict[str, list[tuple[tuple[str, int, str], CheckpointCount]]] = defaultdict(list)
    for (unit, pathway, code), (count, _, definition) in found.items():
        checkpoint = definition.checkpoint.get(code) if code is not None else None
        names = {"nb": checkpoint.name.nb, "en": checkpoint.name.en} if checkpoint is not None else {}
        position = definition.checkpoints.index(checkpoint) if checkpoint is not None else len(definition.checkpoints)
        counts[unit].append(((pathway, position, code or ""), CheckpointCount(code=code, names=names, count=count)))
    return {unit: [line for _, line in sorted(lines, key=lambda item: item[0])] for unit, lines in counts.items()}


def _people(conn: sa.Connection, units: set[str]) -> list[Candidate]:
    """The active managers and coordinators of ``units``, in one query."""
    if not units:
        return []
    users = conn.execute(
        sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.email, user_t.c.webhook_url)
        .where(user_t.c.active.is_(True), user_t.c.role.in_(["coordinator", "manager"]), user_t.c.unit.in_(units))
        .order_by(user_t.c.username))
    return [Candidate(username=u.username, role=u.role, unit=u.unit, email=u.email, webhook_url=u.webhook_url)
            for u in users]
