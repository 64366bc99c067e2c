"""The definition model: a pathway's phases, transitions, checkpoints, offsets and texts, frozen once parsed."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pathway.calendar import Unit

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]

FIRST_CONTACT = "first_contact"
CONSENT_PREFIX = "consent."

Adaptation = Literal["skip", "add_step", "pause", "resume", "return", "transfer", "close_early"]
CompletedBy = Literal["manual", "open", "close", "handover", "assign_coordinator", "consent"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Frozen):
    """A text in bokmål and English; both are required."""

    nb: Label
    en: Label

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.nb


class Offset(_Frozen):
    """An amount of time in exactly one unit: hours, calendar days or working days."""

    hours: int | None = Field(default=None, ge=-10_000, le=10_000)
    days: int | None = Field(default=None, ge=-3_650, le=3_650)
    working_days: int | None = Field(default=None, ge=-2_500, le=2_500)

    @model_validator(mode="after")
    def _exactly_one_unit(self) -> Offset:
        given = [u for u in ("hours", "days", "working_days") if getattr(self, u) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours, days, working_days")
        return self

    @property
    def unit(self) -> Unit:
        return next(Unit(u) for u in ("hours", "days", "working_days") if getattr(self, u) is not None)

    @property
    def amount(self) -> int:
        return int(getattr(self, self.unit.value))


class Deadline(Offset):
    """Due a given offset after an anchor: ``first_contact``, a checkpoint code, a milestone or ``consent.<agency>``."""

    after: Label


RungKind = Literal["due_soon", "due_now", "overdue", "escalation", "manager_escalation"]


class Rung(_Frozen):
    """One rung of a reminder ladder: ``at`` is relative to the deadline (negative: before it)."""

    kind: RungKind
    at: Offset
    to: Literal["owner", "coordinator", "manager"]


class RepeatRule(_Frozen):
    """After an occurrence is done, the next is due ``every`` after it; ``times`` limits how often (None: until closure)."""

    every: Offset
    times: int | None = Field(default=None, ge=1, le=1000)


RiskLevel = Literal["low", "medium", "high"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")


class Agency(Text):
    """A partner agency the pathway hands over to: its names, the consent scopes it may ever receive (empty: any of
    the pathway's), and the legal bases (keys of ``legal_bases``) on which it may be told without consent."""

    scopes: tuple[Ident, ...] = ()
    legal_bases: tuple[Ident, ...] = ()

    def receives(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes


class LegalBasis(Text):
    """A legal basis for a handover without consent, named in both languages, and the provision it rests on."""

    law: Label


class Handover(_Frozen):
    """What a handover checkpoint sends, and to whom: one agency, or several for the coordinator to choose from (one
    open task at a time: after a decline, another may be asked). ``same_day_at`` names the threat levels at which the
    task (and its step) is due the same day it is sent. ``warn_when``: a warning for whoever sends it, by the
    condition of the case that calls for it (the school handover of a child whose other parent shares parental
    responsibility: that parent may be told by the school)."""

    agency: Ident | tuple[Ident, ...]
    scope: tuple[Ident, ...] = Field(min_length=1)
    same_day_at: tuple[RiskLevel, ...] = ()
    warn_when: dict[Ident, Text] = {}

    @property
    def agencies(self) -> tuple[str, ...]:
        return (self.agency,) if isinstance(self.agency, str) else self.agency

    def same_day(self, urgency: str | None) -> bool:
        """Whether a task sent at ``urgency`` is due the same day."""
        return urgency is not None and urgency in self.same_day_at


class Checkpoint(_Frozen):
    code: Code
    name: Text
    phases: tuple[Ident, ...] = Field(min_length=1)
    owner: Ident | tuple[Ident, ...]
    needs: tuple[Code, ...] = ()
    when: tuple[Ident, ...] = ()
    deadline: Deadline | None = None
    repeat: tuple[RepeatRule, ...] = ()
    handover: Handover | None = None
    completed_by: CompletedBy = "manual"
    skippable: bool = True
    reminders: tuple[Rung, ...] | None = None  # None: the pathway's default ladder

    @property
    def owners(self) -> tuple[str, ...]:
        return (self.owner,) if isinstance(self.owner, str) else self.owner

    def repeat_interval(self, occurrence: int) -> Offset | None:
        """The interval before ``occurrence`` (2, 3, ...) of a repeating checkpoint, or None when repeats are over."""
        n = occurrence - 1
        for rule in self.repeat:
            if rule.times is None or n <= rule.times:
                return rule.every
            n -= rule.times
        return None


class Phase(_Frozen):
    id: Ident
    title: Text
    final: bool = False


class Transition(_Frozen):
    trigger: Ident
    source: Ident | tuple[Ident, ...]
    dest: Ident
    requires: tuple[Code, ...] = ()
    kind: Literal["forward", "return"] = "forward"
    records: Ident | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else self.source


_EARLIER_LEGAL_BASES = {
    "avert_crime": {"nb": "Avvergingsplikt", "en": "Duty to avert a crime", "law": "straffeloven § 196"},
    "child_welfare_duty": {"nb": "Opplysningsplikt til barnevernet", "en": "Duty to inform child welfare",
                           "law": "barnevernsloven § 13-2"},
}


class PathwayDefinition(_Frozen):
    """A whole pathway definition: immutable once parsed. ``sha256`` is the hash of the source text."""

    id: Ident
    version: int = Field(ge=1)
    title: Text
    roles: dict[Ident, Text] = Field(min_length=1)
    agencies: dict[Ident, Agency] = {}
    legal_bases: dict[Ident, LegalBasis] = {}
    consent_scopes: dict[Ident, Text] = {}
    conditions: dict[Ident, Text] = {}
    milestones: dict[Ident, Text] = {}
    outcomes: dict[Ident, Text] = Field(min_length=1)
    adaptations: tuple[Adaptation, ...] = ()
    reminders: tuple[Rung, ...] = ()
    phases: tuple[Phase, ...] = Field(min_length=2)
    transitions: tuple[Transition, ...] = Field(min_length=1)
    checkpoints: tuple[Checkpoint, ...] = Field(min_length=1)
    sha256: str = Field(default="", exclude=True)
    source: str = Field(default="", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _legal_bases_of_before(cls, data: object) -> object:
        """A definition registered before legal bases were data (its agencies names only, no ``legal_bases``) had
        the two the code then knew. A definition in today's form that names no legal bases has none: leaving them out
        never allows a handover without consent."""
        if not isinstance(data, dict) or "legal_bases" in data:
            return data
        agencies = {k: dict(v) if isinstance(v, dict) else v for k, v in (data.get("agencies") or {}).items()}
        if any(isinstance(v, dict) and set(v) - {"nb", "en"} for v in agencies.values()):
            return data
        for agency, basis in (("police", "avert_crime"), ("child_welfare", "child_welfare_duty")):
            if isinstance(agencies.get(agency), dict):
                agencies[agency].setdefault("legal_bases", [basis])
        return {**data, "agencies": agencies, "legal_bases": _EARLIER_LEGAL_BASES}

    def handover_warnings(self, code: str, conditions: Iterable[str]) -> list[Text]:
        """The warnings for whoever sends checkpoint ``code``'s handover on a case with ``conditions``, in the
        definition's order (none for a checkpoint without a handover, or one that is not the definition's)."""
        checkpoint = self.checkpoint.get(code)
        if checkpoint is None or checkpoint.handover is None:
            return []
        given = set(conditions)
        return [text for condition, text in checkpoint.handover.warn_when.items() if condition in given]

    def legal_bases_for(self, agency: str) -> tuple[str, ...]:
        """The legal bases on which ``agency`` may be told without consent."""
        found = self.agencies.get(agency)
        return found.legal_bases if found is not None else ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)

    @cached_property
    def checkpoint(self) -> dict[str, Checkpoint]:
        return {c.code: c for c in self.checkpoints}

    @cached_property
    def phase_order(self) -> dict[str, int]:
        return {p.id: i for i, p in enumerate(self.phases)}

    def ladder(self, code: str | None) -> tuple[Rung, ...]:
        """The reminder ladder of a checkpoint (or of an ad-hoc step, ``code=None``)."""
        checkpoint = self.checkpoint.get(code) if code is not None else None
        if checkpoint is not None and checkpoint.reminders is not None:
            return checkpoint.reminders
        return self.reminders

    @property
    def initial_phase(self) -> str:
        return self.phases[0].id

    @cached_property
    def final_phases(self) -> frozenset[str]:
        return frozenset(p.id for p in self.phases if p.final)

    @cached_property
    def transition(self) -> dict[str, Transition]:
        """Transitions by trigger; a trigger may have several sources but one destination."""
        return {t.trigger: t for t in self.transitions}

    def anchor_kind(self, anchor: str) -> str | None:
        """What an anchor names: 'first_contact', 'checkpoint', 'milestone', 'consent', or None (nothing)."""
        if anchor == FIRST_CONTACT:
            return "first_contact"
        if anchor in self.checkpoint:
            return "checkpoint"
        if anchor in self.milestones:
            return "milestone"
        if anchor.startswith(CONSENT_PREFIX) and anchor[len(CONSENT_PREFIX) :] in self.agencies:
            return "consent"
        return None
