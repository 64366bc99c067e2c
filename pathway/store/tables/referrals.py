"""Police referrals ("henvisninger"): a police contact asks a unit to contact a person, and a coordinator of the unit
accepts it (which opens a case) or declines it with a reason that goes back to the police.

The person's name, phone and what happened are one AES-GCM blob bound to the referral's id (``pathway.crypto``), as
the person record is bound to its case; everything else is plain, so that the queue and the police's status list are
read without decrypting anything."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from pathway.store.tables.columns import ts


class ReferralRow(SQLModel, table=True):
    """One referral. ``case_id`` (the case its acceptance opened) is never shown to the police."""

    __tablename__ = "referral"
    __table_args__ = (
        sa.Index("ix_referral_unit_status", "unit", "status", "received_at"),
        sa.Index("ix_referral_sent_by", "sent_by", "received_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    unit: str = Field(max_length=64)
    agency: str = Field(max_length=64)
    sent_by: str = Field(max_length=64)
    received_at: datetime = ts()
    status: str = Field(max_length=16)  # received, accepted, declined
    risk: str = Field(max_length=16)  # a RISK_LEVELS value
    contact_agreed: bool
    key_id: str | None = Field(default=None, max_length=32)  # NULL: erased with its case (retention)
    ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)  # name, phone and what happened, bound to the id
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = ts(default=None)
    decline_reason: str | None = Field(default=None, max_length=2000)  # goes back to the police: no case content
    case_id: uuid.UUID | None = Field(default=None, foreign_key="pathway_case.id")
    version: int = 1
