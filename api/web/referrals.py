"""The police referral pages: a police contact's "Henvisninger" (send one, and follow their own by status and a
decline's reason, never the case), and a coordinator's intake queue (the unit's waiting referrals, accept, which
opens the case and goes to its page, or decline with a reason). The same use cases and access policy as the API
(``pathway.services.referrals``, ``pathway.policy``); every read of a referral's content is in the access log."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.access import access_writer
from api.deps import Core
from api.i18n import N_
from api.problems import describe, names_for
from api.web.auth import see_other
from api.web.render import page
from api.web.session import CoordinatorPage, PageNotFound, PartnerPage, Posted, Session, language
from pathway import policy
from pathway.definition import RISK_LEVELS
from pathway.errors import DatabaseError, ForlopError, NotFound
from pathway.services import referrals
from api.routes import referrals as api_referrals

router = APIRouter(include_in_schema=False)
RISK_LABELS = dict(zip(RISK_LEVELS, (N_("Low"), N_("Medium"), N_("High")), strict=True))
STATUS_LABELS = {"received": N_("Received"), "accepted": N_("Accepted"), "declined": N_("Declined")}
FIELDS = ("unit", "name", "phone", "what_happened", "risk")


def _sender(session: Session) -> str:
    sender = policy.referrals_sent_by(session.user)
    if sender is None:
        raise PageNotFound()
    return sender


def _queue_unit(session: Session) -> str:
    unit = policy.referral_queue(session.user)
    if unit is None:
        raise PageNotFound()
    return unit


@router.get("/referrals")
def sent_page(request: Request, core: Core, session: PartnerPage, done: str = "") -> Response:
    return _sent_page(request, core, session, saved=done == "sent")


def _sent_page(request: Request, core: Core, session: Session, *, status: int = 200, saved: bool = False,
               message: str | None = None, typed: Any = None) -> Response:
    sender = _sender(session)
    with core.uow(snapshot=True) as uow:
        sent = referrals.sent_by(uow.conn, username=sender)
        access_writer(request, session.user, "referral.list", shown=[(None, r.id) for r in sent])(uow.conn)
        uow.commit()
    return page(request, "referrals.html", session, status=status, sent=sent, saved=saved, message=message,
                typed=typed or {}, units=core.settings.units, risk_labels=RISK_LABELS, status_labels=STATUS_LABELS)


@router.post("/referrals")
def send(request: Request, core: Core, session: PartnerPage, form: Posted) -> Response:
    sender = _sender(session)
    try:
        content = referrals.content_of(str(form.get("name") or ""), str(form.get("phone") or ""),
                                       str(form.get("what_happened") or ""))
        referrals.send(engine=core.engine, keys=core.keys, units=core.settings.units, sender=sender,
                       agency=session.user.agency or "", unit=str(form.get("unit") or ""), content=content,
                       risk=str(form.get("risk") or ""), contact_agreed=form.get("contact_agreed") == "yes",
                       public_url=core.settings.public_url,
                       also=lambda conn, rid: access_writer(request, session.user, "referral.send", task_id=rid,
                                                            status=201)(conn))
    except DatabaseError:
        raise
    except ForlopError as exc:
        lang = language(request, session.user)
        code, detail, _, _ = describe(exc, lang, names_for(request, lang))
        return _sent_page(request, core, session, status=code, message=detail, typed=form)
    return see_other("/referrals?done=sent")


@router.get("/referrals/queue")
def queue_page(request: Request, core: Core, session: CoordinatorPage, done: str = "") -> Response:
    return _queue_page(request, core, session, saved=done == "declined")


def _queue_page(request: Request, core: Core, session: Session, *, status: int = 200, saved: bool = False,
                failed: str = "", message: str | None = None) -> Response:
    unit = _queue_unit(session)
    with core.uow(snapshot=True) as uow:
        waiting = referrals.queue(uow.conn, unit=unit, keys=core.keys)
        access_writer(request, session.user, "referral.read", shown=[(None, r.id) for r in waiting])(uow.conn)
        uow.commit()
    return page(request, "referrals_queue.html", session, status=status, waiting=waiting, saved=saved,
                failed=failed, message=message, risk_labels=RISK_LABELS, unit=unit)


@router.post("/referrals/{referral_id}/{decision}")
def decide(request: Request, core: Core, session: CoordinatorPage, referral_id: uuid.UUID, decision: str,
           form: Posted) -> Response:
    _queue_unit(session)
    version = int(str(form.get("version"))) if str(form.get("version") or "").isdigit() else None
    if decision not in ("accept", "decline"):
        raise PageNotFound()
    try:  # the API's own decision (api.routes.referrals.decide): checked, logged and refused alike
        reference = api_referrals.decide(request, core, session.user, referral_id,
                                         "accept" if decision == "accept" else "decline", version=version,
                                         reason=str(form.get("reason") or ""))
        if reference is not None:
            return see_other(f"/cases/{reference}")
        return see_other("/referrals/queue?done=declined")
    except NotFound:
        raise PageNotFound() from None
    except DatabaseError:
        raise
    except ForlopError as exc:
        lang = language(request, session.user)
        code, detail, _, _ = describe(exc, lang, names_for(request, lang))
        return _queue_page(request, core, session, status=code, failed=str(referral_id), message=detail)
    raise PageNotFound()
