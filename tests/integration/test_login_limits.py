"""Sign-in attempts are limited per client address and per account name, in the database (so every process shares
the count), on SQLite and PostgreSQL; and an unknown name costs exactly what a known one does.

The clock is fixed (``NOW``), so that windows, locks and waits are the same on any date."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from argon2.exceptions import VerifyMismatchError

from pathway import accounts
from pathway.accounts import LoginFailed, LoginLimits, TooManyAttempts, hash_password, login
from pathway.bootstrap import Forlop
from pathway.store import limits
from pathway.store.engine import WRITE
from pathway.store.tables import rate_limit_t, user_t

NOW = datetime(2027, 3, 1, 9, 30, tzinfo=timezone.utc)
WINDOW = timedelta(minutes=5)


def limits_of(*, per_client: int = 100, per_name: int = 100) -> LoginLimits:
    return LoginLimits(per_client=limits.Limit(per_client, WINDOW), per_name=limits.Limit(per_name, WINDOW))


def a_user(core: Forlop, username: str, password: str = "riktig-passord") -> None:
    with core.engine.begin() as conn:
        conn.execute(sa.insert(user_t).values(
            id=uuid.uuid4(), username=username, role="coordinator", unit="bergen-sentrum", agency=None, language="nb",
            active=True, created_at=NOW, password_hash=hash_password(password), failed_logins=0))


def attempt(core: Forlop, username: str, password: str, *, at: datetime = NOW, client: str | None = "10.0.0.7",
            rules: LoginLimits | None = None) -> str:
    """'ok', 'failed' or 'limited:<seconds>'."""
    try:
        login(core.engine, username, password, now=at, slow=False, client=client, limits=rules or limits_of())
    except TooManyAttempts as exc:
        return f"limited:{exc.retry_after}"
    except LoginFailed:
        return "failed"
    return "ok"


def test_beyond_the_limit_on_a_name_even_the_right_password_waits_for_the_window_to_end(core: Forlop) -> None:
    a_user(core, "kari")
    rules = limits_of(per_name=3)
    answers = [attempt(core, "kari", "feil", at=NOW + timedelta(seconds=i), rules=rules) for i in range(3)]
    assert answers == ["failed"] * 3
    # 10 s into the window: 290 s left; the right password is refused too, before it is checked
    assert attempt(core, "kari", "riktig-passord", at=NOW + timedelta(seconds=10), rules=rules) == "limited:290"
    assert attempt(core, "kari", "riktig-passord", at=NOW + WINDOW - timedelta(seconds=1), rules=rules) == "limited:1"
    # the window has ended: a fresh one (three failures do not lock; five do)
    assert attempt(core, "kari", "riktig-passord", at=NOW + WINDOW, rules=rules) == "ok"


def test_an_unknown_name_is_limited_exactly_like_a_known_one(core: Forlop) -> None:
    a_user(core, "kari")
    rules = limits_of(per_name=2)
    known = [attempt(core, "kari", "feil", rules=rules) for _ in range(4)]
    unknown = [attempt(core, "ingen-slik", "feil", rules=rules) for _ in range(4)]
    assert known == unknown == ["failed", "failed", "limited:300", "limited:300"]


def test_the_client_limit_counts_every_name_and_other_clients_are_not_held_up(core: Forlop) -> None:
    a_user(core, "kari")
    rules = limits_of(per_client=3)
    assert [attempt(core, f"navn{i}", "feil", rules=rules) for i in range(3)] == ["failed"] * 3
    assert attempt(core, "kari", "riktig-passord", rules=rules) == "limited:300"
    assert attempt(core, "kari", "riktig-passord", client="10.0.0.8", rules=rules) == "ok"
    # the command line signs in without a client address: only the name is counted
    assert attempt(core, "kari", "riktig-passord", client=None, rules=rules) == "ok"


def test_only_failures_count_a_busy_office_signing_in_is_not_held_up(core: Forlop) -> None:
    a_user(core, "kari")
    a_user(core, "ola")
    rules = limits_of(per_client=2, per_name=2)
    answers = [attempt(core, "kari", "feil", rules=rules)]
    answers += [attempt(core, name, "riktig-passord", rules=rules) for name in ("kari", "ola") * 5]
    answers += [attempt(core, "ola", "feil", rules=rules), attempt(core, "kari", "feil", rules=rules)]
    assert answers == ["failed"] + ["ok"] * 10 + ["failed", "limited:300"]  # the client's third failure
    with core.engine.connect() as conn:
        counts = dict(conn.execute(sa.select(rate_limit_t.c.key, rate_limit_t.c.count)).all())
    assert counts["login:client:10.0.0.7"] == 3 and sorted(v for k, v in counts.items() if "name" in k) == [1, 2]


def test_the_settings_give_the_limits(core: Forlop) -> None:
    rules = LoginLimits.of(core.settings.model_copy(update={"login_attempts_per_client": 7,
                                                            "login_attempts_per_name": 3, "login_window_minutes": 2}))
    assert rules == LoginLimits(per_client=limits.Limit(7, timedelta(minutes=2)),
                                per_name=limits.Limit(3, timedelta(minutes=2)))
    assert accounts.DEFAULT_LIMITS == LoginLimits(per_client=limits.Limit(20, WINDOW),
                                                  per_name=limits.Limit(10, WINDOW))


def test_parallel_attempts_are_all_counted_and_exactly_the_limit_gets_through(core: Forlop) -> None:
    """Each attempt is one INSERT ... ON CONFLICT DO UPDATE: 40 at once on one key leave a count of 40, and
    exactly 10 of them are within a limit of 10 (a read-then-write count lets more through)."""
    limit = limits.Limit(10, WINDOW)
    barrier = threading.Barrier(40)
    hits: list[limits.Hit] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait(timeout=30)
        with core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            result = limits.hit(conn, "test:parallel", limit=limit, now=NOW)
        with lock:
            hits.append(result)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(h.count for h in hits) == list(range(1, 41))
    assert sum(not h.refused for h in hits) == 10
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(rate_limit_t.c.count).where(rate_limit_t.c.key == "test:parallel")).scalar() == 40


def test_a_window_starts_over_and_ended_windows_are_forgotten(core: Forlop) -> None:
    limit = limits.Limit(2, WINDOW)
    with core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        hits = [limits.hit(conn, "test:a", limit=limit, now=NOW) for _ in range(3)]
        counts, counts_hit = [h.count for h in hits], hits[-1]
        assert [h.refused for h in hits] == [False, False, True] and hits[-1].retry_after_seconds == 300
        limits.hit(conn, "test:b", limit=limit, now=NOW + timedelta(minutes=4))
        again = limits.hit(conn, "test:a", limit=limit, now=NOW + WINDOW)
        assert limits.purge(conn, before=NOW + timedelta(minutes=4)) == 0  # "b" started then, "a" over at + 5 min
        assert limits.purge(conn, before=NOW + timedelta(minutes=4, seconds=30)) == 1  # "b"
        left = set(conn.execute(sa.select(rate_limit_t.c.key)).scalars())
        limits.give_back(conn, again)
        limits.give_back(conn, counts_hit)  # of an ended window: nothing to give back
        count = conn.execute(sa.select(rate_limit_t.c.count).where(rate_limit_t.c.key == "test:a")).scalar()
    assert counts == [1, 2, 3] and again.count == 1 and not again.refused
    assert left == {"test:a"} and count == 0


def test_a_name_is_kept_only_as_a_hash_people_type_passwords_there(core: Forlop) -> None:
    attempt(core, "mitt-hemmelige-passord", "feil")
    with core.engine.connect() as conn:
        keys = list(conn.execute(sa.select(rate_limit_t.c.key)).scalars())
    assert len(keys) == 2 and not any("hemmelige" in k for k in keys)
    assert "login:client:10.0.0.7" in keys


# -- an unknown name costs what a known one does ---------------------------------------------------------------


@dataclass
class Cost:
    """What a sign-in did: argon2 verifications, waits, and the SQL statements it ran (their text only)."""
    verifications: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)


@pytest.fixture
def measured(core: Forlop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cost]:
    cost = Cost()
    real = accounts._hasher

    class CountingHasher:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            cost.verifications.append("dummy" if stored == accounts._DUMMY_HASH else "account")
            return real.verify(stored, password)

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        cost.statements.append(text)

    monkeypatch.setattr(accounts, "_hasher", CountingHasher())
    monkeypatch.setattr(accounts, "time", SimpleNamespace(sleep=cost.waits.append))
    sa.event.listen(core.engine, "before_cursor_execute", statement)
    try:
        yield cost
    finally:
        sa.event.remove(core.engine, "before_cursor_execute", statement)


def _failures(core: Forlop, cost: Cost, username: str, times: int) -> Cost:
    cost.verifications.clear(), cost.waits.clear(), cost.statements.clear()
    for i in range(times):
        with pytest.raises(LoginFailed):
            login(core.engine, username, "feil-passord", now=NOW + timedelta(seconds=i), client="10.0.0.9",
                  limits=limits_of())
    return Cost(list(cost.verifications), list(cost.waits), list(cost.statements))


def test_an_unknown_name_costs_what_a_known_one_does(core: Forlop, measured: Cost) -> None:
    """Six failures in a row (the account locks after five): the known name and the unknown one each cost one
    argon2 verification per attempt, the same growing waits, and the very same SQL statements. (No timing: the
    work is counted.)"""
    a_user(core, "kjent")
    known = _failures(core, measured, "kjent", 6)
    unknown = _failures(core, measured, "ukjent", 6)
    assert known.verifications == ["account"] * 6 and unknown.verifications == ["dummy"] * 6
    assert known.waits == unknown.waits == [accounts.failure_delay(n) for n in range(1, 7)]
    assert known.waits == sorted(known.waits) and known.waits[-1] > known.waits[0]  # each failure in a row costs more
    assert known.statements == unknown.statements
    with core.engine.connect() as conn:  # and the known account was locked all the same
        assert conn.execute(sa.select(user_t.c.locked_until).where(user_t.c.username == "kjent")).scalar()


def test_the_dummy_hash_costs_what_an_account_s_hash_does() -> None:
    """Same algorithm, same parameters: the verification against the dummy is no quicker."""
    account = accounts.hash_password("et-passord")
    assert account.split("$")[1:4] == accounts._DUMMY_HASH.split("$")[1:4]  # argon2id, v=19, m=...,t=...,p=...
    with pytest.raises(VerifyMismatchError):
        accounts._hasher.verify(accounts._DUMMY_HASH, "et-passord")
