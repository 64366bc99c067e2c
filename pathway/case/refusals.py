"""Why an operation may not be done to a case now, as data: a code and its parameters.

A command answers with a ``Refusal`` (``Command.refused``, ``Case.refusal``) before it changes anything; ``run``
raises it as the domain's error, and the case page words the same code for the coordinator, so that what the page
offers and what the engine refuses come from one rule. The English texts here are the errors' (API, CLI, logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pathway.errors import ConsentRequired, DomainError, InvalidArgument, UnknownCheckpoint

if TYPE_CHECKING:
    from pathway.case.state import CaseState

# Why a pending step is not yet active (``CaseState.waiting``): the code, and the English of its reason.
WAITING = {"needs": "needs {needs}", "waits_for": "waits for {after}", "not_active": "not active"}

REFUSALS = {
    "closed": "the case is closed",
    "adaptation": "this pathway does not allow that adaptation",
    "rule": "{detail}",  # a refusal given as (operation, detail): its text is its own
    "no_transition": "",
    "use_close": "use close with an outcome code to end the case",
    "requires": "first complete or skip: {missing}",
    "no_handovers": "this pathway has no handover checkpoints",
    "not_applicable": "checkpoint '{code}' does not apply yet in this case",
    "unknown_step": "no checkpoint or step '{code}' in this case",
    "ended": "'{code}' is already {state}",
    "completed_by": "'{code}' is completed by the '{by}' operation, not by hand",
    "not_skippable": "checkpoint '{code}' cannot be skipped",
    **{code: "'{code}' is waiting (" + why + ")" for code, why in WAITING.items()},
    "not_handover": "'{code}' is not a handover checkpoint",
    "handover_open": "an open handover task for '{code}' exists already",
    "consent_missing": "no valid consent for '{agency}' (missing scope: {missing})",
    "basis_invalid": "'{basis}' is not a legal basis for contacting '{agency}' (valid: {valid})",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a command may not run now: ``code`` (one of ``REFUSALS``) with its ``params``; ``operation`` is what the
    error names; ``argument`` the command's field at fault, where the refusal is about a value given."""

    operation: str
    code: str
    params: Mapping[str, str] = field(default_factory=dict)
    argument: str | None = None

    @property
    def detail(self) -> str:
        return REFUSALS[self.code].format(**self.params)

    def __iter__(self) -> Any:  # (operation, detail), as a refusal was given before it had a code
        return iter((self.operation, self.detail))

    def error(self, case: CaseState) -> DomainError:
        """The domain's error for the refusal, carrying it (``exc.refusal``) for whoever words it."""
        exc: DomainError
        if self.code == "unknown_step":
            exc = UnknownCheckpoint(self.params["code"])
        elif self.code == "consent_missing":
            exc = ConsentRequired(self.params["agency"], self.params["missing"].split(", "))
        elif self.argument is not None:
            exc = InvalidArgument(self.argument, self.detail)
        else:
            exc = case.not_allowed(self.operation, self.detail)
        setattr(exc, "refusal", self)  # an attribute the error classes do not declare: set, not assigned
        return exc


def as_refusal(refused: Refusal | tuple[str, str] | None) -> Refusal | None:
    """A refusal given as (operation, detail) (a command's ``refusal`` of before) as a ``Refusal``."""
    if refused is None or isinstance(refused, Refusal):
        return refused
    operation, detail = refused
    return Refusal(operation, "rule", {"detail": detail})
