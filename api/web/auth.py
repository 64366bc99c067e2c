"""Signing in and out, the front page (which sends each role to its own start page), the language switch, and
the notification inbox every role has."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import Core, client_address
from api.web import session as s
from api.web.i18n import translator
from api.web.render import page
from api.web.session import AnySession, Posted
from pathway.accounts import LoginFailed, LoginLimits, TooManyAttempts, end_session, login
from pathway.store import inbox

router = APIRouter(include_in_schema=False)
START = {"coordinator": "/cases", "partner": "/tasks", "manager": "/reports", "admin": "/admin/users"}


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.get("/")
def front(session: AnySession) -> RedirectResponse:
    return see_other(START[session.user.role])


@router.get("/login")
def login_page(request: Request, next: Annotated[str, Query(max_length=500)] = "/",
               note: Annotated[str, Query(max_length=20)] = "") -> Response:
    nonce = s.new_login_nonce()
    response = page(request, "login.html", None, nonce=nonce, next=s.safe_next(next), note=note, failed=False)
    s.set_cookie(response, request.app.state.core, s.LOGIN_COOKIE, nonce, max_age=3600)
    return response


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
    except LoginFailed:
        fresh = s.new_login_nonce()
        response: Response = page(request, "login.html", None, status=401, nonce=fresh, next=s.safe_next(next),
                                  note="", failed=True, username=username)
        s.set_cookie(response, core, s.LOGIN_COOKIE, fresh, max_age=3600)
        return response
    target = s.safe_next(next)
    response = see_other(target if target != "/" else START[user.role])
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


@router.post("/logout")
def logout(request: Request, core: Core, session: AnySession, form: Posted) -> Response:
    end_session(core.engine, session.token)
    response = see_other("/login?note=signed_out")
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

