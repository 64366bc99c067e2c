"""Coordinators' routes: list cases, read one, open one, the person record and emergency access. The commands on a
case have their routes in ``api.routes.operations``."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.access import grant_break_glass, has_break_glass, log_access
from api.deps import Coordinator, Core
from api.idempotency import IdempotencyKey, idempotent
from api.schemas import DUE_SOON, CaseDetail, CaseList, CaseSummary, case_detail
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway import services
from pathway.case import Case
from pathway.errors import DefinitionVersionMissing, InvalidArgument, NotFound
from pathway.people import PersonRecord
from pathway.store.tables import FAR_DUE_SQL, break_glass_t, case_t

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

Reason = Annotated[str | None, Field(default=None, max_length=2000, examples=["personen er på sykehus"])]
IfMatch = Annotated[str | None, Header(alias="If-Match", description='The case version you read, e.g. "7"')]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- access -------------------------------------------------------------------------------------------------


def case_access(request: Request, core: Forlop, user: User, reference: str, action: str) -> tuple[uuid.UUID, bool]:
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
    _, emergency = case_access(request, core, user, reference, "case.read")
    with core.uow(read_only=True) as uow:  # one snapshot: never a case half before, half after a write
        case = uow.cases.get(reference)
        events = uow.cases.events(case.id)
        grants = uow.conn.execute(sa.select(break_glass_t.c.username, break_glass_t.c.reason, break_glass_t.c.granted_at)
                                  .where(break_glass_t.c.case_id == case.id)).all()
    log_access(core.engine, request, user, "case.read", case_reference=reference, break_glass=emergency)
    return case_detail(case, events, grants, now=_now(), lang=lang or user.language)


def case_response(core: Forlop, case: Case, *, lang: str, status: int = 200) -> JSONResponse:
    """The answer to a write: the case as it is now, with its timeline, and its version as the ETag."""
    with core.uow() as uow:
        events = uow.cases.events(case.id)
    detail = case_detail(case, events, [], now=_now(), lang=lang)
    return JSONResponse(detail.model_dump(mode="json"), status_code=status, headers={"ETag": f'"{case.version}"'})


@router.get("/{reference}/person", response_model=PersonRecord, summary="The person (decrypted; every read is logged)")
def get_person(request: Request, core: Core, user: Coordinator, reference: str) -> PersonRecord:
    _, emergency = case_access(request, core, user, reference, "person.read")
    person = services.read_person(uow=core.uow(), reference=reference, keys=core.keys)
    log_access(core.engine, request, user, "person.read", case_reference=reference, break_glass=emergency)
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
        return case_response(core, open_new_case(request, core, user, body), lang=user.language, status=201)

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
    _, emergency = case_access(request, core, user, reference, "person.write")
    expected = version_of(if_match, version)
    case = services.update_person(uow=core.uow(), reference=reference, expected_version=expected, person=person,
                                  actor=user.username, keys=core.keys, index_key=core.settings.index_key)
    log_access(core.engine, request, user, "person.write", case_reference=reference, break_glass=emergency)
    return case_response(core, case, lang=user.language)


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
