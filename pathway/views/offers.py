"""What the case page offers on a case now: for each of its forms, the command it posts and whether the case would
refuse it, asked of the case itself (``Case.refusal``), so that the page offers what the engine allows and no more.

Read for display only; nothing here changes the case (a form that posts two commands is checked on a copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pathway.case import Case
from pathway.case.commands import (
    AddStep, Advance, AssignCoordinator, Close, Command, CompleteStep, CreateHandover, Pause, RecordConsent,
    RecordMilestone, RecordRisk, Resume, SetCondition, SkipStep, Transfer,
)
from pathway.case.refusals import Refusal
from pathway.definition import RISK_LEVELS
from pathway.machine import compile_pathway

# The basis of a handover given now on the page: the person consents now (the consent is recorded with the task),
# consent recorded before, or a legal basis (the definition's, for the agency).
CONSENT_NOW, CONSENT = "consent_now", "consent"


@dataclass(frozen=True, slots=True)
class Offer:
    """One form: ``refusal`` is why the case would refuse what it posts (None: it is offered); ``reason_required``
    whether the command needs a reason here, as the command says."""

    refusal: Refusal | None
    reason_required: bool = False

    @property
    def allowed(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True, slots=True)
class Move:
    trigger: str
    kind: str
    dest: str
    offer: Offer


@dataclass(frozen=True, slots=True)
class HandoverOffer:
    """A handover checkpoint whose step is open, to one of its agencies: the scope it needs (pre-ticked), and the
    bases it may be given on now, each as its own offer (only the allowed ones are offered); ``refusal`` when none
    is. ``chosen`` when the checkpoint names several agencies (the form says which)."""

    code: str
    agency: str
    scope: tuple[str, ...]
    bases: dict[str, Offer]
    refusal: Refusal | None
    chosen: bool = False

    @property
    def allowed(self) -> bool:
        return bool(self.bases)

    @property
    def legal(self) -> bool:
        """Whether a legal basis is offered (its reason is required, with it)."""
        return any(basis not in (CONSENT_NOW, CONSENT) for basis in self.bases)


@dataclass(frozen=True, slots=True)
class Offers:
    forms: dict[str, Offer] = field(default_factory=dict)  # by the form's action (pause, close, ...)
    steps: dict[str, dict[str, Offer]] = field(default_factory=dict)  # by step code: complete, skip
    moves: list[Move] = field(default_factory=list)
    handovers: list[HandoverOffer] = field(default_factory=list)


def offer(case: Case, *commands: Command, at: datetime) -> Offer:
    return Offer(case.refusal(*commands, at=at), commands[-1].reason_required(case))


def offers(case: Case, *, at: datetime) -> Offers:
    """What the case page offers on ``case`` at ``at``. Free text and times are the form's to give; every other rule
    of the commands is asked here as the commands ask it when they run."""
    d = case.definition
    forms = {
        "pause": offer(case, Pause(reason=""), at=at),
        "resume": offer(case, Resume(), at=at),
        "consent": offer(case, RecordConsent(agency=next(iter(d.agencies), "")), at=at),
        "coordinator": offer(case, AssignCoordinator(coordinator=""), at=at),
        # Asked with a level other than the case's, so that the form requires a reason once one is recorded.
        "risk": offer(case, RecordRisk(level=next(lv for lv in RISK_LEVELS if lv != case.risk)), at=at),
        "condition": offer(case, SetCondition(name="", value=True, reason=""), at=at),
        "milestone": offer(case, RecordMilestone(name="", when=at), at=at),
        "add_step": offer(case, AddStep(title="", owner="", due_at=at, reason=""), at=at),
        "close": offer(case, Close(outcome=""), at=at),
        "transfer": offer(case, Transfer(municipality="", reason=""), at=at),
    }
    steps = {}
    for step in case.open_steps():
        if case.latest(step.code) is step:
            steps[step.code] = {"complete": offer(case, CompleteStep(code=step.code), at=at),
                                "skip": offer(case, SkipStep(code=step.code, reason=""), at=at)}
    moves = []
    if not case.is_closed:
        for trigger in compile_pathway(d).triggers(case.phase):
            if case.transition_refusal(trigger, Advance.operation, requires=False) is None:
                t = d.transition[trigger]
                moves.append(Move(trigger, t.kind, t.dest, offer(case, Advance(trigger=trigger), at=at)))
    return Offers(forms, steps, moves, [handover_offer(case, c.code, agency, at=at) for c in d.checkpoints
                                        if c.handover is not None and (s := case.latest(c.code)) and s.is_open
                                        for agency in c.handover.agencies])


def handover_offer(case: Case, code: str, agency: str, *, at: datetime) -> HandoverOffer:
    """A handover checkpoint's form to one of its agencies: on consent given now (the consent and the task in one
    change), on consent recorded before, or on a legal basis for that agency; each basis offered only where the case
    would allow it."""
    handover = case.definition.checkpoint[code].handover
    assert handover is not None
    chosen = len(handover.agencies) > 1
    to = agency if chosen else None
    asked = {
        CONSENT_NOW: offer(case, RecordConsent(agency=agency, scope=handover.scope),
                           CreateHandover(code=code, agency=to), at=at),
        CONSENT: offer(case, CreateHandover(code=code, agency=to), at=at),
        **{basis: offer(case, CreateHandover(code=code, agency=to, legal_basis=basis), at=at)
           for basis in case.definition.legal_bases_for(agency)},
    }
    bases = {basis: o for basis, o in asked.items() if o.allowed}
    return HandoverOffer(code, agency, handover.scope, bases, None if bases else asked[CONSENT_NOW].refusal, chosen)
