"""Sign-in (OAuth2 password flow, limited per client and per account name), personal API tokens with scopes, signing
out, and who am I."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import AnyUser, Core, CurrentGrant, client_address
from api.problems import DOCUMENTED, problem
from pathway.accounts import (
    DEFAULT_SCOPES,
    LoginFailed,
    LoginLimits,
    PasswordsOff,
    TokenNotAllowed,
    Scope,
    TooManyAttempts,
    bearer,
    issue_personal_token,
    list_tokens,
    login,
    revoke_token,
)

router = APIRouter(prefix="/api/v1", tags=["authentication"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")
    token_id: uuid.UUID = Field(description="to sign out: DELETE /api/v1/auth/tokens/{token_id}")


class Me(BaseModel):
    username: str
    role: str
    unit: str | None
    agency: str | None
    language: str
    token_id: uuid.UUID = Field(description="the bearer token used (DELETE /api/v1/auth/tokens/{token_id} ends it)")
    token_kind: str = Field(description="session (a password sign-in), personal, or provider (an identity "
                            "provider's access token)")
    scopes: list[str] | None = Field(description="a personal or provider token's scopes; null for a session")


class PersonalTokenIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["fagsystem-integrasjon"])]
    days: Annotated[int | None, Field(ge=1, le=365, description="how long it lives; at most, and by default, "
                                                                "FORLOP_PERSONAL_TOKEN_MAX_DAYS (90)")] = None
    scopes: Annotated[list[Scope] | None, Field(
        min_length=1, max_length=3, description="read: reads; write: changes to cases and users; tasks: a partner "
                                                f"agency's task routes. Default: {', '.join(DEFAULT_SCOPES)}")] = None


class PersonalTokenOut(BaseModel):
    id: uuid.UUID
    name: str | None
    token: str | None = Field(default=None, description="shown once, when created")
    scopes: list[str] | None = None
    created_at: datetime | None = None
    expires_at: datetime
    revoked_at: datetime | None = None


@router.post("/auth/token", response_model=TokenOut, summary="Sign in: a short-lived bearer token",
             openapi_extra={"x-public": True},
             responses={429: {**DOCUMENTED["4XX"], "description": "Too many sign-in attempts from this client or for "
                              "this user name (the token endpoint and the sign-in page together): try again after "
                              "Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}}})
def token(request: Request, core: Core,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut | JSONResponse:
    try:
        access, _, expires = login(core.engine, form.username, form.password, client=client_address(request),
                                   limits=LoginLimits.of(core.settings))
    except TooManyAttempts as exc:
        return problem(429, f"too many sign-in attempts: try again in {exc.retry_after} seconds",
                       instance=request.url.path, type="/problems/too-many-attempts",
                       headers={"Retry-After": str(exc.retry_after)}, retry_after=exc.retry_after)
    except PasswordsOff:
        raise HTTPException(403, "password sign-in is turned off here: use the identity provider") from None
    except LoginFailed:
        raise HTTPException(401, "wrong user name or password, or too many attempts: wait and try again",
                            headers={"WWW-Authenticate": "Bearer"}) from None
    grant = bearer(core.engine, access)  # its id (not a secret: only the token itself signs in), to sign out with
    if grant is None:  # the account was deactivated in the meantime
        raise HTTPException(401, "sign in first: a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return TokenOut(access_token=access, expires_in=int((expires - datetime.now(expires.tzinfo)).total_seconds()),
                    token_id=grant.token_id)


@router.get("/me", response_model=Me, summary="Who am I, and with which token")
def me(user: AnyUser, grant: CurrentGrant) -> Me:
    return Me(username=user.username, role=user.role, unit=user.unit, agency=user.agency, language=user.language,
              token_id=grant.token_id, token_kind=grant.kind,
              scopes=sorted(grant.scopes) if grant.kind in ("personal", "provider") else None)


@router.post("/auth/tokens", response_model=PersonalTokenOut, status_code=201,
             summary="Create a personal API token (for integrations), from a password sign-in's session only",
             description="Lives at most FORLOP_PERSONAL_TOKEN_MAX_DAYS (default 90) days, may do what its scopes say, "
                         "and is revoked with the session that created it (signing out revokes it too). A personal "
                         "token cannot create tokens.")
def create_token(core: Core, user: AnyUser, grant: CurrentGrant, body: PersonalTokenIn) -> PersonalTokenOut:
    try:
        secret, token_id, expires, scopes = issue_personal_token(
            core.engine, grant, name=body.name, days=body.days, scopes=body.scopes,
            max_days=core.settings.personal_token_max_days)
    except TokenNotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    return PersonalTokenOut(id=token_id, name=body.name, token=secret, scopes=scopes, expires_at=expires)


@router.get("/auth/tokens", response_model=list[PersonalTokenOut], summary="My personal API tokens")
def my_tokens(core: Core, user: AnyUser) -> list[PersonalTokenOut]:
    return [PersonalTokenOut(id=t.id, name=t.name, scopes=t.scopes, created_at=t.created_at, expires_at=t.expires_at,
                             revoked_at=t.revoked_at) for t in list_tokens(core.engine, user)]


@router.delete("/auth/tokens/{token_id}", status_code=204,
               summary="Revoke one of my tokens, and every token it created; sign out with the session's own id",
               description="The id of a personal token (GET /api/v1/auth/tokens), or of a session (from "
                           "POST /api/v1/auth/token, or GET /api/v1/me): revoking a session signs it out and revokes "
                           "the personal tokens it created.")
def revoke(core: Core, user: AnyUser, token_id: uuid.UUID) -> None:
    if not revoke_token(core.engine, user, token_id):
        raise HTTPException(404, "no such active token of yours")
