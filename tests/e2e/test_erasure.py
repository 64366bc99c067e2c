"""Erasure that keeps the audit chain (issue 17), on SQLite and PostgreSQL, on the seeded world: two cases with a unique
marker in every personal and free-text field (the person, a child, reasons, notes, titles, handover notes and an
agency's reply, the transfer target, an emergency-access reason) are closed; one goes on legal hold; the clock moves
past the retention period and retention runs. Afterwards no marker is anywhere in the database's files (SQLite: the
file, its WAL and shared memory) or in a fresh ``pg_dump``; ``forlop audit verify`` with replay passes; the managers'
report is byte for byte as before; and the held case's markers are all readable still, through its person's copy."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.metrics import timeliness
from pathway.metrics.snapshots import to_json
from pathway.scheduler import run_retention_job
from pathway.services.retention import case_id_of, run_retention, set_hold
from pathway.store.tables import case_key_t, case_t, child_t, idempotency_t, person_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, synthetic_person  # noqa: E402
from tests.e2e.test_person_copy import Marked, marked_case  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]


def _stored_bytes(w: World) -> bytes:
    """Everything the database holds, as bytes: SQLite's files (with the WAL and shared memory, where they are), or
    a fresh ``pg_dump`` of the PostgreSQL database."""
    url = sa.engine.make_url(w.core.settings.database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"),
                                                 path.with_name(path.name + "-shm")) if p.exists())
    dump = subprocess.run(["pg_dump", "--no-owner", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                           "-U", url.username or "postgres", str(url.database)],
                          capture_output=True, check=True, timeout=120)
    return dump.stdout


def _found(markers: list[str], blob: bytes) -> list[str]:
    return [m for m in markers if m.encode("utf-8") in blob]


def _report(w: World, now: datetime) -> str:
    """The managers' report of every unit together over the last three years, as JSON text, at ``now``."""
    report = timeliness(engine=w.core.engine, resolve=w.core.catalog.resolve, keys=w.core.keys, period="month",
                        start=date(now.year - 2, 1, 1), end=now.date(), now=now)
    return json.dumps(to_json(report), sort_keys=True)


def closed_family(w: World) -> Marked:
    """A marked case closed by its transfer, and its child's pathway closed early with a marked reason."""
    marked = marked_case(w)
    reason = f"{marked.markers[0]}-child-close"
    r = w.client.post(f"{API}/cases/{marked.child}/close", json={"outcome": "moved_with_parent", "reason": reason},
                      headers={**w.auth("koordinator"), "If-Match": f'"{w.version(marked.child)}"'})
    assert r.status_code == 200, r.text
    marked.markers.append(reason)
    return marked


def _closed_at(w: World, reference: str) -> datetime:
    with w.core.engine.connect() as conn:
        closed = conn.execute(sa.select(case_t.c.closed_at).where(case_t.c.reference == reference)).scalar_one()
    assert closed is not None
    return closed  # type: ignore[no-any-return]


def test_retention_erases_every_marker_and_keeps_the_chain_the_figures_and_the_held_case(world: World) -> None:
    w = world
    erased, held = closed_family(w), closed_family(w)
    assert not _found(erased.markers + held.markers, _stored_bytes(w)), "sealed from the start: no marker stored"
    with w.core.engine.begin() as conn:
        set_hold(conn, case_id=case_id_of(conn, held.reference), by="admin", reason="klage til Statsforvalteren",
                 at=_closed_at(w, held.reference), keys=w.core.keys)
    # Past the retention period of both (the units' default), from when they closed: true on any date.
    now = max(_closed_at(w, r) for m in (erased, held) for r in (m.reference, m.child)) + timedelta(days=w.core.settings.retention_days + 1)
    report_before = _report(w, now)

    result = run_retention(engine=w.core.engine, settings=w.core.settings, now=now)

    assert {erased.reference, erased.child} <= set(result.erased)
    assert held.reference not in result.erased and held.child not in result.erased
    assert not _found(erased.markers + held.markers, _stored_bytes(w))
    with w.core.engine.connect() as conn:
        ids = [case_id_of(conn, r) for r in (erased.reference, erased.child)]
        assert conn.execute(sa.select(sa.func.count()).select_from(person_t)
                            .where(person_t.c.case_id.in_(ids))).scalar_one() == 0, "the person and its blind index"
        assert conn.execute(sa.select(sa.func.count()).select_from(child_t)
                            .where(child_t.c.case_id.in_(ids))).scalar_one() == 0
        assert all(k is None for k in conn.execute(sa.select(case_key_t.c.wrapped)
                                                    .where(case_key_t.c.case_id.in_(ids))).scalars())
    audit = services.verify_audit(engine=w.core.engine, replay_with=w.core.catalog.resolve, keys=w.core.keys)
    assert audit.ok, audit.problems
    assert audit.erased >= 2
    assert _report(w, now) == report_before, "every figure of the managers' report as it was"

    # The erased case still reads: its reference, checkpoints, times and outcome; none of its texts.
    page = w.client.get(f"{API}/cases/{erased.reference}", headers=w.auth("koordinator"))
    assert page.status_code == 200, page.text
    assert page.json()["outcome"] == "transferred" and not _found(erased.markers, page.content)
    # The held case keeps every marker readable, in its person's copy.
    copy = w.client.get(f"{API}/cases/{held.reference}/copy", headers=w.auth("koordinator"))
    assert copy.status_code == 200, copy.text
    assert not [m for m in held.markers if m not in copy.text]


def test_an_erased_case_refuses_a_change_with_a_problem_not_an_error(world: World) -> None:
    w = world
    marked = closed_family(w)
    now = max(_closed_at(w, marked.reference), _closed_at(w, marked.child)) + timedelta(days=w.core.settings.retention_days + 1)
    assert marked.reference in run_retention(engine=w.core.engine, settings=w.core.settings, now=now).erased
    version = w.version(marked.reference)
    r = w.lenient.put(f"{API}/cases/{marked.reference}/person", json={"name": "Ny Testperson"},
                      headers={**w.auth("koordinator"), "If-Match": f'"{version}"'})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert w.version(marked.reference) == version


def test_an_idempotent_answer_is_stored_encrypted_and_forgotten_after_a_day(world: World) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    marker = f"MRK{uuid.uuid4().hex[:10]}-idempotent"
    key = f"k-{uuid.uuid4().hex}"
    headers = {**w.auth("koordinator"), "If-Match": f'"{w.version(reference)}"', "Idempotency-Key": key}
    first = w.client.post(f"{API}/cases/{reference}/pause", json={"reason": marker}, headers=headers)
    again = w.client.post(f"{API}/cases/{reference}/pause", json={"reason": marker}, headers=headers)
    assert first.status_code == again.status_code == 200 and again.headers["Idempotency-Replayed"] == "true"
    assert marker in again.text, "the retry gets the first answer, with its reason"
    assert not _found([marker], _stored_bytes(w)), "which is stored encrypted"
    with w.core.engine.connect() as conn:
        created = conn.execute(sa.select(idempotency_t.c.created_at).where(idempotency_t.c.key == key)).scalar_one()
    run_retention_job(w.core, now=created + timedelta(days=1, seconds=1))
    with w.core.engine.connect() as conn:
        assert conn.execute(sa.select(idempotency_t).where(idempotency_t.c.key == key)).first() is None
