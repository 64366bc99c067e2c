"""The coordinator's pages: the unit's cases, opening a case, and the case page with every engine operation.

Every page goes through the same functions as the API (the list, the case detail, the operations and their body
models), so the two cannot disagree about what is allowed or what is logged.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.access import access_writer
from api.deps import Core
from api.i18n import N_, refusal_text
from api.problems import describe, names_for
from api.routes import cases as api
from api.routes import children as family
from api.routes import operations
from api.web import diagram
from api.web.auth import see_other
from api.web.i18n import first_person_change, form_errors, person_change, translator
from api.web.render import OSLO, page
from api.web.session import CoordinatorPage, Posted, Session, language
from api.web.urgency import how_late
from pathway import policy, services
from pathway.accounts import User
from pathway.case import ANSWERED
from pathway.case.aggregate import TYPED_CHANNELS
from pathway.case.commands import CreateHandover, RecordConsent
from pathway.definition import RISK_LEVELS
from pathway.errors import ConcurrencyConflict, DatabaseError, ForlopError, NotFound
from pathway.people import ChildRecord, municipalities
from pathway.services.children import CHILD_PATHWAY
from pathway.services.people import Shown, people_of
from pathway.views.break_glass import case_grants
from pathway.views.cases import case_counts, handover_alerts, of_unit
from pathway.views.deadlines import deadline_status
from pathway.views.offers import CONSENT, CONSENT_NOW, offers
from pathway.views.users import coordinators_of

router = APIRouter(include_in_schema=False)
# Operations that cannot be undone ask for a confirmation (a checkbox: it works without script, and is read out).
IRREVERSIBLE = {"case.skip", "case.close", "case.transfer"}
TIMES = {"due_at", "when", "first_contact_at", "effective_at"}
# The words of a case's first-contact channel and of a person's address protection (bokmål in the catalog).
CHANNEL_LABELS = dict(zip(TYPED_CHANNELS, (N_("Phone"), N_("Walk-in"), N_("Escorted by the police"),
                                           N_("Referral")), strict=True))
# The case page also names the channel no one types: a police referral accepted from the queue.
OPENED_BY = {**CHANNEL_LABELS, "police": N_("Police referral")}
PROTECTION_LABELS = {"none": N_("No address protection"), "code7": N_("Code 7: confidential address"),
                     "code6": N_("Code 6: strictly confidential address")}
# A threat assessment's level in words (bokmål in the catalog), and the handover's urgency by the same words.
RISK_LABELS = dict(zip(RISK_LEVELS, (N_("Low"), N_("Medium"), N_("High")), strict=True))
PERSON_FIELDS = ("name", "safe_contact", "address_protection", "children_ages", "interpreter_language",
                 "home_municipality")
PAGE_SIZE = 50
# Where on the case page each form lives (its section's id): a saved form returns there, not to the top.
SECTION_OF = {"complete": "steps", "skip": "steps", "consent": "consents", "handover": "handovers",
              "close": "result", "transfer": "result",  # a closed case has no actions: its top says so
              "break_glass": "emergency-access", "break_glass_end": "emergency-access", "risk": "risk",
              "children": "children"}


@router.get("/cases")
def dashboard(
    request: Request, core: Core, session: CoordinatorPage,
    q: Annotated[str, Query(max_length=32)] = "",
    phase: Annotated[str, Query(max_length=64)] = "",
    who: Literal["unit", "mine"] = "unit",
    deadline: Literal["all", "overdue", "week", "due_soon"] = "all",
    status: Literal["open", "closed", "all"] = "open",
    sort: api.ListSort = "next_due",
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    pathway: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    user = session.user
    lang = language(request, user)
    listed = api.case_list(request, core, user, status=status, phase=phase or None, pathway=pathway or None,
                           coordinator=user.username if who == "mine" else None,
                           overdue=True if deadline == "overdue" else None,
                           due_soon=True if deadline == "due_soon" else None, due_this_week=deadline == "week",
                           q=q.strip() or None, sort=sort, descending=order == "desc", cursor=cursor,
                           limit=PAGE_SIZE, lang=lang)
    now = datetime.now(timezone.utc)
    with core.uow(read_only=True) as uow:
        counts = case_counts(uow.conn, unit=policy.listed_unit(user), now=now)
    # Every registered pathway (the filter's choices, and each row's phase named by its own pathway); the phase
    # filter offers the phases of the pathway listed, else of the installation's.
    pathways = {p: core.catalog.latest(p) for p in sorted({p for p, _, _ in core.catalog.versions()})}
    definition = pathways.get(pathway) or core.catalog.latest(core.settings.default_pathway)
    phases = {p.id: p.title for p in definition.phases}
    pathway_phases = {p: {ph.id: ph.title for ph in d.phases} for p, d in pathways.items()}
    filters = {"q": q, "phase": phase, "who": who, "deadline": deadline, "status": status, "pathway": pathway}
    t = translator(lang)
    return page(request, "cases.html", session, cases=listed.items, next_cursor=listed.next_cursor,
                people=listed_people(request, core, user, [c.reference for c in listed.items]),
                total=listed.total, before=listed.before, counts=counts, phases=phases, filters=filters,
                sort=sort, order=order, paged=cursor is not None,
                agencies={a: name for d in pathways.values() for a, name in d.agencies.items()},
                pathways={p: d.title for p, d in pathways.items()}, pathway_phases=pathway_phases,
                how_late=lambda due: how_late(due, now, t),
                link=lambda **changes: "/cases?" + urlencode({**filters, "sort": sort, "order": order, **changes}))


def listed_people(request: Request, core: Core, user: User, references: list[str]) -> dict[str, Shown]:
    """The people of listed cases (the list, a name search), by reference: of those cases the policy lists for the
    user (their unit's), decrypted, with one access-log row per case whose person was shown ("person.list"), in
    the decryption's own transaction. The one place where a page decrypts more than one person."""
    if not references:
        return {}
    with core.uow(snapshot=True) as uow:
        shown = people_of(uow.conn, of_unit(uow.conn, references, policy.listed_unit(user)), core.keys)
        decrypted: list[tuple[str | None, Any]] = [(r, None) for r, s in shown.items() if s.person is not None]
        if decrypted:
            access_writer(request, user, "person.list", shown=decrypted)(uow.conn)
        uow.commit()
    return shown


def case_person(request: Request, core: Core, user: User, reference: str) -> Shown | None:
    """The person of one case for its page: shown to whoever the policy lets see the case (``case_access``: its
    unit's coordinators, and a holder of emergency access, read-only or not: emergency access is for acting on
    the person's situation, and the API's person read allows the same), decrypted and logged as the API logs
    its person read ("person.read", marked as emergency access where it is), in one transaction."""
    with core.uow(snapshot=True) as uow:
        access = policy.case_access(uow.conn, user, reference, now=datetime.now(timezone.utc))
        if not access.allowed:
            return None
        shown = people_of(uow.conn, [reference], core.keys).get(reference)
        if shown is not None and shown.person is not None:
            access_writer(request, user, "person.read", case_reference=reference,
                          break_glass=access.break_glass)(uow.conn)
        uow.commit()
    return shown


def case_children(request: Request, core: Core, user: User, reference: str) -> dict[str, ChildRecord]:
    """The children of one case for its page, by their pathway's reference: an adult's case its children's, a
    child's pathway its own child. Shown to whoever may see the case (as its person is), decrypted by one view call
    and logged by the API's own read of the children (``api.routes.children.read_children``)."""
    return family.read_children(request, core, user, reference, own=True)[2]


@router.post("/cases/search")
def search_by_name(request: Request, core: Core, session: CoordinatorPage, form: Posted) -> Response:
    """Find the unit's cases by the person's exact name: posted in the body, never in a URL, and looked up by the
    API's search (blind index; logged), then the found cases' names shown as the list shows them."""
    try:
        body = api.NameSearch.model_validate({"name": form.get("name") or ""})
    except ValidationError:
        return page(request, "case_search.html", session, status=422, invalid=True, found=None, people={})
    found = api.search_by_name(request, core, session.user, body)
    return page(request, "case_search.html", session, invalid=False, found=found,
                people=listed_people(request, core, session.user, found))


@router.get("/cases/new")
def new_case(request: Request, core: Core, session: CoordinatorPage) -> Response:
    return _new_case_page(request, core, session)


def _new_case_page(request: Request, core: Core, session: Session, *, status: int = 200,
                   errors: list[dict[str, Any]] | None = None, message: str | None = None,
                   typed: FormData | None = None) -> Response:
    return page(request, "case_new.html", session, status=status,
                definition=core.catalog.latest(core.settings.default_pathway),
                errors=errors or [], message=message, channel_labels=CHANNEL_LABELS,
                protection_labels=PROTECTION_LABELS, municipalities=municipalities(), typed=typed or {})


@router.post("/cases/new")
def open_case(request: Request, core: Core, session: CoordinatorPage, form: Posted) -> Response:
    data: dict[str, Any] = {"conditions": form.getlist("conditions"), "reason": form.get("reason") or None}
    if form.get("first_contact_at"):
        data["first_contact_at"] = form.get("first_contact_at")
    if form.get("contact_channel"):
        data["contact_channel"] = form.get("contact_channel")
    person: dict[str, Any] = {k: form.get(f"person_{k}") for k in PERSON_FIELDS if form.get(f"person_{k}")}
    if "children_ages" in person:  # "4, 9" (a number the model refuses is reported where it stands)
        person["children_ages"] = [a for a in str(person["children_ages"]).replace(",", " ").split() if a]
    if person.keys() - {"address_protection"} or person.get("address_protection", "none") != "none":
        data["person"] = person
    try:
        body = api.OpenBody.model_validate(_local_times(data))
        case = api.open_new_case(request, core, session.user, body)
    except ValidationError as exc:
        return _new_case_page(request, core, session, status=422, errors=_errors(exc, request, session),
                              typed=form)
    except DatabaseError:  # the database's state, or a bug: the app's problem page answers it, not this form
        raise
    except ForlopError as exc:
        lang = language(request, session.user)
        status, detail, _, _ = describe(exc, lang, names_for(request, lang))
        return _new_case_page(request, core, session, status=status, message=detail, typed=form)
    return see_other(f"/cases/{case.reference}")


@router.get("/cases/{reference}")
def case_page(request: Request, core: Core, session: CoordinatorPage, reference: str,
              done: Annotated[str, Query(max_length=40)] = "") -> Response:
    return _case_page(request, core, session, reference, saved=bool(done), done=done)


def _case_page(request: Request, core: Core, session: Session, reference: str, *, status: int = 200,
               saved: bool = False, done: str = "", conflict: bool = False, refused: dict[str, Any] | None = None,
               failed_action: str = "", errors: list[dict[str, Any]] | None = None,
               typed: FormData | None = None) -> Response:
    lang = language(request, session.user)
    detail = api.read_case(request, core, session.user, reference, lang=lang)
    definition = core.catalog.resolve(detail.pathway, detail.pathway_version)
    now = datetime.now(timezone.utc)
    with core.uow(read_only=True) as uow:
        coordinators = coordinators_of(uow.conn, detail.unit)  # the case's unit: its coordinator is one of theirs
        # What the user may do here, as the policy answers it for the API too: read-only emergency access shows
        # the case without its forms, and says how to ask for write access.
        access = policy.case_access(uow.conn, session.user, reference, now=now)
        may_copy = policy.may_export_copy(uow.conn, session.user, reference, now=now).allowed
        grants = case_grants(uow.conn, access.case_id, now=now, keys=core.keys) if access.case_id is not None else []
        # A declined handover still to be settled, by the case list's rule: what to do next is said under the table.
        alerts = (handover_alerts(uow.conn, [access.case_id], now).get(access.case_id, [])
                  if access.case_id is not None else [])
    own_unit = session.user.unit == detail.unit
    mine = [g for g in grants if g.running and g.username == session.user.username]
    may_end = any(g.running for g in grants) if own_unit else bool(mine)
    # What the page offers, asked of the case as its commands ask when they run (only to who may write).
    offered = offers(services.get_case(uow=core.uow(read_only=True), reference=reference), at=now) \
        if access.write else None
    deadline = deadline_status(detail.next_due_at, datetime.now(timezone.utc), closed=detail.closed_at is not None)
    opened = next((e.payload for e in detail.timeline if e.operation == "open"), {})
    first_person = first_person_change([(e.seq, e.operation) for e in detail.timeline])
    named = names_for(request, lang)  # once for the page: every refusal on it is named by the same words
    handovers = {code: c.handover for code, c in definition.checkpoint.items() if c.handover is not None}
    # Each with whether another agency could be asked instead (K9: NAV or the housing office).
    declined = [{**a, "elsewhere": a["code"] in handovers and len(handovers[a["code"]].agencies) > 1}
                for a in alerts if a["status"] == "declined"]
    # A child's pathway shows its child where an adult's case shows its person; an adult's lists its children.
    children = case_children(request, core, session.user, reference) if detail.part_of or detail.children else {}
    return page(request, "case.html", session, status=status, case=detail, definition=definition,
                shown=None if detail.part_of else case_person(request, core, session.user, reference),
                children=children, child_definition=core.catalog.latest(CHILD_PATHWAY) if not detail.part_of else None,
                handover_warnings=lambda code: definition.handover_warnings(code, detail.conditions),
                typed=typed or {}, how_late=lambda due: how_late(due, now, translator(lang)),
                contact_channel=OPENED_BY.get(opened.get("contact_channel", "")),
                protection_labels=PROTECTION_LABELS, risk_levels=RISK_LEVELS, risk_labels=RISK_LABELS,
                case_overdue=deadline == "overdue", case_due_soon=deadline == "due_soon",
                diagram=diagram.build(definition, detail, lang),
                grants=grants, read_only=access.read_only, emergency=access.break_glass, may_end=may_end,
                own_unit=own_unit, offers=offered,
                named=lambda r: refusal_text(r, lang, named),
                coordinators=coordinators, phases={p.id: p.title for p in definition.phases},
                saved=saved, saved_in=SECTION_OF.get(done, "actions") if saved else "", conflict=conflict,
                refused=refused,
                failed_action=failed_action, errors=errors or [], irreversible=IRREVERSIBLE,
                declined=declined, answered=ANSWERED, may_copy=may_copy,
                person_change=lambda fields, seq: person_change(fields, lang, first=seq == first_person))


@router.post("/cases/{reference}/do/{action}")
def operate(request: Request, core: Core, session: CoordinatorPage, reference: str, action: str,
            form: Posted) -> Response:
    command = operations.BY_ACTION.get(f"case.{action}")
    if command is None:
        return _case_page(request, core, session, reference, status=404, failed_action=action,
                          refused={"detail": "no such operation", "allowed": []})
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        return _case_page(request, core, session, reference, status=422, failed_action=action,
                          errors=[{"loc": "version", "msg": "missing"}])
    if command.action in IRREVERSIBLE and form.get("confirm") != "yes":
        return _case_page(request, core, session, reference, status=422, failed_action=action,
                          errors=[{"loc": "confirm", "msg": "confirm"}])
    target = str(form.get("target", ""))
    try:
        body = operations.BODIES[command].model_validate(_local_times(_fields(form, operations.BODIES[command])))
        operations.apply_operation(request, core, session.user, reference, version=version,
                                   command=operations.command_of(command, body, target),
                                   children=bool(getattr(body, "children", False)))
    except ValidationError as exc:
        return _case_page(request, core, session, reference, status=422, failed_action=action, errors=_errors(exc, request, session))
    except (ForlopError, api.WriteRefused) as exc:
        return _refused(request, core, session, reference, action, exc)
    return see_other(f"/cases/{reference}?done={action}#{SECTION_OF.get(action, 'actions')}")


@router.post("/cases/{reference}/children")
def add_child(request: Request, core: Core, session: CoordinatorPage, reference: str, form: Posted) -> Response:
    """A child's own pathway on the adult's case, from the case page: the child's record, the child pathway's
    conditions ticked, the child's coordinator; through the API's own handler (``family.add_child``)."""
    action = "children"
    child = {k: form.get(k) for k in ("first_name", "birth_year", "school") if form.get(k)}
    data: dict[str, Any] = {"child": child, "conditions": form.getlist("conditions"),
                            "coordinator": form.get("coordinator") or None, "version": form.get("version") or None}
    try:
        body = family.ChildBody.model_validate(data)
        if body.version is None:  # the page always sends the version it showed: without it, nothing is checked
            return _case_page(request, core, session, reference, status=422, failed_action=action,
                              errors=[{"loc": "version", "msg": "missing"}], typed=form)
        family.add_child(request, core, session.user, reference, body)
    except ValidationError as exc:
        return _case_page(request, core, session, reference, status=422, failed_action=action,
                          errors=_errors(exc, request, session), typed=form)
    except (ForlopError, api.WriteRefused) as exc:
        return _refused(request, core, session, reference, action, exc)
    return see_other(f"/cases/{reference}?done={action}#{SECTION_OF[action]}")


@router.post("/cases/{reference}/handover")
def hand_over(request: Request, core: Core, session: CoordinatorPage, reference: str, form: Posted) -> Response:
    """A handover for a handover checkpoint in one form: on consent given now (the consent, with the scope ticked,
    and the task: two commands in one transaction, both stored or neither), on consent recorded before, or on a
    legal basis with its reason."""
    action = "handover"
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        return _case_page(request, core, session, reference, status=422, failed_action=action,
                          errors=[{"loc": "version", "msg": "missing"}])
    code, basis = str(form.get("code") or ""), str(form.get("basis") or "")
    reason, note = str(form.get("reason") or "") or None, str(form.get("note") or "") or None
    agency = str(form.get("agency") or "")
    # The agency is posted with every form; the task names it only where the checkpoint has several to choose from.
    to = agency if form.get("chosen") else None
    commands: list[Any]
    if basis == CONSENT_NOW:  # the consent to the checkpoint's agency (another one's leaves the handover refused)
        commands = [RecordConsent(agency=agency, scope=tuple(str(s) for s in form.getlist("scope"))),
                    CreateHandover(code=code, agency=to, note=note)]
    elif basis == CONSENT:
        commands = [CreateHandover(code=code, agency=to, note=note)]
    else:
        commands = [CreateHandover(code=code, agency=to, legal_basis=basis or None, reason=reason, note=note)]
    try:
        operations.apply_operation(request, core, session.user, reference, version=version, command=commands[0],
                                   then=commands[1:])
    except (ForlopError, api.WriteRefused) as exc:
        return _refused(request, core, session, reference, action, exc)
    return see_other(f"/cases/{reference}?done={action}#{SECTION_OF[action]}")


def _refused(request: Request, core: Core, session: Session, reference: str, action: str,
             exc: ForlopError | api.WriteRefused) -> Response:
    """A form the case refused: the page again, saying why in the reader's language where the refusal has a code."""
    if isinstance(exc, api.WriteRefused):  # read-only emergency access: refused (and logged) as the API's
        t = translator(language(request, session.user))
        return _case_page(request, core, session, reference, status=403, failed_action=action, refused={
            "detail": t("Your emergency access to this case is read-only. To change it, ask for write access "
                        "with its own reason."), "allowed": []})
    if isinstance(exc, ConcurrencyConflict):
        return _case_page(request, core, session, reference, status=409, conflict=True, failed_action=action)
    if isinstance(exc, (DatabaseError, NotFound)):  # the database's state, a bug, or not the user's case: the
        raise exc  # app's problem page or the 404 page answers it, not this form
    lang = language(request, session.user)
    named = names_for(request, lang)
    status, detail, _, extra = describe(exc, lang, named)
    refusal = getattr(exc, "refusal", None)  # said as the page says it beside an operation it cannot offer
    return _case_page(request, core, session, reference, status=status, failed_action=action,
                      refused={"detail": refusal_text(refusal, lang, named) if refusal is not None else detail,
                               "allowed": [] if refusal is not None else named["allowed"](extra.get("allowed", []))})


@router.post("/cases/{reference}/break-glass")
def ask_write_access(request: Request, core: Core, session: CoordinatorPage, reference: str,
                     form: Posted) -> Response:
    """Emergency write access, asked for from the read-only case page: the reason and the write reason, both."""
    data = {"reason": form.get("reason") or "", "write_reason": form.get("write_reason") or ""}
    try:
        body = api.BreakGlassBody.model_validate(data)
    except ValidationError as exc:
        return _case_page(request, core, session, reference, status=422, failed_action="break_glass",
                          errors=_errors(exc, request, session))
    api.grant_access(request, core, session.user, reference, body)
    return see_other(f"/cases/{reference}?done=break_glass#emergency-access")


@router.post("/cases/{reference}/break-glass/end")
def end_emergency_access(request: Request, core: Core, session: CoordinatorPage, reference: str,
                         form: Posted) -> Response:
    """End emergency access early: the holder their own, a coordinator of the owning unit anyone's (or one's)."""
    holder = str(form.get("username") or "") or None
    api.end_access(request, core, session.user, reference, holder=holder)
    with core.uow(read_only=True) as uow:  # the holder's own access just ended: the case is no longer theirs to see
        still = policy.case_access(uow.conn, session.user, reference, now=datetime.now(timezone.utc)).allowed
    return see_other(f"/cases/{reference}?done=break_glass_end#emergency-access" if still else "/cases")


def _fields(form: FormData, model: Any) -> dict[str, Any]:
    """The form's values for a body model: lists for list fields, booleans from yes/no, empty as absent."""
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name == "version":
            continue
        if "list" in str(info.annotation):
            data[name] = form.getlist(name)
            continue
        value = form.get(name)
        if value is None or value == "":
            continue
        if info.annotation is bool:
            data[name] = value == "yes"
        else:
            data[name] = value
    return data


def _local_times(data: dict[str, Any]) -> dict[str, Any]:
    """A time typed into a page is Norwegian local time (a datetime-local input has no zone)."""
    for key in TIMES & data.keys():
        try:
            value = datetime.fromisoformat(str(data[key]))
        except ValueError:
            continue  # left for the model to refuse, with its own message
        data[key] = value.replace(tzinfo=OSLO) if value.tzinfo is None else value
    return data


def _errors(exc: ValidationError, request: Request, session: Session) -> list[dict[str, Any]]:
    return form_errors(exc, language(request, session.user))
