"""A SQLite database and its -wal and -shm files can be read by their owner alone: a new database is made so, and
production refuses to start on files that others could read or write."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from pathway.settings import Settings
from pathway.store.engine import create_engine

KEYS = {"encryption_keys": "k1:" + "A" * 43 + "=", "index_key": "B" * 43 + "=", "webhook_secret": "s" * 32}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_log_files_are_private_to_their_owner(tmp_path: Path) -> None:
    db = tmp_path / "forlop.db"
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:  # a write: SQLite makes the -wal and -shm files
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        files = [db, tmp_path / "forlop.db-wal", tmp_path / "forlop.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_production_refuses_a_database_file_others_can_read(tmp_path: Path, suffix: str) -> None:
    db = tmp_path / "forlop.db"
    for s in ("", "-wal", "-shm"):
        (tmp_path / f"forlop.db{s}").touch(mode=0o600)
        (tmp_path / f"forlop.db{s}").chmod(0o600)
    Settings(env="production", database_url=f"sqlite:///{db}", **KEYS)  # all private: accepted
    (tmp_path / f"forlop.db{suffix}").chmod(0o640)
    with pytest.raises(ValueError, match=f"forlop.db{suffix} can be read or written by others"):
        Settings(env="production", database_url=f"sqlite:///{db}", **KEYS)
