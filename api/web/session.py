"""Browser sessions: an HttpOnly, SameSite=Strict cookie holding a server-side token, a CSRF token per session,
and the signed-in user as a dependency of every page.

The token is a row in ``api_token`` (kind ``web``): it ends after an idle half hour, and signing out revokes it.
The CSRF token is a keyed hash of the session token, so it needs no storage and is worthless without the cookie.
Before sign-in, the login form carries a random value that must match a short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from api.deps import ROLES, get_core
from pathway.accounts import User, authenticate_web
from pathway.bootstrap import Forlop
from pathway.errors import DatabaseError

COOKIE = "forlop_session"
LOGIN_COOKIE = "forlop_login"
LANG_COOKIE = "forlop_lang"
LANGUAGES = ("nb", "en")


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login page, and back afterwards."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageNotFound(Exception):
    """A page the user may not see answers as if it did not exist (the API's 404 rule, for pages)."""


class BadForm(Exception):
    """A form without a valid CSRF token, or otherwise not sent by our own page."""


def secure_cookies(core: Forlop) -> bool:
    return core.settings.env not in ("development", "demo", "test")


def set_cookie(response: Response, core: Forlop, name: str, value: str, *, max_age: int | None = None,
               samesite: Literal["strict", "lax"] = "strict", path: str = "/") -> None:
    """An HttpOnly cookie, Secure outside development; Strict unless it must come back from another site's
    navigation (a provider's redirect after sign-in: Lax)."""
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite=samesite, secure=secure_cookies(core),
                        path=path)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"forlop-csrf-v1", hashlib.sha256).hexdigest()


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def check_login_nonce(request: Request, sent: str | None) -> None:
    if not same_secret(request.cookies.get(LOGIN_COOKIE), sent):
        raise BadForm()


def same_secret(kept: str | None, sent: str | None) -> bool:
    """Whether a value sent back is the one this browser holds, compared in constant time (any text: bytes)."""
    return bool(kept) and bool(sent) and hmac.compare_digest(kept.encode(), sent.encode())  # type: ignore[union-attr]


def language(request: Request, user: User | None = None) -> str:
    """The page language: the one chosen in this browser, else the user's own, else bokmål."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return user.language if user is not None and user.language in LANGUAGES else "nb"


def safe_next(path: str | None) -> str:
    """Only a path on this site (never //host or a scheme): an open redirect would help a phishing mail. Browsers
    drop tabs and line breaks from a URL (``/\t/evil.example`` is ``//evil.example``), so no control character,
    space or backslash is let through either."""
    if (path and path.startswith("/") and not path.startswith("//") and "\\" not in path
            and all(" " < c != "\x7f" for c in path) and not urlsplit(path).netloc):
        return path
    return "/"


class Session:
    """The signed-in user of a page request and the session's CSRF token."""

    def __init__(self, user: User, token: str) -> None:
        self.user = user
        self.csrf = csrf_token(token)
        self.token = token


def optional_session(request: Request) -> Session | None:
    """The session, if there is a valid one (an error page shows the menu to a signed-in user)."""
    try:
        return _session(request)
    except (LoginRequired, DatabaseError):  # no session, or no database to ask: the page is shown without menu
        return None


def _session(request: Request) -> Session:
    token = request.cookies.get(COOKIE)
    core = get_core(request)
    user = authenticate_web(core.engine, token, idle=core.settings.web_idle) if token else None
    if user is None:
        query = f"?{request.url.query}" if request.url.query and request.method == "GET" else ""
        raise LoginRequired(request.url.path + query if request.method == "GET" else "/")
    return Session(user, token)  # type: ignore[arg-type]


class Page:
    """Who may open a page: like ``api.deps.Allow``, and a page of another role is 'not found'."""

    def __init__(self, *roles: str) -> None:
        assert set(roles) <= set(ROLES), roles
        self.roles = frozenset(roles)

    def __call__(self, session: Annotated[Session, Depends(_session)]) -> Session:
        if session.user.role not in self.roles:
            raise PageNotFound()
        return session


async def posted_form(request: Request) -> FormData:
    """The posted form of a signed-in page, once its CSRF token matches the session cookie (no uploads)."""
    form = await request.form(max_files=0, max_fields=100)
    token = request.cookies.get(COOKIE)
    sent = form.get("csrf")
    if not token or not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(token)):
        raise BadForm()
    return form


Posted = Annotated[FormData, Depends(posted_form)]
AnySession = Annotated[Session, Depends(Page(*ROLES))]
CoordinatorPage = Annotated[Session, Depends(Page("coordinator"))]
PartnerPage = Annotated[Session, Depends(Page("partner"))]
ManagerPage = Annotated[Session, Depends(Page("manager"))]
AdminPage = Annotated[Session, Depends(Page("admin"))]
