"""Coordinators' routes: list cases, read one, open one, the person record and emergency access. The commands on a
case have their routes in ``api.routes.operations``."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.access import access_writer, channel, log_access, refused
from api.deps import Coordinator, Core
from api.i18n import N_
from api.idempotency import IdempotencyKey, idempotent
from api.problems import Refused
from api.schemas import CaseDetail, CaseList, CaseSummary, case_detail
from pathway import policy, services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.case import Case
from pathway.errors import DefinitionVersionMissing, InvalidArgument, NotFound
from pathway.people import PersonRecord
from pathway.services.people import cases_named, person_of
from pathway.store.casekeys import key_of
from pathway.store.access import Writer, end_break_glass, grant_break_glass
from pathway.views import cases as views
from pathway.views.deadlines import week_end

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

Reason = Annotated[str | None, Field(default=None, max_length=2000, examples=["personen er på sykehus"])]
IfMatch = Annotated[str | None, Header(alias="If-Match", description='The case version you read, e.g. "7"')]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- access ---------------------------------------------------------------------------------------------------


def _refuse(request: Request, core: Forlop, user: User, action: str, reference: str,
            access: policy.CaseAccess) -> NotFound:
    # The reference is logged only where it names a case: anything else is client input (of any length), not data.
    return refused(core.engine, request, user, action, "case", reference,
                   case_reference=reference if access.case_id is not None else None)


class WriteRefused(Refused):
    """A write by someone who may only read the case: emergency access asked for without a write reason (403)."""

    def __init__(self, reference: str) -> None:
        super().__init__(403, N_("emergency access to case {reference} is read-only: to change the case, its person "
                                 "record or its handovers, ask for emergency access again with a write_reason"),
                         reference=reference)


def case_access(request: Request, core: Forlop, user: User, reference: str, action: str, *,
                write: bool = False) -> tuple[uuid.UUID, bool]:
    """The case id if the policy lets the coordinator see it (``write``: and change it), and whether through
    emergency access; 404 if they may not see it, 403 (``WriteRefused``) if they may only read it. A refused
    attempt is in the access log with its outcome."""
    with core.uow(read_only=True) as uow:
        access = policy.case_access(uow.conn, user, reference, now=_now())
    if not access.allowed or access.case_id is None:
        raise _refuse(request, core, user, action, reference, access)
    if write and not access.write:
        log_access(core.engine, request, user, action, case_reference=reference, status=403,
                   break_glass=access.break_glass)
        raise WriteRefused(reference)
    return access.case_id, access.break_glass


def rechecked(user: User, reference: str, write: Writer) -> Writer:
    """``write`` (the access-log row of a change), after asking the policy again inside the change's own transaction
    (the case row locked): a grant ended or run out since the check before the change refuses it (404, or 403 if
    only reading is left), and the change rolls back."""

    def check(conn: Connection) -> None:
        access = policy.case_access(conn, user, reference, now=_now())
        if not access.allowed:
            raise NotFound("case", reference)
        if not access.write:
            raise WriteRefused(reference)
        write(conn)

    return check


# -- reading ------------------------------------------------------------------------------------------------


ListSort = Literal["next_due", "opened_at", "reference", "phase"]


@router.get("", response_model=CaseList, summary="Cases of my unit",
            description="Each case with its most urgent open step (code, name, due_at) and the handovers that need "
                        "the coordinator (declined, or unanswered past their deadline). `mine`: only the cases I "
                        "coordinate; `due_this_week`: next deadline before the end of this ISO week in Oslo (passed "
                        "ones too). `sort=phase` orders by the pathway's phases, then by next deadline. `pathway`: "
                        "only the cases of that pathway (a registered pathway's id, e.g. krisesenter or barn); each "
                        "case names its pathway and the pathway's title.")
def list_cases(
    request: Request, core: Core, user: Coordinator,
    status: Literal["open", "closed", "all"] = "open",
    phase: Annotated[str | None, Query(max_length=64)] = None,
    stage: Annotated[str | None, Query(max_length=64, deprecated=True, description="the old name of phase")] = None,
    coordinator: Annotated[str | None, Query(max_length=64)] = None,
    mine: bool = False,
    overdue: bool | None = None,
    due_soon: bool | None = None,
    due_this_week: bool = False,
    q: Annotated[str | None, Query(max_length=32, description="start of a case reference")] = None,
    sort: ListSort = "next_due",
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    pathway: Annotated[str | None, Query(max_length=64, description="a registered pathway's id")] = None,
) -> CaseList:
    return case_list(request, core, user, status=status, phase=phase or stage, pathway=pathway,
                     coordinator=user.username if mine else coordinator, overdue=overdue, due_soon=due_soon,
                     due_this_week=due_this_week, q=q, sort=sort, descending=order == "desc", cursor=cursor,
                     limit=limit)


def case_list(request: Request, core: Forlop, user: User, *, status: Literal["open", "closed", "all"] = "open",
              phase: str | None = None, coordinator: str | None = None, overdue: bool | None = None,
              due_soon: bool | None = None, due_this_week: bool = False, q: str | None = None,
              sort: ListSort = "next_due", descending: bool = False, cursor: str | None = None, limit: int = 50,
              lang: str | None = None, pathway: str | None = None) -> CaseList:
    """A page of the coordinator's unit's cases, counted, with step names and pathway titles in ``lang``
    (default: the user's), of one ``pathway`` if given (a pathway not registered is an ``InvalidArgument``); the
    list and its access-log row are one transaction (the API's answer and the cases page)."""
    now = _now()
    lang = lang or user.language
    if pathway:
        core.catalog.named(pathway)
    # by phase: in the order of the pathway listed, else the installation's (its newest version: only when asked)
    order = ([p.id for p in core.catalog.latest(pathway or core.settings.default_pathway).phases]
             if sort == "phase" else [])
    # a cursor the API did not hand out is an InvalidArgument (422), said in the caller's language
    with core.uow(snapshot=True) as uow:  # the list and its access-log row: one transaction
        listed = views.case_list(uow.conn, unit=policy.listed_unit(user), now=now, status=status, phase=phase,
                                 coordinator=coordinator, overdue=overdue, due_soon=due_soon,
                                 due_before=week_end(now) if due_this_week else None, q=q, sort=sort,
                                 descending=descending, phase_order=order, pathway=pathway or None, key_ring=core.keys,
                                 cursor=cursor, limit=limit, count=True,
                                 names=_step_names(core, lang, uow.conn),
                                 also=[core.catalog.NEWEST, access_writer(request, user, "case.list").call()])
        newest = core.catalog.newest_from(listed.also[0], (item["pathway"] for item in listed.items), conn=uow.conn)
        uow.commit()
    # each case's pathway by its newest version's title (None: no longer registered)
    titles = {p: definition.title.get(lang) for p, definition in newest.items()}
    return CaseList(items=[CaseSummary(**item, pathway_title=titles.get(item["pathway"])) for item in listed.items],
                    next_cursor=listed.next_cursor, total=listed.total, before=listed.before)


def _step_names(core: Forlop, lang: str, conn: Connection) -> views.StepNames:
    """A checkpoint's name in ``lang`` from its case's definition version (each version read once per list, on the
    list's own connection: a second one at the same time could wait forever for a pool that this request holds)."""
    cache: dict[tuple[str, int], Any] = {}

    def name(pathway_id: str, version: int, code: str) -> str | None:
        if (pathway_id, version) not in cache:
            try:
                cache[pathway_id, version] = core.catalog.resolve(pathway_id, version, conn=conn)
            except DefinitionVersionMissing:
                cache[pathway_id, version] = None
        definition = cache[pathway_id, version]
        checkpoint = definition.checkpoint.get(code) if definition is not None else None
        return checkpoint.name.get(lang) if checkpoint is not None else None

    return name


class NameSearch(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["Kari Testesen"])]


@router.post("/search", response_model=list[str], summary="Find my unit's cases by the person's exact name",
             description="The name goes in the body, never in a URL; it is compared by a keyed blind index, "
                         "so no record is decrypted to search.")
def search_by_name(request: Request, core: Core, user: Coordinator, body: NameSearch) -> list[str]:
    with core.uow(snapshot=True) as uow:  # the search, the unit filter and the access-log row: one transaction
        found = cases_named(uow.conn, body.name, core.settings.index_key)
        mine = views.of_unit(uow.conn, found, policy.listed_unit(user))
        access_writer(request, user, "case.search_by_name")(uow.conn)
        uow.commit()
    return mine


@router.get("/{reference}", response_model=CaseDetail, summary="One case: steps, timeline, consents, handovers")
def get_case(request: Request, core: Core, user: Coordinator, reference: str) -> JSONResponse:
    detail = read_case(request, core, user, reference)
    return JSONResponse(detail.model_dump(mode="json"), headers={"ETag": f'"{detail.version}"'})


def read_case(request: Request, core: Forlop, user: User, reference: str, *, lang: str | None = None) -> CaseDetail:
    """One case as the coordinator sees it (the API's answer and the case page). The access check, the read and its
    access-log row are one transaction and one snapshot: never a case half before, half after a write, never a case
    shown and not logged. A refused read is logged apart, once its transaction is rolled back."""
    now = _now()
    with core.uow(snapshot=True) as uow:
        access = policy.case_access(uow.conn, user, reference, now=now)
        if access.allowed:
            record = views.case_record(uow, reference)
            access_writer(request, user, "case.read", case_reference=reference,
                          break_glass=access.break_glass)(uow.conn)
            uow.commit()
    if not access.allowed:
        raise _refuse(request, core, user, "case.read", reference, access)
    return case_detail(record.case, record.events, record.grants, now=now, lang=lang or user.language,
                       part_of=record.part_of, children=record.children, resolve=core.catalog.resolve)


def case_response(core: Forlop, case: Case, *, lang: str, status: int = 200) -> JSONResponse:
    """The answer to a write: the case as it is now, with its timeline, and its version as the ETag."""
    with core.uow(read_only=True) as uow:
        events = uow.cases.events(case)
    detail = case_detail(case, events, [], now=_now(), lang=lang)
    return JSONResponse(detail.model_dump(mode="json"), status_code=status, headers={"ETag": f'"{case.version}"'})


@router.get("/{reference}/person", response_model=PersonRecord, summary="The person (decrypted; every read is logged)")
def get_person(request: Request, core: Core, user: Coordinator, reference: str) -> PersonRecord:
    # The access check, the decryption and its access-log row: one transaction, as for the case (read_case).
    with core.uow(snapshot=True) as uow:
        access = policy.case_access(uow.conn, user, reference, now=_now())
        if access.allowed:
            person = person_of(uow.conn, reference, core.keys)
            access_writer(request, user, "person.read", case_reference=reference,
                          break_glass=access.break_glass)(uow.conn)
            uow.commit()
    if not access.allowed:
        raise _refuse(request, core, user, "person.read", reference, access)
    if person is None:
        raise HTTPException(404, "this case has no person record")
    return person


# -- writing ------------------------------------------------------------------------------------------------


def version_of(if_match: str | None, body_version: int | None) -> int:
    """The case version a write was based on: If-Match, else the body's ``version``; 428 without either."""
    if if_match is not None:
        try:
            return int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError:
            raise HTTPException(422, 'If-Match: expected the case version, e.g. "7"') from None
    if body_version is not None:
        return body_version
    raise HTTPException(428, "give the case version you read (If-Match header or a 'version' field)")


class BreakGlassBody(BaseModel):
    reason: Annotated[str, Field(min_length=10, max_length=2000, examples=["akutt henvendelse utenfor åpningstid"])]
    write_reason: Annotated[str | None, Field(
        default=None, min_length=10, max_length=2000, examples=["må registrere akutt overlevering til politiet"],
        description="why you must also change the case; without it the access is read-only")] = None


class BreakGlassGranted(BaseModel):
    reference: str
    access: Literal["read", "write"]
    expires_at: datetime
    notified: int = Field(description="how many of the owning unit's coordinators and managers were told")


class BreakGlassEnded(BaseModel):
    reference: str
    ended: list[str] = Field(description="whose emergency access ended (empty: none was running)")


class OpenBody(BaseModel):
    first_contact_at: datetime | None = Field(default=None, description="default: now; earlier needs a reason")
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    person: PersonRecord | None = None
    contact_channel: Annotated[str | None, Field(
        default=None, max_length=32, examples=["phone"],
        description="how first contact came: phone, walk_in, police_escort or referral")] = None
    reason: Reason = None
    pathway: Annotated[str | None, Field(max_length=64, description="default: the installation's pathway "
                                                                     "(FORLOP_DEFAULT_PATHWAY, krisesenter)")] = None


Key = IdempotencyKey


@router.post("", status_code=201, response_model=CaseDetail, summary="Open a case at first contact")
def open_case(request: Request, core: Core, user: Coordinator, body: OpenBody, key: Key = None) -> JSONResponse:
    def run(_: object) -> JSONResponse:
        return case_response(core, open_new_case(request, core, user, body), lang=user.language, status=201)

    return idempotent(core, user, request, key, body.model_dump(mode="json"), run)


def open_new_case(request: Request, core: Forlop, user: User, body: OpenBody) -> Case:
    """Open a case in the coordinator's unit (the API's and the page's way); the write is logged."""
    at = _now()
    try:
        case = services.open_case(
            uow=core.uow(), pathway_id=body.pathway or core.settings.default_pathway, unit=user.unit or "",
            first_contact_at=body.first_contact_at or at, actor=user.username, keys=core.keys,
            index_key=core.settings.index_key, reference_prefix=core.settings.reference_prefix,
            person=body.person, conditions=body.conditions, reason=body.reason, at=at,
            contact_channel=body.contact_channel,
            also=lambda conn, opened: access_writer(request, user, "case.open", case_reference=opened.reference)(conn),
            channel=channel(request))
    except DefinitionVersionMissing:
        raise InvalidArgument("pathway", "no such pathway") from None
    return case


@router.put("/{reference}/person", response_model=CaseDetail, summary="Replace the person record (encrypted)")
def put_person(request: Request, core: Core, user: Coordinator, reference: str, person: PersonRecord,
               if_match: IfMatch = None, version: Annotated[int | None, Query(ge=1)] = None) -> JSONResponse:
    _, emergency = case_access(request, core, user, reference, "person.write", write=True)
    expected = version_of(if_match, version)
    try:
        case = services.update_person(
            uow=core.uow(), reference=reference, expected_version=expected, person=person, actor=user.username,
            keys=core.keys, index_key=core.settings.index_key, channel=channel(request),
            also=rechecked(user, reference, access_writer(request, user, "person.write", case_reference=reference,
                                                          break_glass=emergency)))
    except (NotFound, WriteRefused) as exc:  # refused by the check inside the write: logged apart, as any refusal
        log_access(core.engine, request, user, "person.write", case_reference=reference, break_glass=emergency,
                   status=404 if isinstance(exc, NotFound) else 403)
        raise
    return case_response(core, case, lang=user.language)


@router.post("/{reference}/break-glass", response_model=BreakGlassGranted,
             summary="Emergency access to a case outside my unit (reason required; read-only without write_reason)",
             description="The owning unit's coordinators and managers are told at once (inbox, and email or webhook "
                         "where they gave one: the case reference, the unit and your user name, never the reason). "
                         "The access lasts 12 hours unless ended early.")
def break_glass(request: Request, core: Core, user: Coordinator, reference: str,
                body: Annotated[BreakGlassBody, Body()]) -> BreakGlassGranted:
    return grant_access(request, core, user, reference, body)


def grant_access(request: Request, core: Forlop, user: User, reference: str, body: BreakGlassBody) -> BreakGlassGranted:
    """Grant a coordinator emergency access to a case (the API's and the case page's way): the grant, the notices to
    the owning unit and the access-log rows commit together; 404 if there is no such case."""
    now = _now()
    expires = now + policy.BREAK_GLASS_TTL
    with core.uow() as uow:  # the grant, its notices and its access-log rows: all or nothing
        case_id = policy.break_glass_case(uow.conn, user, reference)
        if case_id is None:
            raise NotFound("case", reference)
        # The reasons are the case's free text: sealed under its key, in the grant and in the access log alike.
        sealer = key_of(uow.conn, case_id, core.keys)
        reason = sealer.seal(body.reason)
        write_reason = None if body.write_reason is None else sealer.seal(body.write_reason)
        told = grant_break_glass(uow.conn, username=user.username, case_id=case_id, reason=reason,
                                 write_reason=write_reason, granted_at=now, expires_at=expires,
                                 public_url=core.settings.public_url)
        access_writer(request, user, "case.break_glass", case_reference=reference, break_glass=True,
                      reason=reason)(uow.conn)
        if write_reason is not None:
            access_writer(request, user, "case.break_glass_write", case_reference=reference, break_glass=True,
                          reason=write_reason)(uow.conn)
        uow.commit()
    return BreakGlassGranted(reference=reference, access="read" if body.write_reason is None else "write",
                             expires_at=expires, notified=told)


@router.post("/{reference}/break-glass/end", response_model=BreakGlassEnded,
             summary="End emergency access to a case early (my own, or, in the owning unit, anyone's)")
def end_emergency_access(request: Request, core: Core, user: Coordinator, reference: str,
                         username: Annotated[str | None, Query(max_length=64, description=(
                             "only this user's access (the owning unit); default: every running one"))] = None,
                         ) -> BreakGlassEnded:
    return BreakGlassEnded(reference=reference, ended=end_access(request, core, user, reference, holder=username))


def end_access(request: Request, core: Forlop, user: User, reference: str, *, holder: str | None = None) -> list[str]:
    """End emergency access to a case early, as the policy lets the user (the API's and the case page's way): the
    names whose access ended. The change and its access-log row commit together; 404 if the user may not."""
    now = _now()
    with core.uow() as uow:
        may = policy.break_glass_end(uow.conn, user, reference, now=now)
        if may is not None:
            ended = end_break_glass(uow.conn, case_id=may.case_id, holder=may.holder or holder, by=user.username,
                                    now=now)
            access_writer(request, user, "case.break_glass_end", case_reference=reference,
                          break_glass=may.holder is not None, reason=", ".join(ended) or None)(uow.conn)
            uow.commit()
    if may is None:
        raise _refuse(request, core, user, "case.break_glass_end", reference,
                      policy.CaseAccess(case_id=None))
    return ended
