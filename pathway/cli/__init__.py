"""The ``forlop`` command line: definitions, database, cases, audit, demo and the server."""

from __future__ import annotations

# Importing the command modules registers their commands; `forlop --help` lists each app's commands in the order
# they were registered, so definitions (validate, diagram, schema, migrate) must come before operations.
from pathway.cli import admin, cases, definitions, operations, retention  # noqa: F401
from pathway.cli.common import app, err
from pathway.errors import ForlopError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: domain and usage errors are handled per command; any that gets through is handled here, the
    database being away among them (the store raises it as ``DatabaseUnavailable``: what is wrong, then the driver's
    own first line saying which server or file and why)."""
    try:
        app()
    except ForlopError as exc:  # the database away, a bad key spec, a missing definition version, ...
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
