"""The pathways of one case: the adult's and each child's (``pathway.services.children``), as the case page and the
API show them together, and the children's records, decrypted only when asked (every read logged by the caller)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.people import ChildRecord, unseal_child
from pathway.store.casekeys import keys_of
from pathway.store.tables import case_t, child_t


@dataclass(frozen=True, slots=True)
class ChildPathway:
    """A child's pathway as its adult's case lists it: no child's name (that is ``child_records``)."""

    id: uuid.UUID
    reference: str
    pathway_id: str
    definition_version: int
    phase: str
    coordinator: str | None
    opened_at: datetime
    paused_since: datetime | None
    closed_at: datetime | None
    next_due_at: datetime | None


_COLUMNS = (case_t.c.id, case_t.c.reference, case_t.c.pathway_id, case_t.c.definition_version, case_t.c.phase,
            case_t.c.coordinator, case_t.c.opened_at, case_t.c.paused_since, case_t.c.closed_at, case_t.c.next_due_at)


def child_pathways(conn: sa.Connection, case_id: uuid.UUID) -> list[ChildPathway]:
    """The children's pathways of an adult's case, in the order they were opened (none for a child's pathway)."""
    rows = conn.execute(sa.select(*_COLUMNS).where(case_t.c.parent_id == case_id)
                        .order_by(case_t.c.opened_at, case_t.c.reference))
    return [ChildPathway(**r) for r in rows.mappings()]


def open_children(conn: sa.Connection, reference: str) -> list[tuple[uuid.UUID, str]]:
    """The open children's pathways of the case ``reference``, (id, reference) in reference order: what a family
    pause or resume reaches (``pathway.services.execute`` changes them, the API logs them)."""
    parent = sa.select(case_t.c.id).where(case_t.c.reference == reference).scalar_subquery()
    return [(r.id, r.reference) for r in conn.execute(
        sa.select(case_t.c.id, case_t.c.reference).where(case_t.c.parent_id == parent, case_t.c.closed_at.is_(None))
        .order_by(case_t.c.reference))]


def family_reference(conn: sa.Connection, parent_id: uuid.UUID | None) -> str | None:
    """The adult's case reference of a child's pathway (None for an adult's)."""
    if parent_id is None:
        return None
    return conn.execute(sa.select(case_t.c.reference).where(case_t.c.id == parent_id)).scalar_one()


def child_records(conn: sa.Connection, case_ids: list[uuid.UUID], keys: KeyRing) -> dict[uuid.UUID, ChildRecord]:
    """The children of these children's pathways, decrypted, by case id (a case without one is left out). The caller
    decides who may see them (``pathway.policy``) and logs each read in the same transaction."""
    if not case_ids:
        return {}
    rows = conn.execute(sa.select(child_t.c.case_id, child_t.c.ciphertext)
                        .where(child_t.c.case_id.in_(case_ids))).all()
    sealers = keys_of(conn, [r.case_id for r in rows], keys)
    return {r.case_id: unseal_child(r.ciphertext, case_id=r.case_id, keys=keys, sealer=sealers[r.case_id])
            for r in rows}
