"""The cases: definitions registered, cases, their steps, handover tasks, events, person records, references."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from pathway.store.tables.columns import json, partial_index, ts



class PathwayDefinitionRow(SQLModel, table=True):
    """A registered definition version. Its source is kept so a case can always be replayed on its version."""

    __tablename__ = "pathway_definition"
    __table_args__ = (sa.UniqueConstraint("pathway_id", "version", name="uq_definition_version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    pathway_id: str = Field(max_length=64)
    version: int
    sha256: str = Field(max_length=64)
    source: str = Field(sa_type=sa.Text)
    registered_at: datetime = ts()


class CaseRow(SQLModel, table=True):
    __tablename__ = "pathway_case"
    __table_args__ = (
        sa.Index("ix_case_unit_phase", "unit", "phase"),
        sa.Index("ix_case_unit_open_next_due", "unit", "closed_at", "next_due_at"),
        sa.Index("ix_case_coordinator", "coordinator"),
        sa.Index("ix_pathway_case_parent_id", "parent_id"),
        sa.ForeignKeyConstraint(["parent_id"], ["pathway_case.id"], name="fk_pathway_case_parent"),
    )

    id: uuid.UUID = Field(primary_key=True)
    reference: str = Field(max_length=32, unique=True)
    # A child's pathway is a case of its own, part of the adult's: the adult's case (NULL: an adult's pathway).
    parent_id: uuid.UUID | None = Field(default=None)
    pathway_id: str = Field(max_length=64)
    definition_version: int
    unit: str = Field(max_length=64)
    phase: str = Field(max_length=64)
    coordinator: str | None = Field(default=None, max_length=200)
    opened_at: datetime = ts()
    paused_since: datetime | None = ts(default=None)
    paused_time: str | None = Field(default=None, max_length=16)  # the pause's rule ("working"; NULL: calendar time)
    closed_at: datetime | None = ts(default=None)
    outcome: str | None = Field(default=None, max_length=64)
    transferred_to: str | None = Field(default=None, max_length=2000)
    risk: str | None = Field(default=None, max_length=16)  # the latest threat assessment's level
    conditions: list[str] = json(default_factory=list)
    milestones: dict[str, str] = json(default_factory=dict)
    consents: dict[str, Any] = json(default_factory=dict)
    repeat_contact: bool = False
    next_due_at: datetime | None = ts(default=None)  # the earliest deadline of an open step, for lists
    version: int
    head_hash: str = Field(max_length=64)
    # "<version>:<digest>": the state digest of the event at that version (its state_after), so that the next event
    # computes one digest, not two. Used only while its version is the case's: a writer that did not keep it (a case
    # written before 0018, or by an older release during an upgrade) leaves it behind, and the next event computes it.
    head_digest: str | None = Field(default=None, max_length=80)
    updated_at: datetime = ts()


class StepRow(SQLModel, table=True):
    __tablename__ = "step"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "code", "occurrence", name="uq_step_occurrence"),
        # The scheduler's question: open steps by due time. Partial, so history never slows it down.
        partial_index("ix_step_open_due", "due_at", where="ended_at IS NULL AND due_at IS NOT NULL"),
        # The reminder scan's question: which open steps have reached the next rung of their ladder.
        partial_index("ix_step_next_reminder", "next_reminder_at",
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
    created_at: datetime = ts()
    anchor_at: datetime | None = ts(default=None)
    due_at: datetime | None = ts(default=None)
    activated_at: datetime | None = ts(default=None)
    ended_at: datetime | None = ts(default=None)
    ended_by: str | None = Field(default=None, max_length=200)
    next_reminder_at: datetime | None = ts(default=None)  # derived from the ladder; advanced by the scan


class HandoverRow(SQLModel, table=True):
    __tablename__ = "handover_task"
    __table_args__ = (sa.Index("ix_handover_agency_status", "agency", "status"),)

    id: uuid.UUID = Field(primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", index=True)
    position: int
    code: str = Field(max_length=32)
    agency: str = Field(max_length=64)
    scope: list[str] = json(default_factory=list)
    basis: str = Field(max_length=32)
    status: str = Field(max_length=16)
    created_at: datetime = ts()
    created_by: str = Field(max_length=200)
    due_at: datetime | None = ts(default=None)
    updated_at: datetime = ts()
    note: str | None = Field(default=None, sa_type=sa.Text)  # the coordinator's note to the agency
    urgency: str | None = Field(default=None, max_length=16)  # the threat level when it was sent
    updated_by: str | None = Field(default=None, max_length=200)  # who last answered it
    reply: str | None = Field(default=None, sa_type=sa.Text)  # the agency's reason (declined) or note (completed)


class EventRow(SQLModel, table=True):
    """Append-only, hash-chained per case. (case_id, seq) as key: a second writer of the same seq fails."""

    __tablename__ = "case_event"
    __table_args__ = (
        # The timeliness report asks when each case was last resumed; pauses are rare, so the index is small and
        # the report never reads the whole event table for them.
        partial_index("ix_event_resume", "case_id", "at", where="operation = 'resume'"),
    )

    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = ts()
    actor: str = Field(max_length=200)
    channel: str | None = Field(default=None, max_length=16)  # api, web, cli, scheduler (None before revision 0008)
    operation: str = Field(max_length=32)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    payload: dict[str, Any] = json(default_factory=dict)
    state_before: dict[str, Any] = json(default_factory=dict)
    state_after: dict[str, Any] = json(default_factory=dict)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class PersonRow(SQLModel, table=True):
    """The person behind a case, encrypted (AES-GCM, bound to the case id); found by a keyed blind index."""

    __tablename__ = "person"

    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", primary_key=True)
    key_id: str = Field(max_length=32, index=True)
    ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    name_index: str = Field(max_length=64, index=True)
    updated_at: datetime = ts()


class ChildRecordRow(SQLModel, table=True):
    """The child of a child's pathway (first name, birth year, school or kindergarten), encrypted like the person
    record (AES-GCM, bound to the child's case id). No blind index: a child is never searched for by name."""

    __tablename__ = "child_record"

    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", primary_key=True)
    key_id: str = Field(max_length=32, index=True)
    ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    updated_at: datetime = ts()


class ReferenceCounter(SQLModel, table=True):
    """The last number handed out per reference prefix and year (BGO-2026-0042): never derived from a person."""

    __tablename__ = "reference_counter"

    prefix: str = Field(primary_key=True, max_length=8)
    year: int = Field(primary_key=True)
    last: int = 0


# The coordinators' list sorts open cases of a unit by next deadline, cases without one last. Its index is an
# expression index written by hand in migration 0005 (dialect-specific literal); the query must use FAR_DUE_SQL.
FAR_DUE_SQL = {"postgresql": "'9999-12-31 00:00:00+00'::timestamptz", "sqlite": "'9999-12-31 00:00:00.000000'"}
