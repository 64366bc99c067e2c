"""The append-only event: one per operation, hash-chained to the one before."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pathway.case.values import iso

GENESIS = "0" * 64


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
