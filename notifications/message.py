"""What a notification says. Deliberately thin: no name, address, birth date or case content, ever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# manager_escalation: one per step, as managers were told before the daily digest (overdue_digest); kept so that such
# messages still in an outbox are delivered.
Kind = Literal["due_soon", "due_now", "overdue", "escalation", "manager_escalation", "handover_unaccepted",
               "break_glass", "handover_declined", "overdue_digest"]
KINDS: tuple[str, ...] = ("due_soon", "due_now", "overdue", "escalation", "manager_escalation", "handover_unaccepted",
                          "break_glass", "handover_declined", "overdue_digest")
# Messages to managers: aggregated figures only, never a case reference.
AGGREGATED: frozenset[str] = frozenset({"manager_escalation", "overdue_digest"})


@dataclass(frozen=True, slots=True)
class CheckpointLine:
    """One line of the digest: a checkpoint (None: steps added ad hoc), its name in the message's language, a count."""

    code: str | None
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one recipient. ``idempotency_key`` is stable across retries of the same message."""

    idempotency_key: str
    kind: Kind
    language: Literal["nb", "en"]
    recipient: str  # user name
    due_at: datetime  # aware UTC; templates show it in Europe/Oslo
    link: str  # absolute URL of the case page (or the report, for managers)
    case_reference: str | None = None  # pseudonymous (BGO-2026-0042); None in manager messages
    step_code: str | None = None  # e.g. K6; never the step's free-text title
    unit: str | None = None
    count: int = 1  # manager messages: how many steps this concerns
    checkpoints: tuple[CheckpointLine, ...] = ()  # the digest: how many per checkpoint
    # break_glass: the user name of the staff member who took emergency access (never the reason they gave)
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
