"""Calendar feeds: a coordinator's secret, revocable address of their deadlines as iCalendar
(``/calendar/{token}.ics``). Only a SHA-256 of the token is stored, as for ``api_token``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from pathway.store.tables.columns import ts


class CalendarFeedRow(SQLModel, table=True):
    """One feed address of one user; it answers while it is not revoked and its user is active."""

    __tablename__ = "calendar_feed"

    id: uuid.UUID = Field(primary_key=True)
    username: str = Field(max_length=64, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = ts()
    revoked_at: datetime | None = ts(default=None)
