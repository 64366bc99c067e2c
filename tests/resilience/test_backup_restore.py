"""The README's backups, done as written while the server is writing: ``pg_dump -Fc`` restored with ``pg_restore``
(and a plain dump with ``psql``) into a new database, ``sqlite3 .backup`` for SQLite. The copy passes
``forlop audit verify``, holds every case the source held at the dump and serves the API. Only synthetic data.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pathway.bootstrap import Forlop

from .support import CompletionStream, api_server, audit_verify, say, seed_world, wait_until

CASES = 24


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as the PostgreSQL tools take it."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _count(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        cases = conn.execute(sa.text("SELECT count(*) FROM pathway_case")).scalar_one()
        events = conn.execute(sa.text("SELECT count(*) FROM case_event")).scalar_one()
    engine.dispose()
    return cases, events


def test_a_backup_taken_under_load_restores_into_a_database_that_verifies(core: Forlop, tmp_path: Path) -> None:
    db = core.engine.dialect.name
    url = core.settings.database_url
    refs = seed_world(core, cases=CASES)
    with api_server(url, workers=2, log_dir=tmp_path) as server:
        stream = CompletionStream(server.url, server.sign_in("koordinator"), refs, threads=2, think=0.01).start()
        try:
            assert wait_until(lambda: stream.acknowledged() >= 10, timeout=120)
            if db == "postgresql":
                dump = tmp_path / "forlop.dump"
                plain = tmp_path / "forlop.sql"
                subprocess.run([_tool("pg_dump"), "-Fc", f"--file={dump}", _libpq(url)], check=True, timeout=300)
                subprocess.run([_tool("pg_dump"), f"--file={plain}", _libpq(url)], check=True, timeout=300)
            else:
                copy = tmp_path / "forlop-backup.db"
                subprocess.run([_tool("sqlite3"), sa.engine.make_url(url).database, f".backup {copy}"], check=True,
                               timeout=300)
            during = stream.acknowledged()
            assert wait_until(stream.finished, timeout=300)
        finally:
            stream.stop()

    restored: list[str] = []
    created: list[str] = []
    admin = sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT") \
        if db == "postgresql" else None
    try:
        if admin is not None:
            for how in ("pg_restore", "psql"):
                name = f"forlop_restore_{uuid.uuid4().hex[:8]}"
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                created.append(name)
                target = sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
                if how == "pg_restore":
                    command = [_tool("pg_restore"), "--no-owner", f"--dbname={_libpq(target)}", str(dump)]
                else:
                    command = [_tool("psql"), "--quiet", "-v", "ON_ERROR_STOP=1", f"--file={plain}", _libpq(target)]
                subprocess.run(command, check=True, timeout=300, capture_output=True)
                restored.append(target)
        else:
            restored.append(f"sqlite:///{copy}")
        results = [(_count(r), audit_verify(r)) for r in restored]
        # The copy serves: the server starts on it and a coordinator can list its cases.
        with api_server(restored[0], workers=1, log_dir=tmp_path) as server:
            listed = httpx.get(server.url + "/api/v1/cases", timeout=30,
                               headers={"Authorization": f"Bearer {server.sign_in('koordinator')}"})
    finally:
        if admin is not None:
            with admin.connect() as conn:
                for name in created:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    source_cases, source_events = _count(url)
    for (cases, events), (code, summary) in results:
        say(f"[{db}] backup taken with {during} of the clients' changes acknowledged: restored {cases} cases, "
            f"{events} events (the source has {source_events} events now); audit verify exit {code}: "
            f"{summary.splitlines()[0]}")
        assert code == 0, summary
        assert cases == source_cases == CASES
        assert CASES + 10 <= events <= source_events  # the changes before the dump at least, not more than now
    assert listed.status_code == 200 and len(listed.json()["items"]) > 0
