"""The children's pathways of a case (action plan, measure 11): open one, and read the children with their pathways.

A child's pathway is a case of its own (``pathway.services.children``): read and changed like any case, through
``/cases/{child reference}`` and its operations. What is here is what belongs to the family: opening a child's
pathway on the adult's case, and the children's records (first name, birth year, school), decrypted only here, each
read logged.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.access import access_writer, channel, log_access
from api.deps import Coordinator, Core
from api.routes.cases import IfMatch, WriteRefused, _refuse, case_access, case_response, rechecked, version_of
from api.schemas import CaseDetail, ChildPathwayOut, _child_out
from pathway import policy, services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.case import Case
from pathway.errors import DefinitionVersionMissing, InvalidArgument, NotFound
from pathway.people import ChildRecord
from pathway.services.children import CHILD_PATHWAY
from pathway.views.children import ChildPathway, child_pathways, child_records

router = APIRouter(prefix="/api/v1/cases", tags=["children"])


class ChildBody(BaseModel):
    child: ChildRecord
    conditions: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, examples=[["shared_parental_responsibility"]],
        description="conditions of the child's pathway, e.g. that the other parent shares parental responsibility")
    coordinator: Annotated[str | None, Field(max_length=64, description=(
        "the child's own coordinator (barnekoordinator), a coordinator of the unit; default: the case's"))] = None
    pathway: Annotated[str, Field(max_length=64)] = CHILD_PATHWAY
    version: int | None = Field(default=None, ge=1, description="the adult's case version you read (or If-Match)")


class ChildOut(ChildPathwayOut):
    child: ChildRecord | None


@router.post("/{reference}/children", status_code=201, response_model=CaseDetail,
             summary="Open a child's pathway as part of the case (the child's own steps, deadlines and reminders)")
def open_child(request: Request, core: Core, user: Coordinator, reference: str, body: ChildBody,
               if_match: IfMatch = None) -> JSONResponse:
    case = add_child(request, core, user, reference, body, if_match=if_match)
    return case_response(core, case, lang=user.language, status=201)


def add_child(request: Request, core: Forlop, user: User, reference: str, body: ChildBody, *,
              if_match: str | None = None) -> Case:
    """Open a child's pathway on the adult's case ``reference`` under the version check (``body.version`` or
    ``if_match``): the API's and the case page's way. The write is logged, a refused one too."""
    _, emergency = case_access(request, core, user, reference, "case.children", write=True)
    expected = version_of(if_match, body.version)
    log = rechecked(user, reference, access_writer(request, user, "case.children", case_reference=reference,
                                                   break_glass=emergency))
    try:
        return services.open_child_pathway(
            uow=core.uow(), reference=reference, expected_version=expected, child=body.child, actor=user.username,
            keys=core.keys, reference_prefix=core.settings.reference_prefix, pathway_id=body.pathway,
            coordinator=body.coordinator, conditions=body.conditions,
            at=datetime.now(timezone.utc), channel=channel(request), also=lambda conn, _: log(conn))
    except DefinitionVersionMissing:
        raise InvalidArgument("pathway", "no such pathway") from None
    except (NotFound, WriteRefused) as exc:  # refused by the check inside the write: logged apart
        log_access(core.engine, request, user, "case.children", case_reference=reference, break_glass=emergency,
                   status=404 if isinstance(exc, NotFound) else 403)
        raise


def read_children(request: Request, core: Forlop, user: User, reference: str, *, own: bool = False,
                  ) -> tuple[policy.CaseAccess, list[ChildPathway], dict[str, ChildRecord]]:
    """The children of a case as whoever may see the case sees them (the API's and the case page's one read): the
    access, the children's pathways of an adult's case, and the children decrypted by their pathway's reference
    (``own``: a child's pathway's own child too). The access check, the decryption and one "child.read" row per
    case whose child was read (the case asked for first) are one transaction."""
    with core.uow(snapshot=True) as uow:
        access = policy.case_access(uow.conn, user, reference, now=datetime.now(timezone.utc))
        if not access.allowed or access.case_id is None:
            return access, [], {}
        pathways = child_pathways(uow.conn, access.case_id)
        references = {p.id: p.reference for p in pathways} or ({access.case_id: reference} if own else {})
        records = child_records(uow.conn, list(references), core.keys)
        if records or not own:
            shown = list(dict.fromkeys([reference, *(references[case_id] for case_id in records)]))
            access_writer(request, user, "child.read", break_glass=access.break_glass,
                          shown=[(ref, None) for ref in shown])(uow.conn)
        uow.commit()
    return access, pathways, {references[case_id]: child for case_id, child in records.items()}


@router.get("/{reference}/children", response_model=list[ChildOut],
            summary="The children of the case with their pathways (decrypted; every read is logged)")
def list_children(request: Request, core: Core, user: Coordinator, reference: str,
                  lang: Annotated[str | None, Query(pattern="^(nb|en)$")] = None) -> list[ChildOut]:
    now = datetime.now(timezone.utc)
    access, pathways, records = read_children(request, core, user, reference)
    if not access.allowed:
        raise _refuse(request, core, user, "child.read", reference, access)
    language = lang or user.language
    return [ChildOut(**_child_out(p, core.catalog.resolve, now=now, lang=language).model_dump(),
                     child=records.get(p.reference)) for p in pathways]
