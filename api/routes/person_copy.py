"""The person's copy (GDPR art. 15, right of access): everything recorded about the person of a case, as JSON. The
readable document of the same copy is the page ``/cases/{reference}/copy`` (``api.web.person_copy``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.access import access_writer
from api.deps import Allow, Core
from api.routes.cases import _refuse
from pathway import policy
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.services.person_copy import PersonCopy, person_copy, to_json

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

COPY = "case.copy"  # the access log's action of an export
# An administrator (answering the person's request) or the case's own coordinator; anyone else: not found.
Exporter = Annotated[User, Depends(Allow("coordinator", "admin", hide=True))]


def export_copy(request: Request, core: Forlop, user: User, reference: str) -> PersonCopy:
    """The person's copy of a case, if the policy lets the user export it (the API's and the page's one read): the
    check, the read and its access-log row ("case.copy") are one transaction and one snapshot. Refused: logged
    apart, and not found (404), as any case read is."""
    now = datetime.now(timezone.utc)
    with core.uow(snapshot=True) as uow:
        access = policy.may_export_copy(uow.conn, user, reference, now=now)
        if access.allowed:
            copy = person_copy(uow, reference=reference, keys=core.keys, now=now)
            # One row per pathway the copy read: the case's and each child's (their records and timelines are in it).
            access_writer(request, user, COPY, shown=[(reference, None), *((c.case.reference, None)
                                                                           for c in copy.children)])(uow.conn)
            uow.commit()
    if not access.allowed:
        raise _refuse(request, core, user, COPY, reference, access)
    return copy


@router.get("/{reference}/copy", summary="The person's copy: everything recorded about the person (right of access)",
            description="The case, the person record, the children's pathways with their records, every step, the "
                        "timeline with its reasons and notes, the handovers (which agency received what, on which "
                        "basis, its reply), emergency grants, legal holds and the access log of each pathway. For an "
                        "administrator or the case's own coordinator; the export is itself in the access log. The "
                        "readable document (bokmål, printable) is the page /cases/{reference}/copy.")
def get_copy(request: Request, core: Core, user: Exporter, reference: str) -> JSONResponse:
    copy = export_copy(request, core, user, reference)
    return JSONResponse(to_json(copy), headers={
        "Content-Disposition": f'attachment; filename="innsyn-{copy.case.reference}.json"',
        "Cache-Control": "no-store"})
