"""Two writers of one case, the second committing while the first is still loading the case.

Found by the fault suite (tests/resilience/test_concurrent_completion.py): on PostgreSQL, two coordinators
completing K1 with the same version sometimes got "409 operation not allowed: K1 is done" instead of "409 stale
version", because under READ COMMITTED the loser read the case row (version 1) before the winner's commit and the
steps (K1 done) after it. Here the interleaving is forced: the other writer runs right after the first one has read
the case row. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import event

from pathway.case.commands import CompleteStep
from pathway import services
from pathway.bootstrap import Forlop
from pathway.errors import ConcurrencyConflict

from .support import add_user, open_case

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def complete_k1(core: Forlop, ref: str) -> Any:
    return services.change_case(uow=core.uow(), reference=ref, expected_version=1,
                                change=lambda c: c.execute(CompleteStep("K1"), actor="k1", at=T0))


def test_a_writer_committing_while_another_loads_the_case_is_seen_whole_or_not_at_all(core: Forlop) -> None:
    add_user(core, "k1")
    ref = open_case(core, T0)
    loader = threading.get_ident()
    other: dict[str, Any] = {}

    def other_writer() -> None:
        try:
            other["case"], _ = complete_k1(core, ref)
        except Exception as exc:  # noqa: BLE001 - what it raised is what the test looks at
            other["error"] = exc

    thread = threading.Thread(target=other_writer)

    def after_the_case_row(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Right after the first writer read the case row: the other one writes the same change and commits, unless
        # the first writer's lock makes it wait (then it goes on after the first commits).
        if threading.get_ident() == loader and "FROM pathway_case" in statement and not thread.is_alive() \
                and "case" not in other and "error" not in other:
            thread.start()
            thread.join(timeout=3)

    event.listen(core.engine, "after_cursor_execute", after_the_case_row)
    try:
        try:
            case, _ = complete_k1(core, ref)
            first = f"version {case.version}"
        except Exception as exc:  # noqa: BLE001
            first = exc
    finally:
        event.remove(core.engine, "after_cursor_execute", after_the_case_row)
    thread.join(timeout=60)
    assert not thread.is_alive()

    # One of them completed K1; the other was told its version is stale, never that K1 is already done.
    outcomes = [first, other.get("error") or f"version {other['case'].version}"]
    assert sorted(map(type, outcomes), key=str) == sorted([str, ConcurrencyConflict], key=str), outcomes
    conflict = next(o for o in outcomes if isinstance(o, ConcurrencyConflict))
    assert (conflict.expected, conflict.actual) == (1, 2)
    assert "version 2" in outcomes


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_the_lock_is_the_case_row_only_other_cases_are_written_meanwhile(core: Forlop) -> None:
    add_user(core, "k1")
    ref, other_ref = open_case(core, T0), open_case(core, T0)
    with core.uow() as uow:
        uow.cases.get(ref, lock=True)
        case, _ = complete_k1(core, other_ref)  # another case of the same unit: not held up
    assert case.version == 2


def test_a_read_while_a_write_commits_sees_the_case_whole_before_or_after(core: Forlop) -> None:
    """The same interleaving for a read (the case page, ``forlop case show``): it must not show version 1 with K1
    already done, nor a timeline longer than the version."""
    add_user(core, "k1")
    ref = open_case(core, T0)
    reader = threading.get_ident()
    written: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: written.update(case=complete_k1(core, ref)[0]))

    def after_the_case_row(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == reader and "FROM pathway_case" in statement and not written \
                and not thread.is_alive():
            thread.start()
            thread.join(timeout=3)

    event.listen(core.engine, "after_cursor_execute", after_the_case_row)
    try:
        with core.uow(read_only=True) as uow:
            case = uow.cases.get(ref)
            events = uow.cases.events(case)
    finally:
        event.remove(core.engine, "after_cursor_execute", after_the_case_row)
    thread.join(timeout=60)

    k1 = next(s for s in case.steps if s.code == "K1")
    assert written["case"].version == 2  # the write went through meanwhile
    assert (case.version, k1.state, len(events)) in ((1, "active", 1), (2, "done", 2))


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_a_case_saved_without_its_lock_after_another_writer_moved_it_is_a_stale_version_not_a_broken_key(
        core: Forlop) -> None:
    """A save whose transaction does not hold the case row (loaded without ``lock``) sends its versioned update
    before the rest: the other writer's event already has the sequence number this one would write, and that must be
    told as the conflict it is, not as a broken unique key."""
    add_user(core, "k1")
    ref = open_case(core, T0)
    with core.uow() as uow:
        case = uow.cases.get(ref)  # no lock
        assert complete_k1(core, ref)[0].version == 2  # another writer, committed meanwhile
        case.execute(CompleteStep("K1"), actor="k1", at=T0)
        with pytest.raises(ConcurrencyConflict) as conflict:
            uow.cases.save(case)
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
