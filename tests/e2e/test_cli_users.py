"""``forlop users`` and ``forlop audit access``: an administrator (``--as``) changes accounts from the command line,
from the same lists and under the same rules as in the API and the pages, and reads the access log by user and date.
The installed script runs as a subprocess on a SQLite file of its own; the accounts are checked in-process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from pathway.accounts import LoginFailed, authenticate, login
from pathway.bootstrap import bootstrap
from pathway.settings import Settings
from pathway.store.tables import token_t, user_t
from tests.e2e.test_cli import FORLOP, Result, run

BOSS = ("--as", "sjef")

pytestmark = [pytest.mark.process,
              pytest.mark.skipif(not FORLOP.exists(), reason=f"the console script is not installed at {FORLOP}")]


@dataclass(frozen=True)
class Cli:
    url: str

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        """``forlop ARGS`` on this database, as test_cli runs it (a clean environment, no stack trace)."""
        return run(*args, "--database-url", self.url, env={"COLUMNS": "250", **env}, stdin=stdin)

    def engine(self) -> sa.Engine:
        return bootstrap(Settings(env="test", database_url=self.url), register_definitions=False).engine


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    run = Cli(f"sqlite:///{tmp_path / 'forlop.db'}")
    assert run("db", "upgrade").code == 0
    # The first administrator needs no --as: the access log names the system account that made it.
    assert run("users", "add", "sjef", "--role", "admin", "--password-stdin", stdin="et-langt-passord\n").code == 0
    return run


def test_users_are_added_and_changed_from_the_lists_only(cli: Cli) -> None:
    typed = cli("users", "add", "k1", "--role", "coordinator", "--unit", "min-enhet", "--password-stdin",
                stdin="et-langt-passord\n")
    assert typed.code == 2 and "unit: must be one of bergen-sentrum, bergen-nord, askoy, voss" in typed.stderr
    assert cli("users", "add", "k1", "--role", "coordinator", "--unit", "min-enhet", "--password-stdin", *BOSS,
               stdin="et-langt-passord\n", FORLOP_UNITS="min-enhet,din-enhet").code == 0  # the setting is the list
    assert cli("users", "change", "k1", "--role", "partner", "--agency", "fbi", *BOSS).code == 2
    assert cli("users", "change", "k1", "--role", "manager", *BOSS).code == 2  # a manager needs a unit
    changed = cli("users", "change", "k1", "--role", "partner", "--agency", "police", *BOSS)
    assert changed.code == 0, changed.stderr
    with cli.engine().connect() as conn:
        row = conn.execute(sa.select(user_t.c.role, user_t.c.unit, user_t.c.agency)
                           .where(user_t.c.username == "k1")).one()
    assert tuple(row) == ("partner", None, "police")
    listed = cli("users", "list", *BOSS)
    assert listed.code == 0 and "police" in listed.stdout and "agencies: child_welfare, correctional_service, health, housing, nav, police" in \
        listed.stderr


def test_a_leaver_is_deactivated_and_a_password_reset_from_the_command_line(cli: Cli) -> None:
    assert cli("users", "add", "k1", "--role", "coordinator", "--unit", "voss", "--password-stdin", *BOSS,
               stdin="et-langt-passord\n").code == 0
    engine = cli.engine()
    token = login(engine, "k1", "et-langt-passord", slow=False)[0]
    assert authenticate(engine, token) is not None

    not_admin = cli("users", "deactivate", "sjef", "--as", "k1")
    assert not_admin.code == 1 and "an administrator does" in not_admin.stderr
    themself = cli("users", "deactivate", "sjef", *BOSS)
    assert themself.code == 1 and "cannot deactivate themself" in themself.stderr
    last = cli("users", "change", "sjef", "--role", "coordinator", "--unit", "voss", *BOSS)
    assert last.code == 1 and "last active administrator" in last.stderr

    assert cli("users", "deactivate", "k1", *BOSS).code == 0
    assert authenticate(engine, token) is None
    with engine.connect() as conn:
        ended = conn.execute(sa.select(token_t.c.revoked_at).join(user_t, user_t.c.id == token_t.c.user_id)
                             .where(user_t.c.username == "k1")).scalars().all()
    assert ended and None not in ended
    with pytest.raises(LoginFailed):
        login(engine, "k1", "et-langt-passord", slow=False)
    assert cli("users", "reactivate", "k1", *BOSS).code == 0
    assert authenticate(engine, token) is None  # what it held before stays ended

    assert cli("users", "password", "k1", "--password-stdin", *BOSS, stdin="kort\n").code == 2
    assert cli("users", "password", "k1", "--password-stdin", *BOSS, stdin="et-nytt-passord\n").code == 0
    with pytest.raises(LoginFailed):
        login(engine, "k1", "et-langt-passord", slow=False)
    assert login(engine, "k1", "et-nytt-passord", slow=False)[1].username == "k1"

    log = cli("audit", "access", "--user", "k1", *BOSS)
    assert log.code == 0, log.stderr
    actions = [line.split("│")[4].strip() for line in log.stdout.splitlines() if "│ sjef" in line]
    assert actions == ["user.password", "user.reactivate", "user.deactivate", "user.add"]
    assert "et-nytt-passord" not in log.stdout and "et-langt-passord" not in log.stdout
    # by date: these changes were made now, so a range in the past shows none of them
    past = cli("audit", "access", "--user", "k1", "--start", "1999-01-01", "--end", "1999-12-31", *BOSS)
    assert past.code == 0 and "user." not in past.stdout
    backwards = cli("audit", "access", "--start", "1999-12-31", "--end", "1999-01-01", *BOSS)
    assert backwards.code == 2 and "end: must not come before start" in backwards.stderr
    assert cli("audit", "access", *BOSS).code == 2  # no filter at all
