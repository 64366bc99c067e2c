"""A person's data over time: each case's own data key, legal holds that stop erasure, and the log of erasures."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from pathway.store.tables.columns import ts


class CaseKeyRow(SQLModel, table=True):
    """The case's data key (``pathway.crypto.CaseKey``), wrapped by a master key (``master_key_id``). Erasure sets
    ``wrapped`` to NULL: every personal field and free text of the case is sealed under it, and so unreadable."""

    __tablename__ = "case_key"

    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", primary_key=True)
    master_key_id: str | None = Field(default=None, max_length=32, index=True)
    wrapped: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    created_at: datetime = ts()
    erased_at: datetime | None = ts(default=None)


class LegalHoldRow(SQLModel, table=True):
    """A legal hold on a case (a complaint, a court case, the supervisory authority's inquiry): while one is in force
    (``lifted_at`` NULL) the case is not erased. Set and lifted by an administrator, each with a reason sealed under
    the case's key."""

    __tablename__ = "legal_hold"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="pathway_case.id", index=True)
    set_at: datetime = ts()
    set_by: str = Field(max_length=200)
    reason: str = Field(sa_type=sa.Text)
    lifted_at: datetime | None = ts(default=None)
    lifted_by: str | None = Field(default=None, max_length=200)
    lift_reason: str | None = Field(default=None, sa_type=sa.Text)


class ErasureLogRow(SQLModel, table=True):
    """One erased case: its reference, when, under which rule. Nothing personal (an administrator reads it)."""

    __tablename__ = "erasure_log"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    reference: str = Field(max_length=32, index=True)
    unit: str = Field(max_length=64)
    closed_at: datetime = ts()
    erased_at: datetime = ts()
    rule: str = Field(max_length=200)  # e.g. "retention: 1826 days after closure (unit askoy)"
    erased_by: str = Field(max_length=200)  # the scheduler, or the administrator who ran it
