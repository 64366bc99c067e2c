"""Reminders raised by the scan, and what they become: inbox notifications and outbox messages."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from pathway.store.tables.columns import json, partial_index, ts



class ReminderRow(SQLModel, table=True):
    """A rung of a step's ladder that was reached. Unique per (step, rung, deadline): raised once, also when
    several schedulers scan at the same time; a moved deadline (pause, re-planning) starts a fresh ladder."""

    __tablename__ = "reminder"
    __table_args__ = (
        sa.UniqueConstraint("step_id", "rung", "due_at", name="uq_reminder_step_rung_due"),
        # Reminders not yet routed to their recipients' inbox and outbox (the routing job's question).
        partial_index("ix_reminder_unrouted", "raised_at", where="routed_at IS NULL"),
    )

    id: uuid.UUID = Field(primary_key=True)
    step_id: uuid.UUID = Field(foreign_key="step.id")
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", index=True)
    rung: int
    kind: str = Field(max_length=32)
    recipient: str = Field(default="owner", max_length=16)  # owner, coordinator or manager
    due_at: datetime = ts()
    raised_at: datetime = ts()
    routed_at: datetime | None = ts(default=None)


class NotificationRow(SQLModel, table=True):
    """The in-app inbox: one row per recipient of a reminder, written in the scan's own transaction."""

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint("reminder_id", "username", name="uq_notification_reminder_user"),
        sa.Index("ix_notification_user_unread", "username", "read_at", "created_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    # None for a notice that is no reminder (an emergency access to a unit's case)
    reminder_id: uuid.UUID | None = Field(default=None, foreign_key="reminder.id")
    username: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    case_reference: str | None = Field(default=None, max_length=32)
    step_code: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=64)
    due_at: datetime = ts()
    link: str = Field(max_length=2000)
    created_at: datetime = ts()
    read_at: datetime | None = ts(default=None)
    # The daily digest's total and counts per checkpoint, small ones already folded (notifications.notices.inbox_digest):
    # the inbox is the only channel that names checkpoints. None for every other notification.
    digest: dict[str, Any] | None = json(default=None, nullable=True)


class OutboxRow(SQLModel, table=True):
    """A message to deliver outside the app (email, webhook). Its id is the idempotency key receivers see."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("reminder_id", "username", "channel", name="uq_outbox_reminder_user_channel"),
        partial_index("ix_outbox_ready", "next_attempt_at", where="status IN ('pending', 'sending')"),
        sa.Index("ix_outbox_status", "status"),
    )

    id: uuid.UUID = Field(primary_key=True)
    reminder_id: uuid.UUID | None = Field(default=None, foreign_key="reminder.id")  # None: a notice, as above
    username: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    payload: dict[str, Any] = json(default_factory=dict)
    status: str = Field(max_length=16)  # pending, sending, sent, dead
    attempts: int = 0
    next_attempt_at: datetime = ts()
    locked_until: datetime | None = ts(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = ts()
    sent_at: datetime | None = ts(default=None)


class OverdueDigestRow(SQLModel, table=True):
    """A working day whose digest of overdue steps was made (for every unit at once, in one transaction). The day is
    the key: the scheduler that inserts it first writes the digests, any other (or a restart) finds it and sends none,
    so each unit hears at most once a working day."""

    __tablename__ = "overdue_digest"

    day: date = Field(primary_key=True)  # the Europe/Oslo date
    made_at: datetime = ts()
    units: int = 0  # how many units got one
    steps: int = 0  # the steps past their manager rung, in all units
