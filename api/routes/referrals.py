"""Police referrals: a police contact sends a unit a referral (as JSON, or as an HL7 FHIR R4 ``ServiceRequest``) and
follows its status; the unit's coordinators read their queue and accept (opening a case) or decline with a reason.

Who may do what is the access policy's (``pathway.policy``): anyone else, a referral of another unit, or an id that is
no referral, is a 404 (never 403). Every read of a referral's content and every decision is in the access log, the
referral's id in the log row's ``task_id`` (its action says ``referral.*``).

FHIR ``ServiceRequest`` mapping (``POST /api/v1/referrals/fhir``, ``application/fhir+json``; validated with
fhir.resources, then these rules)::

    subject -> a contained Patient ("#id"):
        Patient.name[0].text (else given + family)  -> name
        Patient.telecom[system=phone][0].value      -> phone
    note[0].text                                    -> what happened
    priority: routine -> low, urgent -> medium, asap/stat -> high      (risk; request-priority)
    extension[url=RISK_EXTENSION].valueCode (low, medium, high)       (risk; wins over priority)
    extension[url=CONTACT_AGREED_EXTENSION].valueBoolean              -> whether the person agreed to be contacted
                                                                         (required)
    performer[0]: Organization reference "Organization/<unit>", or identifier.value "<unit>" -> the unit
    status must be "active", intent "order" (or "proposal", "plan"); requester is the signed-in police contact,
    whatever the resource says.

A problem names the field (``subject``, ``note``, ``priority``, ``performer``, ``extension``, ...) and never repeats a
value sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.access import access_writer, channel, log_access, refused
from api.problems import status_for
from api.idempotency import IdempotencyKey, idempotent
from api.deps import Allow, Coordinator, Core, Partner
from pathway import policy
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.errors import ForlopError, InvalidArgument, NotFound
from pathway.services import referrals

router = APIRouter(prefix="/api/v1/referrals", tags=["police referrals"])

IfMatch = Annotated[str | None, Header(alias="If-Match", description='The referral version you read, e.g. "1"')]
Risk = Literal["low", "medium", "high"]
# The list answers both: the policy then says which list (a coordinator's queue, a police contact's own).
CoordinatorOrPartner = Annotated[User, Depends(Allow("coordinator", "partner", hide=True))]

RISK_EXTENSION = "https://forlop.no/fhir/StructureDefinition/risk-level"
CONTACT_AGREED_EXTENSION = "https://forlop.no/fhir/StructureDefinition/contact-agreed"
PRIORITY_RISK = {"routine": "low", "urgent": "medium", "asap": "high", "stat": "high"}
RISKS: dict[str, Risk] = {"low": "low", "medium": "medium", "high": "high"}
INTENTS = ("order", "proposal", "plan")


class ReferralIn(BaseModel):
    """A referral: whom to contact and how, what happened in a few words, the risk, and whether the person agreed."""

    model_config = ConfigDict(extra="forbid")

    unit: str = Field(min_length=1, max_length=64, examples=["bergen-sentrum"])
    name: str = Field(min_length=1, max_length=200, examples=["Testperson Ås"])
    phone: str = Field(min_length=1, max_length=64, examples=["+47 400 00 000"])
    what_happened: str = Field(min_length=1, max_length=2000, examples=["Slått av partner i natt"])
    risk: Risk = Field(examples=["high"])
    contact_agreed: bool


class ReferralDeclineBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="goes back to the police: no case content",
                        examples=["Personen bor i en annen kommune; henvis til krisesenteret der"])


class SentOut(BaseModel):
    """A referral as its sender follows it: status and a decline's reason, never the case."""

    id: uuid.UUID
    unit: str
    received_at: datetime
    status: Literal["received", "accepted", "declined"]
    decided_at: datetime | None
    decline_reason: str | None


class QueuedOut(BaseModel):
    """A referral as the unit's coordinators read it."""

    id: uuid.UUID
    unit: str
    sent_by: str
    received_at: datetime
    status: Literal["received", "accepted", "declined"]
    risk: Risk
    contact_agreed: bool
    version: int
    name: str
    phone: str
    what_happened: str


class ReferralList(BaseModel):
    queue: list[QueuedOut] = Field(default_factory=list, description="a coordinator's: the unit's waiting referrals")
    sent: list[SentOut] = Field(default_factory=list, description="a police contact's: their own, newest first")


class Accepted(BaseModel):
    id: uuid.UUID
    status: Literal["accepted"] = "accepted"
    case_reference: str = Field(examples=["BGO-2026-0042"])


class Declined(BaseModel):
    id: uuid.UUID
    status: Literal["declined"] = "declined"
    decline_reason: str


class FhirServiceRequest(BaseModel):
    """An HL7 FHIR R4 ServiceRequest (validated in full by fhir.resources; the mapping: this module's docstring)."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["ServiceRequest"]  # noqa: N815 - FHIR's name


def _sender(request: Request, core: Forlop, user: User, action: str) -> None:
    """Only the police's contacts send referrals: anyone else finds nothing here."""
    if not policy.may_refer(user):
        raise refused(core.engine, request, user, action, "referral", "-")


def _send(request: Request, core: Forlop, user: User, body: ReferralIn, action: str) -> SentOut:
    """Send a referral for a police contact (``_sender`` asked) and answer as the sender will follow it."""
    content = referrals.content_of(body.name, body.phone, body.what_happened)
    referral_id = referrals.send(
        engine=core.engine, keys=core.keys, units=core.settings.units, sender=user.username, agency=user.agency or "",
        unit=body.unit, content=content, risk=body.risk, contact_agreed=body.contact_agreed,
        public_url=core.settings.public_url,
        also=lambda conn, rid: access_writer(request, user, action, task_id=rid, status=201)(conn))
    with core.engine.connect() as conn:
        mine = next(r for r in referrals.sent_by(conn, username=user.username) if r.id == referral_id)
    return _sent_out(mine)


def _once(request: Request, core: Forlop, user: User, key: str | None, body: ReferralIn, action: str) -> JSONResponse:
    """Send it once per Idempotency-Key: a police system that retries after a lost answer gets the first one."""
    return idempotent(core, user, request, key, body.model_dump(mode="json"), lambda _: JSONResponse(
        _send(request, core, user, body, action).model_dump(mode="json"), status_code=status.HTTP_201_CREATED))


def _sent_out(r: referrals.SentReferral) -> SentOut:
    return SentOut(id=r.id, unit=r.unit, received_at=r.received_at, status=r.status,  # type: ignore[arg-type]
                   decided_at=r.decided_at, decline_reason=r.decline_reason)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SentOut,
             summary="Send a unit a police referral (police contacts)")
def send(request: Request, core: Core, user: Partner, body: ReferralIn, key: IdempotencyKey = None) -> JSONResponse:
    _sender(request, core, user, "referral.send")
    return _once(request, core, user, key, body, "referral.send")


@router.post("/fhir", status_code=status.HTTP_201_CREATED, response_model=SentOut,
             summary="Send a police referral as an HL7 FHIR R4 ServiceRequest (police contacts)")
def send_fhir(request: Request, core: Core, user: Partner,
              body: Annotated[FhirServiceRequest, Body(media_type="application/fhir+json")],
              key: IdempotencyKey = None) -> JSONResponse:
    _sender(request, core, user, "referral.send_fhir")  # before reading the resource: others learn nothing of it
    return _once(request, core, user, key, from_service_request(body.model_dump(mode="json")), "referral.send_fhir")


@router.get("", response_model=ReferralList,
            summary="Referrals: a coordinator's unit's waiting queue, or a police contact's own with their status")
def list_referrals(request: Request, core: Core,
                   user: CoordinatorOrPartner) -> ReferralList:
    unit, sender = policy.referral_queue(user), policy.referrals_sent_by(user)
    if unit is None and sender is None:
        raise refused(core.engine, request, user, "referral.list", "referral", "-")
    with core.uow(snapshot=True) as uow:
        if sender is not None:
            sent = referrals.sent_by(uow.conn, username=sender)
            access_writer(request, user, "referral.list", shown=[(None, r.id) for r in sent])(uow.conn)
            uow.commit()
            return ReferralList(sent=[_sent_out(r) for r in sent])
        assert unit is not None
        queued = referrals.queue(uow.conn, unit=unit, keys=core.keys)
        access_writer(request, user, "referral.read", shown=[(None, r.id) for r in queued])(uow.conn)
        uow.commit()
    return ReferralList(queue=[queued_out(r) for r in queued])


def queued_out(r: referrals.QueuedReferral) -> QueuedOut:
    return QueuedOut(id=r.id, unit=r.unit, sent_by=r.sent_by, received_at=r.received_at,
                     status=r.status, risk=r.risk, contact_agreed=r.contact_agreed,  # type: ignore[arg-type]
                     version=r.version, name=r.content.name, phone=r.content.phone,
                     what_happened=r.content.what_happened)


def version_of(if_match: str | None) -> int | None:
    """The referral version a decision was based on (If-Match), or None: the decision then only needs the referral
    to be undecided."""
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise HTTPException(422, 'If-Match: expected the referral version, e.g. "1"') from None


def _queue_of(request: Request, core: Forlop, user: User, action: str, referral_id: uuid.UUID) -> str:
    unit = policy.referral_queue(user)
    if unit is None:
        raise refused(core.engine, request, user, action, "referral", referral_id, task_id=referral_id)
    return unit


def decide(request: Request, core: Forlop, user: User, referral_id: uuid.UUID, decision: Literal["accept", "decline"],
           *, version: int | None, reason: str | None = None) -> str | None:
    """Accept (returns the new case's reference) or decline a referral of the user's queue: the API's and the queue
    page's one way. The decision and its access-log row commit together; a refusal (not the user's queue: 404;
    decided already or a stale version: 409; no reason: 422) changes nothing and is logged with its outcome."""
    action = f"referral.{decision}"
    unit = _queue_of(request, core, user, action, referral_id)
    try:
        if decision == "accept":
            case = referrals.accept(
                uow=core.uow(), referral_id=referral_id, unit=unit, expected_version=version, actor=user.username,
                keys=core.keys, index_key=core.settings.index_key, reference_prefix=core.settings.reference_prefix,
                pathway_id=core.settings.default_pathway, channel=channel(request),
                also=lambda conn, case: access_writer(request, user, action, case_reference=case.reference,
                                                      task_id=referral_id)(conn))
            return case.reference
        referrals.decline(engine=core.engine, keys=core.keys, referral_id=referral_id, unit=unit,
                          expected_version=version, actor=user.username, reason=reason or "",
                          public_url=core.settings.public_url,
                          also=access_writer(request, user, action, task_id=referral_id))
        return None
    except NotFound:
        raise refused(core.engine, request, user, action, "referral", referral_id, task_id=referral_id) from None
    except ForlopError as exc:
        log_access(core.engine, request, user, action, task_id=referral_id, status=status_for(exc))
        raise


@router.post("/{referral_id}/accept", response_model=Accepted,
             summary="Accept a referral: open its case, the clock started when the referral was received")
def accept(request: Request, core: Core, user: Coordinator, referral_id: uuid.UUID,
           if_match: IfMatch = None) -> Accepted:
    reference = decide(request, core, user, referral_id, "accept", version=version_of(if_match))
    return Accepted(id=referral_id, case_reference=reference or "")


@router.post("/{referral_id}/decline", response_model=Declined,
             summary="Decline a referral, with a reason that goes back to the police")
def decline(request: Request, core: Core, user: Coordinator, referral_id: uuid.UUID, body: ReferralDeclineBody,
            if_match: IfMatch = None) -> Declined:
    decide(request, core, user, referral_id, "decline", version=version_of(if_match), reason=body.reason)
    return Declined(id=referral_id, decline_reason=body.reason.strip())


# -- FHIR ---------------------------------------------------------------------------------------------------------


def from_service_request(raw: dict[str, Any]) -> ReferralIn:
    """A ServiceRequest as a referral (the mapping: the module's docstring); ``InvalidArgument`` naming the field."""
    from fhir.resources.patient import Patient
    from fhir.resources.servicerequest import ServiceRequest

    try:
        resource = ServiceRequest.model_validate(raw)
    except ValidationError as exc:
        loc = exc.errors()[0].get("loc") or ("ServiceRequest",)
        raise InvalidArgument(str(loc[0]), "not a valid FHIR R4 ServiceRequest here") from None
    if resource.status != "active":
        raise InvalidArgument("status", "must be 'active'")
    if resource.intent not in INTENTS:
        raise InvalidArgument("intent", "must be one of {choices}", choices=list(INTENTS))
    reference = (resource.subject.reference or "") if resource.subject is not None else ""
    patient = next((c for c in resource.contained or () if reference.startswith("#")
                    and isinstance(c, Patient) and c.id == reference[1:]), None)
    if patient is None:
        raise InvalidArgument("subject", "must refer to a contained Patient ('#id')")
    name = next(iter(patient.name or ()), None)
    full = (name.text or " ".join([*(name.given or ()), name.family or ""]).strip()) if name is not None else ""
    if not full:
        raise InvalidArgument("name", "the contained Patient needs a name")
    phone = next((t.value for t in patient.telecom or () if t.system == "phone" and t.value), None)
    if phone is None:
        raise InvalidArgument("telecom", "the contained Patient needs a phone (telecom system 'phone')")
    note = next((n.text for n in resource.note or () if n.text), None)
    if note is None:
        raise InvalidArgument("note", "say what happened in note[0].text")
    extensions = {e.url: e for e in resource.extension or ()}
    code = extensions[RISK_EXTENSION].valueCode if RISK_EXTENSION in extensions else \
        PRIORITY_RISK.get(resource.priority or "")
    risk = RISKS.get(code or "")
    if risk is None:
        raise InvalidArgument("priority", "one of {choices}, or the risk-level extension",
                              choices=list(PRIORITY_RISK))
    agreed = extensions.get(CONTACT_AGREED_EXTENSION)
    if agreed is None or agreed.valueBoolean is None:
        raise InvalidArgument("extension", "the contact-agreed extension (valueBoolean) is required")
    performer = next(iter(resource.performer or ()), None)
    unit = None
    if performer is not None:
        if performer.reference and performer.reference.startswith("Organization/"):
            unit = performer.reference.removeprefix("Organization/")
        elif performer.identifier is not None:
            unit = performer.identifier.value
    if not unit:
        raise InvalidArgument("performer", "name the unit: an Organization reference or identifier")
    try:
        return ReferralIn(unit=unit, name=full, phone=phone, what_happened=note, risk=risk,
                          contact_agreed=agreed.valueBoolean)
    except ValidationError as exc:  # too long for a referral: named by the resource's field
        given = str((exc.errors()[0].get("loc") or ("name",))[0])
        field = {"what_happened": "note", "phone": "telecom", "unit": "performer"}.get(given, given)
        limit = ReferralIn.model_fields[given].metadata[-1].max_length if given in ReferralIn.model_fields else 2000
        raise InvalidArgument(field, "required, at most {limit} characters", limit=limit) from None
