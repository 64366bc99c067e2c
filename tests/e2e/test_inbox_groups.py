"""The inbox per case, through the API and the /inbox page: one group per case, the newest first, with its counts and
its newest kind; marking a case's notifications or all of them read, one's own only, the page's form with CSRF; the
daily digest's counts per checkpoint, with the report's small-count rule, in bokmål and in English."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pathway.scheduler import run_scan

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, digest_on_a_working_day, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
# Units of this module's own, one per coordinator: no other test's cases or scans reach its inbox.
UNITS = {"groups": "innboks-grupper", "mark": "innboks-merk", "other": "innboks-annen", "page": "innboks-side",
         "digest": "innboks-oversikt", "small": "innboks-oversikt-lite"}
EXTRA_UNITS = tuple(UNITS.values())
PASSWORD = "et-langt-passord"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def coordinator_with_reminders(w: World, unit: str, cases: int = 3) -> tuple[str, dict[str, str], list[str]]:
    """A new coordinator of ``unit``, with ``cases`` cases, the reminders of three days later and a daily digest of
    overdue steps some two weeks on (the unit has no manager: its coordinator gets it)."""
    name = f"grupper{uuid.uuid4().hex[:6]}"
    r = w.client.post(f"{API}/users", json={"username": name, "role": "coordinator", "unit": unit,
                                            "password": PASSWORD}, headers=w.auth("admin"))
    assert r.status_code == 201, r.text
    token = w.client.post(f"{API}/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    refs = []
    for _ in range(cases):
        r = w.client.post(f"{API}/cases", json={"person": synthetic_person()}, headers=h)
        assert r.status_code == 201, r.text
        refs.append(r.json()["reference"])
    run_scan(w.core, now=datetime.now(timezone.utc) + timedelta(days=3))
    digest_on_a_working_day(w.core, datetime.now(timezone.utc) + timedelta(days=14))
    return name, h, refs


def get(w: World, path: str, h: dict[str, str], **params: Any) -> Any:
    r = w.client.get(f"{API}{path}", params={"limit": 500, **params}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_inbox_per_case_has_one_group_per_case_newest_first_with_its_counts(world: World) -> None:
    w = world
    _, h, refs = coordinator_with_reminders(w, UNITS["groups"])
    flat = get(w, "/inbox", h)
    groups = get(w, "/inbox/cases", h)
    # the unit has no manager: its daily digest comes to the coordinator, about no case, as a group of its own
    assert {g["case_reference"] for g in groups} == {*refs, None}
    per_case = Counter(n["case_reference"] for n in flat)
    assert {g["case_reference"]: g["total"] for g in groups} == per_case
    assert all(g["unread"] == g["total"] for g in groups)  # nothing read yet
    assert [g["latest_at"] for g in groups] == sorted((g["latest_at"] for g in groups), reverse=True)
    for g in groups:  # the flat list is newest first: a case's first notification there is its newest
        newest = next(n for n in flat if n["case_reference"] == g["case_reference"])
        assert (g["latest_kind"], g["latest_step_code"], g["latest_at"]) == \
            (newest["kind"], newest["step_code"], newest["created_at"])
        if g["case_reference"]:
            assert g["link"].endswith(f"/cases/{g['case_reference']}")
    # the group's counts follow what is read
    one = next(n for n in flat if n["case_reference"] == refs[0])
    assert w.client.post(f"{API}/inbox/read", json={"ids": [one["id"]]}, headers=h).status_code == 200
    after = {g["case_reference"]: g for g in get(w, "/inbox/cases", h)}
    assert after[refs[0]]["unread"] == per_case[refs[0]] - 1 and after[refs[0]]["total"] == per_case[refs[0]]
    unread_only = {g["case_reference"]: g["total"] for g in get(w, "/inbox/cases", h, unread=True)}
    assert unread_only.get(refs[0], 0) == per_case[refs[0]] - 1


def test_mark_a_cases_notifications_read_then_all_and_only_ones_own(world: World) -> None:
    w = world
    _, h, refs = coordinator_with_reminders(w, UNITS["mark"])
    _, other, _ = coordinator_with_reminders(w, UNITS["other"], cases=1)
    others_unread = get(w, "/inbox/count", other)["unread"]
    total = get(w, "/inbox/count", h)["unread"]
    first = {g["case_reference"]: g["unread"] for g in get(w, "/inbox/cases", h)}[refs[0]]
    r = w.client.post(f"{API}/inbox/read-all", params={"case": refs[0]}, headers=h)
    assert r.status_code == 200 and r.json() == {"unread": total - first}
    assert {g["case_reference"] for g in get(w, "/inbox/cases", h, unread=True)} == {*refs[1:], None}
    r = w.client.post(f"{API}/inbox/read-all", headers=h)
    assert r.status_code == 200 and r.json() == {"unread": 0}
    assert get(w, "/inbox/cases", h, unread=True) == []
    assert get(w, "/inbox/count", other)["unread"] == others_unread > 0  # someone else's stay unread


def test_the_inbox_page_groups_per_case_and_marks_all_read_with_its_csrf_token(world: World) -> None:
    w = world
    name, h, refs = coordinator_with_reminders(w, UNITS["page"])
    browser = signed_in(TestClient(w.app), name, PASSWORD)
    html = browser.get("/inbox").text
    rows = re.findall(r'<th scope="row"><a href="/cases/([^"]+)">', html)
    assert sorted(rows) == sorted(refs)  # each case once
    assert '<a href="/inbox?view=list">Andre varsler</a>' in html  # the digest, about no case
    assert "Merk alle som lest" in html and 'value="cases"' in html
    one_by_one = browser.get("/inbox", params={"view": "list"}).text
    assert one_by_one.count('name="id"') == get(w, "/inbox/count", h)["unread"]
    # without the form's token: refused, nothing marked
    assert browser.post("/inbox", data={"all": "yes"}, follow_redirects=False).status_code == 403
    assert get(w, "/inbox/count", h)["unread"] > 0
    token = CSRF.search(html).group(1)  # type: ignore[union-attr]
    r = browser.post("/inbox", data={"csrf": token, "case": refs[0], "read": "yes", "view": "cases"},
                     follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/inbox"
    assert {g["case_reference"] for g in get(w, "/inbox/cases", h, unread=True)} == {*refs[1:], None}
    browser.post("/inbox", data={"csrf": token, "case": "-", "read": "yes"})  # the group about no case
    assert {g["case_reference"] for g in get(w, "/inbox/cases", h, unread=True)} == set(refs[1:])
    r = browser.post("/inbox", data={"csrf": token, "all": "yes", "view": "list"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/inbox?view=list"
    assert get(w, "/inbox/count", h)["unread"] == 0
    assert "Alle varsler er lest." in browser.get("/inbox", params={"unread": "true"}).text


DIGEST = re.compile(r'<ul class="digest-lines">(.*?)</ul>', re.S)


def digest_lines(html: str) -> list[str]:
    """The digest's lines as the page shows them, tags dropped."""
    [block] = DIGEST.findall(html)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", item)).strip()
            for item in re.findall(r"<li>(.*?)</li>", block, re.S)]


def test_the_inbox_page_shows_the_digests_counts_per_checkpoint_of_5_or_more_in_the_pages_language(
        world: World) -> None:
    w = world
    name, _, _ = coordinator_with_reminders(w, UNITS["digest"], cases=6)
    browser = signed_in(TestClient(w.app), name, PASSWORD)
    for view in ("cases", "list"):
        lines = digest_lines(browser.get("/inbox", params={"view": view}).text)
        assert lines[0] == "K1 Innledende kartlegging og trusselvurdering: 6"
        counts = [int(line.rsplit(": ", 1)[1]) for line in lines[:-1]]
        assert set(counts) == {6} and lines[-1] == f"Totalt: {sum(counts)}"
        assert not [line for line in lines if "Andre sjekkpunkter" in line]
    browser.cookies.set("forlop_lang", "en")
    english = digest_lines(browser.get("/inbox", params={"view": "list"}).text)
    assert english[0] == "K1 Initial mapping and threat assessment: 6" and english[-1].startswith("Total: ")


def test_the_inbox_page_folds_checkpoints_with_fewer_than_5_steps_into_one_line_that_names_none(world: World) -> None:
    w = world
    name, _, _ = coordinator_with_reminders(w, UNITS["small"], cases=3)
    browser = signed_in(TestClient(w.app), name, PASSWORD)
    lines = digest_lines(browser.get("/inbox").text)
    assert len(lines) == 2 and lines[0].startswith("Andre sjekkpunkter: ") and lines[1].startswith("Totalt: ")
    folded = lines[0].removeprefix("Andre sjekkpunkter: ")
    # three cases, each with several checkpoints overdue: 3 per checkpoint, none named, their sum shown from 5
    assert int(folded) >= 6 and int(folded) % 3 == 0 and lines[1] == f"Totalt: {folded}"
    assert not re.search(r"\bK\d", " ".join(lines)) and "færre enn 5" not in " ".join(lines)
