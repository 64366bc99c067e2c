"""Two administrators deactivating each other at the same moment: one of them wins, the other is refused, and an
active administrator is always left. The interleaving is forced: the second change starts right after the first
has read who the active administrators are. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from pathway.bootstrap import Forlop
from pathway.services import users as service
from pathway.store.tables import user_t

from .support import add_user


def deactivate(core: Forlop, target: str, *, by: str) -> str:
    try:
        service.administer(service.Deactivate(target), engine=core.engine, by=service.Actor(by, "admin", "test"),
                           choices=service.Choices.of(core.settings, core.catalog))
    except service.AccountRefused as exc:
        return exc.rule
    return "done"


def test_two_administrators_removing_each_other_at_once_leave_one_active(core: Forlop) -> None:
    add_user(core, "a1", "admin")
    add_user(core, "a2", "admin")
    first = threading.get_ident()
    other: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: other.setdefault("outcome", deactivate(core, "a1", by="a2")))

    def after_reading_the_admins(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The other change runs now, and commits unless the first one's lock makes it wait for the first to commit.
        if threading.get_ident() == first and "FROM user_account" in statement and not thread.is_alive() \
                and "outcome" not in other:
            thread.start()
            thread.join(timeout=3)

    event.listen(core.engine, "after_cursor_execute", after_reading_the_admins)
    try:
        outcome = deactivate(core, "a2", by="a1")
    finally:
        event.remove(core.engine, "after_cursor_execute", after_reading_the_admins)
    thread.join(timeout=60)
    assert not thread.is_alive()

    assert sorted([outcome, other["outcome"]]) == ["done", "last_admin"]
    with core.engine.connect() as conn:
        active = conn.execute(sa.select(user_t.c.username).where(user_t.c.role == "admin",
                                                                 user_t.c.active.is_(True))).scalars().all()
    assert len(active) == 1
