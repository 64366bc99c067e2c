"""The people who work with Forløp, their tokens, the access log, emergency grants, idempotent answers, report
snapshots."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from pathway.store.tables.columns import json, ts



class UserRow(SQLModel, table=True):
    """A person who works with Forløp (never a person the pathway is about)."""

    __tablename__ = "user_account"
    __table_args__ = (sa.Index("ix_user_role_unit", "role", "unit"), sa.Index("ix_user_agency", "agency"),
                      sa.Index("ux_user_idp_subject", "idp_issuer", "idp_subject", unique=True))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)  # coordinator, partner, manager, admin
    unit: str | None = Field(default=None, max_length=64)
    agency: str | None = Field(default=None, max_length=64)
    language: str = Field(default="nb", max_length=2)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)  # a work phone partners may call (coordinators')
    webhook_url: str | None = Field(default=None, max_length=2000)
    active: bool = True
    created_at: datetime = ts()
    password_hash: str | None = Field(default=None, max_length=200)
    failed_logins: int = 0
    locked_until: datetime | None = ts(default=None)
    # An account made by signing in through an identity provider: which one (its name in the configuration), and
    # the issuer and subject that identify the person there (OpenID Connect Core 5.7: only the two together).
    idp: str | None = Field(default=None, max_length=32)
    idp_issuer: str | None = Field(default=None, max_length=500)
    idp_subject: str | None = Field(default=None, max_length=255)


class OidcLoginRow(SQLModel, table=True):
    """A sign-in begun at an identity provider and not yet come back: found by a hash of its ``state`` and deleted
    as it is used, so a state works once."""

    __tablename__ = "oidc_login"

    state_hash: str = Field(primary_key=True, max_length=64)
    provider: str = Field(max_length=32)
    nonce: str = Field(max_length=128)
    code_verifier: str = Field(max_length=128)
    next_path: str = Field(max_length=500)
    created_at: datetime = ts(index=True)


class ApiTokenRow(SQLModel, table=True):
    """Bearer tokens: short-lived sessions from the password flow, and personal tokens for integrations.
    Only a SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(max_length=16)  # session (API), web (browser cookie), personal
    name: str | None = Field(default=None, max_length=100)
    # The token that minted this one (a personal token is created from a password sign-in's session): revoking a
    # token revokes every token it minted.
    parent_id: uuid.UUID | None = Field(default=None, index=True)
    # What a personal token may do (read, write, tasks); None for sessions, which may do what their user may.
    scopes: list[str] | None = json(default=None)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = ts()
    expires_at: datetime = ts()
    revoked_at: datetime | None = ts(default=None)
    last_used_at: datetime | None = ts(default=None)


class AccessLogRow(SQLModel, table=True):
    """Every read and write of case data: who, when, which case, what, from where (Normen fact sheets 14, 15)."""

    __tablename__ = "access_log"
    __table_args__ = (
        sa.Index("ix_access_case_at", "case_reference", "at"),
        sa.Index("ix_access_user_at", "username", "at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    at: datetime = ts()
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
    granted_at: datetime = ts()
    expires_at: datetime = ts()
    # Read-only unless a write was asked for with its own stated reason.
    write_reason: str | None = Field(default=None, max_length=2000)
    ended_at: datetime | None = ts(default=None)  # ended early (by its holder or the owning unit)
    ended_by: str | None = Field(default=None, max_length=64)


class RateLimitRow(SQLModel, table=True):
    """Attempts counted per key (a client address or an account name) in a fixed window, shared by every process."""

    __tablename__ = "rate_limit"

    key: str = Field(primary_key=True, max_length=200)  # e.g. "token:client:10.0.0.7", "token:user:koordinator"
    window_start: datetime = ts()
    count: int = 0


class IdempotencyRow(SQLModel, table=True):
    """The answer to a POST with an Idempotency-Key, so that a retried request is not applied twice."""

    __tablename__ = "idempotency"

    username: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=200)
    method: str = Field(max_length=8)
    path: str = Field(max_length=500)
    fingerprint: str = Field(max_length=64)  # of the request body: the same key with another body is refused
    status: int
    body: dict[str, Any] | list[Any] | None = json(default=None)
    created_at: datetime = ts()


class ReportSnapshotRow(SQLModel, table=True):
    """A timeliness report computed in the background (``pathway.metrics.snapshots``), so that managers get the
    default report without waiting for the national breakdown. Aggregates only, already suppressed."""

    __tablename__ = "report_snapshot"

    period: str = Field(primary_key=True, max_length=8)  # month or tertial
    period_start: date = Field(primary_key=True)
    period_end: date = Field(primary_key=True)
    unit: str = Field(primary_key=True, max_length=64)  # "*": all units together
    computed_at: datetime = ts()
    report: dict[str, Any] = json()
