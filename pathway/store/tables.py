"""SQLModel tables. Alembic migrations target ``SQLModel.metadata``.

Every timestamp is timezone-aware UTC (``UTCDateTime`` also makes SQLite give them back aware).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; naive values are refused, never guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw: Any) -> Any:
    return Field(sa_type=sa.JSON, **kw)


def _partial_index(name: str, *columns: str, where: str) -> sa.Index:
    """An index over the rows that match ``where``, the same on SQLite and PostgreSQL."""
    return sa.Index(name, *columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def _table(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model (SQLModel sets ``__table__`` without declaring it to type checkers)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


class PathwayDefinitionRow(SQLModel, table=True):
    """A registered definition version. Its source is kept so a case can always be replayed on its version."""

    __tablename__ = "pathway_definition"
    __table_args__ = (sa.UniqueConstraint("pathway_id", "version", name="uq_definition_version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    pathway_id: str = Field(max_length=64)
    version: int
    sha256: str = Field(max_length=64)
    source: str = Field(sa_type=sa.Text)
    registered_at: datetime = _ts()


class CaseRow(SQLModel, table=True):
    __tablename__ = "pathway_case"
    __table_args__ = (
        sa.Index("ix_case_unit_phase", "unit", "phase"),
        sa.Index("ix_case_unit_open_next_due", "unit", "closed_at", "next_due_at"),
        sa.Index("ix_case_coordinator", "coordinator"),
    )

    id: uuid.UUID = Field(primary_key=True)
    reference: str = Field(max_length=32, unique=True)
    pathway_id: str = Field(max_length=64)
    definition_version: int
    unit: str = Field(max_length=64)
    phase: str = Field(max_length=64)
    coordinator: str | None = Field(default=None, max_length=200)
    opened_at: datetime = _ts()
    paused_since: datetime | None = _ts(default=None)
    closed_at: datetime | None = _ts(default=None)
    outcome: str | None = Field(default=None, max_length=64)
    transferred_to: str | None = Field(default=None, max_length=2000)
    conditions: list[str] = _json(default_factory=list)
    milestones: dict[str, str] = _json(default_factory=dict)
    consents: dict[str, Any] = _json(default_factory=dict)
    repeat_contact: bool = False
    next_due_at: datetime | None = _ts(default=None)  # the earliest deadline of an open step, for lists
    version: int
    head_hash: str = Field(max_length=64)
    updated_at: datetime = _ts()


class StepRow(SQLModel, table=True):
    __tablename__ = "step"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "code", "occurrence", name="uq_step_occurrence"),
        # The scheduler's question: open steps by due time. Partial, so history never slows it down.
        _partial_index("ix_step_open_due", "due_at", where="ended_at IS NULL AND due_at IS NOT NULL"),
        # The reminder scan's question: which open steps have reached the next rung of their ladder.
        _partial_index("ix_step_next_reminder", "next_reminder_at",
                       where="ended_at IS NULL AND next_reminder_at IS NOT NULL"),
    )

    id: uuid.UUID = Field(primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", index=True)
    position: int  # order within the case, as the aggregate created it
    code: str = Field(max_length=32)
    occurrence: int
    owner: str = Field(max_length=64)
    state: str = Field(max_length=16)
    adhoc: bool = False
    title: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _ts()
    anchor_at: datetime | None = _ts(default=None)
    due_at: datetime | None = _ts(default=None)
    activated_at: datetime | None = _ts(default=None)
    ended_at: datetime | None = _ts(default=None)
    ended_by: str | None = Field(default=None, max_length=200)
    next_reminder_at: datetime | None = _ts(default=None)  # derived from the ladder; advanced by the scan


class HandoverRow(SQLModel, table=True):
    __tablename__ = "handover_task"
    __table_args__ = (sa.Index("ix_handover_agency_status", "agency", "status"),)

    id: uuid.UUID = Field(primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", index=True)
    position: int
    code: str = Field(max_length=32)
    agency: str = Field(max_length=64)
    scope: list[str] = _json(default_factory=list)
    basis: str = Field(max_length=32)
    status: str = Field(max_length=16)
    created_at: datetime = _ts()
    created_by: str = Field(max_length=200)
    due_at: datetime | None = _ts(default=None)
    updated_at: datetime = _ts()


class EventRow(SQLModel, table=True):
    """Append-only, hash-chained per case. (case_id, seq) as key: a second writer of the same seq fails."""

    __tablename__ = "case_event"
    __table_args__ = (
        # The timeliness report asks when each case was last resumed; pauses are rare, so the index is small and
        # the report never reads the whole event table for them.
        _partial_index("ix_event_resume", "case_id", "at", where="operation = 'resume'"),
    )

    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = _ts()
    actor: str = Field(max_length=200)
    operation: str = Field(max_length=32)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    payload: dict[str, Any] = _json(default_factory=dict)
    state_before: dict[str, Any] = _json(default_factory=dict)
    state_after: dict[str, Any] = _json(default_factory=dict)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class PersonRow(SQLModel, table=True):
    """The person behind a case, encrypted (AES-GCM, bound to the case id); found by a keyed blind index."""

    __tablename__ = "person"

    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", primary_key=True)
    key_id: str = Field(max_length=32, index=True)
    ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    name_index: str = Field(max_length=64, index=True)
    updated_at: datetime = _ts()


class ReferenceCounter(SQLModel, table=True):
    """The last number handed out per reference prefix and year (BGO-2026-0042): never derived from a person."""

    __tablename__ = "reference_counter"

    prefix: str = Field(primary_key=True, max_length=8)
    year: int = Field(primary_key=True)
    last: int = 0


class UserRow(SQLModel, table=True):
    """A person who works with Forløp (never a person the pathway is about)."""

    __tablename__ = "user_account"
    __table_args__ = (sa.Index("ix_user_role_unit", "role", "unit"), sa.Index("ix_user_agency", "agency"))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)  # coordinator, partner, manager, admin
    unit: str | None = Field(default=None, max_length=64)
    agency: str | None = Field(default=None, max_length=64)
    language: str = Field(default="nb", max_length=2)
    email: str | None = Field(default=None, max_length=320)
    webhook_url: str | None = Field(default=None, max_length=2000)
    active: bool = True
    created_at: datetime = _ts()
    password_hash: str | None = Field(default=None, max_length=200)
    failed_logins: int = 0
    locked_until: datetime | None = _ts(default=None)


class ReminderRow(SQLModel, table=True):
    """A rung of a step's ladder that was reached. Unique per (step, rung, deadline): raised once, also when
    several schedulers scan at the same time; a moved deadline (pause, re-planning) starts a fresh ladder."""

    __tablename__ = "reminder"
    __table_args__ = (
        sa.UniqueConstraint("step_id", "rung", "due_at", name="uq_reminder_step_rung_due"),
        # Reminders not yet routed to their recipients' inbox and outbox (the routing job's question).
        _partial_index("ix_reminder_unrouted", "raised_at", where="routed_at IS NULL"),
    )

    id: uuid.UUID = Field(primary_key=True)
    step_id: uuid.UUID = Field(foreign_key="step.id")
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", index=True)
    rung: int
    kind: str = Field(max_length=32)
    recipient: str = Field(default="owner", max_length=16)  # owner, coordinator or manager
    due_at: datetime = _ts()
    raised_at: datetime = _ts()
    routed_at: datetime | None = _ts(default=None)


class NotificationRow(SQLModel, table=True):
    """The in-app inbox: one row per recipient of a reminder, written in the scan's own transaction."""

    __tablename__ = "notification"
    __table_args__ = (
        sa.UniqueConstraint("reminder_id", "username", name="uq_notification_reminder_user"),
        sa.Index("ix_notification_user_unread", "username", "read_at", "created_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    reminder_id: uuid.UUID = Field(foreign_key="reminder.id")
    username: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    case_reference: str | None = Field(default=None, max_length=32)
    step_code: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=64)
    due_at: datetime = _ts()
    link: str = Field(max_length=2000)
    created_at: datetime = _ts()
    read_at: datetime | None = _ts(default=None)


class OutboxRow(SQLModel, table=True):
    """A message to deliver outside the app (email, webhook). Its id is the idempotency key receivers see."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("reminder_id", "username", "channel", name="uq_outbox_reminder_user_channel"),
        _partial_index("ix_outbox_ready", "next_attempt_at", where="status IN ('pending', 'sending')"),
        sa.Index("ix_outbox_status", "status"),
    )

    id: uuid.UUID = Field(primary_key=True)
    reminder_id: uuid.UUID = Field(foreign_key="reminder.id")
    username: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    payload: dict[str, Any] = _json(default_factory=dict)
    status: str = Field(max_length=16)  # pending, sending, sent, dead
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    locked_until: datetime | None = _ts(default=None)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts()
    sent_at: datetime | None = _ts(default=None)


class ApiTokenRow(SQLModel, table=True):
    """Bearer tokens: short-lived sessions from the password flow, and personal tokens for integrations.
    Only a SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(max_length=16)  # session (API), web (browser cookie), personal
    name: str | None = Field(default=None, max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    revoked_at: datetime | None = _ts(default=None)
    last_used_at: datetime | None = _ts(default=None)


class AccessLogRow(SQLModel, table=True):
    """Every read and write of case data: who, when, which case, what, from where (Normen fact sheets 14, 15)."""

    __tablename__ = "access_log"
    __table_args__ = (
        sa.Index("ix_access_case_at", "case_reference", "at"),
        sa.Index("ix_access_user_at", "username", "at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    at: datetime = _ts()
    username: str = Field(max_length=64)
    role: str = Field(max_length=16)
    action: str = Field(max_length=64)  # e.g. case.read, case.complete, task.read, audit.read
    case_reference: str | None = Field(default=None, max_length=32)
    task_id: uuid.UUID | None = None
    client: str | None = Field(default=None, max_length=64)  # address of the client
    status: int = 200
    break_glass: bool = False
    reason: str | None = Field(default=None, max_length=2000)


class BreakGlassRow(SQLModel, table=True):
    """Emergency access of a coordinator to a case outside their unit: with a reason, for a limited time."""

    __tablename__ = "break_glass"
    __table_args__ = (sa.Index("ix_break_glass_user_case", "username", "case_id"),)

    id: uuid.UUID = Field(primary_key=True)
    username: str = Field(max_length=64)
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id")
    reason: str = Field(max_length=2000)
    granted_at: datetime = _ts()
    expires_at: datetime = _ts()


class IdempotencyRow(SQLModel, table=True):
    """The answer to a POST with an Idempotency-Key, so that a retried request is not applied twice."""

    __tablename__ = "idempotency"

    username: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=200)
    method: str = Field(max_length=8)
    path: str = Field(max_length=500)
    fingerprint: str = Field(max_length=64)  # of the request body: the same key with another body is refused
    status: int
    body: dict[str, Any] | list[Any] | None = _json(default=None)
    created_at: datetime = _ts()


class ReportSnapshotRow(SQLModel, table=True):
    """A timeliness report computed in the background (``pathway.store.snapshots``), so that managers get the
    default report without waiting for the national breakdown. Aggregates only, already suppressed."""

    __tablename__ = "report_snapshot"

    period: str = Field(primary_key=True, max_length=8)  # month or tertial
    period_start: date = Field(primary_key=True)
    period_end: date = Field(primary_key=True)
    unit: str = Field(primary_key=True, max_length=64)  # "*": all units together
    computed_at: datetime = _ts()
    report: dict[str, Any] = _json()


# The coordinators' list sorts open cases of a unit by next deadline, cases without one last. Its index is an
# expression index written by hand in migration 0005 (dialect-specific literal); the query must use FAR_DUE_SQL.
FAR_DUE_SQL = {"postgresql": "'9999-12-31 00:00:00+00'::timestamptz", "sqlite": "'9999-12-31 00:00:00.000000'"}

definition_t = _table(PathwayDefinitionRow)
case_t = _table(CaseRow)
step_t = _table(StepRow)
handover_t = _table(HandoverRow)
event_t = _table(EventRow)
person_t = _table(PersonRow)
counter_t = _table(ReferenceCounter)
user_t = _table(UserRow)
reminder_t = _table(ReminderRow)
notification_t = _table(NotificationRow)
outbox_t = _table(OutboxRow)
token_t = _table(ApiTokenRow)
access_t = _table(AccessLogRow)
break_glass_t = _table(BreakGlassRow)
idempotency_t = _table(IdempotencyRow)
snapshot_t = _table(ReportSnapshotRow)
