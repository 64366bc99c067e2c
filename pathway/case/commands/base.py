"""What every command is: a small frozen dataclass whose fields are its event's payload, and one ``run``.

A command is built by whoever asks for the change (the API from a request body, the pages from a form, the CLI
from its options, replay from a recorded event) and handed to ``Case.execute``. ``operation`` is the event's;
``action``, ``route``, ``target`` and ``summary`` say how the entry points offer it; ``arg`` declares a field's
limits once, for the domain's own checks' documentation and for the request bodies built from the command.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pathway.case.refusals import Refusal
from pathway.case.values import iso, parse_iso, utc
from pathway.definition import PathwayDefinition
from pathway.errors import InvalidArgument

if TYPE_CHECKING:
    from pathway.case.aggregate import Case
    from pathway.case.events import Event

Resolver = Callable[[str, int], PathwayDefinition]
C = TypeVar("C", bound="Command")
COMMANDS: dict[str, type[Command]] = {}


@dataclass(frozen=True, slots=True)
class Context:
    """Who asks for the change and when; ``resolve`` finds a definition version (only migration needs it)."""

    actor: str
    at: datetime
    resolve: Resolver | None = None
    channel: str | None = None  # where the change came from: api, web, cli, scheduler (recorded on its event)


def arg(default: Any = dataclasses.MISSING, *, min_length: int | None = None, max_length: int | None = None,
        max_items: int | None = None, choices: tuple[str, ...] | None = None, example: Any = None) -> Any:
    """A command field with the limits a request for it must keep (read by the API to build its body model)."""
    meta = {"min_length": min_length, "max_length": max_length, "max_items": max_items, "choices": choices,
            "example": example}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Command:
    operation: ClassVar[str]  # the event's operation
    action: ClassVar[str]  # the access log's action and the case page's form name, e.g. "case.pause"
    route: ClassVar[str | None] = None  # where the API offers it, below /cases/{reference}; None: not offered
    target: ClassVar[str | None] = None  # the field the route's path names, e.g. "code"
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, *, operation: str, action: str, route: str | None = None, target: str | None = None,
                          summary: str = "", adaptation: str | None = None, children: bool = False) -> None:
        """``class Pause(Command, operation="pause", action="case.pause", ...)``: declare and register a command.
        ``children``: whoever asks may have it run on the children's pathways of the case too (the clock)."""
        cls.operation, cls.action, cls.route, cls.target = operation, action, route, target
        cls.summary, cls.adaptation, cls.reaches_children = summary, adaptation, children
        COMMANDS[operation] = cls

    def run(self, case: Case, ctx: Context) -> Any:
        raise NotImplementedError

    # -- whether it can be run now: one rule for what the case page offers and what ``run`` refuses ------------

    adaptation: ClassVar[str | None] = None  # the pathway must allow this adaptation for the command to be offered
    reaches_children: ClassVar[bool] = False  # may also be run on the children's pathways (``services.execute``)

    @classmethod
    def refusal(cls, case: Case) -> Refusal | None:
        """Why the command cannot run on the case now, whatever its fields (None when it can). ``allowed_operations``
        lists the command only without it; ``refused`` starts from it."""
        if case.is_closed:
            return Refusal(cls.operation, "closed")
        if cls.adaptation is not None and cls.adaptation not in case.definition.adaptations:
            return Refusal(cls.adaptation, "adaptation")
        return None

    def refused(self, case: Case) -> Refusal | None:
        """Why this command, with its fields, cannot run on the case now, by every rule that does not depend on
        free text or on the time: ``run`` raises it first (``check``), and the case page offers a form only where
        the command it posts is not refused (``Case.refusal``). A command with rules on its fields adds them here."""
        return self.refusal(case)

    def reason_required(self, case: Case) -> bool:
        """Whether the command needs a reason on this case: its reason field is required, unless it says otherwise.
        ``run`` asks it, and the case page marks the reason required by it."""
        reason = next((f for f in dataclasses.fields(self) if f.name == "reason"), None)
        return reason is not None and (reason.metadata.get("min_length") or 0) >= 1

    @classmethod
    def offered(cls, case: Case) -> list[str]:
        """The operations (as ``allowed_operations`` names them) this command offers on the case now."""
        return [cls.operation] if cls.route is not None and cls.refusal(case) is None else []

    def check(self, case: Case) -> None:
        refused = self.refused(case)
        if refused is not None:
            raise refused.error(case)

    @classmethod
    def from_event(cls: type[C], event: Event) -> C:
        """The command that recorded ``event``: its fields from the payload, ``reason`` from the event."""
        values: dict[str, Any] = {}
        for name, kind in fields_of(cls).items():
            raw = event.reason if name == "reason" else event.payload.get(name)
            values[name] = _coerce(raw, kind)
        return cls(**values)


EFFECTIVE_AT = "effective_at"


def effective_at(at: datetime | None, case: Case, ctx: Context) -> datetime:
    """When a change took effect: ``at``, for one recorded after the fact, or else when it is recorded. It cannot
    lie after the recording, nor before the latest moment the case's record holds (its previous change)."""
    if at is None:
        return ctx.at
    at = utc(at, EFFECTIVE_AT)
    if at > ctx.at:
        raise InvalidArgument(EFFECTIVE_AT, "cannot lie in the future")
    earliest = case.recorded_until()
    if at < earliest:
        raise InvalidArgument(EFFECTIVE_AT, "cannot precede the case's previous change ({earliest})",
                              earliest=iso(earliest))
    return at


def with_effective_at(payload: dict[str, Any], at: datetime | None, effective: datetime) -> dict[str, Any]:
    """The event's payload with the time the change took effect, where one was given (the event's own ``at`` is
    when it was recorded). Absent otherwise, so that events from before keep their hashes."""
    return payload if at is None else payload | {EFFECTIVE_AT: iso(effective)}


_FIELDS: dict[str, dict[str, Any]] = {}


def fields_of(cls: type[Command]) -> dict[str, Any]:
    """The command's fields and their types, in declaration order."""
    found = _FIELDS.get(cls.operation)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _FIELDS[cls.operation] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return found


def _coerce(raw: Any, kind: Any) -> Any:
    """A payload value (JSON) as the field's type: times, ids and tuples come back from their JSON forms."""
    if raw is None:
        return None
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if datetime in options:
        return parse_iso(raw)
    if uuid.UUID in options:
        return uuid.UUID(raw)
    if any(typing.get_origin(o) is tuple for o in options):
        return tuple(raw)
    return raw
