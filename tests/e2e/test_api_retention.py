"""Retention through the API: an administrator reads the dry run and the erasure log and sets and lifts legal holds,
each logged; anyone else is refused (403), an unknown case is a bare 404 and a missing reason a 422, all problem+json.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from pathway.services.retention import run_retention
from pathway.store.tables import access_t
from tests.e2e.api_support import API, World, synthetic_person

pytest_plugins = ["tests.e2e.api_support"]

ADMIN = "admin"
PROBLEM = "application/problem+json"


def closed_case(w: World) -> tuple[str, dict[str, object]]:
    person = synthetic_person()
    reference = w.open_case(person)["reference"]
    w.operate(reference, "close", {"outcome": "declined", "reason": "takket nei til videre oppfølging"})
    return reference, person


def hold(w: World, reference: str, reason: str = "klage til Statsforvalteren", *, release: bool = False,
         user: str = ADMIN):  # type: ignore[no-untyped-def]
    path = f"{API}/admin/cases/{reference}/hold" + ("/release" if release else "")
    return w.client.post(path, json={"reason": reason}, headers=w.auth(user))


def listed(w: World) -> dict[str, dict[str, object]]:
    r = w.client.get(f"{API}/admin/retention", headers=w.auth(ADMIN))
    assert r.status_code == 200, r.text
    return {d["reference"]: d for d in r.json()}


def test_the_dry_run_says_when_each_closed_case_is_erased_and_a_hold_shows_in_it(world: World) -> None:
    reference, _ = closed_case(world)
    entry = listed(world)[reference]
    assert entry["held"] is False and entry["due_now"] is False and entry["waiting_for_child"] is False
    assert entry["rule"] == "retention: 1826 days after closure (FORLOP_RETENTION_DAYS)"
    r = hold(world, reference)
    assert r.status_code == 201 and r.json() == {"reference": reference, "held": True}
    assert listed(world)[reference]["held"] is True
    again = hold(world, reference, "igjen")
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["code"] == "retention-refused"
    assert hold(world, reference, "saken er avgjort", release=True).json() == {"reference": reference, "held": False}
    none = hold(world, reference, "igjen", release=True)
    assert none.status_code == 409 and none.headers["content-type"] == PROBLEM
    with world.core.engine.connect() as conn:
        rows = conn.execute(sa.select(access_t.c.action, access_t.c.case_reference, access_t.c.status,
                                      access_t.c.reason).where(access_t.c.action.like("retention.%"), access_t.c.username == ADMIN)).all()
    assert ("retention.hold", reference, 200, None) in rows and ("retention.release", reference, 200, None) in rows
    assert ("retention.hold", reference, 409, None) in rows and ("retention.list", None, 200, None) in rows
    assert "Statsforvalteren" not in repr(rows)


def test_the_erasure_log_names_the_case_and_the_rule_and_nothing_personal(world: World) -> None:
    reference, person = closed_case(world)
    closed_at = listed(world)[reference]["closed_at"]
    assert isinstance(closed_at, str)
    now = datetime.fromisoformat(closed_at) + timedelta(days=1826)  # a fixed clock: the day its period ends
    erased = run_retention(engine=world.core.engine, settings=world.core.settings, now=now, by="scheduler").erased
    assert reference in erased
    r = world.client.get(f"{API}/admin/erasures", headers=world.auth(ADMIN))
    assert r.status_code == 200
    entry = next(e for e in r.json() if e["reference"] == reference)
    assert entry["rule"].startswith("retention: 1826 days") and entry["erased_by"] == "scheduler"
    for value in person.values():
        assert str(value) not in r.text
    assert reference not in listed(world)


@pytest.mark.parametrize("user", ["koordinator", "leder", "politi"])
def test_no_one_but_an_administrator_may(world: World, user: str) -> None:
    reference, _ = closed_case(world)
    for method, path, body in (("GET", f"{API}/admin/retention", None), ("GET", f"{API}/admin/erasures", None),
                               ("POST", f"{API}/admin/cases/{reference}/hold", {"reason": "klage"}),
                               ("POST", f"{API}/admin/cases/{reference}/hold/release", {"reason": "avgjort"})):
        r = world.lenient.request(method, path, json=body, headers=world.auth(user))
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, (path, r.text)
    assert listed(world)[reference]["held"] is False


def test_bad_input_is_refused_as_problem_json(world: World) -> None:
    reference, _ = closed_case(world)
    for body in ({"reason": ""}, {"reason": "x" * 2001}, {}):
        r = world.client.post(f"{API}/admin/cases/{reference}/hold", json=body, headers=world.auth(ADMIN))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    blank = hold(world, reference, "   ")
    assert blank.status_code == 422 and blank.json()["code"] == "invalid-argument"
    unknown = hold(world, "BGO-1999-9999")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    assert world.client.get(f"{API}/admin/erasures", params={"limit": 0},
                            headers=world.auth(ADMIN)).status_code == 422
    assert world.client.get(f"{API}/admin/retention", params={"limit": 0},
                            headers=world.auth(ADMIN)).status_code == 422
    soon = world.client.get(f"{API}/admin/retention", params={"until": "2030-01-01"}, headers=world.auth(ADMIN))
    assert soon.status_code == 200 and reference not in soon.text  # closed now: erased five years on
