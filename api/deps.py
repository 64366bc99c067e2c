"""FastAPI dependencies as Annotated aliases: the core, the signed-in user, and who may call a route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from pathway.accounts import ROLES, User, authenticate
from pathway.bootstrap import Forlop

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_core(request: Request) -> Forlop:
    return request.app.state.core  # type: ignore[no-any-return]


Core = Annotated[Forlop, Depends(get_core)]


def current_user(core: Core, token: Annotated[str | None, Depends(oauth2)]) -> User:
    user = authenticate(core.engine, token) if token else None
    if user is None:
        raise HTTPException(401, "sign in first: a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


class Allow:
    """Who may call a route. Every route but the public ones declares one; the authorization test reads it."""

    def __init__(self, *roles: str, hide: bool = False) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {unknown}")
        self.roles = frozenset(roles)
        self.hide = hide  # answer 404 rather than 403, so that existence is not revealed

    def __call__(self, user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in self.roles:
            if self.hide:
                raise HTTPException(404, "not found")
            raise HTTPException(403, "your role may not do this")
        return user


CurrentUser = Annotated[User, Depends(current_user)]
Coordinator = Annotated[User, Depends(Allow("coordinator", hide=True))]
Partner = Annotated[User, Depends(Allow("partner", hide=True))]
Manager = Annotated[User, Depends(Allow("manager"))]
Admin = Annotated[User, Depends(Allow("admin"))]
AnyUser = Annotated[User, Depends(Allow(*ROLES))]
