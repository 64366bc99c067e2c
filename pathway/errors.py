"""The errors of the pathway package: a small hierarchy, each carrying its context.

They are mapped to HTTP (RFC 9457 problem+json) only in ``api/`` and to exit codes only in the CLI.
Messages never carry a person's name, address or case content: only codes, phases and references.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def N_(text: str) -> str:
    """Marks a text for the gettext catalog where it is written (``api/catalogs.py`` extracts it); the edge says
    it in the reader's language."""
    return text


class ForlopError(Exception):
    """Base of every error Forløp raises on purpose.

    An error is said in pieces: English templates (``{name}`` marks a parameter), each with the text that joins
    it to the one before. ``str()`` gives the English; the edge (``api/i18n.py``) says each template in the
    reader's language from the gettext catalog and puts the parameters in, named in the same language.
    ``code`` names the kind of refusal for a program, ``params`` carries its codes and numbers, never a
    person's data."""

    code = "error"
    # Parameters the engine wrote (never a value someone typed): shown as they are wherever the error is said.
    engine_params: tuple[str, ...] = ()

    def __init__(self, template: str = "", /, **params: Any) -> None:
        self.pieces: tuple[tuple[str, str], ...] = ((template, ""),) if template else ()
        self.params: dict[str, Any] = params
        super().__init__(self.english())

    def english(self) -> str:
        return "".join(joint + _fill(template, self.params) for template, joint in self.pieces)

    def _say(self, *pieces: tuple[str, str], **params: Any) -> None:
        """Set the pieces and parameters of a subclass's message (English templates, in order)."""
        self.pieces = tuple((t, j) for t, j in pieces if t)
        self.params = params
        self.args = (self.english(),)


def _fill(template: str, params: dict[str, Any]) -> str:
    shown = {k: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in params.items()}
    try:
        return template.format(**shown) if params else template
    except (KeyError, IndexError, ValueError):  # a template that is not one: said as it stands, never a crash
        return template


# -- definitions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a definition file: where it is and what is wrong."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.field}: {self.message}"


class DefinitionError(ForlopError):
    """A pathway definition is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# -- the domain ------------------------------------------------------------------------------------


class DomainError(ForlopError):
    """An operation on a case broke a rule of the pathway. Nothing was changed."""

    code = "refused"


class OperationNotAllowed(DomainError):
    """The operation is not allowed in the case's current phase. ``detail`` (an English template, its parameters
    among ``params``) says why, where there is more to say than the phase."""

    code = "operation-not-allowed"
    engine_params = ("phase", "allowed")

    def __init__(self, operation: str, *, phase: str, allowed: list[str], detail: str = "", **params: Any) -> None:
        self.operation = operation
        self.phase = phase
        self.allowed = allowed
        self.detail = _fill(detail, params)  # in English (the template is among ``pieces``)
        super().__init__()
        self._say((N_("'{operation}' is not allowed in phase '{phase}'"), ""), (detail, ": "),
                  (N_("allowed now: {allowed}") if allowed else N_("allowed now: none"), "; "),
                  operation=operation, phase=phase, allowed=allowed, **params)


class UnknownCheckpoint(DomainError):
    code = "unknown-step"

    def __init__(self, code: str) -> None:
        self.checkpoint = code
        super().__init__(N_("no checkpoint or step '{code}' in this case"), code=code)


class CaseErased(DomainError):
    """The case was erased under the retention rule: its key is destroyed, so nothing more can be recorded on it."""

    code = "erased"

    def __init__(self) -> None:
        super().__init__(N_("the case is erased (retention): nothing more can be recorded on it"))


class ConsentRequired(DomainError):
    """A handover was refused: no valid consent for the agency and scope, and no recorded legal basis."""

    code = "consent-required"

    def __init__(self, agency: str, missing_scope: list[str]) -> None:
        self.agency = agency
        self.missing_scope = missing_scope
        super().__init__()
        self._say((N_("handover to '{agency}' refused: no valid consent for this agency"), ""),
                  (N_("missing scope: {missing_scope}") if missing_scope else "", " ("),
                  (")" if missing_scope else "", ""),
                  (N_("and no legal basis recorded (duty to avert a crime, duty to inform child welfare)"), " "),
                  agency=agency, missing_scope=missing_scope)


class InvalidArgument(DomainError):
    """An argument to an operation is malformed (an unknown outcome code, a missing reason, ...). ``message`` is an
    English template; ``params`` fill it."""

    code = "invalid-argument"

    def __init__(self, field: str, message: str, **params: Any) -> None:
        self.field = field
        super().__init__()
        self._say(("{field}", ""), (message, ": "), field=field, **params)


class NotPermitted(ForlopError):
    """The acting user may not do this (the CLI's ``--as``; the API answers such a refusal as 404 instead)."""

    code = "not-permitted"

    def __init__(self, username: str, what: str, **params: Any) -> None:
        self.username = username
        super().__init__()
        self._say((N_("'{username}' may not"), ""), (what, " "), username=username, **params)


# -- the store -------------------------------------------------------------------------------------


class StoreError(ForlopError):
    """Base for errors of the persistence layer."""


class NotFound(StoreError):
    code = "not-found"

    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        super().__init__(N_("{what} '{key}' not found"), what=what, key=key)


class ConcurrencyConflict(StoreError):
    """The version given is not the case's current one (it changed since it was read, or the version is wrong):
    the write was refused and nothing was changed."""

    code = "stale-version"

    def __init__(self, reference: str, expected: int, actual: int | None) -> None:
        self.reference = reference
        self.expected = expected
        self.actual = actual
        if actual is not None and expected > actual:
            # Versions only grow, so nobody changed it: the version given was never read from this case.
            what = N_("case {reference} is at version {actual}, but version {expected} was given (a version it has "
                      "not reached)")
        else:
            what = N_("case {reference} was changed by someone else: version {expected} was given, but it is now at "
                      "version {actual}")
        super().__init__()
        self._say((what, ""), (N_("reload and try again"), "; "), reference=reference, expected=expected, actual=actual)


class DefinitionVersionMissing(StoreError):
    def __init__(self, pathway_id: str, version: int) -> None:
        super().__init__(f"pathway definition {pathway_id} v{version} is not registered in the database")


class DatabaseError(StoreError):
    """The database refused or failed a statement; nothing was changed. Only the driver error's type is kept
    (``driver_error``): its text may quote a value. This class itself stands for a bug (a statement the database
    cannot run); the store raises its subclasses for the database's states and for values it cannot hold."""

    def __init__(self, driver_error: str, text: str | None = None) -> None:
        self.driver_error = driver_error
        super().__init__(text or f"database error ({driver_error})")


class DatabaseUnavailable(DatabaseError):
    """A state of the database, no bug: ``kind`` is full, read_only, cannot_open, timeout or unavailable, and
    ``message`` says it for a person; ``cause`` is the driver's first line (which server or file, and why), never a
    value from the statement."""

    def __init__(self, kind: str, message: str, *, driver_error: str, first_line: str) -> None:
        self.kind = kind
        self.message = message
        self.cause = f"{driver_error}: {first_line}"
        super().__init__(driver_error, f"{message} ({self.cause})")


class ValueNotStorable(DatabaseError):
    """A value given cannot be stored or searched for (PostgreSQL: a NUL character, a number out of range)."""


class ConstraintViolated(DatabaseError):
    """A row broke a constraint, e.g. a unique key another transaction has just written."""


# -- encryption ------------------------------------------------------------------------------------


class CryptoError(ForlopError):
    """A value could not be encrypted or decrypted (unknown key id, tampered ciphertext, bad key)."""
