"""Load and save case aggregates with SQLAlchemy Core over the SQLModel tables (the hot path).

``save`` writes only what changed since ``load``: the case row under an optimistic version check, new and
changed steps and handover tasks, and the new events, all in the caller's transaction.
"""

from __future__ import annotations

import uuid
from operator import attrgetter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathway.case import Case, Consent, Event, HandoverTask, Step, iso
from pathway.case.events import PLAIN, Sealer, open_texts
from pathway.crypto import CaseKey, KeyRing
from pathway.definition import PathwayDefinition
from pathway.errors import CaseErased, ConcurrencyConflict, NotFound
from pathway.reminders import first_reminder_at
from pathway.store.casekeys import ERASED, key_insert, sealer_of
from pathway.store.fixed import Call, Fixed, together
from pathway.store.tables import case_key_t, case_t, event_t, handover_t, step_t

Resolver = Callable[[str, int], PathwayDefinition]

_STEP_COLS = ("id", "code", "occurrence", "owner", "state", "adhoc", "title", "created_at", "anchor_at", "due_at",
              "activated_at", "ended_at", "ended_by")
_TASK_COLS = ("id", "code", "agency", "scope", "basis", "status", "created_at", "created_by", "due_at", "updated_at",
              "note", "urgency", "updated_by", "reply")


# What ``save`` compares with: the version and pause as loaded, and the rows of the steps and tasks in their order
# (the aggregate's lists only grow, so a row's position is its identity; no id is hashed to find it); and whether
# the transaction holds the case row (locked when loaded, or written by it: added or saved).
_Loaded = tuple[int, bool, list[tuple[Any, ...]], list[tuple[Any, ...]], bool]


# The hot path's statements, built once and run on the DBAPI cursor (``pathway.store.fixed``): building a statement per
# call cost a third of an operation's CPU, and running it through Core's execution context most of the rest.
_STEP_ROW_COLS = (*_STEP_COLS, "next_reminder_at")
# The case row with its key (outer join: a case from before case keys has none), in the one statement.
_WITH_KEY = sa.select(case_t, case_key_t.c.wrapped.label("key_wrapped"), case_key_t.c.erased_at.label("key_erased_at"),
                      case_key_t.c.case_id.label("key_case_id")).outerjoin(case_key_t, case_key_t.c.case_id == case_t.c.id)
_CASE_ROW = tuple(c.name for c in _WITH_KEY.selected_columns)
_BY_REFERENCE = _WITH_KEY.where(case_t.c.reference == sa.bindparam("ref"))
_BY_ID = _WITH_KEY.where(case_t.c.id == sa.bindparam("id"))
# A writer locks the case row before reading the rest (PostgreSQL; SQLite's writers hold the database lock already):
# under READ COMMITTED each statement sees the latest commit, so without the lock a write committed between reading
# the case row and its steps would give a case half old, half new (version 1 with K1 already done).
_CASE_BY = {(by, lock): Fixed(q.with_for_update(of=case_t) if lock else q)
            for by, q in (("reference", _BY_REFERENCE), ("id", _BY_ID)) for lock in (False, True)}
# Its steps and tasks by the same key as the case row, so that the three are sent at once (``together``: one round trip
# on PostgreSQL). Each runs after the one before it, so under the lock of the first.
_CASE_ID_BY = {"reference": sa.select(case_t.c.id).where(case_t.c.reference == sa.bindparam("ref")).scalar_subquery(),
               "id": sa.bindparam("id", type_=sa.Uuid)}
_STEPS_BY = {by: Fixed(sa.select(*[step_t.c[c] for c in _STEP_COLS]).where(step_t.c.case_id == key)
                       .order_by(step_t.c.position)) for by, key in _CASE_ID_BY.items()}
_TASKS_BY = {by: Fixed(sa.select(*[handover_t.c[c] for c in _TASK_COLS]).where(handover_t.c.case_id == key)
                       .order_by(handover_t.c.position)) for by, key in _CASE_ID_BY.items()}
_CASE_COLS = ("pathway_id", "definition_version", "unit", "phase", "coordinator", "opened_at", "paused_since",
              "paused_time", "closed_at", "outcome", "transferred_to", "risk", "conditions", "milestones", "consents",
              "version", "head_hash", "head_digest", "next_due_at", "updated_at")
_UPDATE_CASE = Fixed(sa.update(case_t)
                     .where(case_t.c.id == sa.bindparam("b_id"), case_t.c.version == sa.bindparam("b_expected"))
                     .values({c: sa.bindparam(f"v_{c}") for c in _CASE_COLS}))


def _update_by_id(table: sa.Table, cols: tuple[str, ...]) -> Fixed:
    return Fixed(sa.update(table).where(table.c.id == sa.bindparam("b_id"))
                 .values({c: sa.bindparam(f"b_{c}") for c in cols if c != "id"}))


_UPDATE_STEP = _update_by_id(step_t, _STEP_ROW_COLS)
# Every column of the row, given (a Fixed statement fills no defaults: a missing value is a KeyError, not a NULL).
_INSERT_CASE, _INSERT_STEP, _INSERT_TASK, _INSERT_EVENT = (Fixed(sa.insert(t)) for t in (case_t, step_t, handover_t,
                                                                                         event_t))
_EVENTS_OF_CASE = sa.select(event_t).where(event_t.c.case_id == sa.bindparam("case_id")).order_by(event_t.c.seq)
_PARK_STEP_CODE = Fixed(sa.update(step_t).where(step_t.c.id == sa.bindparam("b_id"))
                        .values(code=sa.bindparam("b_code")))
_CODE = _STEP_COLS.index("code")
_UPDATE_TASK = _update_by_id(handover_t, _TASK_COLS)


def _next_reminder(case: Case, step: Step) -> datetime | None:
    """When the reminder scan should next look at this step: never while paused, closed or without a deadline."""
    if case.paused_since is not None or not step.is_open:
        return None
    return first_reminder_at(case.definition, step.code, step.due_at, adhoc=step.adhoc)


# The free text of the rows, stored sealed under the case's key (the aggregate holds it readable).
_TITLE = _STEP_COLS.index("title")
_TASK_TEXTS = tuple(_TASK_COLS.index(c) for c in HandoverTask.TEXTS)


def _sealed(sealer: Sealer, value: str | None) -> str | None:
    return value if value is None or sealer is PLAIN else sealer.seal(value)


def _opened(sealer: Sealer, value: str | None) -> str | None:
    return value if value is None or sealer is PLAIN else sealer.open(value)


# A row's values as the aggregate holds them (readable), read in C: what ``save`` compares to find the changed rows,
# so that only those are sealed and written.
_STEP_GET = attrgetter(*_STEP_COLS)
_TASK_GET = attrgetter(*_TASK_COLS)


def _step_values(step: Step, sealer: Sealer) -> tuple[Any, ...]:
    values: tuple[Any, ...] = _STEP_GET(step)
    if step.title is None or sealer is PLAIN:
        return values
    return (*values[:_TITLE], sealer.seal(step.title), *values[_TITLE + 1:])


def _task_values(task: HandoverTask, sealer: Sealer) -> tuple[Any, ...]:
    return tuple(list(task.scope) if c == "scope" else _sealed(sealer, getattr(task, c)) if i in _TASK_TEXTS
                 else getattr(task, c) for i, c in enumerate(_TASK_COLS))


def _case_values(case: Case) -> dict[str, Any]:
    return {
        "pathway_id": case.definition.id,
        "definition_version": case.definition.version,
        "unit": case.unit,
        "phase": case.phase,
        "coordinator": case.coordinator,
        "opened_at": case.opened_at,
        "paused_since": case.paused_since,
        "paused_time": case.paused_time,
        "closed_at": case.closed_at,
        "outcome": case.outcome,
        "transferred_to": _sealed(case.sealer, case.transferred_to),
        "risk": case.risk,
        "conditions": sorted(case.conditions),
        "milestones": {k: iso(v) for k, v in sorted(case.milestones.items())},
        "consents": {
            a: {"scope": list(c.scope), "given": c.given, "recorded_at": iso(c.recorded_at), "recorded_by": c.recorded_by}
            for a, c in sorted(case.consents.items())
        },
        "version": case.version,
        "head_hash": case.head_hash,
        "head_digest": None if case.head_digest is None else f"{case.version}:{case.head_digest}",
        "next_due_at": case.next_deadline(),
    }


def _digest_at(kept: str | None, version: int) -> str | None:
    """The kept state digest ("<version>:<digest>") if it is the one of ``version``, else None (computed when needed):
    a writer that did not keep it (an older release, during an upgrade) leaves an older one behind, which would
    otherwise go into the next event as its state_before and fail every later replay of the case."""
    if kept is None:
        return None
    at, _, digest = kept.partition(":")
    return digest if at == str(version) else None


def _event_row(e: Event) -> dict[str, Any]:
    return {
        "case_id": e.case_id, "seq": e.seq, "at": e.at, "actor": e.actor, "operation": e.operation,
        "reason": e.reason, "payload": e.payload, "state_before": e.state_before, "state_after": e.state_after,
        "prev_hash": e.prev_hash, "hash": e.hash, "channel": e.channel,
    }


class CaseRepository:
    """Cases in one transaction. Remembers what it loaded so that ``save`` writes only the difference."""

    def __init__(self, conn: sa.Connection, resolve: Resolver, keys: KeyRing | None = None) -> None:
        self._conn = conn
        self._resolve = resolve
        self._keys = keys  # the master key ring, which unwraps each case's own key (None: sealed cases stay locked)
        self._seen: dict[uuid.UUID, _Loaded] = {}

    def new_key(self) -> Sealer:
        """A new case's own key, to open it with (``add`` stores it, wrapped); PLAIN where no key ring was given."""
        return PLAIN if self._keys is None else CaseKey.generate()

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, reference: str, *, lock: bool = False) -> Case:
        """The case; with ``lock``, for a change: its row is locked until the transaction ends."""
        return self._load("reference", {"ref": reference}, lock)

    def get_by_id(self, case_id: uuid.UUID, *, lock: bool = False) -> Case:
        return self._load("id", {"id": case_id}, lock)

    def _load(self, by: str, key: dict[str, Any], lock: bool) -> Case:
        rows, steps, tasks = together(self._conn, [(_CASE_BY[by, lock], key), (_STEPS_BY[by], key),
                                                   (_TASKS_BY[by], key)])
        if not rows:
            raise NotFound("case", next(iter(key.values())))
        return self._build(dict(zip(_CASE_ROW, rows[0], strict=True)), steps, tasks, held=lock)

    def _build(self, row: dict[str, Any], steps: list[tuple[Any, ...]], tasks: list[tuple[Any, ...]], *,
               held: bool) -> Case:
        sealer = sealer_of(row["key_wrapped"], row["key_erased_at"], row["id"], self._keys,
                           has_row=row["key_case_id"] is not None)
        case = Case(
            id=row["id"], reference=row["reference"],
            definition=self._resolve(row["pathway_id"], row["definition_version"]),
            unit=row["unit"], opened_at=row["opened_at"], phase=row["phase"],
            conditions=set(row["conditions"]), coordinator=row["coordinator"], paused_since=row["paused_since"],
            milestones={k: datetime.fromisoformat(v) for k, v in row["milestones"].items()},
            consents={
                a: Consent(a, tuple(c["scope"]), c["given"], datetime.fromisoformat(c["recorded_at"]), c["recorded_by"])
                for a, c in row["consents"].items()
            },
            closed_at=row["closed_at"], outcome=row["outcome"], transferred_to=_opened(sealer, row["transferred_to"]),
            risk=row["risk"],
            version=row["version"], head_hash=row["head_hash"], part_of=row["parent_id"],
            head_digest=_digest_at(row["head_digest"], row["version"]),
        )
        case.paused_time = row["paused_time"]
        case.sealer = sealer
        for r in steps:
            step = Step(**dict(zip(_STEP_COLS, r, strict=True)))
            step.title = _opened(sealer, step.title)
            case.steps.append(step)
        for r in tasks:
            values = dict(zip(_TASK_COLS, r, strict=True))
            values["scope"] = tuple(values["scope"])
            values["note"], values["reply"] = _opened(sealer, values["note"]), _opened(sealer, values["reply"])
            case.handovers.append(HandoverTask(**values))
        self._remember(case, held=held)
        return case

    def events(self, case: Case, *, sealed: bool = False) -> list[Event]:
        """The case's events with their free text readable (for display), or with it ``sealed`` as stored and hashed
        (to replay: ``replay(events, resolve, case.sealer)``)."""
        rows = self._conn.execute(_EVENTS_OF_CASE, {"case_id": case.id})
        events = [Event(**dict(r)) for r in rows.mappings()]
        return events if sealed else [open_texts(case.sealer, e) for e in events]

    def iter_case_ids(self, *, open_only: bool = False, pathway: tuple[str, int] | None = None) -> Iterator[uuid.UUID]:
        query = sa.select(case_t.c.id).order_by(case_t.c.id)
        if open_only:
            query = query.where(case_t.c.closed_at.is_(None))
        if pathway is not None:
            query = query.where(case_t.c.pathway_id == pathway[0], case_t.c.definition_version == pathway[1])
        for (case_id,) in self._conn.execute(query):
            yield case_id

    # -- writing ---------------------------------------------------------------------------------------

    def add(self, case: Case) -> None:
        """Insert a new case: its row, its key, its steps, tasks and events, sent at once (``together``)."""
        calls: list[Call] = [(_INSERT_CASE, {"id": case.id, "reference": case.reference, "parent_id": case.part_of,
                                             "repeat_contact": False, "updated_at": _now(case), **_case_values(case)})]
        if isinstance(case.sealer, CaseKey):
            assert self._keys is not None  # a key comes from ``new_key``, which has the ring
            calls.append(key_insert(case.id, case.sealer, keys=self._keys, at=_now(case)))
        together(self._conn, [*calls, *self._new_rows(case, case.steps, case.handovers), *_events(case)])
        case.new_events.clear()
        self._remember(case, held=True)

    def save(self, case: Case, *, expected_version: int | None = None) -> None:
        """Write the changes; ``expected_version`` (default: the version loaded) guards against lost updates.

        Where the transaction holds the case row (loaded with ``lock``, or added or saved in it), no other writer can
        have moved it, and the case row's update under its version check is sent with every row written with it
        (``together``: one round trip on PostgreSQL). Otherwise the update is sent first, alone, so that a stale
        version is a conflict before any row meets another writer's (a step's or an event's unique key)."""
        if not case.new_events:
            return
        if case.sealer is ERASED:
            raise CaseErased()
        loaded_version, was_paused, steps, tasks, held = self._seen[case.id]
        expected = loaded_version if expected_version is None else expected_version
        if expected != loaded_version:
            raise ConcurrencyConflict(case.reference, expected, loaded_version)
        update: Call = (_UPDATE_CASE, {"b_id": case.id, "b_expected": expected, "v_updated_at": _now(case),
                                       **{f"v_{k}": v for k, v in _case_values(case).items()}})
        if not held:
            self._check_version(case, expected, _UPDATE_CASE.run(self._conn, update[1]))
        calls: list[Call] = [update] if held else []
        new_steps, new_tasks = case.steps[len(steps):], case.handovers[len(tasks):]
        sealer = case.sealer
        changed = [(s, was) for s, was in zip(case.steps, steps) if was != _STEP_GET(s)]
        recoded = [s for s, was in changed if was[_CODE] != s.code]
        if recoded:
            # A migration may rename codes into each other (K8 -> K9 while K9 -> K10) or give a new step a code that
            # a renamed one leaves: park the renamed rows on codes no checkpoint can have first, so that no single
            # statement meets the unique (case, code, occurrence) of a row that has not moved yet.
            calls.append((_PARK_STEP_CODE, [{"b_id": s.id, "b_code": f"~{i}"} for i, s in enumerate(recoded)]))
        calls += self._new_rows(case, new_steps, new_tasks)
        calls += _updates(_UPDATE_STEP, _STEP_ROW_COLS, [(*_step_values(s, sealer), _next_reminder(case, s))
                                                          for s, _ in changed])
        calls += _updates(_UPDATE_TASK, _TASK_COLS, [_task_values(t, sealer) for t, was in zip(case.handovers, tasks)
                                                      if was != _TASK_GET(t)])
        written = together(self._conn, [*calls, *_events(case)])
        if held:
            self._check_version(case, expected, written[0])
        if case.paused_since is not None and not was_paused:
            # A paused case raises no reminders: take its open steps out of the scan until they move on resume.
            self._conn.execute(sa.update(step_t).where(step_t.c.case_id == case.id, step_t.c.ended_at.is_(None))
                               .values(next_reminder_at=None))
        case.new_events.clear()
        self._remember(case, held=True)

    def _check_version(self, case: Case, expected: int, updated: int) -> None:
        if updated != 1:
            actual = self._conn.execute(sa.select(case_t.c.version).where(case_t.c.id == case.id)).scalar()
            raise ConcurrencyConflict(case.reference, expected, actual)

    def _new_rows(self, case: Case, steps: list[Step], tasks: list[HandoverTask]) -> list[Call]:
        # Lists only grow, so a row's position (its index in the aggregate) never changes once written.
        calls: list[Call] = []
        first_step = len(case.steps) - len(steps)
        if steps:
            calls.append((_INSERT_STEP, [
                {"case_id": case.id, "position": first_step + i, "next_reminder_at": _next_reminder(case, s),
                 **dict(zip(_STEP_COLS, _step_values(s, case.sealer), strict=True))}
                for i, s in enumerate(steps)]))
        first_task = len(case.handovers) - len(tasks)
        if tasks:
            calls.append((_INSERT_TASK, [
                {"case_id": case.id, "position": first_task + i,
                 **dict(zip(_TASK_COLS, _task_values(t, case.sealer), strict=True))}
                for i, t in enumerate(tasks)]))
        return calls

    def _remember(self, case: Case, *, held: bool) -> None:
        # The rows as read (readable, as the aggregate holds them; sealing is deterministic, so a changed text is a
        # changed row either way).
        self._seen[case.id] = (
            case.version,
            case.paused_since is not None,
            [_STEP_GET(s) for s in case.steps],
            [_TASK_GET(t) for t in case.handovers],
            held,
        )


def _updates(statement: Fixed, cols: tuple[str, ...], changed: list[tuple[Any, ...]]) -> list[Call]:
    """One executemany UPDATE by id (the first value of each row), if any row changed."""
    return [(statement, [{f"b_{c}": v for c, v in zip(cols, values, strict=True)} for values in changed])] if changed \
        else []


def _events(case: Case) -> list[Call]:
    return [(_INSERT_EVENT, [_event_row(e) for e in case.new_events])] if case.new_events else []


def _now(case: Case) -> datetime:
    return case.new_events[-1].at if case.new_events else case.opened_at
