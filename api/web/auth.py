"""Signing in and out, the front page (which sends each role to its own start page), the language switch, and
the notification inbox every role has."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import Core, client_address
from api.web import session as s
from api.web.i18n import translator
from api.web.render import page
from api.web.session import AnySession, Posted
from pathway import identity
from pathway.accounts import LoginFailed, LoginLimits, PasswordsOff, TooManyAttempts, end_session, login
from pathway.errors import N_
from pathway.identity import SignInRefused
from pathway.store import inbox

router = APIRouter(include_in_schema=False)
log = logging.getLogger("forlop.identity")
START = {"coordinator": "/cases", "partner": "/tasks", "manager": "/reports", "admin": "/admin/users"}


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def landing(next: str, role: str) -> str:
    """Where a sign-in goes on to: the page asked for before it (on this site), else the role's start page."""
    target = s.safe_next(next)
    return target if target != "/" else START[role]


@router.get("/")
def front(session: AnySession) -> RedirectResponse:
    return see_other(START[session.user.role])


def _sign_in_page(request: Request, core: Core, *, next: str, note: str = "", failed: bool = False,
                  username: str = "", status: int = 200) -> Response:
    """The sign-in page: a button per identity provider, and the password form where passwords are on."""
    nonce = s.new_login_nonce()
    lang = s.language(request, None)
    t = translator(lang)
    providers = [(name, p.button_text(lang) or t("Sign in with {provider}").format(provider=p.text(lang)))
                 for name, p in core.identity.providers.items()]
    response = page(request, "login.html", None, status=status, nonce=nonce, next=s.safe_next(next), note=note,
                    failed=failed, username=username, providers=providers, passwords=core.settings.password_login)
    s.set_cookie(response, core, s.LOGIN_COOKIE, nonce, max_age=3600)
    return response


@router.get("/login")
def login_page(request: Request, core: Core, next: Annotated[str, Query(max_length=500)] = "/",
               note: Annotated[str, Query(max_length=20)] = "") -> Response:
    return _sign_in_page(request, core, next=next, note=note)


@router.post("/login")
def login_submit(request: Request, core: Core,
                 username: Annotated[str, Form(max_length=64)], password: Annotated[str, Form(max_length=1024)],
                 nonce: Annotated[str, Form(max_length=100)], next: Annotated[str, Form(max_length=500)] = "/",
                 ) -> Response:
    s.check_login_nonce(request, nonce)
    try:
        token, user, _ = login(core.engine, username, password, kind="web", ttl=core.settings.web_idle,
                               client=client_address(request),
                               limits=LoginLimits.of(core.settings))
    except TooManyAttempts as exc:
        return too_many_attempts(request, exc.retry_after)
    except PasswordsOff:
        return refused(request, "passwords", status=403)
    except LoginFailed:
        return _sign_in_page(request, core, next=next, failed=True, username=username, status=401)
    response = see_other(landing(next, user.role))
    s.set_cookie(response, core, s.COOKIE, token)  # a session cookie: gone when the browser closes
    response.delete_cookie(s.LOGIN_COOKIE, path="/")
    return response


def too_many_attempts(request: Request, seconds: int) -> Response:
    """The sign-in page's refusal (the API's is a 429 problem): how many minutes to wait, in the reader's language."""
    minutes = -(-seconds // 60)
    t = translator(s.language(request, None))
    text = (t("Too many sign-in attempts. Try again in a minute.") if minutes == 1 else
            t("Too many sign-in attempts. Try again in {minutes} minutes.").format(minutes=minutes))
    return page(request, "error.html", None, status=429, status_code=429, detail=text,
                headers={"Retry-After": str(seconds)})


OIDC_COOKIE = "forlop_oidc"  # the state of a sign-in begun at a provider, bound to this browser
OIDC_PATH = "/login/oidc"


def _redirect_uri(core: Core, provider: str) -> str:
    """Where the provider sends the browser back: register exactly this with it."""
    return f"{core.settings.public_url.rstrip('/')}{OIDC_PATH}/{provider}/callback"


@router.get(OIDC_PATH + "/{provider}")
def oidc_begin(request: Request, core: Core, provider: Annotated[str, Path(max_length=32)],
               next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    """Begin a sign-in at an identity provider: a fresh state, nonce and PKCE verifier, kept (once) in the
    database; the state also in a cookie of this browser, so that a sign-in begun elsewhere is not finished here."""
    oidc = core.identity.client(provider)
    if oidc is None:
        raise s.PageNotFound()
    try:
        oidc.metadata()  # first: a provider that does not answer leaves no sign-in behind
        state, pending = identity.begin_login(core.engine, provider=provider, next_path=s.safe_next(next))
        url = oidc.authorization_url(redirect_uri=_redirect_uri(core, provider), state=state, nonce=pending.nonce,
                                     code_verifier=pending.code_verifier)
    except SignInRefused as exc:
        return refused(request, exc.why, provider=oidc.provider.text(s.language(request, None)), detail=exc.detail)
    response = see_other(url)
    # Lax, not Strict: the provider's redirect back is a navigation from another site, which must carry it.
    s.set_cookie(response, core, OIDC_COOKIE, state, max_age=int(identity.LOGIN_TTL.total_seconds()), samesite="lax",
                 path=OIDC_PATH)
    return response


@router.get(OIDC_PATH + "/{provider}/callback")
def oidc_callback(request: Request, core: Core, provider: Annotated[str, Path(max_length=32)],
                  code: Annotated[str | None, Query(max_length=2000)] = None,
                  state: Annotated[str | None, Query(max_length=200)] = None,
                  error: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """Finish a sign-in: the state must be this browser's and unused, the code is exchanged for tokens, the ID
    token is checked (signature, issuer, audience, expiry, nonce), and the user's groups decide their role now."""
    oidc = core.identity.client(provider)
    if oidc is None:
        raise s.PageNotFound()
    label = oidc.provider.text(s.language(request, None))
    pending = None
    if state is not None and s.same_secret(request.cookies.get(OIDC_COOKIE), state):
        pending = identity.take_login(core.engine, state=state, provider=provider)
    try:
        if pending is None:
            raise SignInRefused("invalid", "the state is unknown, used, expired or not this browser's")
        if error is not None or not code:
            # Only an OAuth error code goes to the log (RFC 6749 4.1.2.1), never other text the URL carried.
            said = error if error is not None and re.fullmatch(r"[a-z_]{1,40}", error) else "something else"
            raise SignInRefused("cancelled", f"the provider answered {said if error is not None else 'without a code'}")
        tokens = oidc.exchange(code=code, redirect_uri=_redirect_uri(core, provider),
                               code_verifier=pending.code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("invalid", "the token response has no ID token")
        claims = oidc.id_token_claims(id_token, nonce=pending.nonce)
        token, user = identity.sign_in(core.engine, oidc.provider, claims, ttl=core.settings.web_idle,
                                       client=client_address(request))
    except SignInRefused as exc:
        response = refused(request, exc.why, provider=label, detail=exc.detail)
        response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)
        return response
    target = landing(pending.next_path, user.role)
    # A page, not a redirect: a redirect chain that began at another site would not carry the Strict session
    # cookie to the first page; this page's own navigation does.
    response = page(request, "signed_in.html", None, target=target)
    s.set_cookie(response, core, s.COOKIE, token)
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)
    return response


REFUSALS = {  # why -> the page's heading, its text and its status
    "unmapped": (N_("You have no access to Forløp"),
                 N_("Your account at {provider} is not in any group that gives access to Forløp. Ask your manager or "
                    "an administrator to add you to the right group, then sign in again."), 403),
    "blocked": (N_("Your account is blocked in Forløp"),
                N_("An administrator has blocked your account. Contact an administrator if you think this is "
                   "wrong."), 403),
    "name_taken": (N_("Your account could not be set up"),
                   N_("Another account in Forløp already has your user name. Contact an administrator."), 403),
    "invalid": (N_("The sign-in could not be confirmed"),
                N_("The answer from {provider} could not be verified, or this sign-in had already been used or had "
                   "expired. Start again from the sign-in page."), 400),
    "cancelled": (N_("The sign-in was cancelled"),
                  N_("{provider} did not sign you in. Start again from the sign-in page."), 400),
    "unreachable": (N_("The identity provider does not answer"),
                    N_("{provider} could not be reached. Try again in a little while."), 502),
    "passwords": (N_("Password sign-in is turned off"),
                  N_("Sign in through your organisation's identity provider on the sign-in page."), 403),
}


def refused(request: Request, why: str, *, provider: str = "", detail: str = "", status: int | None = None) -> Response:
    """Why a sign-in was refused, in the reader's words; the server's log has ``detail`` (never a name)."""
    if detail:
        log.warning("sign-in refused (%s): %s", why, detail)
    heading, text, code = REFUSALS[why]
    t = translator(s.language(request, None))
    return page(request, "signin_refused.html", None, status=status or code, heading=t(heading),
                message=t(text).format(provider=provider))


@router.post("/logout")
def logout(request: Request, core: Core, session: AnySession, form: Posted) -> Response:
    """Sign out here; a user of an identity provider is then sent to its end-session endpoint, and back."""
    end_session(core.engine, session.token)
    oidc = core.identity.client(session.user.idp) if session.user.idp else None
    back = f"{core.settings.public_url.rstrip('/')}/login?note=signed_out"
    elsewhere = oidc.end_session_url(post_logout_redirect_uri=back) if oidc is not None else None
    if elsewhere is None:
        response: Response = see_other("/login?note=signed_out")
    else:  # a page that goes on by itself: the form's own redirect may not leave this site (form-action 'self')
        response = page(request, "signed_out.html", None, target=elsewhere,
                        provider=oidc.provider.text(s.language(request, session.user)))  # type: ignore[union-attr]
    response.delete_cookie(s.COOKIE, path="/")
    return response


@router.get("/language")
def choose_language(request: Request, set: Annotated[str, Query(pattern="^(nb|en)$")],
                    next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    response = see_other(s.safe_next(next))
    s.set_cookie(response, request.app.state.core, s.LANG_COOKIE, set, max_age=365 * 86400)
    return response


@router.get("/inbox")
def inbox_page(request: Request, core: Core, session: AnySession, unread: bool = False,
               view: Literal["cases", "list"] = "cases") -> Response:
    """The inbox per case (each case once: its newest notification, how many, how many unread), or one by one."""
    name = session.user.username
    if view == "list":
        rows = inbox.inbox(engine=core.engine, username=name, unread_only=unread, limit=200)
        return page(request, "inbox.html", session, rows=rows, groups=[], only_unread=unread, view=view)
    groups = inbox.by_case(engine=core.engine, username=name, unread_only=unread, limit=200)
    return page(request, "inbox.html", session, rows=[], groups=groups, only_unread=unread, view=view,
                group_link=lambda g: _group_link(g, session.user.role))


def _group_link(group: Any, role: str) -> str:
    """Where a group leads: a coordinator to the case, a partner to their tasks; a manager's notices about no case
    to the report its newest notification names (on this site); anyone else's (a unit without a manager sends
    its escalations to its coordinators) to the notifications one by one."""
    if group.case_reference is not None:
        return f"/cases/{quote(group.case_reference, safe='')}" if role == "coordinator" else "/tasks"
    target = urlsplit(group.link)
    if role == "manager" and target.path.startswith("/reports"):
        return target.path + (f"?{target.query}" if target.query else "")
    return "/inbox?view=list"


@router.post("/inbox")
def inbox_mark(request: Request, core: Core, session: AnySession, form: Posted) -> Response:
    name, now = session.user.username, datetime.now(timezone.utc)
    back = "/inbox?view=list" if form.get("view") == "list" else "/inbox"
    if form.get("all") == "yes":
        inbox.mark_all_read(engine=core.engine, username=name, now=now)
        return see_other(back)
    cases = [str(v)[:32] for v in form.getlist("case")][:500]
    if cases:  # "-": the group of notifications about no case
        inbox.mark_all_read(engine=core.engine, username=name, now=now,
                            case_references=[None if c == "-" else c for c in cases])
    ids = []
    for value in form.getlist("id"):
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if ids:
        inbox.mark_read(engine=core.engine, username=name, ids=ids[:500], now=now, read=form.get("read") != "no")
    return see_other(back)

