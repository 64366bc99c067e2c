"""A SQLite database whose disk fills up, and one that cannot be written at all.

The disk is a real one: a small tmpfs mounted for the test, filled up with a file. The unwritable database is
behind a read-only bind mount (chmod stops nobody when the tests run as root). Both need root (CI runs as root);
elsewhere they are skipped, under CI they fail. The API answers 507 or 503 problem+json (never 500), the CLI exits
1 with one clear line, and afterwards the database passes ``PRAGMA integrity_check`` and ``forlop audit verify``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pathway.bootstrap import Forlop, bootstrap
from pathway.settings import Settings

from .support import API, PROBLEM, ROOT, audit_verify, run_forlop, say, seed_world


def _mount(*argv: str) -> None:
    done = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        message = f"cannot mount ({done.stderr.strip()}): these tests need root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """``source`` seen again at ``target``, where nothing can be written (not even by root)."""
    target.mkdir()
    _mount("--bind", str(source), str(target))
    try:
        _mount("-o", "remount,ro,bind", str(target))
        yield target
    finally:
        _umount(target)


def core_at(path: Path, **kw: bool) -> Forlop:
    return bootstrap(Settings(env="test", database_url=f"sqlite:///{path}", definitions_dir=ROOT / "definitions",
                              scheduler="off"), **kw)


def signed_in(client: TestClient, ref: str) -> tuple[dict[str, str], int]:
    """The demo coordinator's authorization header, and the case's version as the API gives it."""
    r = client.post(API + "/auth/token", data={"username": "koordinator", "password": "demo"})
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return auth, client.get(f"{API}/cases/{ref}", headers=auth).json()["version"]


def pause_or_resume(client: TestClient, auth: dict[str, str], ref: str, version: int, n: int) -> tuple[int, dict]:
    """A write with a long reason (the event stores it twice over), so the log grows fast."""
    r = client.post(f"{API}/cases/{ref}/{'resume' if n % 2 else 'pause'}", headers={**auth, "If-Match": f'"{version}"'},
                    json={"reason": f"syntetisk grunn {n} " + "x" * 1500})
    return r.status_code, r.json() | {"content_type": r.headers["content-type"]}


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return ", ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def test_a_full_disk_answers_507_and_leaves_an_intact_database_that_works_again_once_space_is_freed(
        tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "6m") as disk:
        db = disk / "forlop.db"
        core = core_at(db)
        ref = seed_world(core, cases=3)[0]
        with TestClient(create_app(core)) as client:
            auth, version = signed_in(client, ref)
            filler = disk / "filler"
            with open(filler, "wb") as f:  # leave some room: the first writes still fit, the disk fills up under them
                free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
                f.write(b"\0" * max(0, free - 400_000))
            writes, answers = 0, Counter()
            failures = []
            for _ in range(400):
                # Pause or resume by what the case is now (``writes`` so far): after a write the full disk refused, the
                # same change is asked again, so that every answer is a write's, never a refusal of the wrong one.
                status, body = pause_or_resume(client, auth, ref, version, writes)
                if status == 200:
                    version, writes = body["version"], writes + 1
                    continue
                failures.append((status, body))
                if len(failures) == 5:
                    break
            read = client.get(f"{API}/cases/{ref}", headers=auth)
            cli = run_forlop("case", "pause", ref, "--as", "koordinator", "--reason", "syntetisk", "--version",
                             str(version), database_url=core.settings.database_url)
            audit_while_full, _ = audit_verify(core.settings.database_url)  # reads only: works on a full disk
            filler.unlink()
            status, body = pause_or_resume(client, auth, ref, version, writes)
        core.close()
        answers.update(f"{s} {b.get('type')}" for s, b in failures)
        code, summary = audit_verify(f"sqlite:///{db}")
        check = integrity(db)
        say(f"[sqlite, full tmpfs] writes before the disk was full {writes}; then {dict(answers)} "
            f"({failures[0][1]['detail']!r}); a read then {read.status_code}; CLI exit {cli.returncode}: "
            f"{cli.stderr.strip()!r}; audit verify on the full disk exit {audit_while_full}; after freeing space the "
            f"next write {status}; integrity_check {check}; audit verify {summary.splitlines()[0]}")

    assert writes > 0 and len(failures) == 5
    for status_, body_ in failures:
        assert status_ == 507 and body_["content_type"] == PROBLEM, body_
        assert body_["type"] == "/problems/database-full" and "disk er full" in body_["detail"]  # bokmål by default
    # A read writes its access-log row first: it cannot be logged, so it is refused the same way (never a 500).
    assert read.status_code == 507 and read.headers["content-type"] == PROBLEM
    assert cli.returncode == 1 and "error: the database's disk is full" in cli.stderr
    assert "Traceback" not in cli.stderr
    assert audit_while_full == 0
    assert status == 200 and body["version"] == version + 1  # no restart needed
    assert check == "ok" and code == 0, summary


def test_a_read_only_database_answers_503_and_the_cli_and_server_say_why(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    db = home / "forlop.db"
    writer = core_at(db)
    ref = seed_world(writer, cases=2)[0]
    with TestClient(create_app(writer)) as client:
        auth, version = signed_in(client, ref)
    writer.close()

    with read_only_view(home, tmp_path / "ro") as ro:
        url = f"sqlite:///{ro / 'forlop.db'}"
        # Nothing else has the database open: it cannot even be opened (its WAL index cannot be made).
        cli = run_forlop("case", "pause", ref, "--as", "koordinator", "--reason", "syntetisk", database_url=url)
        serve = run_forlop("serve", "--port", "9", database_url=url, timeout=120)
        # A process on the writable path holds it open (so the WAL index exists): reads would work, writes not.
        keeper = sqlite3.connect(db)
        keeper.execute("SELECT count(*) FROM pathway_case").fetchall()
        try:
            reader = core_at(ro / "forlop.db", migrate=False, register_definitions=False)
            with TestClient(create_app(reader)) as client:
                write = client.post(f"{API}/cases/{ref}/pause", headers={**auth, "If-Match": f'"{version}"'},
                                    json={"reason": "syntetisk"})
                read = client.get(f"{API}/cases/{ref}", headers=auth)
            reader.close()
        finally:
            keeper.close()
    code, summary = audit_verify(f"sqlite:///{db}")
    check = integrity(db)
    say(f"[sqlite, read-only mount] CLI exit {cli.returncode}: {cli.stderr.strip()!r}; forlop serve exit "
        f"{serve.returncode}: {serve.stderr.strip().splitlines()[-1]!r}; API write {write.status_code} "
        f"{write.json()['type']}, read {read.status_code}; integrity_check {check}; audit verify "
        f"{summary.splitlines()[0]}")

    assert cli.returncode == 1 and cli.stderr.startswith("error: the database file cannot be opened")
    assert "unable to open database file" in cli.stderr and "Traceback" not in cli.stderr
    assert serve.returncode == 1 and "error: the database file cannot be opened" in serve.stderr
    assert "Traceback" not in serve.stderr
    assert write.status_code == 503 and write.headers["content-type"] == PROBLEM
    assert write.json()["type"] == "/problems/database-read-only" and write.headers["retry-after"] == "5"
    assert read.status_code == 503 and read.json()["type"] == "/problems/database-read-only"
    assert check == "ok" and code == 0, summary
