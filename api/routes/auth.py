"""Sign-in (OAuth2 password flow), personal API tokens, and who am I."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import AnyUser, Core
from pathway.accounts import LoginFailed, issue_personal_token, list_tokens, login, revoke_token

router = APIRouter(prefix="/api/v1", tags=["authentication"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")


class Me(BaseModel):
    username: str
    role: str
    unit: str | None
    agency: str | None
    language: str


class PersonalTokenIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["fagsystem-integrasjon"])]
    days: Annotated[int, Field(ge=1, le=365)] = 90


class PersonalTokenOut(BaseModel):
    id: uuid.UUID
    name: str | None
    token: str | None = Field(default=None, description="shown once, when created")
    created_at: datetime | None = None
    expires_at: datetime
    revoked_at: datetime | None = None


@router.post("/auth/token", response_model=TokenOut, summary="Sign in: a short-lived bearer token",
             openapi_extra={"x-public": True})
def token(core: Core, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    try:
        access, _, expires = login(core.engine, form.username, form.password)
    except LoginFailed:
        raise HTTPException(401, "wrong user name or password, or too many attempts: wait and try again",
                            headers={"WWW-Authenticate": "Bearer"}) from None
    return TokenOut(access_token=access, expires_in=int((expires - datetime.now(expires.tzinfo)).total_seconds()))


@router.get("/me", response_model=Me, summary="Who am I")
def me(user: AnyUser) -> Me:
    return Me(username=user.username, role=user.role, unit=user.unit, agency=user.agency, language=user.language)


@router.post("/auth/tokens", response_model=PersonalTokenOut, status_code=201,
             summary="Create a personal API token (for integrations)")
def create_token(core: Core, user: AnyUser, body: PersonalTokenIn) -> PersonalTokenOut:
    secret, token_id, expires = issue_personal_token(core.engine, user, name=body.name, days=body.days)
    return PersonalTokenOut(id=token_id, name=body.name, token=secret, expires_at=expires)


@router.get("/auth/tokens", response_model=list[PersonalTokenOut], summary="My personal API tokens")
def my_tokens(core: Core, user: AnyUser) -> list[PersonalTokenOut]:
    return [PersonalTokenOut(id=t.id, name=t.name, created_at=t.created_at, expires_at=t.expires_at,
                             revoked_at=t.revoked_at) for t in list_tokens(core.engine, user)]


@router.delete("/auth/tokens/{token_id}", status_code=204, summary="Revoke one of my personal API tokens")
def revoke(core: Core, user: AnyUser, token_id: uuid.UUID) -> None:
    if not revoke_token(core.engine, user, token_id):
        raise HTTPException(404, "no such active token of yours")
