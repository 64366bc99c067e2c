"""Every command that the API offers on a case, as its own route: POST /cases/{reference}/<route>.

The routes, their body models and their access-log actions are built from the command classes
(``pathway.case.commands``): a new command with a ``route`` is offered here, on the case page and in the OpenAPI
document without an edit to this module.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model

from api.access import access_writer, channel, log_access
from api.deps import Coordinator, Core
from api.idempotency import IdempotencyKey, idempotent
from api.problems import status_for
from api.schemas import CaseDetail
from api.routes.cases import IfMatch, case_access, case_response, get_case, rechecked, version_of
from pathway import services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.case import COMMANDS, Case, Command
from pathway.case.commands import fields_of
from pathway.views.children import open_children
from pathway.store.access import Writer

if TYPE_CHECKING:
    from sqlalchemy import Connection

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def body_model(command: type[Command]) -> type[BaseModel]:
    """The request body of a command: its fields (but the one the path names) with their limits, and the version."""
    fields: dict[str, Any] = {"version": (int | None, Field(default=None, ge=1,
                                                           description="the case version you read (or send If-Match)"))}
    if command.reaches_children:
        fields["children"] = (bool, Field(default=False, description=(
            "also on each open child's pathway of the case (without it, a child's clock does not follow)")))
    for f in dataclasses.fields(command):
        if f.name == command.target:
            continue
        kind, meta = fields_of(command)[f.name], f.metadata
        item: dict[str, Any] = {k: meta[k] for k in ("min_length", "max_length") if meta.get(k) is not None}
        if meta.get("choices"):
            kind = Literal[meta["choices"]] | None  # type: ignore[valid-type]
            item = {}
        elif meta.get("max_items") is not None:  # a list of short strings
            kind, item = list[Annotated[str, Field(**item)]], {"max_length": meta["max_items"]}
        if meta.get("example") is not None:
            item["examples"] = [meta["example"]]
        default = f.default if f.default is not dataclasses.MISSING else ...
        fields[f.name] = (kind, Field(default=list(default) if isinstance(default, tuple) else default, **item))
    return create_model(f"{command.__name__}Body", **fields)


BODIES: dict[type[Command], type[BaseModel]] = {c: body_model(c) for c in COMMANDS.values() if c.route}
BY_ACTION: dict[str, type[Command]] = {c.action: c for c in BODIES}


def command_of(command: type[Command], body: BaseModel, target: str) -> Command:
    """The command a request (or a page's form) asks for: the body's fields and the path's target."""
    values = {name: getattr(body, name) for name in fields_of(command) if name != command.target}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if command.target:
        values[command.target] = target
    return command(**values)


def apply_operation(request: Request, core: Forlop, user: User, reference: str, *, command: Command, version: int,
                    also: Writer | None = None, then: Sequence[Command] = (), children: bool = False) -> Case:
    """Run one command under the version check and log the write (a refused one too); ``also`` writes more in the
    same transaction (the claim of an Idempotency-Key); ``then`` runs more commands in it (all stored, or none),
    each logged; ``children``: on the children's pathways too (``services.execute``). The API and the case page both
    come through here. Someone who may only read the case (emergency
    access without a write reason) is refused: 403, logged."""
    _, emergency = case_access(request, core, user, reference, command.action, write=True)
    actions = list(dict.fromkeys(c.action for c in (command, *then)))
    log_writes = [rechecked(user, reference, access_writer(request, user, action, case_reference=reference,
                                                           break_glass=emergency)) for action in actions]

    def write(conn: Connection) -> None:
        for log_write in log_writes:
            log_write(conn)
        if children:  # each child's pathway the change reaches has its own row
            shown: list[tuple[str | None, uuid.UUID | None]] = [(ref, None) for _, ref in open_children(conn, reference)]
            if shown:
                for action in actions:
                    access_writer(request, user, action, break_glass=emergency, shown=shown)(conn)
        if also is not None:
            also(conn)

    try:
        case, _ = services.execute(uow=core.uow(), reference=reference, expected_version=version, command=command,
                                   actor=user.username, at=datetime.now(timezone.utc), also=write,
                                   channel=channel(request), then=then, children=children)
    except Exception as exc:
        for action in actions:
            log_access(core.engine, request, user, action, case_reference=reference, status=status_for(exc),
                       break_glass=emergency)
        raise
    return case


def _operate(request: Request, core: Forlop, user: User, reference: str, *, command: Command, version: int,
             key: str | None, body: dict[str, Any], children: bool = False) -> JSONResponse:
    """Run one command, answer with the new case; a retried request (same key) gets the first answer, or, if that
    answer was lost after the change committed, the case as it is now."""

    def run(claim: Writer | None) -> JSONResponse:
        case = apply_operation(request, core, user, reference, command=command, version=version, also=claim,
                               children=children)
        return case_response(core, case, lang=user.language)

    def replayed() -> None:  # a stored answer is given again only to someone who may still see the case, logged
        action = f"{command.action}.replay"
        _, emergency = case_access(request, core, user, reference, action)
        log_access(core.engine, request, user, action, case_reference=reference, break_glass=emergency)

    return idempotent(core, user, request, key, body, run, replay=lambda: get_case(request, core, user, reference),
                      authorize=replayed)


def _route(command: type[Command], body_type: type[BaseModel]) -> None:
    """Register one command's route. The endpoint's signature is built here so that OpenAPI names the route's own
    path parameter (code, trigger, name or agency) and its body model, and nothing else."""
    target = command.target

    def endpoint(**kw: Any) -> JSONResponse:
        body = kw["body"]
        value = kw[target] if target else ""
        return _operate(kw["request"], kw["core"], kw["user"], kw["reference"],
                        command=command_of(command, body, value), version=version_of(kw["if_match"], body.version),
                        key=kw["key"], body={"target": value, **body.model_dump(mode="json")},
                        children=bool(getattr(body, "children", False)))

    P = inspect.Parameter
    params = [P("request", P.KEYWORD_ONLY, annotation=Request), P("core", P.KEYWORD_ONLY, annotation=Core),
              P("user", P.KEYWORD_ONLY, annotation=Coordinator), P("reference", P.KEYWORD_ONLY, annotation=str)]
    if target:
        params.append(P(target, P.KEYWORD_ONLY, annotation=str))
    params += [P("body", P.KEYWORD_ONLY, annotation=body_type),
               P("if_match", P.KEYWORD_ONLY, annotation=IfMatch, default=None),
               P("key", P.KEYWORD_ONLY, annotation=IdempotencyKey, default=None)]
    endpoint.__signature__ = inspect.Signature(params, return_annotation=JSONResponse)  # type: ignore[attr-defined]
    endpoint.__name__ = command.action.replace(".", "_")
    router.add_api_route(f"/{{reference}}{command.route}", endpoint, methods=["POST"], response_model=CaseDetail,
                         summary=command.summary)


for _command, _body in BODIES.items():
    _route(_command, _body)
