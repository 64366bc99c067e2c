"""Children's own pathways (action plan, measure 11): each child of a case follows a pathway of its own.

A child's pathway is a case of its own, part of the adult's (``pathway_case.parent_id``): its own state machine, steps,
deadlines, reminders and events, under the adult's unit and therefore the same access rules. Its reference is a
reference of its own from the same counter (never the adult's with a suffix): a reference travels where names may
not (reminder emails, the agencies' tasks), and one that said "a child of case 42" would tell an email's reader
that the case has children and let the school and the police tie their tasks together. Only ``parent_id`` and the
pages of the unit's coordinators say which case a child's pathway belongs to. Opening one
is one transaction: the child's case with its (encrypted) child record, its coordinator (a named child coordinator,
"barnekoordinator", or else the adult's coordinator), and the event on the adult's case that records it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

import sqlalchemy as sa

from pathway.case import Case, utc
from pathway.case.commands import AssignCoordinator, NoteChildPathway
from pathway.crypto import KeyRing
from pathway.errors import ConcurrencyConflict, InvalidArgument
from pathway.people import ChildRecord, seal_child
from pathway.services.cases import admissible, newest_and_reference
from pathway.store.tables import child_t
from pathway.store.uow import UnitOfWork

CHILD_PATHWAY = "barn"  # the shipped child pathway (definitions/barn.yaml)


def open_child_pathway(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, child: ChildRecord, actor: str, keys: KeyRing,
    reference_prefix: str, pathway_id: str = CHILD_PATHWAY, coordinator: str | None = None, conditions: Iterable[str] = (),
    at: datetime | None = None, channel: str | None = None,
    also: Callable[[sa.Connection, Case], None] | None = None,
) -> Case:
    """Open a child's pathway as part of the adult's case ``reference``; returns the child's case. Its clock starts
    now (``at``). ``coordinator``: the child's own coordinator (an active coordinator of the unit); None: the
    adult's. ``also`` writes more in the same transaction (the access-log row of the write)."""
    at = at or datetime.now(timezone.utc)
    with uow:
        parent = uow.cases.get(reference, lock=True)
        if expected_version is not None and expected_version != parent.version:
            raise ConcurrencyConflict(reference, expected_version, parent.version)
        if parent.part_of is not None:
            raise InvalidArgument("reference", "a child's pathway is opened on the adult's case")
        definition, reference = newest_and_reference(uow, pathway_id, prefix=reference_prefix, at=utc(at))
        unknown = sorted(set(conditions) - set(definition.conditions))
        if unknown:
            raise InvalidArgument("conditions", "unknown condition '{name}'", name=unknown[0])
        case = Case.open(definition, case_id=uuid.uuid4(),
                         reference=reference,
                         unit=parent.unit, first_contact_at=at, actor=actor, at=at, conditions=sorted(set(conditions)),
                         channel=channel, part_of=parent.id, sealer=uow.cases.new_key())
        # The adult's event first: a closed case refuses it before anything is written.
        parent.execute(NoteChildPathway(case.reference), actor=actor, at=at, channel=channel)
        uow.cases.add(case)
        key_id, blob = seal_child(child, case_id=case.id, keys=keys, sealer=case.sealer)
        uow.conn.execute(sa.insert(child_t).values(case_id=case.id, key_id=key_id, ciphertext=blob, updated_at=at))
        if coordinator is not None or parent.coordinator is not None:
            assign = AssignCoordinator(coordinator or parent.coordinator or "")
            try:
                admissible(uow.conn, case, assign)
                case.execute(assign, actor=actor, at=at, channel=channel)
                uow.cases.save(case)
            except InvalidArgument:
                if coordinator is not None:
                    raise  # a named child coordinator must be one of the unit's
                # the adult's coordinator has left the unit: the child's pathway waits for one to be assigned
        uow.cases.save(parent, expected_version=expected_version)
        if also is not None:
            also(uow.conn, case)
        uow.commit()
    return case
