"""The person's copy (issue 17, right of access), through HTTP and the command line on the seeded world, on SQLite and
PostgreSQL: before erasure, the copy holds every marker put into a personal or free-text field of the case and its
children's pathways, and the access log of earlier reads, in JSON and in the readable document; the export is itself
logged; only an administrator and the case's own coordinator may export it. A correction of the person record reads
"Opplysninger rettet" in the timeline, with its reason."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway import services
from pathway.accounts import set_password
from pathway.demo import DEMO_PASSWORD
from pathway.people import PersonRecord
from pathway.store.tables import access_t, case_t, legal_hold_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

FORLOP = Path(sys.executable).with_name("forlop")
UNIT = "bergen-sentrum"


@dataclass
class Marked:
    """A case of bergen-sentrum with a marker in every personal and free-text field, and its child's pathway."""

    reference: str
    child: str
    markers: list[str]
    changed_address: str


def _post(w: World, path: str, body: dict[str, Any], *, user: str = "koordinator", expect: int = 200,
          version_of: str | None = None) -> dict[str, Any]:
    headers = w.auth(user)
    if version_of is not None:
        headers["If-Match"] = f'"{w.version(version_of)}"'
    r = w.client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code == expect, f"{path}: {r.status_code} {r.text}"
    return r.json()  # type: ignore[no-any-return]


def marked_case(w: World) -> Marked:
    m = f"MRK{uuid.uuid4().hex[:10]}"
    mark = {k: f"{m}-{k}" for k in (
        "name", "contact", "address", "language", "open", "assign", "pause", "resume", "step_note", "title",
        "add_reason", "handover_note", "reply", "glass", "child_name", "school", "child_title", "child_reason",
        "correction", "address2", "target", "transfer", "glass_write")}
    person = {"name": f"Tora {mark['name']}", "birth_date": "1971-03-04", "safe_contact": mark["contact"],
              "address": mark["address"], "interpreter_language": mark["language"], "children_ages": [7],
              "home_municipality": "Askøy", "address_protection": "code7"}
    opened = _post(w, "/cases", {"person": person, "reason": mark["open"]}, expect=201)
    ref = opened["reference"]
    _post(w, f"/cases/{ref}/coordinator", {"coordinator": "koordinator", "reason": mark["assign"]}, version_of=ref)
    _post(w, f"/cases/{ref}/pause", {"reason": mark["pause"]}, version_of=ref)
    _post(w, f"/cases/{ref}/resume", {"reason": mark["resume"]}, version_of=ref)
    detail = w.client.get(f"{API}/cases/{ref}", headers=w.auth("koordinator")).json()
    step = next(s for s in detail["steps"] if s["state"] in ("open", "active") and not s["adhoc"])
    _post(w, f"/cases/{ref}/steps/{step['code']}/complete", {"note": mark["step_note"]}, version_of=ref)
    due = (datetime.now(timezone.utc) + timedelta(days=10)).isoformat()
    _post(w, f"/cases/{ref}/steps", {"title": mark["title"], "owner": "crisis_centre", "due_at": due,
                                     "reason": mark["add_reason"]}, version_of=ref)
    _post(w, f"/cases/{ref}/consents/police", {"scope": ["name", "contact", "threat_assessment"]}, version_of=ref)
    detail = _post(w, f"/cases/{ref}/handovers", {"code": "K6", "note": mark["handover_note"]}, version_of=ref)
    task = next(t for t in detail["handovers"] if t["code"] == "K6")
    r = w.client.post(f"{API}/tasks/{task['id']}/decline", json={"reason": mark["reply"]}, headers=w.auth("politi"))
    assert r.status_code == 200, r.text
    # another unit's coordinator reads the case under emergency access, with a reason
    _post(w, f"/cases/{ref}/break-glass", {"reason": f"akutt: {mark['glass']}",
                                           "write_reason": f"må registrere akutt: {mark['glass_write']}"},
          user="koordinator2")
    # a child's pathway, its record marked, with an added step and a reason of its own
    _post(w, f"/cases/{ref}/children",
          {"child": {"first_name": mark["child_name"], "birth_year": 2019, "school": mark["school"]}},
          version_of=ref, expect=201)
    child = w.client.get(f"{API}/cases/{ref}", headers=w.auth("koordinator")).json()["children"][0]["reference"]
    _post(w, f"/cases/{child}/steps", {"title": mark["child_title"], "owner": "child_coordinator", "due_at": due,
                                       "reason": mark["child_reason"]}, version_of=child)
    # a correction (rectification) of the person record, with its reason
    services.update_person(uow=w.core.uow(), reference=ref, expected_version=None,
                           person=PersonRecord.model_validate({**person, "address": mark["address2"]}),
                           actor="koordinator", keys=w.core.keys, index_key=w.core.settings.index_key,
                           reason=mark["correction"])
    # earlier reads, which the access log then holds
    assert w.client.get(f"{API}/cases/{ref}", headers=w.auth("koordinator")).status_code == 200
    assert w.client.get(f"{API}/cases/{ref}/person", headers=w.auth("koordinator")).status_code == 200
    assert w.client.get(f"{API}/cases/{ref}/children", headers=w.auth("koordinator")).status_code == 200
    _post(w, f"/cases/{ref}/transfer", {"municipality": mark["target"], "reason": mark["transfer"]}, version_of=ref)
    return Marked(ref, child, list(mark.values()), mark["address2"])


@pytest.fixture(scope="module")
def marked(world: World) -> Marked:
    return marked_case(world)


def a_coordinator(w: World, unit: str = UNIT) -> str:
    """Another coordinator of the unit: may see the case, is not its coordinator."""
    name = f"kopi-{uuid.uuid4().hex[:8]}"
    services.add_user(engine=w.core.engine, username=name, role="coordinator", unit=unit)
    set_password(w.core.engine, name, DEMO_PASSWORD)
    return name


def copy_rows(w: World, reference: str) -> list[Any]:
    with w.core.engine.connect() as conn:
        return list(conn.execute(sa.select(access_t.c.username, access_t.c.status).where(
            access_t.c.case_reference == reference, access_t.c.action == "case.copy")))


def test_the_json_copy_holds_every_marker_and_the_access_log_of_earlier_reads(world: World, marked: Marked) -> None:
    w = world
    r = w.client.get(f"{API}/cases/{marked.reference}/copy", headers=w.auth("koordinator"))
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment")
    copy = r.json()
    text = json.dumps(copy, ensure_ascii=False)
    missing = [m for m in marked.markers if m not in text]
    assert not missing, f"not in the copy: {missing}"
    assert copy["person"]["address"] == marked.changed_address and copy["person"]["birth_date"] == "1971-03-04"
    assert copy["children"][0]["child"]["school"].endswith("-school")
    assert copy["children"][0]["case"]["reference"] == marked.child
    reads = {(a["username"], a["action"]) for a in copy["case"]["access"]}
    assert {("koordinator", "case.read"), ("koordinator", "person.read"), ("politi", "task.declined")} <= reads, reads
    assert ("koordinator", "child.read") in {(a["username"], a["action"]) for a in copy["children"][0]["case"]["access"]}
    handover = next(h for h in copy["case"]["handovers"] if h["code"] == "K6")
    assert (handover["agency"], handover["basis"], handover["status"]) == ("police", "consent", "declined")
    assert handover["scope"] == ["name", "contact", "threat_assessment"]
    correction = [e for e in copy["case"]["events"] if e["operation"] == "person_updated"][-1]
    assert correction["payload"]["fields"] == ["address"] and correction["reason"].endswith("-correction")
    # the export itself is in the access log afterwards (and in the next copy)
    assert ("koordinator", 200) in copy_rows(w, marked.reference)
    assert ("koordinator", 200) in copy_rows(w, marked.child), "and the child's pathway it read, in a row of its own"
    again = w.client.get(f"{API}/cases/{marked.reference}/copy", headers=w.auth("admin")).json()
    assert ("koordinator", "case.copy") in {(a["username"], a["action"]) for a in again["case"]["access"]}


def test_a_legal_hold_is_in_the_copy_without_its_sealed_reason(world: World, marked: Marked) -> None:
    w = world
    set_at = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    with w.core.engine.begin() as conn:
        case_id = conn.execute(sa.select(case_t.c.id).where(case_t.c.reference == marked.reference)).scalar_one()
        conn.execute(sa.insert(legal_hold_t).values(id=uuid.uuid4(), case_id=case_id, set_at=set_at, set_by="admin",
                                                    reason="sealed-token"))
    holds = w.client.get(f"{API}/cases/{marked.reference}/copy", headers=w.auth("admin")).json()["case"]["holds"]
    assert holds == [{"set_at": set_at.isoformat(), "set_by": "admin", "lifted_at": None, "lifted_by": None}]


def test_the_readable_document_holds_every_marker_in_bokmal(world: World, marked: Marked) -> None:
    w = world
    client = signed_in(TestClient(w.app, raise_server_exceptions=True), "koordinator")
    page = client.get(f"/cases/{marked.reference}")
    assert "Innsyn (kopi til personen)" in page.text
    assert "Opplysninger rettet: adresse" in page.text  # the case page's timeline names the correction
    r = client.get(f"/cases/{marked.reference}/copy")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    doc = r.text
    assert "Innsyn: opplysninger registrert om deg" in doc and '<html lang="nb">' in doc
    missing = [m for m in marked.markers if html.escape(m) not in doc]
    assert not missing, f"not in the document: {missing}"
    assert "04.03.1971" in doc and "Opplysninger rettet: adresse" in doc
    assert "Hvem som har lest eller endret saken" in doc and "Leste en sak" in doc and "Leste personopplysninger" in doc
    assert "Avslo en overleveringsoppgave" in doc  # the police's answer, in words
    assert ("koordinator", 200) in copy_rows(w, marked.reference)
    assert ("koordinator", 200) in copy_rows(w, marked.child), "and the child's pathway it read, in a row of its own"


@pytest.mark.parametrize("who", ["other_in_unit", "koordinator2", "leder", "politi", "nav"])
def test_nobody_else_may_export_the_copy(world: World, marked: Marked, who: str) -> None:
    w = world
    user = a_coordinator(w) if who == "other_in_unit" else who  # koordinator2 even holds emergency access
    r = w.lenient.get(f"{API}/cases/{marked.reference}/copy", headers=w.auth(user))
    assert r.status_code in (403, 404), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "MRK" not in r.text
    if who in ("other_in_unit", "koordinator2"):
        assert (user, 404) in copy_rows(w, marked.reference)  # the refusal is logged too
        page = signed_in(TestClient(w.app), user).get(f"/cases/{marked.reference}/copy")
        assert page.status_code == 404 and "MRK" not in page.text


def test_the_command_line_writes_both_formats(world: World, marked: Marked, tmp_path: Path) -> None:
    w = world
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORLOP_") and k != "DATABASE_URL"}
    env.update(FORLOP_ENV="test", FORLOP_DATABASE_URL=w.core.engine.url.render_as_string(hide_password=False))
    for fmt in ("json", "html"):
        out = tmp_path / f"copy.{fmt}"
        proc = subprocess.run([str(FORLOP), "case", "copy", marked.reference, "--as", "admin", "--format", fmt,
                               "--output", str(out)], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        text = out.read_text(encoding="utf-8")
        missing = [m for m in marked.markers if m not in text]
        assert not missing, f"{fmt}: not in the copy: {missing}"
    assert "<style>" in (tmp_path / "copy.html").read_text() and "@media print" in (tmp_path / "copy.html").read_text()
    assert ("admin", 200) in copy_rows(w, marked.reference)
    refused = subprocess.run([str(FORLOP), "case", "copy", marked.reference, "--as", "leder"], capture_output=True,
                             text=True, env=env, timeout=300)
    assert refused.returncode != 0 and "MRK" not in refused.stdout + refused.stderr
