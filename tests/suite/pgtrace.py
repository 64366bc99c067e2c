"""Round trips counted on a psycopg connection: its ReadyForQuery messages in libpq's trace (one per Sync, that is
per exchange the client waits for). A count, never a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def round_trips(pgconn: Any, path: Path) -> Iterator[list[int]]:
    """The round trips ``pgconn`` (a psycopg ``PGconn``) makes in the block, in the list given once the block ends
    (libpq writes its trace out when it stops)."""
    made: list[int] = []
    with open(path, "w") as trace:
        pgconn.trace(trace.fileno())
        try:
            yield made
        finally:
            pgconn.untrace()
    made.append(sum("\tReadyForQuery\t" in line for line in path.read_text().splitlines()))
