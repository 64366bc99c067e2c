"""Rebuilding a case from its events: each event becomes its command again and runs on the case."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pathway.case.aggregate import Case
from pathway.case.commands import COMMANDS, Resolver
from pathway.case.events import PLAIN, Event, Sealer, event_hash, open_texts
from pathway.case.values import parse_iso
from pathway.errors import DomainError


def replay(events: Iterable[Event | dict[str, Any]], resolve: Resolver, sealer: Sealer = PLAIN) -> Case:
    """Rebuild a case from its events by running each command again; checks every state digest on the way.
    ``sealer``: the case's key (its events hold their free text sealed; the commands take it readable)."""
    case: Case | None = None
    for raw in events:
        e = raw if isinstance(raw, Event) else Event(**raw)
        readable = open_texts(sealer, e)
        if case is None:
            case = _opened(readable, resolve, sealer)
        elif e.operation in COMMANDS:
            case.execute(COMMANDS[e.operation].from_event(readable), actor=e.actor, at=e.at, resolve=resolve,
                         channel=e.channel)
        else:
            raise DomainError(f"event {e.seq}: unknown operation '{e.operation}'")
        produced = case.new_events[-1]
        if produced.hash != e.hash:
            raise DomainError(f"event {e.seq} ({e.operation}): replay does not reproduce the recorded state")
        # The recorded event must also hash to its own hash and link to the one before (its stored
        # state_before/state_after, seq and prev_hash are not inputs to the operation, so check them here).
        if e.prev_hash != produced.prev_hash or event_hash(e.prev_hash, e.body()) != e.hash:
            raise DomainError(f"event {e.seq} ({e.operation}): the recorded event does not match its hash")
    if case is None:
        raise DomainError("no events to replay")
    case.new_events.clear()
    return case


def _opened(e: Event, resolve: Resolver, sealer: Sealer) -> Case:
    if e.operation != "open":
        raise DomainError(f"event {e.seq}: a case's first event must be 'open'")
    p = e.payload
    first_contact_at = parse_iso(p["first_contact_at"])
    assert first_contact_at is not None
    return Case.open(resolve(p["pathway"], p["version"]), case_id=e.case_id, reference=p["reference"], unit=p["unit"],
                     first_contact_at=first_contact_at, actor=e.actor, at=e.at, conditions=p["conditions"],
                     reason=e.reason, channel=e.channel, contact_channel=p.get("contact_channel"),
                     part_of=uuid.UUID(p["part_of"]) if "part_of" in p else None, sealer=sealer)
