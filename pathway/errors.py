"""The errors of the pathway package: a small hierarchy, each carrying its context.

They are mapped to HTTP (RFC 9457 problem+json) only in ``api/`` and to exit codes only in the CLI.
Messages never carry a person's name, address or case content: only codes, phases and references.
"""

from __future__ import annotations

from dataclasses import dataclass


class ForlopError(Exception):
    """Base of every error Forløp raises on purpose."""


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


class OperationNotAllowed(DomainError):
    """The operation is not allowed in the case's current phase."""

    def __init__(self, operation: str, *, phase: str, allowed: list[str], detail: str = "") -> None:
        self.operation = operation
        self.phase = phase
        self.allowed = allowed
        self.detail = detail
        text = f"'{operation}' is not allowed in phase '{phase}'"
        if detail:
            text += f": {detail}"
        text += f"; allowed now: {', '.join(allowed) or 'none'}"
        super().__init__(text)


class UnknownCheckpoint(DomainError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"no checkpoint or step '{code}' in this case")


class ConsentRequired(DomainError):
    """A handover was refused: no valid consent for the agency and scope, and no recorded legal basis."""

    def __init__(self, agency: str, missing_scope: list[str]) -> None:
        self.agency = agency
        self.missing_scope = missing_scope
        scope = f" (missing scope: {', '.join(missing_scope)})" if missing_scope else ""
        super().__init__(
            f"handover to '{agency}' refused: no valid consent for this agency{scope} and no legal basis "
            "recorded (duty to avert a crime, duty to inform child welfare)"
        )


class InvalidArgument(DomainError):
    """An argument to an operation is malformed (an unknown outcome code, a missing reason, ...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotPermitted(ForlopError):
    """The acting user may not do this (the CLI's ``--as``; the API answers such a refusal as 404 instead)."""

    def __init__(self, username: str, what: str) -> None:
        self.username = username
        super().__init__(f"'{username}' may not {what}")


# -- the store -------------------------------------------------------------------------------------


class StoreError(ForlopError):
    """Base for errors of the persistence layer."""


class NotFound(StoreError):
    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        super().__init__(f"{what} '{key}' not found")


class ConcurrencyConflict(StoreError):
    """The version given is not the case's current one (it changed since it was read, or the version is wrong):
    the write was refused and nothing was changed."""

    def __init__(self, reference: str, expected: int, actual: int | None) -> None:
        self.reference = reference
        self.expected = expected
        self.actual = actual
        if actual is not None and expected > actual:
            # Versions only grow, so nobody changed it: the version given was never read from this case.
            what = f"is at version {actual}, but version {expected} was given (a version it has not reached)"
        else:
            what = f"was changed by someone else: version {expected} was given, but it is now at version {actual}"
        super().__init__(f"case {reference} {what}; reload and try again")


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
