"""The ``forlop`` command line: definitions, database, cases, audit, demo and the server."""

from __future__ import annotations

# Importing the command modules registers their commands; `forlop --help` lists each app's commands in the order
# they were registered, so definitions (validate, diagram, schema, migrate) must come before operations.
from pathway.cli import admin, cases, definitions, operations  # noqa: F401
from pathway.cli.common import app, err
from pathway.errors import ForlopError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: domain and usage errors are handled per command; the database being away is handled here."""
    import sqlalchemy as sa

    from pathway.store.failures import database_failure

    try:
        app()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        failure = database_failure(exc)
        orig = getattr(exc, "orig", None) or exc
        if failure is None:  # e.g. a constraint: its text may quote a value, so only its type
            err.print(f"error: database error ({type(orig).__name__})", markup=False)
            raise SystemExit(1) from None
        # The driver's first line says which server or file and why ("Connection refused", "disk is full").
        first = (str(orig).strip().splitlines() or [""])[0][:200]
        err.print(f"error: {failure.message} ({type(orig).__name__}: {first})", markup=False, highlight=False,
                  soft_wrap=True)
        raise SystemExit(1) from None
    except ForlopError as exc:  # a command let one through (a bad key spec, a missing definition version, ...)
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
