"""A coordinator's deadlines in their desk calendar: an iCalendar (RFC 5545) feed at a secret, revocable address
(``/calendar/{token}.ics``), and the page where they make, see (once) and revoke that address.

The feed needs no session: the token in its address is the credential (``pathway.services.feeds``), and an unknown or
revoked token, or one of a deactivated user, answers 404. Its events come from one view
(``pathway.views.calendar``), each logged per case in the access log as ``calendar.read``, like any read of case data.
An event says the case reference, the checkpoint and the deadline, and links to the case page: never a name, an
address, an ad-hoc step's free-text title, or anything else about the person.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response
from icalendar import Calendar, Event

from api.access import access_writer
from api.deps import Core
from api.problems import problem
from api.web.i18n import translator
from api.web.render import page
from api.web.session import CoordinatorPage, Posted, Session
from pathway import policy
from pathway.bootstrap import Forlop
from pathway.services import feeds
from pathway.views.calendar import Deadline, coordinated_deadlines, live_feed

router = APIRouter(include_in_schema=False)
MEDIA_TYPE = "text/calendar; charset=utf-8"
_FEED_PATH = re.compile(r"^/calendar/[^/?]+\.ics")
HIDDEN = "/calendar/[feed].ics"  # a feed's path where it is shown: its token is a credential


@router.get("/calendar/{token}.ics")
def feed(request: Request, core: Core, token: str) -> Response:
    """The user's deadlines as iCalendar; read, checked and logged in one transaction."""
    with core.uow(snapshot=True) as uow:
        user = feeds.feed_user(uow.conn, token)
        if user is None:  # answered to a calendar program, not a browser: problem+json, without the token
            return problem(404, "no calendar feed at this address", instance=HIDDEN)
        deadlines = coordinated_deadlines(uow.conn, unit=policy.listed_unit(user), coordinator=user.username)
        shown = list(dict.fromkeys(d.reference for d in deadlines))
        access_writer(request, user, "calendar.read", shown=[(ref, None) for ref in shown])(uow.conn)
        uow.commit()
    body = calendar(core, deadlines, lang=user.language, now=datetime.now(timezone.utc))
    return Response(body, media_type=MEDIA_TYPE)


def calendar(core: Forlop, deadlines: list[Deadline], *, lang: str, now: datetime) -> bytes:
    """The feed: one event per open step, at its deadline (UTC), whose UID stays the same while the step lives."""
    t = translator(lang)
    base = core.settings.public_url.rstrip("/")
    cal = Calendar()
    cal.add("prodid", "-//Forløp//Frister//NB")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", t("Forløp: my deadlines"))
    cal.add("x-published-ttl", "PT1H")  # how often a calendar program should ask again
    for d in deadlines:
        link = f"{base}/cases/{d.reference}"
        name = t("Added step") if d.adhoc else (
            core.catalog.resolve(d.pathway_id, d.definition_version).checkpoint[d.code].name.get(lang))
        event = Event()
        event.add("uid", f"{d.step_id}@forlop")
        event.add("dtstamp", now)
        event.add("dtstart", d.due_at.astimezone(timezone.utc).replace(microsecond=0))  # iCalendar has seconds
        event.add("transp", "TRANSPARENT")  # a deadline, not a meeting: it does not make the coordinator busy
        event.add("summary", f"{d.reference} · {d.code} {name}")
        notes = [t("Deadline of {code} in case {reference}.").format(code=d.code, reference=d.reference)]
        if d.paused:
            notes.append(t("The case's clock is paused: the deadline moves when it runs again."))
        event.add("description", "\n".join([*notes, link]))
        event.add("url", link)
        cal.add_component(event)
    return cal.to_ical()


# -- the page where the coordinator makes and revokes their feed's address ------------------------------------------


@router.get("/calendar")
def calendar_page(request: Request, core: Core, session: CoordinatorPage) -> Response:
    return _page(request, core, session)


@router.post("/calendar")
def make_feed(request: Request, core: Core, session: CoordinatorPage, form: Posted) -> Response:
    """A new address, shown on this answer only; the one the user had stops at once."""
    token = feeds.open_feed(core.engine, session.user, now=datetime.now(timezone.utc),
                            log=access_writer(request, session.user, "calendar.create"))
    address = f"{core.settings.public_url.rstrip('/')}/calendar/{token}.ics"
    return _page(request, core, session, address=address)


@router.post("/calendar/revoke")
def revoke(request: Request, core: Core, session: CoordinatorPage, form: Posted) -> Response:
    revoked = feeds.revoke_feed(core.engine, session.user, now=datetime.now(timezone.utc),
                                log=access_writer(request, session.user, "calendar.revoke"))
    return _page(request, core, session, revoked=revoked)


def _page(request: Request, core: Forlop, session: Session, *, address: str | None = None,
          revoked: bool = False) -> Response:
    with core.uow(read_only=True) as uow:
        live = live_feed(uow.conn, session.user.username)
    return page(request, "calendar.html", session, live=live, address=address, revoked=revoked)


# -- the server's access log: the path of a feed is a credential ------------------------------------------------------


class FeedTokenHidden(logging.Filter):
    """Hide the token of a feed's path in uvicorn's access record (client, method, path, HTTP version, status), as
    ``api.accesslog`` hides query strings: whoever reads the log must not be able to read the feed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            if isinstance(path, str) and path.startswith("/calendar/"):
                record.args = (client, method, _FEED_PATH.sub(HIDDEN, path), version, status)
        return True


def hide_feed_tokens() -> None:
    """Filter this process's access log (once; every worker builds the app and so calls this)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, FeedTokenHidden) for f in logger.filters):
        logger.addFilter(FeedTokenHidden())
