#!/usr/bin/env python
"""Scale benchmark: what a coordinator, the scan and a manager wait for at national size and at 1/100 of it.

Run from the repository root (``.venv/bin/python bench/scale.py``; ``--scale 0.1`` while developing). It prints
figures and never asserts on time. In one run, on PostgreSQL:

1. Builds two databases of its own (``forlop_scale_small`` and ``forlop_scale_large``, dropped at the end unless
   ``--keep``), shaped like a national deployment: many units (municipalities) of the same size, ``--per-unit``
   cases each (default 1,000, first contacts spread over the past year). Small: 3 units; large: 300 units at
   ``--scale 1`` (300,000 cases). One unit's list and one unit's report therefore return the same in both.
   Every case is valid: ``--per-unit`` template cases are run through the case aggregate (``pathway.case``, no
   database: open, intake, coordinator, consents, handovers accepted and completed by the agencies, repeats of
   K12, pauses, move-out, closure; late completions give their reason), then cloned for every unit with new ids,
   references (a prefix per unit) and coordinator. A clone's events are re-hashed: the canonical texts of the
   template's events and state snapshots are rendered with the clone's ids and hashed again, so every hash chain
   and every state digest is what the engine would have written. The rows go in by COPY, the units interleaved
   in order of first contact (as they would arrive), with person records encrypted for their own case, the
   reminders the scan would have raised by now (routed) and each open step's next rung. Then the plain indexes
   are re-created and the tables VACUUM ANALYZEd.
2. Checks the data: ``forlop audit verify``'s checks with replay (``services.verify_audit``) on the small set, and
   on ``--sample`` random cases of the large one (chain, hashes, replay, stored state).
3. Times, the two sizes taking turns (median and p95 of ``--reps`` warm runs, ``--slow-reps`` for the scan and the
   reports), through the FastAPI app in this process (``fastapi.testclient``, bearer token, access log written as in
   production): the coordinators' list (``GET /api/v1/cases?limit=50``, default order; ``overdue=true``; the
   second page; closed cases by first contact), one case (``GET /api/v1/cases/{ref}``, an open case with a long
   timeline and a closed one; the HTML page ``/cases/{ref}`` if the app has it), the scan
   (``pathway.scheduler.run_scan``: scan and route, with exactly ``--due`` steps due in both sets, all in the first
   three units; and with nothing due) and the managers' report (``GET /api/v1/reports/timeliness``, own unit and
   ``scope=all``): computed live (the default span asked for explicitly, which is always computed) and answered
   from the background snapshot (no span: the default). The snapshot job itself
   (``pathway.scheduler.run_report_snapshots``, every unit, month and tertial) runs once on each set first, and is
   timed on its own line, since it is background work.
4. Prints one table: operation, what it returns, small and large (median, p95) and large/small. The target is
   under 2 for everything whose answer is the same size in both sets; ``scope=all`` aggregates every unit, so it
   is expected to grow with the data. For every ratio over 2 it then shows where the time goes: the SQL
   statements of one run on each set (driver time) and EXPLAIN (ANALYZE, BUFFERS) of the slowest on the large set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from bench import cleanup  # noqa: E402
from bench.cleanup import Made  # noqa: E402
from pathway import metrics, services  # noqa: E402
from pathway.accounts import set_password  # noqa: E402
from pathway.bootstrap import Forlop, bootstrap  # noqa: E402
from pathway.case import Case, Event, canonical, event_hash, iso, replay  # noqa: E402
from pathway.case import commands as do  # noqa: E402
from pathway.crypto import blind_index  # noqa: E402
from pathway.definition import PathwayDefinition  # noqa: E402
from pathway.demo import DEVIATIONS, FIRST, LAST  # noqa: E402
from pathway.errors import DomainError  # noqa: E402
from pathway.reminders import HANDOVER_UNACCEPTED, RungDue, crossed, rung_times  # noqa: E402
from pathway.scheduler import run_report_snapshots, run_scan  # noqa: E402
from pathway.settings import Settings  # noqa: E402
from pathway.store.repository import (  # noqa: E402  (the repository's own rows, so a clone holds what it writes)
    _CASE_COLS,
    _STEP_COLS,
    _TASK_COLS,
    CaseRepository,
    _case_values,
    _event_row,
    _step_values,
    _task_values,
)
from pathway.store.tables import counter_t, user_t  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PATHWAY = "krisesenter"
SMALL_UNITS = 3
NATIONAL_UNITS = 300
YEAR = timedelta(days=365)
PASSWORD = "bench-passord-123"
AGENCY_USERS = (("politi", "police"), ("nav", "nav"), ("barnevern", "child_welfare"), ("helse", "health"))
OUTCOMES = (("safe_housing", 50), ("returned_to_abuser", 10), ("moved_away", 10), ("declined", 8),
            ("ended_early", 12), ("transferred", 5))
# Stand-ins in the template cases, replaced in every clone (none can occur anywhere else in a row).
T_PREFIX, T_UNIT, T_COORD = "TPLX", "tplunit", "tplkoord"
D_BEFORE, D_AFTER, P_HASH, E_HASH, HEAD = "@@DB@@", "@@DA@@", "@@PH@@", "@@EH@@", "@@HEAD@@"

console = Console(stderr=True)


def log(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}", highlight=False)


# == template cases: the engine's own aggregate, in memory ============================================================


class _Recording(Case):
    """A case that keeps the canonical text of every state snapshot it digests, in order, for the cloner."""

    def digest(self) -> str:
        text = canonical(self.snapshot())
        self.__dict__.setdefault("snapshots", []).append(text)
        return hashlib.sha256(text).hexdigest()


@dataclass
class Template:
    index: int
    case: Case
    events: list[Event]
    snapshots: list[bytes]
    person: dict[str, Any]
    raised: list[tuple[int, RungDue]]  # (step position, rung) raised by now: reminder rows
    next_rung: dict[int, datetime | None]  # step position -> next_reminder_at
    due: tuple[int, RungDue] | None = None  # a step with a rung reached and not yet raised, if chosen for the scan


def _uniform_hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(hours=rng.uniform(lo, hi))


def _scenario(case: Case, rng: random.Random, now: datetime) -> None:
    """Walk one case the way a crisis centre does, up to ``now``: intake, coordinator, consents, handovers the
    agencies accept and complete, K12 follow-ups, sometimes a pause or a return, move-out and closure."""
    clock = case.opened_at
    stopped = False

    def note_for(code: str) -> str:
        return DEVIATIONS[zlib.crc32(f"{case.reference}{code}".encode()) % len(DEVIATIONS)]

    def complete(code: str, actor: str, at: datetime) -> None:
        late = any(s.code == code and s.overdue(at) for s in case.steps)
        case.execute(do.CompleteStep(code, note=note_for(code) if late else None), actor=actor, at=at)

    def follow_ups(until: datetime) -> None:
        # K12 (a follow-up conversation every 28 days, then 42): mostly done a few days early, some late.
        nonlocal clock
        while True:
            step = next((s for s in case.steps if s.code == "K12" and s.state == "active" and s.due_at), None)
            if step is None or case.paused_since is not None or case.is_closed:
                return
            assert step.due_at is not None
            offset = -rng.uniform(0, 5) if rng.random() < 0.85 else rng.uniform(0.1, 4)
            at = max(step.due_at + timedelta(days=offset), clock + timedelta(hours=1))
            if at >= until or at >= now:
                return
            clock = at
            try:
                complete("K12", T_COORD, at)
            except DomainError:
                return

    def act(wait: timedelta, change: Callable[[datetime], object]) -> bool:
        nonlocal clock, stopped
        if stopped:
            return False
        at = clock + wait
        if at >= now:
            stopped = True
            return False
        follow_ups(at)
        clock = max(clock, at)
        try:
            change(clock)
        except DomainError:
            pass  # a plausible move the rules refuse at this point is simply not taken
        return True

    children = "children" in case.conditions
    act(_uniform_hours(rng, 1, 30), lambda at: complete("K1", "mottak", at))
    act(_uniform_hours(rng, 0.2, 6), lambda at: complete("K2", "mottak", at))
    if children:
        act(_uniform_hours(rng, 1, 30), lambda at: complete("K5", "mottak", at))
    act(_uniform_hours(rng, 2, 72), lambda at: case.execute(do.AssignCoordinator(T_COORD), actor="leder", at=at))
    consents = [("police", ["contact", "name", "threat_assessment"])] if rng.random() < 0.7 else []
    consents += [("nav", ["contact", "finances", "name"])] if rng.random() < 0.9 else []
    for agency, scope in consents:
        act(_uniform_hours(rng, 1, 30), lambda at, a=agency, s=scope: case.execute(do.RecordConsent(a, scope=s, given=True), actor=T_COORD, at=at))
    act(_uniform_hours(rng, 1, 12), lambda at: case.execute(do.Advance("start_support"), actor=T_COORD, at=at))
    for agency, _ in consents:
        code = {"police": "K6", "nav": "K7"}[agency]
        act(_uniform_hours(rng, 1, 30), lambda at, c=code: case.execute(do.CreateHandover(c), actor=T_COORD, at=at))
    for task in list(case.handovers):
        partner = {"police": "politi", "nav": "nav"}.get(task.agency, "partner")
        if rng.random() < 0.85 and act(_uniform_hours(rng, 2, 40), lambda at, t=task, p=partner: case.execute(do.UpdateHandover(t.id, "accepted"), actor=p, at=at)) and rng.random() < 0.85:
            act(_uniform_hours(rng, 5, 120), lambda at, t=task, p=partner: case.execute(do.UpdateHandover(t.id, "completed", note="utført"), actor=p, at=at))
    if rng.random() < 0.06:
        act(_uniform_hours(rng, 24, 400), lambda at: case.execute(do.Pause(reason="personen er på sykehus"), actor=T_COORD, at=at))
        act(_uniform_hours(rng, 72, 900), lambda at: case.execute(do.Resume(), actor=T_COORD, at=at))
    act(_uniform_hours(rng, 48, 400), lambda at: complete("K8", T_COORD, at))
    if rng.random() < 0.1:  # some end early: the person declines further follow-up
        outcome = rng.choice(["declined", "ended_early"])
        act(_uniform_hours(rng, 24, 900), lambda at: case.execute(do.Close(outcome, reason="avsluttet etter avtale"), actor=T_COORD, at=at))
        return
    if "shelter_stay" in case.conditions:
        plan = clock + timedelta(days=rng.uniform(8, 40))
        act(_uniform_hours(rng, 1, 48), lambda at: case.execute(do.RecordMilestone("move_out_planned", when=plan), actor=T_COORD, at=at))
        act(_uniform_hours(rng, 24, 300), lambda at: complete("K10", T_COORD, at))
    act(_uniform_hours(rng, 24, 500), lambda at: complete("K9", "nav", at))
    act(_uniform_hours(rng, 2, 48), lambda at: case.execute(do.Advance("move_out"), actor=T_COORD, at=at))
    if rng.random() < 0.06:
        act(_uniform_hours(rng, 24, 200), lambda at: case.execute(do.Advance("back_to_support", reason="ny krise; tilbake på krisesenteret"), actor=T_COORD, at=at))
        act(_uniform_hours(rng, 72, 600), lambda at: case.execute(do.Advance("move_out"), actor=T_COORD, at=at))
    act(_uniform_hours(rng, 24, 170), lambda at: complete("K11", T_COORD, at))
    outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
    if outcome == "transferred":
        act(_uniform_hours(rng, 24, 600), lambda at: case.execute(do.Transfer("Testkommune", reason="flyttet til annen kommune"), actor=T_COORD, at=at))
    else:
        act(_uniform_hours(rng, 24, 600), lambda at: case.execute(do.Close(outcome, reason=None if outcome == "safe_housing" else "avsluttet etter avtale"), actor=T_COORD, at=at))


def _person(rng: random.Random) -> dict[str, Any]:
    """A synthetic person record (``PersonRecord`` as JSON); the name is made per clone."""
    children = [rng.randint(0, 17) for _ in range(rng.choice([0, 0, 0, 1, 2, 3]))]
    return {
        "name": "", "birth_date": f"{rng.randint(1940, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "safe_contact": f"+47 000 {rng.randint(10, 99)} {rng.randint(100, 999)}",
        "address": f"Fiktivgata {rng.randint(1, 99)}, 0000 Testby",
        "address_protection": rng.choice(["none", "none", "none", "code7", "code6"]), "children_ages": children,
        "interpreter_language": rng.choice([None, None, None, "ar", "so", "uk", "pl"]), "needs": [],
    }


def _reminders(template: Template, now: datetime) -> None:
    """The rungs the scan would have raised by ``now`` (while the case was open and running) and each open
    step's next rung, as the scan leaves them."""
    case = template.case
    for position, step in enumerate(case.steps):
        if step.due_at is None:
            template.next_rung[position] = None
            continue
        rungs = rung_times(case.definition, step.code, step.due_at, adhoc=step.adhoc)
        requested = any(t.code == step.code and t.status == "requested" for t in case.handovers)
        until = min(x for x in (now, step.ended_at, case.closed_at, case.paused_since) if x is not None)
        due, next_at = crossed(rungs, until)
        for rung in due:
            if rung.kind != HANDOVER_UNACCEPTED or requested:
                template.raised.append((position, rung))
        running = step.is_open and case.paused_since is None and not case.is_closed
        template.next_rung[position] = next_at if running else None


def build_templates(definition: PathwayDefinition, *, count: int, now: datetime, seed: int) -> list[Template]:
    """One unit's worth of cases, first contacts spread evenly over the past year, each walked up to ``now``."""
    rng = random.Random(seed)
    opened = sorted(now - YEAR * rng.random() for _ in range(count))
    per_year: Counter[int] = Counter()
    templates = []
    for index, first_contact in enumerate(opened):
        per_year[first_contact.year] += 1
        reference = f"{T_PREFIX}-{first_contact.year}-{per_year[first_contact.year]:04d}"
        conditions = [c for c, p in (("children", 0.35), ("shelter_stay", 0.6)) if rng.random() < p]
        case = _Recording.open(definition, case_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                               reference=reference, unit=T_UNIT, first_contact_at=first_contact, actor="mottak",
                               at=first_contact, conditions=conditions)
        person = _person(rng)
        case.execute(do.NotePersonChange([k for k, v in person.items() if v not in (None, [], "none")]), actor="mottak", at=first_contact)
        _scenario(case, rng, now)
        events = list(case.new_events)
        case.new_events.clear()
        snapshots = case.__dict__.pop("snapshots")
        template = Template(index, case, events, snapshots, person, [], {})
        _reminders(template, now)
        templates.append(template)
    return templates


def choose_due(templates: list[Template], *, due: int, now: datetime) -> int:
    """Mark ``due // 3`` templates whose open step has reached a rung: in the first three units those rungs are
    left unraised, so the scan finds exactly ``due`` steps in either data set. Returns the number marked."""
    wanted = due // SMALL_UNITS
    marked = 0
    for t in reversed(templates):  # the newest cases: intake steps with their first rungs
        if marked == wanted:
            break
        if t.case.is_closed or t.case.paused_since is not None:
            continue
        for position, rung in reversed(t.raised):
            if rung.kind != HANDOVER_UNACCEPTED and t.case.steps[position].is_open and rung.at < now:
                t.due = (position, rung)
                marked += 1
                break
    return marked


# == clones: the templates' rows rendered with new ids =================================================================


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _line(values: Sequence[Any]) -> str:
    return "\t".join(_copy_text(v) for v in values) + "\n"


class Form:
    """A text with stand-ins, turned once into a format string: rendering it with a clone's values is one
    ``format_map`` (in C)."""

    __slots__ = ("text",)

    def __init__(self, text: str, pattern: re.Pattern[str], slot_of: dict[str, str]) -> None:
        pieces = pattern.split(text.replace("{", "{{").replace("}", "}}"))  # stand-ins are the odd pieces
        self.text = "".join(p if i % 2 == 0 else "{" + slot_of[p] + "}" for i, p in enumerate(pieces))

    def render(self, values: dict[str, str]) -> str:
        return self.text.format_map(values)


# The columns the repository writes, taken from it: a column added to the store (risk, a handover's reply, ...)
# is then cloned too, instead of left NULL where the engine would have written a value replay reproduces.
STEP_COLS = ("case_id", "position", *_STEP_COLS, "next_reminder_at")
TASK_COLS = ("case_id", "position", *_TASK_COLS)
EVENT_COLS = tuple(f.name for f in fields(Event))  # the store writes every field of an event (_event_row)
CASE_COLS = ("id", "reference", "repeat_contact", *_CASE_COLS)
REMINDER_COLS = ("id", "step_id", "case_id", "rung", "kind", "recipient", "due_at", "raised_at", "routed_at")
PERSON_COLS = ("case_id", "key_id", "ciphertext", "name_index", "updated_at")
TABLES = {"pathway_case": CASE_COLS, "step": STEP_COLS, "handover_task": TASK_COLS, "case_event": EVENT_COLS,
          "reminder": REMINDER_COLS, "person": PERSON_COLS}


@dataclass
class Compiled:
    """A template's rows as forms, and how to work out a clone's ids."""

    template: Template
    steps: list[tuple[str, str]]  # (slot, uuid5 name) of each step id
    tasks: list[tuple[str, str]]
    reminders: list[tuple[str, str, str]]  # (slot, step slot, uuid5 name)
    case_row: Form
    step_rows: Form
    step_rows_due: Form | None
    task_rows: Form
    reminder_rows: Form
    reminder_rows_due: Form | None
    events: list[tuple[Form | None, Form, Form, Form]]  # (snapshot before if not the last after, after, body, row)
    counts: dict[str, int] = field(default_factory=dict)


def compile_template(t: Template) -> Compiled:
    case = t.case
    slot_of = {str(case.id): "C", T_PREFIX: "P", T_UNIT: "U", T_COORD: "K", D_BEFORE: "DB", D_AFTER: "DA",
               P_HASH: "PH", E_HASH: "H", HEAD: "HEAD"}
    steps = []
    for i, s in enumerate(case.steps):
        slot_of[str(s.id)] = f"s{i}"
        steps.append((f"s{i}", f"{s.code}#{s.occurrence}"))
    tasks = []
    for i, task in enumerate(case.handovers):
        slot_of[str(task.id)] = f"t{i}"
        tasks.append((f"t{i}", f"handover#{i + 1}"))
    reminder_ids = []
    for j, (position, rung) in enumerate(t.raised):
        step = case.steps[position]
        assert step.due_at is not None
        name = f"{rung.index}@{step.due_at.isoformat()}"
        slot_of[str(uuid.uuid5(step.id, name))] = f"r{j}"
        reminder_ids.append((f"r{j}", f"s{position}", name))
    pattern = re.compile("(" + "|".join(re.escape(k) for k in sorted(slot_of, key=len, reverse=True)) + ")")

    def form(text: str) -> Form:
        return Form(text, pattern, slot_of)

    def step_rows(due: tuple[int, RungDue] | None) -> Form:
        lines = []
        for i, s in enumerate(case.steps):
            next_at = due[1].at if due is not None and due[0] == i else t.next_rung[i]
            lines.append(_line([case.id, i, *_step_values(s), next_at]))
        return form("".join(lines))

    def reminder_rows(due: tuple[int, RungDue] | None) -> Form:
        lines = []
        for position, rung in t.raised:
            if due is not None and (position, rung) == due:
                continue  # the scan raises this one
            step = case.steps[position]
            raised = rung.at + timedelta(seconds=30)
            lines.append(_line([uuid.uuid5(step.id, f"{rung.index}@{step.due_at.isoformat()}"), step.id,  # type: ignore[union-attr]
                                case.id, rung.index, rung.kind, rung.to, step.due_at, raised, raised]))
        return form("".join(lines))

    task_lines = "".join(_line([case.id, i, *_task_values(task)]) for i, task in enumerate(case.handovers))
    values = {**_case_values(case), "head_hash": HEAD, "updated_at": t.events[-1].at}
    case_line = _line([case.id, case.reference, False, *[values[c] for c in _CASE_COLS]])

    # Events: the snapshots digested, in order, are [after 1, before 2, after 2, before 3, ...].
    assert len(t.snapshots) == 2 * len(t.events) - 1, (len(t.snapshots), len(t.events))
    events = []
    for k, e in enumerate(t.events):
        after = t.snapshots[2 * k]
        before = t.snapshots[2 * k - 1] if k else None
        assert hashlib.sha256(after).hexdigest() == e.state_after["digest"]
        before_form = None
        if before is not None and before != t.snapshots[2 * k - 2]:
            before_form = form(before.decode())
        state_before = {**e.state_before, "digest": D_BEFORE} if e.state_before else {}
        state_after = {**e.state_after, "digest": D_AFTER}
        body = {**e.body(), "state_before": state_before, "state_after": state_after}
        written = {**_event_row(e), "state_before": state_before, "state_after": state_after, "prev_hash": P_HASH,
                   "hash": E_HASH}
        row = _line([written[c] for c in EVENT_COLS])
        events.append((before_form, form(after.decode()), form(canonical(body).decode()), form(row)))
    compiled = Compiled(
        template=t, steps=steps, tasks=tasks, reminders=reminder_ids, case_row=form(case_line),
        step_rows=step_rows(None), step_rows_due=step_rows(t.due) if t.due else None, task_rows=form(task_lines),
        reminder_rows=reminder_rows(None), reminder_rows_due=reminder_rows(t.due) if t.due else None,
        events=events,
    )
    compiled.counts = {"step": len(case.steps), "handover_task": len(case.handovers), "case_event": len(t.events),
                       "reminder": len(t.raised)}
    return compiled


def unit_name(u: int) -> str:
    return f"kommune-{u:03d}"


def unit_prefix(u: int) -> str:
    """A reference prefix per unit (letters only, like BGO): NAAA, NAAB, ..."""
    a, rest = divmod(u, 26 * 26)
    b, c = divmod(rest, 26)
    return "N" + "".join(chr(ord("A") + x) for x in (a, b, c))


def coordinator_of(u: int) -> str:
    return f"koord-{u:03d}"


def manager_of(u: int) -> str:
    return f"leder-{u:03d}"


class Cloner:
    """Renders one clone of a template into COPY lines, re-hashing its events as the engine would have."""

    def __init__(self, core: Forlop, rng: random.Random) -> None:
        self.keys = core.keys
        self.index_key = core.settings.index_key
        self.rng = rng

    def clone(self, c: Compiled, u: int, out: dict[str, list[str]], *, due: bool) -> uuid.UUID:
        t = c.template
        case_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        values = {"C": str(case_id), "P": unit_prefix(u), "U": unit_name(u), "K": coordinator_of(u)}
        ids: dict[str, uuid.UUID] = {}
        for slot, name in c.steps:
            ids[slot] = uuid.uuid5(case_id, name)
            values[slot] = str(ids[slot])
        for slot, name in c.tasks:
            values[slot] = str(uuid.uuid5(case_id, name))
        for slot, step_slot, name in c.reminders:
            values[slot] = str(uuid.uuid5(ids[step_slot], name))
        prev = "0" * 64
        digest_after = ""
        lines = []
        for before, after, body, row in c.events:
            values["DB"] = (hashlib.sha256(before.render(values).encode()).hexdigest() if before is not None
                            else digest_after)
            digest_after = values["DA"] = hashlib.sha256(after.render(values).encode()).hexdigest()
            values["PH"] = prev
            prev = values["H"] = hashlib.sha256(prev.encode("ascii") + body.render(values).encode()).hexdigest()
            lines.append(row.render(values))
        values["HEAD"] = prev
        out["case_event"].extend(lines)
        out["pathway_case"].append(c.case_row.render(values))
        out["step"].append((c.step_rows_due if due and c.step_rows_due else c.step_rows).render(values))
        out["reminder"].append((c.reminder_rows_due if due and c.reminder_rows_due else c.reminder_rows).render(values))
        if c.tasks:
            out["handover_task"].append(c.task_rows.render(values))
        name = f"{FIRST[t.index % len(FIRST)]} {LAST[u % len(LAST)]} {u:03d}{t.index:04d}"
        blob = self.keys.encrypt_json({**t.person, "name": name}, aad=case_id.bytes)
        out["person"].append(_line([case_id, self.keys.key_id_of(blob), "\\x" + blob.hex(),  # bytea, hex input
                                    blind_index(self.index_key, name), t.events[-1].at]))
        return case_id


# == data sets ========================================================================================================


@dataclass
class DataSet:
    label: str
    name: str
    units: int
    url: str
    core: Forlop | None = None
    client: TestClient | None = None
    counts: dict[str, int] = field(default_factory=dict)
    due_steps: int = 0
    load_seconds: float = 0.0
    tokens: dict[str, str] = field(default_factory=dict)  # bearer token per role (coordinator, manager)
    cursor: str | None = None  # the coordinator list's second page
    statements: Statements | None = None

    @property
    def engine(self) -> sa.Engine:
        assert self.core is not None
        return self.core.engine


def _settings(url: str, definitions: Path) -> Settings:
    return Settings(env="test", database_url=url, definitions_dir=definitions, scheduler="off",
                    public_url="http://127.0.0.1:8000")


def _plain_indexes(raw: Any, tables: Sequence[str]) -> list[tuple[str, str]]:
    """Indexes that back no constraint (not the keys, not the unique constraints), with their definitions."""
    return raw.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)", [list(tables)]).fetchall()


def load(ds: DataSet, compiled: list[Compiled], *, now: datetime, seed: int, progress: Progress) -> None:
    """Clone every template for every unit, the units interleaved in order of first contact, by COPY (one
    connection per table, foreign-key triggers off for these sessions only); then indexes, VACUUM ANALYZE."""
    core = ds.core
    assert core is not None
    started = time.perf_counter()
    cloner = Cloner(core, random.Random(seed))
    total = len(compiled) * ds.units
    task = progress.add_task(f"{ds.label}: {total:,} cases", total=total)
    counts: Counter[str] = Counter()
    admin = core.engine.connect()
    raw0 = admin.connection.driver_connection
    indexes = _plain_indexes(raw0, list(TABLES))
    for name, _sql in indexes:
        raw0.execute(f'DROP INDEX "{name}"')
    raw0.commit()
    conns, copies = [], {}
    try:
        for table, cols in TABLES.items():
            conn = core.engine.connect()
            conns.append(conn)
            raw = conn.connection.driver_connection
            raw.execute("SET synchronous_commit = off")
            raw.execute("SET session_replication_role = replica")  # this session only: no RI triggers in COPY
            manager = raw.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN")
            copies[table] = (raw, manager, manager.__enter__())
        out: dict[str, list[str]] = defaultdict(list)
        done = 0
        for c in compiled:
            for u in range(ds.units):
                due = c.template.due is not None and u < SMALL_UNITS
                cloner.clone(c, u, out, due=due)
                ds.due_steps += int(due)
            done += ds.units
            if sum(len(v) for v in out.values()) > 20_000 or c is compiled[-1]:
                for table, lines in out.items():
                    copies[table][2].write("".join(lines))
                    counts[table] += sum(line.count("\n") for line in lines)
                out = defaultdict(list)
                progress.update(task, completed=done)
        for raw, manager, _ in copies.values():
            manager.__exit__(None, None, None)
            raw.commit()
    except BaseException:
        for conn in conns:
            conn.invalidate()  # a connection in the middle of a COPY is not fit for the pool
        raise
    finally:
        for conn in conns:
            conn.close()
    progress.update(task, description=f"{ds.label}: indexes, VACUUM ANALYZE")
    raw0.execute("SET maintenance_work_mem = '256MB'")
    for _name, sql in indexes:
        raw0.execute(sql)
    raw0.commit()
    admin.close()
    with core.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    progress.update(task, description=f"{ds.label}: {total:,} cases loaded")
    ds.counts = dict(counts)
    ds.load_seconds = time.perf_counter() - started


def add_people(ds: DataSet, compiled: list[Compiled], now: datetime) -> None:
    """Per unit a coordinator (with email, so the scan's route writes outbox rows) and a manager; a contact per
    agency; the reference counters past every reference handed out; the due steps the scan's reset restores."""
    rows = []
    for u in range(ds.units):
        for username, role in ((coordinator_of(u), "coordinator"), (manager_of(u), "manager")):
            rows.append({"id": uuid.uuid4(), "username": username, "role": role, "unit": unit_name(u), "agency": None,
                         "language": "nb", "email": f"{username}@example.invalid", "webhook_url": None,
                         "active": True, "created_at": now, "failed_logins": 0})
    for username, agency in AGENCY_USERS:
        rows.append({"id": uuid.uuid4(), "username": username, "role": "partner", "unit": None, "agency": agency,
                     "language": "nb", "email": None, "webhook_url": None, "active": True, "created_at": now,
                     "failed_logins": 0})
    last: Counter[int] = Counter()
    for c in compiled:
        year, number = c.template.case.reference.split("-")[1:]
        last[int(year)] = max(last[int(year)], int(number))
    counters = [{"prefix": unit_prefix(u), "year": y, "last": n} for u in range(ds.units) for y, n in last.items()]
    with ds.engine.begin() as conn:
        conn.execute(sa.insert(user_t), rows)
        conn.execute(sa.insert(counter_t), counters)
        # What the scan's reset puts back: the due steps and their unraised rung.
        conn.exec_driver_sql("CREATE TABLE bench_due AS SELECT id AS step_id, next_reminder_at FROM step "
                             "WHERE ended_at IS NULL AND next_reminder_at <= %(now)s", {"now": now})
        conn.exec_driver_sql("CREATE TABLE bench_meta (now timestamptz, units int, per_unit int)")
        conn.exec_driver_sql("INSERT INTO bench_meta VALUES (%(now)s, %(units)s, %(per)s)",
                             {"now": now, "units": ds.units, "per": len(compiled)})
    for username in (coordinator_of(0), manager_of(0)):
        set_password(ds.engine, username, PASSWORD)


# == checks ===========================================================================================================


def check_sample(ds: DataSet, sample: int, seed: int) -> list[str]:
    """``audit verify``'s checks on random cases: the chain links, every event hashes to itself, replay
    reproduces every recorded state, and the stored case equals the replayed one."""
    core = ds.core
    assert core is not None
    problems = []
    with core.engine.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql(
            "SELECT id FROM pathway_case ORDER BY md5(id::text || %(seed)s) LIMIT %(n)s", {"seed": str(seed), "n": sample})]
        resolve = core.catalog.resolve
        for case_id in ids:
            rows = conn.execute(sa.text("SELECT * FROM case_event WHERE case_id = :id ORDER BY seq"),
                                {"id": case_id}).mappings().all()
            events = [Event(**dict(r)) for r in rows]
            prev = "0" * 64
            for e in events:
                if e.prev_hash != prev or event_hash(e.prev_hash, e.body()) != e.hash:
                    problems.append(f"{case_id}: event {e.seq} does not hash")
                prev = e.hash
            stored = CaseRepository(conn, lambda p, v: resolve(p, v, conn=conn), core.keys).get_by_id(case_id)
            try:
                rebuilt = replay(events, lambda p, v: resolve(p, v, conn=conn), stored.sealer)
            except DomainError as exc:
                problems.append(f"{case_id}: replay failed: {exc}")
                continue
            if rebuilt.digest() != stored.digest() or stored.head_hash != prev or stored.version != len(events):
                problems.append(f"{case_id}: the stored case differs from its events")
    return problems


# == timing ===========================================================================================================


@dataclass
class Timing:
    small: list[float] = field(default_factory=list)
    large: list[float] = field(default_factory=list)
    returns: str = ""


def pct(values: Sequence[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(r: Sequence[str]) -> str:
        return "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(headers), "  " + "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


class Statements:
    """Driver time per SQL statement while recording (to see where a slow operation spends it)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.items: list[tuple[str, Any, float]] = []
        self._start: list[float] = []
        self.on = False
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self._start.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        took = time.perf_counter() - self._start.pop()
        if self.on:
            self.items.append((statement, parameters, took))


def _reset_scan(ds: DataSet, now: datetime) -> None:
    """Put the due steps back as loaded: no reminders raised at ``now``, nothing routed from them."""
    with ds.engine.begin() as conn:
        raised = "SELECT id FROM reminder WHERE raised_at = %(now)s"
        conn.exec_driver_sql(f"DELETE FROM notification WHERE reminder_id IN ({raised})", {"now": now})
        conn.exec_driver_sql(f"DELETE FROM outbox WHERE reminder_id IN ({raised})", {"now": now})
        conn.exec_driver_sql("DELETE FROM reminder WHERE raised_at = %(now)s", {"now": now})
        conn.exec_driver_sql("UPDATE step SET next_reminder_at = d.next_reminder_at FROM bench_due d "
                             "WHERE step.id = d.step_id")


@dataclass
class Operation:
    name: str
    run: Callable[[DataSet], str]  # returns a short description of what it returned (checked equal in both)
    slow: bool = False
    prepare: Callable[[DataSet], None] | None = None
    same_size: bool = True  # returns the same amount in both sets (target: ratio under 2)


def _get(path: str, *, token_of: str, expect: int = 200) -> Callable[[DataSet], str]:
    def run(ds: DataSet) -> str:
        assert ds.client is not None
        response = ds.client.get(path, headers={"Authorization": f"Bearer {ds.tokens[token_of]}"})
        if response.status_code != expect:
            raise RuntimeError(f"{ds.label}: GET {path} answered {response.status_code}: {response.text[:300]}")
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        if isinstance(body, dict) and "items" in body:
            return f"{len(body['items'])} cases"
        if isinstance(body, dict) and "intervals" in body:
            return f"{len(body['intervals'])} + {len(body['cases'])} rows"
        if isinstance(body, dict) and "timeline" in body:
            return f"{len(body.get('steps', []))} steps, {len(body['timeline'])} events"
        return f"{len(response.content) // 1024} KB"
    return run


def sample_reference(compiled: list[Compiled]) -> str:
    """The reference of the open case with the longest timeline, in the first unit (there in both sets)."""
    open_long = max((c for c in compiled if not c.template.case.is_closed), key=lambda c: len(c.template.events))
    return open_long.template.case.reference.replace(T_PREFIX, unit_prefix(0))


def operations(ds_small: DataSet, now: datetime, compiled: list[Compiled], has_html: bool) -> list[Operation]:
    ops = [
        Operation("list: default order (next deadline)", _get("/api/v1/cases?limit=50", token_of="coordinator")),
        Operation("list: overdue=true", _get("/api/v1/cases?limit=50&overdue=true", token_of="coordinator")),
    ]
    # The second page: the cursor the first page hands out (the same in both sets: same unit, same cases).
    ops.append(Operation("list: second page (cursor)", _second_page))
    ops.append(Operation("list: closed, by first contact", _get(
        "/api/v1/cases?limit=50&status=closed&sort=opened_at", token_of="coordinator")))
    open_long = max((c for c in compiled if not c.template.case.is_closed), key=lambda c: len(c.template.events))
    closed = next(c for c in reversed(compiled) if c.template.case.is_closed)
    for label, c in (("open", open_long), ("closed", closed)):
        ref = c.template.case.reference.replace(T_PREFIX, unit_prefix(0))
        ops.append(Operation(f"case page JSON ({label}, {len(c.template.events)} events)",
                             _get(f"/api/v1/cases/{ref}", token_of="coordinator")))
        if has_html:
            ops.append(Operation(f"case page HTML ({label})", _html(f"/cases/{ref}")))
    ops.append(Operation(f"scan + route ({ds_small.due_steps} due)", lambda ds: _scan(ds, now, expect=True),
                         slow=True, prepare=lambda ds: _reset_scan(ds, now)))
    ops.append(Operation("scan + route (nothing due)", lambda ds: _scan(ds, now, expect=False)))
    # The managers' report: the default (12 full months and this one) and a period of a manager's own choosing,
    # both answered from the stored blocks (the same custom period computed live is timed once, before the table).
    start, end = custom_period()
    custom = f"/api/v1/reports/timeliness?start={start}&end={end}"
    ops.append(Operation("report: own unit, default", _get("/api/v1/reports/timeliness", token_of="manager")))
    ops.append(Operation("report: own unit, custom period", _get(custom, token_of="manager")))
    ops.append(Operation("report: scope=all, custom period", _get(f"{custom}&scope=all", token_of="manager"),
                         same_size=False))
    return ops


def custom_period() -> tuple[Any, Any]:
    """A period of a manager's own choosing: from the 10th seven months ago to the 20th two months ago."""
    today = datetime.now(timezone.utc).date()
    return (today - timedelta(days=213)).replace(day=10), (today - timedelta(days=62)).replace(day=20)


def _second_page(ds: DataSet) -> str:
    assert ds.client is not None
    headers = {"Authorization": f"Bearer {ds.tokens['coordinator']}"}
    cursor = ds.cursor
    response = ds.client.get("/api/v1/cases", params={"limit": 50, "cursor": cursor}, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{ds.label}: second page answered {response.status_code}")
    return f"{len(response.json()['items'])} cases"


def _html(path: str) -> Callable[[DataSet], str]:
    def run(ds: DataSet) -> str:
        assert ds.client is not None
        response = ds.client.get(path)  # the browser session's cookie is in the client's jar
        if response.status_code != 200 or "html" not in response.headers.get("content-type", ""):
            raise RuntimeError(f"{ds.label}: GET {path} answered {response.status_code}")
        return f"{len(response.content) // 1024} KB"
    return run


def _scan(ds: DataSet, now: datetime, *, expect: bool) -> str:
    assert ds.core is not None
    result = run_scan(ds.core, now=now)
    want = ds.due_steps if expect else 0
    if result.steps != want or result.reminders != want:
        raise RuntimeError(f"{ds.label}: the scan found {result.steps} steps and raised {result.reminders} "
                           f"reminders; expected {want}")
    return f"{result.reminders} reminders, {result.notifications} inbox, {result.outbox} outbox"


def web_sign_in(ds: DataSet, probe: str) -> bool:
    """A browser session for the HTML pages, signed in through the app's own form; True if the page ``probe``
    then answers with HTML (False: the app has no such page, or no sign-in form)."""
    assert ds.client is not None
    form = ds.client.get("/login")
    if form.status_code != 200:
        return False
    hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.text))
    response = ds.client.post("/login", data={**hidden, "username": coordinator_of(0), "password": PASSWORD},
                              follow_redirects=False)
    if response.status_code not in (302, 303):
        return False
    page = ds.client.get(probe)
    return page.status_code == 200 and "html" in page.headers.get("content-type", "")


def measure(sets: list[DataSet], ops: list[Operation], *, reps: int, slow_reps: int, budget: float,
            progress: Progress) -> dict[str, Timing]:
    """Each operation on each set in turn (who goes first alternates), after warm-up runs that are not counted
    (two; one for the slow ones). An operation slower than ``budget`` / runs gets fewer runs, at least 3."""
    results: dict[str, Timing] = {}
    task = progress.add_task("timing", total=len(ops))
    for op in ops:
        n = slow_reps if op.slow else reps
        t = results[op.name] = Timing()
        progress.update(task, description=f"timing: {op.name}")
        rep = -1 if op.slow else -2
        while rep < n:
            took_now = []
            for ds in sets if rep % 2 == 0 else list(reversed(sets)):
                if op.prepare is not None:
                    op.prepare(ds)
                start = time.perf_counter()
                returned = op.run(ds)
                took = time.perf_counter() - start
                took_now.append(took)
                if rep >= 0:
                    (t.small if ds.label == "small" else t.large).append(took)
                if ds.label == "small":
                    t.returns = returned
                elif returned != t.returns and op.same_size and "large:" not in t.returns:
                    t.returns += f" (large: {returned})"
            if rep == -1:
                n = max(3, min(n, int(budget / max(took_now))))
            rep += 1
        progress.advance(task)
    return results


def explain(sets: list[DataSet], op: Operation) -> str:
    """The SQL statements of one run on each set, with their driver time, and EXPLAIN ANALYZE of the slowest on
    the large set."""
    recorded, wall = {}, {}
    for ds in sets:
        if op.prepare is not None:
            op.prepare(ds)
        rec = ds.statements
        assert rec is not None
        rec.items.clear()
        rec.on = True
        start = time.perf_counter()
        try:
            op.run(ds)
        finally:
            rec.on = False
        wall[ds.label] = time.perf_counter() - start
        recorded[ds.label] = list(rec.items)
    small, large = recorded["small"], recorded["large"]
    rows = []
    for i, (statement, _params, took) in enumerate(large):
        other = small[i][2] if i < len(small) and small[i][0] == statement else float("nan")
        rows.append([re.sub(r"\s+", " ", statement)[:90], ms(other), ms(took),
                     f"{took / other:.1f}x" if other == other and other > 0 else "n/a"])
    out = [table(["statement (in order)", "small ms", "large ms", "large/small"], rows)]
    out.append("  SQL (driver time) / wall: " + ", ".join(
        f"{label} {ms(sum(x[2] for x in recorded[label]))} / {ms(wall[label])} ms" for label in ("small", "large"))
        + "; the rest is Python")
    statement, params, _ = max(large, key=lambda s: s[2])
    if statement.lstrip().upper().startswith("SELECT") and not isinstance(params, list):
        with sets[1].engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).scalars().all()
            conn.rollback()
        out.append("EXPLAIN (ANALYZE, BUFFERS) of the slowest, on the large set:")
        out.extend("    " + line for line in plan)
    return "\n".join(out)


# == main =============================================================================================================


def _exists(admin: sa.Engine, name: str) -> bool:
    with admin.connect() as conn:
        return conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None


def main(made: Made) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="large set = 300 x scale units (1.0: 300,000 cases)")
    parser.add_argument("--per-unit", type=int, default=1000, help="cases per unit (the templates)")
    parser.add_argument("--due", type=int, default=240, help="steps due for the scan, in both sets")
    parser.add_argument("--reps", type=int, default=21, help="timed runs per fast operation and set")
    parser.add_argument("--slow-reps", type=int, default=7, help="timed runs of the scan and the reports")
    parser.add_argument("--budget", type=float, default=120, help="seconds per operation and set: a slower one "
                        "gets fewer runs (at least 3)")
    parser.add_argument("--sample", type=int, default=200, help="cases of the large set checked by replay")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--pg-url", default=None, help=f"a server that lets us CREATE DATABASE (default {DEFAULT_PG}"
                        " or FORLOP_TEST_POSTGRES_URL)")
    parser.add_argument("--name", default="forlop_scale", help="the databases are NAME_small and NAME_large")
    parser.add_argument("--keep", action="store_true", help="keep the two databases at the end")
    parser.add_argument("--reuse", action="store_true", help="time the databases a --keep run left (no load)")
    parser.add_argument("--explain", choices=("auto", "always", "never"), default="auto",
                        help="statements and plan of an operation: when its ratio is over 2 (auto), always, never")
    args = parser.parse_args()
    units = max(SMALL_UNITS, round(NATIONAL_UNITS * args.scale))
    admin_url = args.pg_url or os.environ.get("FORLOP_TEST_POSTGRES_URL", DEFAULT_PG)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    print(f"Scale benchmark, {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
          f"SQLAlchemy {sa.__version__}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; argv: {' '.join(sys.argv[1:]) or '(defaults)'}")
    with admin.connect() as conn:
        print(f"PostgreSQL {conn.exec_driver_sql('SHOW server_version').scalar()}")
    # The definitions as they are now: the run keeps one version even if the working tree changes meanwhile.
    workdir = made.temp_dir("forlop_scale_")
    definitions = workdir / "definitions"
    shutil.copytree(ROOT / "definitions", definitions)
    sets = [DataSet("small", f"{args.name}_small", SMALL_UNITS, ""), DataSet("large", f"{args.name}_large", units, "")]
    started = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, transient=False)
    try:
        # A database of the same name left by an earlier run is dropped and made anew, unless --reuse asks for it.
        reused = [args.reuse and _exists(admin, ds.name) for ds in sets]
        for ds, was_reused in zip(sets, reused):
            if was_reused:
                made.drop_at_end(admin_url, ds.name)
                ds.url = sa.engine.make_url(admin_url).set(database=ds.name).render_as_string(hide_password=False)
            else:
                ds.url = made.database(admin_url, ds.name)
            ds.core = bootstrap(_settings(ds.url, definitions))
        definition = sets[0].core.catalog.latest(PATHWAY)  # type: ignore[union-attr]
        if all(reused):
            with sets[0].engine.connect() as conn:
                now, _, per_unit = conn.exec_driver_sql("SELECT * FROM bench_meta").one()
            args.per_unit = per_unit
            log(f"reusing the kept databases (generated for now = {now:%Y-%m-%d %H:%M}Z)")
        else:
            now = datetime.now(timezone.utc).replace(microsecond=0)
        t0 = time.perf_counter()
        templates = build_templates(definition, count=args.per_unit, now=now, seed=args.seed)
        marked = choose_due(templates, due=args.due, now=now)
        compiled = [compile_template(t) for t in templates]
        log(f"{len(templates):,} template cases through the aggregate in {time.perf_counter() - t0:.1f} s "
            f"({marked} with a step due for the scan in each of the first {SMALL_UNITS} units)")
        with progress:
            for ds, was_reused in zip(sets, reused):
                if was_reused:
                    with ds.engine.connect() as conn:
                        ds.units = conn.exec_driver_sql("SELECT units FROM bench_meta").scalar_one()
                        ds.due_steps = conn.exec_driver_sql("SELECT count(*) FROM bench_due").scalar_one()
                        for table_name in TABLES:
                            ds.counts[table_name] = conn.exec_driver_sql(
                                f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{table_name}'").scalar_one()
                    continue
                load(ds, compiled, now=now, seed=args.seed + len(ds.label), progress=progress)
                add_people(ds, compiled, now)
        print()
        print(table(["data set", "units", "cases", "steps", "events", "handover tasks", "reminders", "persons",
                     "due for the scan", "load"],
                    [[ds.label, f"{ds.units:,}", f"{ds.counts.get('pathway_case', 0):,}",
                      f"{ds.counts.get('step', 0):,}", f"{ds.counts.get('case_event', 0):,}",
                      f"{ds.counts.get('handover_task', 0):,}", f"{ds.counts.get('reminder', 0):,}",
                      f"{ds.counts.get('person', 0):,}", f"{ds.due_steps:,}",
                      f"{ds.load_seconds:.0f} s" if ds.load_seconds else "kept"] for ds in sets]))
        with sets[0].engine.connect() as conn:
            open_cases = conn.exec_driver_sql("SELECT count(*) FROM pathway_case WHERE closed_at IS NULL AND "
                                              "unit = %(u)s", {"u": unit_name(0)}).scalar_one()
            overdue = conn.exec_driver_sql("SELECT count(*) FROM pathway_case WHERE closed_at IS NULL AND unit = "
                                           "%(u)s AND next_due_at < now()", {"u": unit_name(0)}).scalar_one()
        print(f"  per unit: {args.per_unit:,} cases, {open_cases:,} open, {overdue:,} overdue now")
        print()

        t0 = time.perf_counter()
        report = services.verify_audit(engine=sets[0].engine, replay_with=sets[0].core.catalog.resolve,  # type: ignore[union-attr]
                                       keys=sets[0].core.keys)  # type: ignore[union-attr]
        print(f"Checks: audit verify with replay on the small set: {report.cases:,} cases, {report.events:,} events, "
              f"{len(report.problems)} problems ({time.perf_counter() - t0:.0f} s)")
        for line in report.problems[:5]:
            print(f"    {line}")
        problems = check_sample(sets[1], args.sample, args.seed)
        print(f"        the same checks on {args.sample} random cases of the large set: {len(problems)} problems")
        for line in problems[:5]:
            print(f"    {line}")

        has_html = True
        for ds in sets:
            ds.statements = Statements(ds.engine)
            ds.client = TestClient(create_app(ds.core), base_url="https://testserver")  # type: ignore[arg-type]
            ds.client.__enter__()
            for role, username in (("coordinator", coordinator_of(0)), ("manager", manager_of(0))):
                response = ds.client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
                response.raise_for_status()
                ds.tokens[role] = response.json()["access_token"]
            first = ds.client.get("/api/v1/cases?limit=50", headers={"Authorization": f"Bearer {ds.tokens['coordinator']}"})
            ds.cursor = first.json()["next_cursor"]
            has_html = web_sign_in(ds, f"/cases/{sample_reference(compiled)}") and has_html
        if not has_html:
            print("\nNote: the app has no HTML case page (/cases/{reference}) yet, or signing in to it failed: "
                  "skipped.")
        # The background job, once per set (the reports answered from a snapshot below read what it wrote).
        job: dict[str, tuple[float, int]] = {}
        for ds in sets:
            t0 = time.perf_counter()
            written = run_report_snapshots(ds.core)  # type: ignore[arg-type]
            job[ds.label] = (time.perf_counter() - t0, written)
        print(f"\nBackground job, first run: report blocks (pathway.scheduler.run_report_snapshots: every tertial of "
              f"three years, every unit and all units): small {job['small'][0]:.2f} s ({job['small'][1]} rows), "
              f"large {job['large'][0]:.2f} s ({job['large'][1]} rows), large/small "
              f"{job['large'][0] / job['small'][0]:.1f}x")
        for ds in sets:  # a later run: the current tertial (and the one just over) only
            t0 = time.perf_counter()
            written = run_report_snapshots(ds.core)  # type: ignore[arg-type]
            job[ds.label] = (time.perf_counter() - t0, written)
        print(f"Background job, every later run (the current tertial): small {job['small'][0]:.2f} s "
              f"({job['small'][1]} rows), large {job['large'][0]:.2f} s ({job['large'][1]} rows)")
        # For comparison, once per set: the custom period computed live (metrics.timeliness: every tertial it
        # touches, every unit, suppressed), which is what every chosen period cost before the stored blocks.
        live: dict[str, float] = {}
        for ds in sets:
            t0 = time.perf_counter()
            metrics.timeliness(engine=ds.engine, resolve=ds.core.catalog.resolve,  # type: ignore[union-attr]
                               period="month", start=custom_period()[0], end=custom_period()[1], unit=unit_name(0),
                               now=datetime.now(timezone.utc))
            live[ds.label] = time.perf_counter() - t0
        print(f"The custom period computed live, once: small {live['small']:.2f} s, large {live['large']:.2f} s, "
              f"large/small {live['large'] / live['small']:.1f}x")
        ops = operations(sets[0], now, compiled, has_html)
        with progress:
            results = measure(sets, ops, reps=args.reps, slow_reps=args.slow_reps, budget=args.budget,
                              progress=progress)
        print()
        print(f"Timings: median and p95 of up to {args.reps} warm runs ({args.slow_reps} for the scan and the "
              f"reports; fewer when slower than {args.budget:.0f} s per set, at least 3), the two sets taking turns; "
              f"ms. Small: {sets[0].units} units, large: {sets[1].units} units.")
        rows = []
        for op in ops:
            t = results[op.name]
            ratio = statistics.median(t.large) / statistics.median(t.small)
            flag = "" if not op.same_size else (" ok" if ratio < 2 else " OVER 2")
            rows.append([op.name, t.returns, str(len(t.small)), ms(statistics.median(t.small)), ms(pct(t.small, 95)),
                         ms(statistics.median(t.large)), ms(pct(t.large, 95)), f"{ratio:.2f}x{flag}"])
        print(table(["operation", "returns", "runs", "small med", "small p95", "large med", "large p95",
                     "large/small"], rows))
        print("  report: answered from the stored blocks (one row per tertial for the unit: pathway/metrics/snapshots.py).\n"
              "  scope=all also carries every unit's case figures beside the others, so its answer grows with the units.\n"
              "  live: the same custom period computed from the events (suppression over every unit), for comparison.")
        for op in ops:
            t = results[op.name]
            ratio = statistics.median(t.large) / statistics.median(t.small)
            if args.explain == "always" or (args.explain == "auto" and op.same_size and ratio >= 2):
                print(f"\nWhere the time goes: {op.name}")
                print(explain(sets, op))
        if args.keep:  # only a finished run: a database cut short while loading is of no use to --reuse
            for ds in sets:
                made.keep(ds.name)
            print(f"\nKept {', '.join(ds.name for ds in sets)} (drop them with DROP DATABASE, or run with --reuse).")
    finally:
        for ds in sets:
            if ds.client is not None:
                ds.client.__exit__(None, None, None)
            elif ds.core is not None:
                ds.core.close()
        admin.dispose()
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    cleanup.run(main)
