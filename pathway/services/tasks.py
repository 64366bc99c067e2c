"""Handover tasks as use cases: the receiving agency's answer to one of its tasks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from pathway.case import Case
from pathway.case.commands import UpdateHandover
from pathway.services.cases import execute, now
from pathway.store.inbox import declined_writer
from pathway.store.uow import UnitOfWork


def answer_task(
    *, uow: UnitOfWork, reference: str, task_id: uuid.UUID, status: str, note: str | None = None,
    effective_at: datetime | None = None, actor: str, channel: str | None = None, public_url: str,
    at: datetime | None = None, also: Callable[[sa.Connection], None] | None = None,
) -> Case:
    """Accept, decline (``note``: the reason) or complete (``note``: what was done) the handover task ``task_id`` of
    the case ``reference``, now or when it was done (``effective_at``, recorded after the fact, as the command checks
    it). A decline tells the case's coordinator in the same transaction, whoever calls: no decline goes unheard.
    ``also`` writes more in that transaction (the caller's access-log row); ``public_url`` is the notice's link;
    ``at`` is when it is recorded (now by default)."""
    when = at or now()
    told = (declined_writer(task_id, public_url=public_url, at=when)
            if status == "declined" else None)

    def after(conn: sa.Connection) -> None:
        if also is not None:
            also(conn)
        if told is not None:
            told(conn)

    case, _ = execute(uow=uow, reference=reference, expected_version=None,
                      command=UpdateHandover(task_id, status, note=note, effective_at=effective_at), actor=actor,
                      at=when, channel=channel, also=after)
    return case
