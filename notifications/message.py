"""What a notification says. Deliberately thin: no name, address, birth date or case content, ever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# manager_escalation: one per step, as managers were told before the daily digest (overdue_digest); kept so that such
# messages still in an outbox are delivered.
Kind = Literal["due_soon", "due_now", "overdue", "escalation", "manager_escalation", "handover_unaccepted",
               "break_glass", "handover_declined", "overdue_digest", "referral_received", "referral_declined"]
KINDS: tuple[str, ...] = ("due_soon", "due_now", "overdue", "escalation", "manager_escalation", "handover_unaccepted",
                          "break_glass", "handover_declined", "overdue_digest", "referral_received",
                          "referral_declined")
# Messages to managers: aggregated figures only, never a case reference.
AGGREGATED: frozenset[str] = frozenset({"manager_escalation", "overdue_digest"})
# As in the managers' report, a count from 1 to SMALL - 1 is never told: it reads "fewer than 5".
SMALL = 5


def shown_count(count: int | None) -> int | None:
    """``count`` as it may be told: None for 1 to 4 (and for None), which a text writes as "fewer than 5"."""
    return None if count is None or 0 < count < SMALL else count


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
    # manager messages: how many steps this concerns; the digest: None for 1 to 4 ("fewer than 5", shown_count)
    count: int | None = 1
    unit_name: str | None = None  # the digest: the unit's display name (FORLOP_UNIT_NAMES), if it has one
    # break_glass: the user name of the staff member who took emergency access (never the reason they gave)
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
