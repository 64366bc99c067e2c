"""The loop closes (issue 14, item 6), through HTTP on the seeded world, on SQLite and PostgreSQL: a partner's decline
tells the case's coordinator at once (an inbox row, and an email through a real SMTP server) naming the case and the
checkpoint and nothing else, not even the agency (email is no safe channel, and the police's name alone says too much);
the case list flags the decline and the case page says what to do next, until the handover is asked for again or the
step is closed."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from notifications.channels import EmailChannel
from notifications.dispatcher import RetryPolicy
from pathway import services
from pathway.store.outbox import dispatch
from pathway.store.tables import notification_t, outbox_t
from tests.integration.support import HOST, smtp_server

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
K = "koordinator"  # bergen-sentrum's coordinator in the seeded world
COLLEAGUE = "koordinator-kollega"  # a second coordinator of bergen-sentrum, added here
SECRET_REASON = "Grunn-7731: personen bor i en annen kommune"  # the agency's reason: never in a notice
AGENCY = re.compile(r"politi|police|barnevern|child welfare|\bnav\b|helse|health|kriminalomsorg|correctional|bolig"
                    r"|housing", re.IGNORECASE)  # what would name an agency, in either language: never in a notice


@pytest.fixture(scope="module")
def w(world: World) -> World:
    services.add_user(engine=world.core.engine, username=COLLEAGUE, role="coordinator", unit="bergen-sentrum",
                      email=f"{COLLEAGUE}@example.invalid")
    with world.core.engine.begin() as conn:
        conn.execute(sa.text("UPDATE user_account SET email = :e WHERE username = :u"),
                     {"e": f"{K}@example.invalid", "u": K})
    return world


def declined_notices(w: World, reference: str) -> list[Any]:
    with w.core.engine.connect() as conn:
        return list(conn.execute(sa.select(notification_t).where(notification_t.c.case_reference == reference,
                                                                 notification_t.c.kind == "handover_declined")))


def outbox_of(w: World, reference: str) -> list[Any]:
    with w.core.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_t)).all()
    return [r for r in rows if r.payload.get("case_reference") == reference and r.payload["kind"] == "handover_declined"]


def decline(w: World, task_id: uuid.UUID) -> None:
    r = w.client.post(f"{API}/tasks/{task_id}/decline", json={"reason": SECRET_REASON}, headers=w.auth("politi"))
    assert r.status_code == 200, r.text


def list_row(w: World, reference: str) -> str:
    page = signed_in(TestClient(w.app), K).get("/cases", params={"q": reference})
    assert page.status_code == 200
    row = re.search(rf'<tr[^>]*>\s*<th scope="row"><a href="/cases/{reference}">.*?</tr>', page.text, re.S)
    assert row is not None
    return row.group(0)


def case_page(w: World, reference: str) -> str:
    page = signed_in(TestClient(w.app), K).get(f"/cases/{reference}")
    assert page.status_code == 200
    return page.text


def test_a_police_decline_tells_the_cases_coordinator_once_by_inbox_and_email_and_names_nobody(w: World) -> None:
    person = synthetic_person()
    reference, task_id = w.handover_case("police", person=person)
    w.operate(reference, "coordinator", {"coordinator": K})
    assert declined_notices(w, reference) == []
    decline(w, task_id)

    [notice] = declined_notices(w, reference)  # the case's coordinator: not the colleague, no partner, no other unit
    assert (notice.username, notice.step_code, notice.unit) == (K, "K6", "bergen-sentrum")
    assert notice.link.endswith(f"/cases/{reference}") and notice.read_at is None
    [sent] = outbox_of(w, reference)  # the coordinator gave an email address (and no webhook)
    assert (sent.username, sent.channel, sent.status) == (K, "email", "pending")
    assert sent.payload["step_code"] == "K6" and "agency" not in sent.payload
    stored = repr(tuple(notice)) + repr(sent.payload)
    assert SECRET_REASON not in stored and person["name"] not in stored and person["address"] not in stored
    assert AGENCY.search(stored) is None, stored

    # The inbox page names it in words.
    inbox = signed_in(TestClient(w.app), K).get("/inbox", params={"view": "list"})
    assert "Overlevering avslått av etaten" in inbox.text and SECRET_REASON not in inbox.text
    [row] = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", inbox.text, re.S) if reference in r]
    assert "Overlevering avslått av etaten" in row and AGENCY.search(row) is None, row

    with smtp_server() as (sink, port):
        channel = EmailChannel(host=HOST, port=port, sender="forlop@example.invalid", starttls=False, timeout=10)
        dispatch(engine=w.core.engine, email=channel, webhook=None, now=datetime.now(timezone.utc) + timedelta(minutes=1),
                 policy=RetryPolicy(max_attempts=1))
        mails = [m for m in sink.snapshot() if m.recipients == [f"{K}@example.invalid"]
                 and str(email.message_from_bytes(m.content, policy=email.policy.default)["X-Forlop-Idempotency-Key"])
                 == str(sent.id)]
    [mail] = mails
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    plain, rich = message.get_body(preferencelist=("plain",)), message.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    text, html = plain.get_content(), rich.get_content()
    assert str(message["Subject"]) == "En overlevering i Forløp er avslått"
    assert text.startswith("Mottakende instans har avslått en overleveringsoppgave. Steget trenger oppfølging.")
    assert "Steg: K6" in text and f"Sak: {reference}" in text
    assert notice.link in text and notice.link in html
    everything = "\n".join((str(message["Subject"]), text, html))
    assert SECRET_REASON not in everything and person["name"] not in everything
    assert AGENCY.search(everything) is None, everything
    assert person["address"] not in everything and person["safe_contact"] not in everything


def test_without_a_coordinator_every_coordinator_of_the_unit_hears_of_it_and_no_one_else(w: World) -> None:
    reference, task_id = w.handover_case("police")
    decline(w, task_id)
    assert sorted(n.username for n in declined_notices(w, reference)) == [K, COLLEAGUE]
    assert sorted((r.username, r.channel) for r in outbox_of(w, reference)) == [(K, "email"), (COLLEAGUE, "email")]


def test_accepting_tells_nobody(w: World) -> None:
    reference, task_id = w.handover_case("police")
    r = w.client.post(f"{API}/tasks/{task_id}/accept", json={}, headers=w.auth("politi"))
    assert r.status_code == 200
    assert declined_notices(w, reference) == [] and outbox_of(w, reference) == []


def test_the_list_flags_a_decline_and_the_case_page_says_what_next_until_asked_again(w: World) -> None:
    reference, task_id = w.handover_case("police")
    assert "handover-alert" not in list_row(w, reference)
    decline(w, task_id)
    row = list_row(w, reference)
    assert "⚠" in row and "K6 · Politiet: avslått" in row  # by symbol and words, not by colour alone
    page = case_page(w, reference)
    assert "⚠ Avslått av Politiet (K6)." in page
    # K6 names the police alone: no other agency to offer
    assert "Be om overlevering på nytt, eller lukk steget med begrunnelse." in page
    assert "send til en annen etat" not in page

    w.operate(reference, "handovers", {"code": "K6"})  # asked again: a newer open task
    assert "handover-alert" not in list_row(w, reference)
    assert "Avslått av Politiet (K6)" not in case_page(w, reference)


def test_the_flag_ends_when_the_step_is_closed_with_a_reason(w: World) -> None:
    reference, task_id = w.handover_case("police")
    decline(w, task_id)
    assert "K6 · Politiet: avslått" in list_row(w, reference)
    w.operate(reference, "steps/K6/skip", {"reason": "politiet følger opp på annen måte"})
    assert "handover-alert" not in list_row(w, reference)
    assert "Avslått av Politiet (K6)" not in case_page(w, reference)
    r = w.client.get(f"{API}/cases", params={"q": reference}, headers=w.auth(K))
    assert r.json()["items"][0]["handover_alerts"] == []
