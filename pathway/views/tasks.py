"""A partner agency's handover tasks, with only what each handover needs (the policy's ``task_fields``), and, when the
consent has been narrowed or withdrawn since the handover, which of the task's scope is no longer shared and since
when: the partner sees that the scope changed, not only that it is smaller."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pathway.case import HANDOVER_STATUSES, LEGAL_BASES
from pathway.crypto import KeyRing
from pathway.definition import PathwayDefinition
from pathway.people import unseal
from pathway.policy import task_fields
from pathway.store.catalog import DefinitionCatalog
from pathway.store.tables import case_t, handover_t, person_t

BASES = ("consent", *LEGAL_BASES)


@dataclass(frozen=True, slots=True)
class PartnerTaskView:
    """What a partner agency may see of one handover task (built from a ``HandoverTask`` and its case)."""

    id: uuid.UUID
    case_reference: str  # pseudonymous
    code: str  # checkpoint code, e.g. "K6"
    title_nb: str
    title_en: str
    agency: str
    agency_name: str
    status: str  # Forløp's: requested, accepted, declined, completed, cancelled
    basis: str  # "consent", "avert_crime" or "child_welfare_duty"
    scope: tuple[str, ...]  # consent scope codes
    due_at: datetime | None  # aware
    created_at: datetime  # aware
    updated_at: datetime  # aware
    contact: str  # who to call at the crisis centre: a staff username or unit label
    person_name: str | None = None  # only when the consent's scope includes "name"
    withheld: tuple[str, ...] = ()  # of the scope the task asked for, the codes the consent no longer shares
    withheld_nb: tuple[str, ...] = ()  # the same, named (the definition's consent scopes), in bokmål
    withheld_en: tuple[str, ...] = ()  # and in English
    consent_changed_at: datetime | None = None  # when the consent was last changed; given when something is withheld

    def __post_init__(self) -> None:
        if self.status not in HANDOVER_STATUSES:
            raise ValueError(f"unknown handover status {self.status!r}")
        if self.basis not in BASES:
            raise ValueError(f"unknown legal basis {self.basis!r}")
        if self.person_name is not None and "name" not in self.scope:
            raise ValueError("person_name may only be shared when the consent scope includes 'name'")
        if set(self.withheld) & set(self.scope):
            raise ValueError("a scope is either shared or withheld, not both")
        if not len(self.withheld) == len(self.withheld_nb) == len(self.withheld_en):
            raise ValueError("each withheld scope needs its name in bokmål and English")
        for label, at in (("due_at", self.due_at), ("created_at", self.created_at), ("updated_at", self.updated_at),
                          ("consent_changed_at", self.consent_changed_at)):
            if at is not None and at.utcoffset() is None:
                raise ValueError(f"{label} must be timezone-aware")


def agency_tasks(conn: sa.Connection, *, agency: str | None, catalog: DefinitionCatalog, keys: KeyRing,
                 task_id: uuid.UUID | None = None, status: str | None = None, limit: int = 100,
                 unit_name: Callable[[str], str] = str) -> list[PartnerTaskView]:
    """An agency's tasks (or the one ``task_id``, if it is the agency's), soonest due first; None sees none; the
    contact is named with its unit's name (``unit_name``, the installation's). A
    person record is decrypted only for a task whose fields include the name. Of a consent narrowed or withdrawn
    since the handover, a task says what it no longer shares and when the consent changed."""
    query = (sa.select(handover_t, case_t.c.reference, case_t.c.unit, case_t.c.coordinator, case_t.c.pathway_id,
                       case_t.c.definition_version, case_t.c.consents, person_t.c.ciphertext)
             .join(case_t, case_t.c.id == handover_t.c.case_id)
             .outerjoin(person_t, person_t.c.case_id == handover_t.c.case_id)
             .where(handover_t.c.agency == agency if agency is not None else sa.false())
             .order_by(handover_t.c.due_at, handover_t.c.id).limit(limit))
    if task_id is not None:
        query = query.where(handover_t.c.id == task_id)
    if status is not None:
        query = query.where(handover_t.c.status == status)
    views = []
    for r in conn.execute(query).all():
        d = catalog.resolve(r.pathway_id, r.definition_version, conn=conn)
        checkpoint = d.checkpoint.get(r.code)
        consent = r.consents.get(r.agency)
        shown = task_fields(r.scope, r.basis, consent["scope"] if consent and consent["given"] else None, r.status)
        name = None
        if shown.name and r.ciphertext is not None:
            name = unseal(r.ciphertext, case_id=r.case_id, keys=keys).name
        withheld = tuple(code for code in r.scope if code not in shown.scope)
        views.append(PartnerTaskView(
            id=r.id, case_reference=r.reference, code=r.code,
            title_nb=checkpoint.name.nb if checkpoint else r.code, title_en=checkpoint.name.en if checkpoint else r.code,
            agency=r.agency, agency_name=d.agencies[r.agency].nb if r.agency in d.agencies else r.agency,
            status=r.status, basis=r.basis, scope=shown.scope, due_at=r.due_at, created_at=r.created_at,
            updated_at=r.updated_at, contact=f"{r.coordinator or 'koordinator'} ({unit_name(r.unit)})", person_name=name,
            withheld=withheld, withheld_nb=_named(d, withheld, "nb"), withheld_en=_named(d, withheld, "en"),
            consent_changed_at=datetime.fromisoformat(consent["recorded_at"]) if withheld and consent else None))
    return views


def _named(definition: PathwayDefinition, scope: tuple[str, ...], lang: str) -> tuple[str, ...]:
    """Consent scopes by the definition's names for them (a code it does not name stays a code)."""
    return tuple(definition.consent_scopes[code].get(lang) if code in definition.consent_scopes else code
                 for code in scope)
