"""Two coordinators complete the same checkpoint at the same moment, with the same version (If-Match), 100 times:
exactly one succeeds each time and the other gets 409 problem+json (stale version). Against the real server with
two worker processes, so the two requests may be served by different processes. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.store.tables import case_t, event_t

from .support import API, CLIENT_TIMEOUT, PROBLEM, add_coordinator, api_server, audit_verify, say, seed_world

ROUNDS = 100
STEP = "K1"


def test_two_coordinators_completing_the_same_checkpoint_at_once_one_wins_the_other_gets_409(
        core: Forlop, tmp_path: Path) -> None:
    db = core.engine.dialect.name
    refs = seed_world(core, cases=ROUNDS)  # a fresh case per round, at version 1, K1 active
    add_coordinator(core, "koordinator-b")
    with api_server(core.settings.database_url, workers=2, log_dir=tmp_path) as server:
        names = ("koordinator", "koordinator-b")
        clients = [httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT,
                                headers={"Authorization": f"Bearer {server.sign_in(n)}"}) for n in names]
        barrier = threading.Barrier(2)
        answers: list[list[httpx.Response | None]] = [[None, None] for _ in refs]

        def coordinator(i: int) -> None:
            for n, ref in enumerate(refs):
                barrier.wait(timeout=60)  # both send the same change at the same moment
                answers[n][i] = clients[i].post(f"{API}/cases/{ref}/steps/{STEP}/complete",
                                                headers={"If-Match": '"1"'}, json={"note": "samtidig"})

        threads = [threading.Thread(target=coordinator, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        for c in clients:
            c.close()
        assert not any(t.is_alive() for t in threads)

    outcomes: Counter[str] = Counter()
    winners: Counter[str] = Counter()
    for pair in answers:
        assert all(r is not None for r in pair)
        codes = sorted(r.status_code for r in pair if r is not None)
        outcomes[" + ".join(map(str, codes))] += 1
        for name, r in zip(names, pair):
            assert r is not None
            if r.status_code == 200:
                winners[name] += 1
                assert r.json()["version"] == 2
            else:
                assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, r.text
                problem = r.json()
                assert problem["type"] == "/problems/stale-version"
                assert (problem["expected_version"], problem["current_version"]) == (1, 2)
    with core.engine.connect() as conn:
        versions = Counter(conn.execute(sa.select(case_t.c.version).where(case_t.c.reference.in_(refs))).scalars())
        completions = conn.execute(sa.select(sa.func.count()).select_from(event_t)
                                   .where(event_t.c.operation == "complete")).scalar_one()
    code, summary = audit_verify(core.settings.database_url)
    say(f"[{db}] {ROUNDS} rounds of two simultaneous completions: {dict(outcomes)}; won by {dict(winners)}; "
        f"case versions {dict(versions)}, completion events {completions}; audit verify: {summary.splitlines()[0]}")
    assert outcomes == {"200 + 409": ROUNDS}
    assert versions == {2: ROUNDS} and completions == ROUNDS
    assert code == 0, summary
