"""Moving open cases to a new version of their pathway definition, with an explicit checkpoint mapping."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from pathway.case.commands import Migrate
from pathway.definition import PathwayDefinition
from pathway.errors import ConcurrencyConflict, DomainError
from pathway.store.tables import case_t, step_t
from pathway.store.uow import UnitOfWork


@dataclass
class MigrationSummary:
    open_cases: int = 0
    moved: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)


def migrate_cases(
    *, uow_factory: Callable[[], UnitOfWork], source: PathwayDefinition, target: PathwayDefinition,
    mapping: dict[str, str], actor: str, reason: str, apply: bool = False,
    progress: Callable[[int], None] | None = None,
) -> MigrationSummary:
    """Move open cases from one definition version to another. Refuses (moves nothing) if any code in use is unmapped."""
    summary = MigrationSummary()
    with uow_factory() as uow:
        ids = list(uow.cases.iter_case_ids(open_only=True, pathway=source.key))
        in_use = uow.conn.execute(
            sa.select(step_t.c.code).distinct().join(case_t, case_t.c.id == step_t.c.case_id).where(
                step_t.c.adhoc.is_(False), case_t.c.closed_at.is_(None),
                case_t.c.pathway_id == source.id, case_t.c.definition_version == source.version)
        ).scalars().all()
    summary.open_cases = len(ids)
    for code in sorted(set(in_use) - set(mapping)):
        summary.unmapped[code] += 1
    bad_targets = sorted(v for v in mapping.values() if v not in target.checkpoint)
    if summary.unmapped or bad_targets:
        for code in bad_targets:
            summary.refused[f"'{code}' is not a checkpoint of v{target.version}"] += 1
        return summary
    for case_id in ids:
        try:
            uow = uow_factory()
            with uow:
                case = uow.cases.get_by_id(case_id, lock=True)
                case.execute(Migrate(target.id, target.version, mapping, reason), actor=actor, at=datetime.now(timezone.utc),
                             resolve=lambda *_: target, channel="cli")
                if apply:
                    uow.cases.save(case)
                    uow.commit()
            summary.moved += 1
        except (DomainError, ConcurrencyConflict) as exc:
            summary.refused[str(exc)] += 1
        if progress is not None:
            progress(1)
    return summary
