"""FastAPI dependencies as Annotated aliases: the core, the signed-in user, and who may call a route (its role, and
for a personal token, its scope)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from pathway.accounts import PASSWORD, ROLES, Grant, User, bearer
from pathway.bootstrap import Forlop
from pathway.identity import SignInRefused, api_grant, looks_like_jwt

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

API = "/api/v1"
# Reads that send what they look for in a body, so that a name never goes in a URL.
READS_BY_POST = frozenset({f"{API}/cases/search"})


def get_core(request: Request) -> Forlop:
    return request.app.state.core  # type: ignore[no-any-return]


Core = Annotated[Forlop, Depends(get_core)]


def client_address(request: Request) -> str | None:
    """The client's address (a proxy's own, unless uvicorn is told to trust its X-Forwarded-For)."""
    return request.client.host if request.client else None


def scope_needed(method: str, path: str) -> str | None:
    """What a personal token must hold to call the route ``method path`` (its template): the one rule for every
    route. A partner agency's task routes need ``tasks``; making, listing and revoking tokens needs a password
    sign-in (no personal token has it); saying who you are needs nothing; any other read needs ``read`` and any
    other change ``write``. A session may do whatever its user's role may."""
    if path == f"{API}/me":
        return None
    if path == f"{API}/auth/tokens" or path.startswith(f"{API}/auth/tokens/"):
        return PASSWORD
    if path == f"{API}/tasks" or path.startswith(f"{API}/tasks/"):
        return "tasks"
    if method in ("GET", "HEAD") or path in READS_BY_POST:
        return "read"
    return "write"


def current_grant(core: Core, token: Annotated[str | None, Depends(oauth2)]) -> Grant:
    """The grant of the request's bearer token: one of ours (a session or a personal token), or an access token
    of a configured identity provider (for integrations)."""
    if not token:
        grant = None
    elif looks_like_jwt(token):
        try:
            grant = api_grant(core.engine, core.identity, token) if core.identity else None
        except SignInRefused:  # the provider's keys cannot be had: not the caller's fault
            raise HTTPException(503, "the identity provider cannot be reached to check this token: try again "
                                "shortly", headers={"Retry-After": "30"}) from None
    else:
        grant = bearer(core.engine, token, personal_max=timedelta(days=core.settings.personal_token_max_days))
    if grant is None:
        raise HTTPException(401, "sign in first: a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return grant


def current_user(grant: Annotated[Grant, Depends(current_grant)]) -> User:
    return grant.user


class Allow:
    """Who may call a route: its roles, and (for a personal token) the scope ``scope_needed`` names for it. Every
    route but the public ones declares one; the authorization test reads it."""

    def __init__(self, *roles: str, hide: bool = False) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {unknown}")
        self.roles = frozenset(roles)
        self.hide = hide  # answer 404 rather than 403, so that existence is not revealed

    def __call__(self, request: Request, grant: Annotated[Grant, Depends(current_grant)]) -> User:
        if grant.user.role not in self.roles:
            if self.hide:
                raise HTTPException(404, "not found")
            raise HTTPException(403, "your role may not do this")
        route = request.scope.get("route")
        needed = scope_needed(request.method, getattr(route, "path", None) or request.url.path)
        if not grant.allows(needed):
            header = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'}
            if needed == PASSWORD:
                raise HTTPException(403, "this token may not do this: it needs a password sign-in's session",
                                    headers=header)
            raise HTTPException(403, "this token may not do this: it needs a scope it was not given", headers=header)
        return grant.user


CurrentUser = Annotated[User, Depends(current_user)]
CurrentGrant = Annotated[Grant, Depends(current_grant)]
Coordinator = Annotated[User, Depends(Allow("coordinator", hide=True))]
Partner = Annotated[User, Depends(Allow("partner", hide=True))]
Manager = Annotated[User, Depends(Allow("manager"))]
Admin = Annotated[User, Depends(Allow("admin"))]
AnyUser = Annotated[User, Depends(Allow(*ROLES))]
