"""A user's work phone (the number partner agencies may call about a case), set by an administrator over the API, in
the users page and from the command line, on SQLite and PostgreSQL: digits, spaces and a leading + only, a change in
the access log, and an empty one takes it away. The demo's coordinators have numbers of an invented range."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pathway.store.tables import access_t, user_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World  # noqa: E402
from tests.e2e.test_admin_users import admin_page, new_user, post_form  # noqa: E402
from tests.e2e.test_cli import FORLOP  # noqa: E402
from tests.e2e.test_cli_users import BOSS, Cli  # noqa: E402
from tests.e2e.test_cli_users import cli as cli  # noqa: E402,F401  (the fixture)

pytest_plugins = ["tests.e2e.api_support"]
PHONE = "+47 099 00 042"  # of the demo's invented range: no Norwegian number starts with 0


def phone_of(w: World, name: str) -> str | None:
    with w.core.engine.connect() as conn:
        return conn.execute(sa.select(user_t.c.phone).where(user_t.c.username == name)).scalar_one()


def test_an_administrator_sets_and_takes_away_a_work_phone_over_the_api(world: World) -> None:
    name = new_user(world)
    r = world.client.patch(f"{API}/users/{name}", json={"phone": "  +47 099  00 042 "}, headers=world.auth("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == PHONE and r.json()["role"] == "coordinator"  # spaces tidied, the role kept
    assert phone_of(world, name) == PHONE
    with world.core.engine.connect() as conn:
        reasons = list(conn.execute(sa.select(access_t.c.reason).where(access_t.c.action == "user.phone")).scalars())
    assert f"user={name} phone=+4709900042" in reasons

    listed = world.client.get(f"{API}/users", headers=world.auth("admin")).json()
    assert next(u for u in listed if u["username"] == name)["phone"] == PHONE
    # A role and a phone in one change; then null takes the phone away.
    r = world.client.patch(f"{API}/users/{name}", json={"role": "coordinator", "unit": "askoy", "phone": "09900043"},
                           headers=world.auth("admin"))
    assert (r.status_code, r.json()["unit"], r.json()["phone"]) == (200, "askoy", "09900043")
    r = world.client.patch(f"{API}/users/{name}", json={"phone": None}, headers=world.auth("admin"))
    assert r.status_code == 200 and r.json()["phone"] is None and phone_of(world, name) is None


@pytest.mark.parametrize("phone", ["ring meg", "+47-099-00-042", "1234", "+47 55 00 00 00 00 00 00 00", "++4755"])
def test_a_phone_that_is_not_a_phone_number_is_refused_and_nothing_changes(world: World, phone: str) -> None:
    name = new_user(world)
    r = world.client.patch(f"{API}/users/{name}", json={"phone": phone}, headers=world.auth("admin"))
    assert r.status_code == 422, r.text
    assert phone_of(world, name) is None


def test_a_change_with_neither_a_role_nor_a_phone_is_refused(world: World) -> None:
    name = new_user(world)
    r = world.client.patch(f"{API}/users/{name}", json={}, headers=world.auth("admin"))
    assert r.status_code == 422


def test_the_users_page_sets_a_phone_with_the_placement_and_says_in_bokmal_what_is_wrong(world: World) -> None:
    name = new_user(world)
    page = admin_page(world)
    assert 'name="phone" type="tel" maxlength="32"' in page.get("/admin/users").text
    r = post_form(page, "/admin/users/update", {"username": name, "role": "coordinator", "unit": "voss",
                                                "agency": "", "phone": PHONE})
    assert r.status_code == 303, r.text
    assert phone_of(world, name) == PHONE
    assert PHONE in page.get("/admin/users").text  # in the list, and in the edit form

    r = post_form(page, "/admin/users/update", {"username": name, "role": "coordinator", "unit": "voss",
                                                "phone": "ring sentralbordet"})
    assert r.status_code == 422
    assert "Jobbtelefon" in r.text and "Oppgi et telefonnummer: sifre og mellomrom, eventuelt med + først." in r.text
    assert phone_of(world, name) == PHONE  # the role was not changed either: one transaction

    r = post_form(page, "/admin/users/update", {"username": name, "role": "coordinator", "unit": "voss", "phone": ""})
    assert r.status_code == 303 and phone_of(world, name) is None  # left empty: no work phone


def test_a_user_is_created_with_a_phone_in_the_page(world: World) -> None:
    page = admin_page(world)
    r = post_form(page, "/admin/users", {"username": "ny-med-telefon", "role": "coordinator", "unit": "voss",
                                         "language": "nb", "password": "et-langt-syntetisk-passord", "phone": PHONE})
    assert r.status_code == 303, r.text
    assert phone_of(world, "ny-med-telefon") == PHONE


def test_the_demo_coordinators_have_phones_of_an_invented_range(world: World) -> None:
    with world.core.engine.connect() as conn:
        phones = dict(conn.execute(sa.select(user_t.c.username, user_t.c.phone).where(
            user_t.c.role == "coordinator", user_t.c.username.like("koordinator%"))).all())
    assert phones and all(p is not None and p.startswith("+47 099 00 ") for p in phones.values()), phones
    assert len(set(phones.values())) == len(phones)


@pytest.mark.skipif(not FORLOP.exists(), reason=f"the console script is not installed at {FORLOP}")
def test_the_command_line_sets_and_takes_away_a_phone(cli: Cli) -> None:
    made = cli("users", "add", "k1", "--role", "coordinator", "--unit", "voss", "--password-stdin", *BOSS,
               stdin="et-langt-passord\n")
    assert made.code == 0, made.stderr
    changed = cli("users", "change", "k1", "--phone", PHONE, *BOSS)
    assert changed.code == 0, changed.stderr
    assert f"user k1 has the work phone {PHONE}" in changed.stdout
    engine = cli.engine()

    def phone() -> str | None:
        with engine.connect() as conn:
            return conn.execute(sa.select(user_t.c.phone, user_t.c.role).where(user_t.c.username == "k1")).one()[0]

    assert phone() == PHONE
    listed = cli("users", "list", *BOSS)
    assert PHONE in listed.stdout
    assert cli("users", "change", "k1", "--phone", "ring meg", *BOSS).code == 2 and phone() == PHONE
    assert cli("users", "change", "k1", *BOSS).code == 2  # neither a role nor a phone
    assert cli("users", "change", "k1", "--phone", "", *BOSS).code == 0 and phone() is None


def test_a_unit_without_its_role_is_refused_and_an_unchanged_phone_is_not_logged_again(world: World) -> None:
    name = new_user(world)
    r = world.client.patch(f"{API}/users/{name}", json={"unit": "askoy"}, headers=world.auth("admin"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "role", r.text

    def logged() -> int:
        with world.core.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(access_t).where(
                access_t.c.action == "user.phone", access_t.c.reason.contains(f"user={name} "))).scalar_one()

    world.client.patch(f"{API}/users/{name}", json={"phone": PHONE}, headers=world.auth("admin"))
    assert logged() == 1
    r = world.client.patch(f"{API}/users/{name}", json={"role": "coordinator", "unit": "askoy", "phone": PHONE},
                           headers=world.auth("admin"))
    assert r.status_code == 200 and logged() == 1, "the role changed, the phone did not"
