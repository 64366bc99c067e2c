"""The walk bench/peer.py times on Forløp's side is one the pathway allows: a case opened and taken through every
operation to closed, one persisted operation each, on SQLite and PostgreSQL. (The peer's side needs the bench extra
and is not run here.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from bench.engine import SEQUENCE, T0, Handle
from bench.peer import forlop_walk
from pathway.bootstrap import Forlop
from pathway.store.tables import case_t

# Every timestamp of the walk is fixed (T0): nothing depends on today's date.
pytestmark = pytest.mark.any_date


def test_the_timed_walk_opens_a_case_and_takes_it_through_every_operation_to_closed(core: Forlop) -> None:
    timed: list[bool] = []

    def count(is_open: bool, run: Callable[[], None]) -> None:
        timed.append(is_open)
        run()

    handle = Handle(start=T0)
    forlop_walk(core, handle, count)

    assert timed == [True] + [False] * (len(SEQUENCE) - 1)
    with core.engine.connect() as conn:
        phase, version = conn.execute(sa.select(case_t.c.phase, case_t.c.version)
                                      .where(case_t.c.reference == handle.reference)).one()
    assert (phase, version) == ("closed", len(SEQUENCE))
