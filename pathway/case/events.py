"""The append-only event: one per operation, hash-chained to the one before."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pathway.case.values import iso

GENESIS = "0" * 64

# The payload fields that hold free text (an added step's title, a note to an agency or on a step, a transfer's
# target): sealed under the case's key with the event's reason, before the event is hashed.
FREE_TEXT = ("title", "note", "municipality")


class Sealer(Protocol):
    """Seals a case's free text under its own key (``pathway.crypto.CaseKey``): deterministic, so that replay seals
    the same text to the same token and reproduces each event's hash."""

    def seal(self, text: str) -> str: ...

    def open(self, token: str) -> str: ...


class Singleton:
    """A sealer without state, compared by identity (``is PLAIN``): a copied case (``Case.refusal`` tries a command on
    a deep copy) must keep the very same one."""

    def __copy__(self) -> Singleton:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Singleton:
        return self


class Plain(Singleton):
    """No sealing: a case opened before case keys existed (its texts stay as they were written), and unit tests."""

    def seal(self, text: str) -> str:
        return text

    def open(self, token: str) -> str:
        return token


PLAIN = Plain()


def seal_texts(sealer: Sealer, reason: str | None, payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The event's reason and payload as stored and hashed: its free text sealed."""
    if sealer is PLAIN:
        return reason, payload
    sealed = {k: sealer.seal(v) if k in FREE_TEXT and isinstance(v, str) else v for k, v in payload.items()}
    return (sealer.seal(reason) if reason is not None else None), sealed


def open_texts(sealer: Sealer, event: Event) -> Event:
    """The event with its free text readable (replay and display); ``sealer.open`` decides what an erased case shows."""
    if sealer is PLAIN:
        return event
    payload = {k: sealer.open(v) if k in FREE_TEXT and isinstance(v, str) else v for k, v in event.payload.items()}
    reason = sealer.open(event.reason) if event.reason is not None else None
    return Event(event.case_id, event.seq, event.at, event.actor, event.operation, reason, payload, event.state_before,
                 event.state_after, event.prev_hash, event.hash, event.channel)


@dataclass(frozen=True, slots=True)
class Event:
    """An append-only record of one operation: who, when, what, why, and the state before and after."""

    case_id: uuid.UUID
    seq: int
    at: datetime
    actor: str
    operation: str
    reason: str | None
    payload: dict[str, Any]
    state_before: dict[str, Any]
    state_after: dict[str, Any]
    prev_hash: str
    hash: str
    channel: str | None = None  # api, web, cli, scheduler; None on events from before channels were recorded

    def body(self) -> dict[str, Any]:
        """What the hash covers: the channel only where one was recorded, so older events keep their hashes."""
        return ({"channel": self.channel} if self.channel is not None else {}) | {
            "case_id": str(self.case_id),
            "seq": self.seq,
            "at": iso(self.at),
            "actor": self.actor,
            "operation": self.operation,
            "reason": self.reason,
            "payload": self.payload,
            "state_before": self.state_before,
            "state_after": self.state_after,
        }


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(body)).hexdigest()
