"""The administrator's erasure page over HTTP, on SQLite and PostgreSQL: the dry run, the holds in force and the
erasure log in one page (its reading logged); a hold set and lifted by form, refused with a message for a missing
reason (422), an unknown case (404) or a second hold (409); no one but an administrator may open it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pathway.services.retention import run_retention
from pathway.store.tables import access_t, case_t
from tests.e2e.api_support import World, synthetic_person
from tests.e2e.test_admin_users import CSRF, admin_page, signed_in
from tests.e2e.test_pages_in_bokmal import english_on

pytest_plugins = ["tests.e2e.api_support"]


def closed_case(w: World) -> str:
    reference = w.open_case(synthetic_person())["reference"]
    w.operate(reference, "close", {"outcome": "declined", "reason": "takket nei til videre oppfølging"})
    return str(reference)


def post(w: World, path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    page = admin_page(w)
    csrf = CSRF.search(page.get("/admin/retention").text).group(1)  # type: ignore[union-attr]
    return page.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


def test_the_page_shows_when_a_closed_case_is_erased_and_logs_its_reading(world: World) -> None:
    reference = closed_case(world)
    r = admin_page(world).get("/admin/retention")
    assert r.status_code == 200
    assert "Sletting og rettslig pålegg" in r.text and reference in r.text
    assert "Ingen sak er underlagt rettslig pålegg." in r.text
    with world.core.engine.connect() as conn:
        actions = set(conn.execute(sa.select(access_t.c.action).where(access_t.c.username == "admin")).scalars())
    assert {"retention.list", "retention.log"} <= actions


def test_a_hold_is_set_and_lifted_by_form_with_a_reason(world: World) -> None:
    reference = closed_case(world)
    r = post(world, "/admin/retention/hold", {"reference": reference, "reason": "klage til Statsforvalteren"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/retention?done=hold"
    shown = admin_page(world).get("/admin/retention?done=hold").text
    assert "Saken er underlagt rettslig pålegg" in shown and "klage til Statsforvalteren" in shown
    again = post(world, "/admin/retention/hold", {"reference": reference, "reason": "igjen"})
    assert again.status_code == 409 and "Saken er allerede underlagt rettslig pålegg." in again.text
    lifted = post(world, "/admin/retention/release", {"reference": reference, "reason": "saken er avgjort"})
    assert lifted.status_code == 303 and lifted.headers["location"] == "/admin/retention?done=release"
    none = post(world, "/admin/retention/release", {"reference": reference, "reason": "igjen"})
    assert none.status_code == 409 and "Saken er ikke underlagt rettslig pålegg." in none.text


def test_bad_input_is_refused_on_the_page(world: World) -> None:
    reference = closed_case(world)
    blank = post(world, "/admin/retention/hold", {"reference": reference, "reason": "  "})
    assert blank.status_code == 422 and "Oppgi en begrunnelse på 1 til 2000 tegn." in blank.text
    unknown = post(world, "/admin/retention/hold", {"reference": "BGO-1999-9999", "reason": "klage"})
    assert unknown.status_code == 404 and "Det finnes ingen sak med denne referansen." in unknown.text
    assert post(world, "/admin/retention/hold", {"reason": "klage"}).status_code == 404


@pytest.mark.parametrize("user", ["koordinator", "leder"])
def test_no_one_else_may_open_it(world: World, user: str) -> None:
    page = signed_in(world, user, "demo")
    assert page.get("/admin/retention", follow_redirects=False).status_code in (403, 404)


def test_the_erasure_log_on_the_page_says_the_rule_in_bokmal(world: World) -> None:
    reference = closed_case(world)
    with world.core.engine.connect() as conn:
        closed_at = conn.execute(sa.select(case_t.c.closed_at).where(case_t.c.reference == reference)).scalar_one()
    now = closed_at + timedelta(days=world.core.settings.retention_days)  # a fixed clock: the day its period ends
    assert reference in run_retention(engine=world.core.engine, settings=world.core.settings, now=now,
                                      by="scheduler").erased
    shown = admin_page(world).get("/admin/retention").text
    assert "1826 dager etter avslutning (FORLOP_RETENTION_DAYS)" in shown
    assert not english_on(shown)
