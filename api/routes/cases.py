"""Coordinators' routes: list cases, read one, and every engine operation as its own route."""

from __future__ import annotations

import base64
import inspect
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.access import access_writer, grant_break_glass, has_break_glass, log_access
from api.problems import status_for
from api.deps import Coordinator, Core
from api.idempotency import IdempotencyKey, idempotent
from api.schemas import DUE_SOON, CaseDetail, CaseList, CaseSummary, case_detail
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway import services
from pathway.cases import Case
from pathway.errors import DefinitionVersionMissing, InvalidArgument, NotFound
from pathway.people import PersonRecord
from pathway.store.tables import FAR_DUE_SQL, break_glass_t, case_t

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

Reason = Annotated[str | None, Field(default=None, max_length=2000, examples=["personen er på sykehus"])]
IfMatch = Annotated[str | None, Header(alias="If-Match", description='The case version you read, e.g. "7"')]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- access -------------------------------------------------------------------------------------------------


def _case_access(request: Request, core: Forlop, user: User, reference: str, action: str) -> tuple[uuid.UUID, bool]:
    """The case id if the coordinator may see it (own unit, or emergency access); 404 otherwise, and the refused
    attempt is in the access log with its outcome."""
    with core.engine.connect() as conn:
        row = conn.execute(sa.select(case_t.c.id, case_t.c.unit).where(case_t.c.reference == reference)).first()
        if row is not None and row.unit == user.unit:
            return row.id, False
        if row is not None and has_break_glass(conn, user, row.id):
            return row.id, True
    # The reference is logged only where it names a case: anything else is client input (of any length), not data.
    log_access(core.engine, request, user, action, case_reference=reference if row is not None else None, status=404)
    raise NotFound("case", reference)


# -- reading ------------------------------------------------------------------------------------------------


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    """(sort key, case id) of the previous page's last case. A cursor is client input: anything but the two
    strings this API hands out (one forged by hand) is a 422, never a 500 from deeper down."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, str) for v in values):
            raise ValueError
        value, last_id = values
        bound: Any = value if sort == "reference" else datetime.fromisoformat(value)
        if isinstance(bound, datetime):
            if bound.tzinfo is None:
                raise ValueError
            bound = bound.astimezone(timezone.utc)
        return bound, uuid.UUID(last_id)
    except (ValueError, OverflowError):
        raise HTTPException(422, "cursor: not a cursor this API handed out") from None


_FAR = datetime(9999, 12, 31, tzinfo=timezone.utc)


def _overdue(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(case_t.c.next_due_at.is_not(None), case_t.c.next_due_at < now, case_t.c.closed_at.is_(None))


def _due_soon(now: datetime) -> sa.ColumnElement[bool]:
    # not NULL first: NOT (NULL >= now ...) is NULL, which would drop cases without a deadline from due_soon=false
    return sa.and_(case_t.c.next_due_at.is_not(None), case_t.c.next_due_at >= now,
                   case_t.c.next_due_at < now + DUE_SOON)


def case_counts(core: Forlop, unit: str | None) -> dict[str, int]:
    """How many of a unit's open cases are overdue, due within a day, and paused (the dashboard's counts)."""
    now = _now()

    def n(clause: sa.ColumnElement[bool]) -> Any:
        return sa.func.count().filter(clause)

    with core.engine.connect() as conn:
        row = conn.execute(sa.select(sa.func.count().label("open"), n(_overdue(now)).label("overdue"),
                                     n(_due_soon(now)).label("due_soon"),
                                     n(case_t.c.paused_since.is_not(None)).label("paused"))
                           .where(case_t.c.unit == unit, case_t.c.closed_at.is_(None))).one()
    return dict(row._mapping)


@router.get("", response_model=CaseList, summary="Cases of my unit")
def list_cases(
    request: Request, core: Core, user: Coordinator,
    status: Literal["open", "closed", "all"] = "open",
    stage: Annotated[str | None, Query(max_length=64)] = None,
    coordinator: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    due_soon: bool | None = None,
    q: Annotated[str | None, Query(max_length=32, description="start of a case reference")] = None,
    sort: Literal["next_due", "opened_at", "reference"] = "next_due",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CaseList:
    now = _now()
    # The same expression as the index ix_case_open_unit_next_due, with the literal inline, so it is used.
    far = sa.literal_column(FAR_DUE_SQL[core.engine.dialect.name], type_=case_t.c.next_due_at.type)
    key = {"next_due": sa.func.coalesce(case_t.c.next_due_at, far), "opened_at": case_t.c.opened_at,
           "reference": case_t.c.reference}[sort]
    query = sa.select(case_t.c.reference, case_t.c.phase, case_t.c.unit, case_t.c.coordinator, case_t.c.opened_at,
                      case_t.c.closed_at, case_t.c.paused_since, case_t.c.next_due_at, case_t.c.version,
                      case_t.c.id).where(case_t.c.unit == user.unit)
    if status != "all":
        query = query.where(case_t.c.closed_at.is_(None) if status == "open" else case_t.c.closed_at.is_not(None))
    if stage:
        query = query.where(case_t.c.phase == stage)
    if coordinator:
        query = query.where(case_t.c.coordinator == coordinator)
    if overdue is not None:
        query = query.where(_overdue(now) if overdue else sa.not_(_overdue(now)))
    if due_soon is not None:
        query = query.where(_due_soon(now) if due_soon else sa.not_(_due_soon(now)))
    if q:
        query = query.where(case_t.c.reference.startswith(q.upper(), autoescape=True))
    if cursor:
        bound, last_id = _decode_cursor(cursor, sort)
        query = query.where(sa.tuple_(key, case_t.c.id) > sa.tuple_(sa.literal(bound, key.type), last_id))
    with core.engine.connect() as conn:
        fetched = conn.execute(query.order_by(key, case_t.c.id).limit(limit + 1)).all()
    rows = fetched[:limit]
    log_access(core.engine, request, user, "case.list")
    items = [CaseSummary(
        reference=r.reference, stage=r.phase, unit=r.unit, coordinator=r.coordinator, opened_at=r.opened_at,
        closed_at=r.closed_at, paused=r.paused_since is not None, next_due_at=r.next_due_at,
        overdue=r.next_due_at is not None and r.next_due_at < now and r.closed_at is None,
        due_soon=r.next_due_at is not None and now <= r.next_due_at < now + DUE_SOON, version=r.version,
    ) for r in rows]
    nxt = None
    if len(fetched) > limit:
        last = rows[-1]
        value = {"next_due": last.next_due_at or _FAR, "opened_at": last.opened_at, "reference": last.reference}[sort]
        nxt = _encode_cursor([value.isoformat() if isinstance(value, datetime) else value, str(last.id)])
    return CaseList(items=items, next_cursor=nxt)


class NameSearch(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["Kari Testesen"])]


@router.post("/search", response_model=list[str], summary="Find my unit's cases by the person's exact name",
             description="The name goes in the body, never in a URL; it is compared by a keyed blind index, "
                         "so no record is decrypted to search.")
def search_by_name(request: Request, core: Core, user: Coordinator, body: NameSearch) -> list[str]:
    found = services.find_cases_by_name(uow=core.uow(), name=body.name, index_key=core.settings.index_key)
    with core.engine.connect() as conn:
        mine = set(conn.execute(sa.select(case_t.c.reference).where(
            case_t.c.reference.in_(found), case_t.c.unit == user.unit)).scalars()) if found else set()
    log_access(core.engine, request, user, "case.search_by_name")
    return [ref for ref in found if ref in mine]


@router.get("/{reference}", response_model=CaseDetail, summary="One case: steps, timeline, consents, handovers")
def get_case(request: Request, core: Core, user: Coordinator, reference: str) -> JSONResponse:
    detail = read_case(request, core, user, reference)
    return JSONResponse(detail.model_dump(mode="json"), headers={"ETag": f'"{detail.version}"'})


def read_case(request: Request, core: Forlop, user: User, reference: str, *, lang: str | None = None) -> CaseDetail:
    """One case as the coordinator sees it (the API's answer and the case page); the read is logged."""
    _, emergency = _case_access(request, core, user, reference, "case.read")
    with core.uow(read_only=True) as uow:  # one snapshot: never a case half before, half after a write
        case = uow.cases.get(reference)
        events = uow.cases.events(case.id)
        grants = uow.conn.execute(sa.select(break_glass_t.c.username, break_glass_t.c.reason, break_glass_t.c.granted_at)
                                  .where(break_glass_t.c.case_id == case.id)).all()
    log_access(core.engine, request, user, "case.read", case_reference=reference, break_glass=emergency)
    return case_detail(case, events, grants, now=_now(), lang=lang or user.language)


def _case_response(case: Case, events: list[Any], grants: list[Any], *, lang: str, status: int = 200) -> JSONResponse:
    detail = case_detail(case, events, grants, now=_now(), lang=lang)
    return JSONResponse(detail.model_dump(mode="json"), status_code=status, headers={"ETag": f'"{case.version}"'})


@router.get("/{reference}/person", response_model=PersonRecord, summary="The person (decrypted; every read is logged)")
def get_person(request: Request, core: Core, user: Coordinator, reference: str) -> PersonRecord:
    _, emergency = _case_access(request, core, user, reference, "person.read")
    person = services.read_person(uow=core.uow(), reference=reference, keys=core.keys)
    log_access(core.engine, request, user, "person.read", case_reference=reference, break_glass=emergency)
    if person is None:
        raise HTTPException(404, "this case has no person record")
    return person


# -- writing ------------------------------------------------------------------------------------------------


def _version(if_match: str | None, body_version: int | None) -> int:
    if if_match is not None:
        try:
            return int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError:
            raise HTTPException(422, 'If-Match: expected the case version, e.g. "7"') from None
    if body_version is not None:
        return body_version
    raise HTTPException(428, "give the case version you read (If-Match header or a 'version' field)")


def apply_operation(request: Request, core: Forlop, user: User, reference: str, *, action: str, version: int,
                    change: Callable[[Case, datetime], Any],
                    also: Callable[[sa.Connection], None] | None = None) -> Case:
    """Apply one engine operation under the version check and log the write (a refused one too); ``also``
    writes more in the same transaction (the claim of an Idempotency-Key)."""
    _, emergency = _case_access(request, core, user, reference, action)
    at = _now()
    log_write = access_writer(request, user, action, case_reference=reference, break_glass=emergency)

    def write(conn: sa.Connection) -> None:
        log_write(conn)
        if also is not None:
            also(conn)

    try:
        case, _ = services.change_case(uow=core.uow(), reference=reference, expected_version=version,
                                       change=lambda c: change(c, at), also=write)
    except Exception as exc:
        log_access(core.engine, request, user, action, case_reference=reference, status=status_for(exc),
                   break_glass=emergency)
        raise
    return case


def _operate(request: Request, core: Core, user: User, reference: str, *, action: str, version: int,
             key: str | None, body: dict[str, Any], change: Callable[[Case, datetime], Any]) -> JSONResponse:
    """Apply one engine operation, answer with the new case; a retried request (same key) gets the first answer,
    or, if that answer was lost after the change committed, the case as it is now."""

    def run(claim: Callable[[sa.Connection], None] | None) -> JSONResponse:
        case = apply_operation(request, core, user, reference, action=action, version=version, change=change,
                               also=claim)
        with core.uow() as uow:
            events = uow.cases.events(case.id)
        return _case_response(case, events, [], lang=user.language)

    def replayed() -> None:  # a stored answer is given again only to someone who may still see the case, logged
        _, emergency = _case_access(request, core, user, reference, f"{action}.replay")
        log_access(core.engine, request, user, f"{action}.replay", case_reference=reference, break_glass=emergency)

    return idempotent(core, user, request, key, body, run, replay=lambda: get_case(request, core, user, reference),
                      authorize=replayed)


class Versioned(BaseModel):
    version: int | None = Field(default=None, ge=1, description="the case version you read (or send If-Match)")


class NoteBody(Versioned):
    note: Reason = None


class ReasonBody(Versioned):
    reason: Reason = None


class RequiredReason(Versioned):
    reason: Annotated[str, Field(min_length=1, max_length=2000, examples=["ikke aktuelt for denne personen"])]


class AdHocBody(RequiredReason):
    title: Annotated[str, Field(min_length=1, max_length=2000, examples=["Følge til fastlege"])]
    owner: Annotated[str, Field(min_length=1, max_length=64, examples=["coordinator"])]
    due_at: datetime


class MilestoneBody(Versioned):
    when: datetime
    reason: Reason = None


class ConsentBody(Versioned):
    scope: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20,
                                                               examples=[["name", "contact", "threat_assessment"]])
    given: bool = True
    reason: Reason = None


class CoordinatorBody(Versioned):
    coordinator: Annotated[str, Field(min_length=1, max_length=64, examples=["koordinator"])]
    reason: Reason = None


class ConditionBody(Versioned):
    value: bool
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class HandoverBody(Versioned):
    code: Annotated[str, Field(min_length=1, max_length=32, examples=["K6"])]
    legal_basis: Literal["avert_crime", "child_welfare_duty"] | None = None
    reason: Reason = None


class CloseBody(Versioned):
    outcome: Annotated[str, Field(min_length=1, max_length=64, examples=["safe_housing"])]
    reason: Reason = None


class TransferBody(Versioned):
    municipality: Annotated[str, Field(min_length=1, max_length=200, examples=["Testkommune"])]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class BreakGlassBody(BaseModel):
    reason: Annotated[str, Field(min_length=10, max_length=2000, examples=["akutt henvendelse utenfor åpningstid"])]


class OpenBody(BaseModel):
    first_contact_at: datetime | None = Field(default=None, description="default: now; earlier needs a reason")
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    person: PersonRecord | None = None
    reason: Reason = None
    pathway: Annotated[str, Field(max_length=64)] = "krisesenter"


Key = IdempotencyKey


@router.post("", status_code=201, response_model=CaseDetail, summary="Open a case at first contact")
def open_case(request: Request, core: Core, user: Coordinator, body: OpenBody, key: Key = None) -> JSONResponse:
    def run(_: object) -> JSONResponse:
        case = open_new_case(request, core, user, body)
        with core.uow() as uow:
            events = uow.cases.events(case.id)
        return _case_response(case, events, [], lang=user.language, status=201)

    return idempotent(core, user, request, key, body.model_dump(mode="json"), run)


def open_new_case(request: Request, core: Forlop, user: User, body: OpenBody) -> Case:
    """Open a case in the coordinator's unit (the API's and the page's way); the write is logged."""
    at = _now()
    try:
        case = services.open_case(
            uow=core.uow(), pathway_id=body.pathway, unit=user.unit or "",
            first_contact_at=body.first_contact_at or at, actor=user.username, keys=core.keys,
            index_key=core.settings.index_key, reference_prefix=core.settings.reference_prefix,
            person=body.person, conditions=body.conditions, reason=body.reason, at=at)
    except DefinitionVersionMissing:
        raise InvalidArgument("pathway", "no such pathway") from None
    log_access(core.engine, request, user, "case.open", case_reference=case.reference)
    return case


@router.put("/{reference}/person", response_model=CaseDetail, summary="Replace the person record (encrypted)")
def put_person(request: Request, core: Core, user: Coordinator, reference: str, person: PersonRecord,
               if_match: IfMatch = None, version: Annotated[int | None, Query(ge=1)] = None) -> JSONResponse:
    _, emergency = _case_access(request, core, user, reference, "person.write")
    expected = _version(if_match, version)
    case = services.update_person(uow=core.uow(), reference=reference, expected_version=expected, person=person,
                                  actor=user.username, keys=core.keys, index_key=core.settings.index_key)
    log_access(core.engine, request, user, "person.write", case_reference=reference, break_glass=emergency)
    with core.uow() as uow:
        events = uow.cases.events(case.id)
    return _case_response(case, events, [], lang=user.language)


@dataclass(frozen=True)
class Operation:
    """An engine operation as the API and the case page offer it: its body model and what it does to a case."""

    action: str  # "case.complete": the access log's action, and the case page's form name
    path: str
    body: type[BaseModel]
    change: Callable[[Any, str, User], Callable[[Case, datetime], Any]]


OPERATIONS: dict[str, Operation] = {}


def _route(path: str, action: str, body_type: type[BaseModel], summary: str,
           change: Callable[[Any, str, User], Callable[[Case, datetime], Any]]) -> None:
    """Register one engine operation: POST /cases/{reference}/<path> with its body model.

    The endpoint's signature is built here so that OpenAPI names the route's own path parameter
    (code, trigger, name or agency) and its body model, and nothing else."""
    OPERATIONS[action] = Operation(action, path, body_type, change)
    target_name = next((n for n in ("code", "trigger", "name", "agency") if "{" + n + "}" in path), None)

    def endpoint(**kw: Any) -> JSONResponse:
        body = kw["body"]
        target = kw.get(target_name, "") if target_name else ""
        return _operate(kw["request"], kw["core"], kw["user"], kw["reference"], action=action,
                        version=_version(kw["if_match"], getattr(body, "version", None)), key=kw["key"],
                        body={"target": target, **body.model_dump(mode="json")},
                        change=change(body, target, kw["user"]))

    P = inspect.Parameter
    params = [P("request", P.KEYWORD_ONLY, annotation=Request), P("core", P.KEYWORD_ONLY, annotation=Core),
              P("user", P.KEYWORD_ONLY, annotation=Coordinator), P("reference", P.KEYWORD_ONLY, annotation=str)]
    if target_name:
        params.append(P(target_name, P.KEYWORD_ONLY, annotation=str))
    params += [P("body", P.KEYWORD_ONLY, annotation=body_type),
               P("if_match", P.KEYWORD_ONLY, annotation=IfMatch, default=None),
               P("key", P.KEYWORD_ONLY, annotation=Key, default=None)]
    endpoint.__signature__ = inspect.Signature(params, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    endpoint.__name__ = action.replace(".", "_")
    router.add_api_route(path, endpoint, methods=["POST"], response_model=CaseDetail, summary=summary)


_route("/{reference}/steps/{code}/complete", "case.complete", NoteBody, "Complete a checkpoint or ad-hoc step",
       lambda b, code, u: lambda c, at: c.complete(code, actor=u.username, at=at, note=b.note))
_route("/{reference}/steps/{code}/skip", "case.skip", RequiredReason, "Skip a checkpoint as not applicable",
       lambda b, code, u: lambda c, at: c.skip(code, actor=u.username, at=at, reason=b.reason))
_route("/{reference}/steps", "case.add_step", AdHocBody, "Add an ad-hoc step with its own deadline",
       lambda b, _, u: lambda c, at: c.add_step(title=b.title, owner=b.owner, due_at=b.due_at, actor=u.username,
                                                at=at, reason=b.reason))
_route("/{reference}/pause", "case.pause", RequiredReason, "Pause the clock",
       lambda b, _, u: lambda c, at: c.pause(actor=u.username, at=at, reason=b.reason))
_route("/{reference}/resume", "case.resume", ReasonBody, "Resume the clock (deadlines move by the paused time)",
       lambda b, _, u: lambda c, at: c.resume(actor=u.username, at=at, reason=b.reason))
_route("/{reference}/transitions/{trigger}", "case.advance", ReasonBody, "Move to another stage (forward or back)",
       lambda b, trigger, u: lambda c, at: c.advance(trigger, actor=u.username, at=at, reason=b.reason))
_route("/{reference}/milestones/{name}", "case.milestone", MilestoneBody, "Record a milestone (e.g. planned move-out)",
       lambda b, name, u: lambda c, at: c.record_milestone(name, when=b.when, actor=u.username, at=at, reason=b.reason))
_route("/{reference}/consents/{agency}", "case.consent", ConsentBody, "Record consent for an agency (or withdraw it)",
       lambda b, agency, u: lambda c, at: c.record_consent(agency, scope=b.scope, given=b.given, actor=u.username,
                                                           at=at, reason=b.reason))
_route("/{reference}/coordinator", "case.coordinator", CoordinatorBody, "Assign the case's coordinator",
       lambda b, _, u: lambda c, at: c.assign_coordinator(b.coordinator, actor=u.username, at=at, reason=b.reason))
_route("/{reference}/conditions/{name}", "case.condition", ConditionBody, "Set or clear a condition (e.g. children)",
       lambda b, name, u: lambda c, at: c.set_condition(name, b.value, actor=u.username, at=at, reason=b.reason))
_route("/{reference}/handovers", "case.handover", HandoverBody, "Create a handover task (consent or legal basis)",
       lambda b, _, u: lambda c, at: c.create_handover(b.code, actor=u.username, at=at, legal_basis=b.legal_basis,
                                                       reason=b.reason))
_route("/{reference}/close", "case.close", CloseBody, "Close with an outcome code",
       lambda b, _, u: lambda c, at: c.close(b.outcome, actor=u.username, at=at, reason=b.reason))
_route("/{reference}/transfer", "case.transfer", TransferBody, "Transfer to another municipality",
       lambda b, _, u: lambda c, at: c.transfer(b.municipality, actor=u.username, at=at, reason=b.reason))


@router.post("/{reference}/break-glass", summary="Emergency access to a case outside my unit (reason required)")
def break_glass(request: Request, core: Core, user: Coordinator, reference: str,
                body: Annotated[BreakGlassBody, Body()]) -> dict[str, Any]:
    with core.engine.connect() as conn:
        case_id = conn.execute(sa.select(case_t.c.id).where(case_t.c.reference == reference)).scalar()
    if case_id is None:
        raise NotFound("case", reference)
    expires = grant_break_glass(core.engine, user, case_id, body.reason)
    log_access(core.engine, request, user, "case.break_glass", case_reference=reference, break_glass=True,
               reason=body.reason)
    return {"reference": reference, "expires_at": expires.isoformat()}
