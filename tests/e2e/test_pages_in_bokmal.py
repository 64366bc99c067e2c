"""Every page, as each of its users sees it in bokmål, refusals included: no text without its bokmål in the catalog,
and none of the English (or the wrong bokmål) a coordinator's walk found."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api import i18n
from pathway.store.tables import case_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import World, page_routes, signed_in  # noqa: E402
from tests.e2e.test_web_pages import PAGE_OWNERS, csrf_of  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
# The language of the pages does not depend on the database: SQLite is enough.
pytestmark = pytest.mark.parametrize("world", ["sqlite"], indirect=True)

# English that reached a bokmål page before (the engine's refusals, the validator's, deadline rules, codes), and
# bokmål words that say the wrong thing (issue 13): none may be seen again.
ENGLISH = re.compile(r"\b(not allowed|allowed now|is required|Field required|a reason|hours?|working days?|"
                     r"every \d+|days?|Overdue|Deadline|Save|Could not be done|Complete|Skip|Refused|"
                     r"threat_assessment|child_welfare_duty|avert_crime|[a-z_]+\.(?!yaml\b)[a-z_]+|bergen-sentrum|"
                     r"none|invalid|must|cannot|already|waiting|requested|accepted|declined)\b")
WRONG_BOKMAL = re.compile(r"\b(Overlever|Sett et forhold|Forhold|forfalt|Tilstand|Klient|Fortsatt|Flytt saken)\b")
SHOWN_IN = re.compile(r'(?:aria-label|title|placeholder|alt)="([^"]*)"')


def shown_text(page: str) -> str:
    """What a reader sees or hears of a page: its text and its labels, not its markup, styles or URLs."""
    page = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
    labels = " ".join(SHOWN_IN.findall(page))
    return html.unescape(re.sub(r"<[^>]+>", " ", page) + " " + labels)


def english_on(page: str) -> list[str]:
    text = shown_text(page)
    return sorted({m.group(0) for m in ENGLISH.finditer(text)} | {m.group(0) for m in WRONG_BOKMAL.finditer(text)})


def cases_of_every_kind(w: World) -> list[str]:
    """Cases of the coordinator's unit in each phase, open and closed, paused or not (the seeded demo has them)."""
    with w.core.engine.connect() as conn:
        rows = conn.execute(sa.select(case_t.c.reference, case_t.c.phase, case_t.c.closed_at.is_(None))
                            .where(case_t.c.unit == "bergen-sentrum").order_by(case_t.c.reference)).all()
    one_each: dict[tuple[str, bool], str] = {}
    for reference, phase, is_open in rows:
        one_each.setdefault((phase, is_open), reference)
    return sorted(one_each.values())


@pytest.fixture
def missed() -> Iterator[set[str]]:
    i18n.MISSED.clear()
    yield i18n.MISSED


def test_every_page_of_every_user_is_in_bokmal(world: World, missed: set[str]) -> None:
    references = cases_of_every_kind(world)
    assert len(references) >= 3
    # The pages of a sign-in through an identity provider are checked in bokmål in test_oidc_signin.py.
    pages = [p for p in page_routes(world.app, "GET") if p not in ("/login", "/language", "/calendar/{token}.ics",
                                                                    "/reports/timeliness.csv",
                                                                    "/reports/timeliness.xlsx", "/",
                                                                    "/login/oidc/{provider}",
                                                                    "/login/oidc/{provider}/callback")]
    found: dict[str, list[str]] = {}
    for username, role in (("koordinator", "coordinator"), ("politi", "partner"), ("nav", "partner"),
                           ("leder", "manager"), ("admin", "admin")):
        client = signed_in(TestClient(world.app), username)
        for path in pages:
            if PAGE_OWNERS[path] not in (role, "any") or (path == "/referrals" and username == "nav"):
                continue  # (only the police's contacts send referrals: NAV's find no such page)
            for address in ([path.format(reference=r) for r in references] if "{reference}" in path else [path]):
                r = client.get(address)
                assert r.status_code == 200, (username, address, r.status_code)
                if words := english_on(r.text):
                    found[f"{username} {address}"] = words
    admin = signed_in(TestClient(world.app), "admin")  # the access log, searched: every kind of entry in words
    for search in (f"?case={references[0]}", "?user=koordinator", "?user=politi", "?user=leder", "?user=admin"):
        r = admin.get(f"/admin/access{search}")
        assert r.status_code == 200 and "<td" in r.text, search
        if words := english_on(r.text):
            found[f"admin /admin/access{search}"] = words
    login = TestClient(world.app).get("/login")
    if words := english_on(login.text):
        found["/login"] = words
    assert not found, found
    assert not missed, f"texts without bokmål in the catalog: {sorted(missed)}"


def test_a_refusal_and_a_form_error_are_said_in_bokmal(world: World, missed: set[str]) -> None:
    client = signed_in(TestClient(world.app), "koordinator")
    reference = world.open_case()["reference"]  # in intake: K1 can be done, the case cannot be closed normally
    csrf = csrf_of(client, f"/cases/{reference}")
    version = str(world.version(reference))
    attempts = {
        "advance to the next phase before its checkpoints": ("advance", {"trigger": "start_support"}),
        "pause without a reason": ("pause", {"reason": ""}),
        "a step completed in the future": ("complete", {"code": "K1", "effective_at": "2999-01-01T10:00"}),
        "an unknown step": ("complete", {"code": "K99"}),
        "no such operation": ("fly", {}),
    }
    for what, (action, data) in attempts.items():
        r = client.post(f"/cases/{reference}/do/{action}", data={"csrf": csrf, "version": version, **data},
                        follow_redirects=False)
        assert r.status_code in (403, 404, 409, 422), (what, r.status_code)
        assert not english_on(r.text), (what, english_on(r.text))
    assert world.version(reference) == int(version)  # refused: nothing changed
    assert not missed, f"texts without bokmål in the catalog: {sorted(missed)}"


def test_the_api_answers_in_bokmal_by_default_and_in_english_when_asked(world: World) -> None:
    reference = world.open_case()["reference"]
    headers = {**world.auth("koordinator"), "If-Match": f'"{world.version(reference)}"'}
    url = f"/api/v1/cases/{reference}/transitions/start_support"
    nb = world.client.post(url, json={}, headers=headers)
    en = world.client.post(url, json={}, headers={**headers, "Accept-Language": "en-GB,en;q=0.9"})
    assert nb.status_code == en.status_code == 409
    assert nb.headers["content-language"] == "nb" and en.headers["content-language"] == "en"
    assert nb.json()["code"] == en.json()["code"] == "operation-not-allowed"
    assert nb.json()["allowed"] == en.json()["allowed"]  # the codes are the same in every language
    assert "kan ikke gjøres i fasen «Mottak»" in nb.json()["detail"] and not english_on(nb.json()["detail"])
    assert "is not allowed in phase 'Intake'" in en.json()["detail"]
    invalid = world.client.post("/api/v1/cases", json={"conditions": "not a list"}, headers=world.auth("koordinator"))
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["msg"] == "Oppgi en liste."


def test_a_report_span_refused_is_said_in_bokmal_on_the_page_and_its_downloads(world: World, missed: set[str]) -> None:
    client = signed_in(TestClient(world.app), "leder")
    said = {"end": "9999-12-31"}, {"start": "2026-06-01", "end": "2020-01-01"}
    for path in ("/reports", "/reports/timeliness.csv", "/reports/timeliness.xlsx"):
        beyond, backwards = (client.get(path, params=params) for params in said)
        for r in (beyond, backwards):
            assert r.status_code == 422 and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
            assert not english_on(r.text), (path, english_on(r.text))
        assert "mellom 1970 og 2100" in shown_text(beyond.text)
        assert "start må komme før slutt" in shown_text(backwards.text)
    assert not missed, f"texts without bokmål in the catalog: {sorted(missed)}"
