"""kill -9 an API worker in the middle of a stream of checkpoint completions from several clients.

The server is the real ``forlop serve --workers 2``; uvicorn's supervisor starts a new worker in place of a
killed one. Every change answered 2xx must be in the database, no case may be half-written (version = events,
steps agree with their completion events), a change whose answer was cut off is either wholly applied or not at
all, and ``forlop audit verify`` (chains and replay) passes. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from pathway.bootstrap import Forlop

from .support import CompletionStream, api_server, audit_verify, ledger, say, seed_world, statuses, wait_until

CASES = 48  # four checkpoints completed by hand each: 192 changes
CLIENTS = 4
KILLS = 2
AHEAD = 40  # the clients go at most this many changes ahead of the last kill, so the stream outlasts every kill


def test_killing_an_api_worker_loses_no_acknowledged_change_and_half_applies_none(core: Forlop,
                                                                                    tmp_path: Path) -> None:
    db = core.engine.dialect.name
    refs = seed_world(core, cases=CASES)
    with api_server(core.settings.database_url, workers=2, log_dir=tmp_path) as server:
        stream = CompletionStream(server.url, server.sign_in("koordinator"), refs, threads=CLIENTS)
        stream.limit = AHEAD
        stream.start()
        killed, replaced = [], []
        try:
            for _ in range(KILLS):
                target = stream.acknowledged() + AHEAD // 2  # kill while changes are flowing
                assert wait_until(lambda: stream.acknowledged() >= target or stream.finished(), timeout=180)
                assert not stream.finished(), f"the clients ran out of work before the kill: {stream.surprises[:5]}"
                workers, started = server.workers(), server.started()
                victim = workers[len(killed) % len(workers)]
                server.kill_worker(victim)
                killed.append(victim)
                # The supervisor notices within a second and starts a new worker; the other one serves meanwhile.
                assert wait_until(lambda: len(server.workers()) == 2 and victim not in server.workers()
                                  and server.started() > started, timeout=120)
                replaced.extend(set(server.workers()) - set(workers))
                stream.limit = stream.acknowledged() + AHEAD
            stream.limit = None
            assert wait_until(stream.finished, timeout=600)  # every case as far as it goes
        finally:
            stream.stop()
        intents, attempts = stream.snapshot()
        log = server.log_text()

    found = ledger(core, intents)
    acknowledged = [i for i in intents if i.acknowledged]
    cut = [i for i in intents if not i.acknowledged]
    code, summary = audit_verify(core.settings.database_url)
    applied = sum(bool(i.applied) for i in cut)
    say(f"[{db}] acknowledged {len(acknowledged)}, found {len(acknowledged) - len(found.missing)}, "
        f"half-applied {len(found.half_applied)}, completed twice {len(found.completed_twice)}; workers killed "
        f"{len(killed)}, replaced {len(replaced)}; answers cut off {len(cut)} (applied {applied}, "
        f"not applied {sum(i.applied is False for i in cut)}); requests {statuses(attempts)}; "
        f"{found.cases} cases, {found.events} events; audit verify: {summary.splitlines()[0]}")

    assert len(killed) == len(replaced) == KILLS
    assert found.missing == [] and found.half_applied == [] and found.completed_twice == []
    assert code == 0, summary
    assert stream.surprises == []
    # Every change whose answer was cut off was learned afterwards: applied wholly or not at all (never unknown).
    assert all(i.applied is not None for i in cut)
    # A killed worker cuts connections; it never makes the server answer 5xx.
    assert not [a for a in attempts if a.status is not None and a.status >= 500]
    assert "Traceback" not in log, log[-3000:]
    # Nothing was left undone: every case reached its last hand-completable step.
    assert len(acknowledged) + applied == found.events - found.cases
