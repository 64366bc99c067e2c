"""Why an operation may not be done to a case now, as data: a code and its parameters.

A command answers with a ``Refusal`` (``Command.refused``, ``Case.refusal``) before it changes anything; ``run``
raises it as the domain's error, and the case page words the same code for the coordinator, so that what the page
offers and what the engine refuses come from one rule. The English texts here are the errors' (API, CLI, logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pathway.errors import N_, ConsentRequired, DomainError, InvalidArgument, UnknownCheckpoint

if TYPE_CHECKING:
    from pathway.case.state import CaseState

# What a refusal says, by its code: an English template of the catalog (``api/catalogs.py``), said in the reader's
# language at the edge with its parameters named there (``api/i18n.py``): the API's and the CLI's error detail, and
# the case page's reason beside an operation it cannot offer. ``rule``: a refusal given as (operation, detail).
REFUSALS = {
    "closed": N_("the case is closed"),
    "paused": N_("the clock is already paused"),
    "not_paused": N_("the clock is not paused"),
    "adaptation": N_("this pathway does not allow that"),
    "rule": "",  # a domain error a command raised, tried on a copy of the case: said as that error (``cause``)
    "no_transition": N_("not possible from this phase"),
    "use_close": N_("use “Close the case” with an outcome to end the case"),
    "requires": N_("first complete or skip: {missing}"),
    "no_handovers": N_("this pathway has no handovers"),
    "not_applicable": N_("{code} does not apply to this case yet"),
    "unknown_step": N_("no step {code} in this case"),
    "ended": N_("{code} is already {state}"),
    "completed_by": N_("{code} is done by {by}, not by hand"),
    "not_skippable": N_("{code} cannot be skipped"),
    # why a pending step is not active yet (``CaseState.waiting``)
    "needs": N_("{code} cannot be completed yet: it waits for {needs}"),
    "waits_for": N_("{code} cannot be completed yet: it waits for {after}"),
    "not_active": N_("{code} cannot be completed yet: the step is not active"),
    "not_handover": N_("{code} is not a handover"),
    "handover_open": N_("{code} already has an open handover task"),
    "consent_missing": N_("no consent to {agency} that covers: {missing_scope}"),
    "basis_invalid": N_("not a legal basis for a handover to {agency} (valid: {valid})"),
    "agency_choice": N_("choose which agency {code} goes to: {valid}"),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a command may not run now: ``code`` (one of ``REFUSALS``) with its ``params`` (codes, as the engine wrote
    them); ``operation`` is what the error names; ``argument`` the command's field at fault, where the refusal is
    about a value given. ``cause``: a domain error a command raised when tried on a copy of the case (code ``rule``)."""

    operation: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    argument: str | None = None
    cause: DomainError | None = None

    @property
    def template(self) -> str:
        return REFUSALS[self.code]

    @property
    def detail(self) -> str:
        """In English (a log, the CLI): the template with its parameters."""
        return str(self.cause) if self.cause is not None else _english(self.template, self.params)

    def error(self, case: CaseState) -> DomainError:
        """The domain's error for the refusal, carrying it (``exc.refusal``) for whoever words it."""
        exc: DomainError
        if self.cause is not None:
            exc = self.cause
        elif self.code == "unknown_step":
            exc = UnknownCheckpoint(self.params["code"])
        elif self.code == "consent_missing":
            exc = ConsentRequired(self.params["agency"], list(self.params["missing_scope"]))
        elif self.argument is not None:
            exc = InvalidArgument(self.argument, self.template, **self.params)
        else:
            exc = case.not_allowed(self.operation, self.template, **self.params)
        # The engine wrote these parameters (codes of the definition and the case), none was typed: shown as they are.
        exc.engine_params = (*exc.engine_params, *(k for k in self.params if k != "code"))
        setattr(exc, "refusal", self)  # an attribute the error classes do not declare: set, not assigned
        return exc


def _english(template: str, params: Mapping[str, Any]) -> str:
    return template.format(**{k: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                              for k, v in params.items()})
