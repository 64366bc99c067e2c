"""The README's command-line block, typed as written and in order on a fresh database: every command exits 0.

The block is the fenced ``sh`` block right after the marker ``<!-- readme-test ... -->`` in README.md. One bash runs
its commands one after another (a variable set by one, ``REF=$(forlop case open ...)``, is there for the next), in a
working directory of its own that holds ``.venv`` (the virtualenv running these tests) and ``definitions`` (the
repository's), so that whatever the block writes lands there and never in the repository. The database is named by
``FORLOP_DATABASE_URL``: a new SQLite file, or a new PostgreSQL database dropped afterwards. Nothing else is set for
the commands: they run as a new user's would (``FORLOP_ENV`` unset, so development). The commands take the time
from the clock, so the block runs the same on any day (and at the suite's chosen date, ``FORLOP_TEST_TODAY``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.suite import processes

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent  # the README says .venv/bin/forlop: the virtualenv running the tests
BLOCK = re.compile(r"^<!-- readme-test\b[^\n]*-->\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Commands that start a server or a scheduler and run until stopped: they belong outside the tested block.
LONG_RUNNING = ("forlop serve", "forlop scheduler", "make run")

pytestmark = [pytest.mark.process,
              pytest.mark.skipif(not (VENV / "bin" / "forlop").exists(),
                                 reason=f"the console script is not installed at {VENV / 'bin' / 'forlop'}")]


def readme_commands() -> list[str]:
    """The commands of the marked block(s), in order: one a line (a trailing backslash joins lines), blank lines
    and whole-line comments left out."""
    blocks = BLOCK.findall(README.read_text(encoding="utf-8"))
    assert blocks, f"no ```sh block after a <!-- readme-test --> marker in {README}"
    commands: list[str] = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line)
    return commands


def test_the_tested_block_starts_no_server_and_names_no_case_it_cannot_know() -> None:
    commands = readme_commands()
    assert any(" migrate " in c for c in commands) and any(" case complete " in c for c in commands), commands
    for command in commands:
        assert not any(name in command for name in LONG_RUNNING), (
            f"{command!r} runs until stopped: put it in the README outside the <!-- readme-test --> block")
        assert not re.search(r"\b[A-Z]{2,5}-\d{4}-\d{4}\b", command), (
            f"{command!r} names a case reference the reader cannot know: use the $REF that `case open` gave")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has used: a new SQLite file, or a new database on the suite's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'readme.db'}"
        return
    server = request.getfixturevalue("postgres_url")  # skipped outside CI when no server is reachable
    if server is None:
        pytest.skip("PostgreSQL not reachable (required and run under CI)")
    name = f"forlop_readme_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def script(commands: list[str], results: Path) -> str:
    """The commands as one bash script that writes each one's exit code to ``results`` and stops at the first
    that fails, printing a header before each so the output shows which command said what."""
    lines = []
    for number, command in enumerate(commands, start=1):
        lines += [f"printf '\\n$ %s\\n' {shlex.quote(command)}",
                  command,
                  f"status=$?; echo {number} $status >> {shlex.quote(str(results))}",
                  'if [ "$status" -ne 0 ]; then exit "$status"; fi']
    return "\n".join(lines) + "\n"


def test_every_command_of_the_readme_exits_0_on_a_fresh_database(tmp_path: Path, database_url: str) -> None:
    commands = readme_commands()
    home = tmp_path / "checkout"
    home.mkdir()
    (home / ".venv").symlink_to(VENV, target_is_directory=True)
    (home / "definitions").symlink_to(ROOT / "definitions", target_is_directory=True)
    results = tmp_path / "exit-codes"
    (tmp_path / "readme.sh").write_text(script(commands, results), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FORLOP_") and k not in ("DATABASE_URL", "COLUMNS", "LINES")}
    env["FORLOP_DATABASE_URL"] = database_url

    # In a session of its own; ended with its whole process group (os.killpg) whatever happens.
    proc = processes.spawn(["bash", "--noprofile", "--norc", str(tmp_path / "readme.sh")], cwd=home, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8")
    try:
        output, _ = proc.communicate(timeout=600)
    finally:
        processes.end(proc)

    codes = [tuple(map(int, line.split())) for line in results.read_text().splitlines()] if results.exists() else []
    failed = [(commands[n - 1], code) for n, code in codes if code != 0]
    assert not failed and len(codes) == len(commands), (
        f"{failed[0][0]!r} exited {failed[0][1]}" if failed else f"bash stopped after {len(codes)} commands"
    ) + f" ({database_url.split('@')[-1]}):\n{output}"
    assert "Traceback" not in output, output
    if database_url.startswith("sqlite:///"):
        assert Path(database_url.removeprefix("sqlite:///")).exists(), "the block did not use FORLOP_DATABASE_URL"
