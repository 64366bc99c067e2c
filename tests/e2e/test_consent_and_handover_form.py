"""A handover in one form, over HTTP: consent given now and the handover task are one submit and one transaction
(both stored, or neither); the scope the checkpoint needs comes ticked; the legal bases offered are the agency's
own; the page returns to the handover section."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.store.tables import access_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import World, synthetic_person  # noqa: E402
from tests.e2e.test_case_page_operations import Form, forms_of  # noqa: E402
from tests.e2e.test_web_pages import browser  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]


def handover_form(html: str, code: str) -> Form:
    return next(f for f in forms_of(html) if f.key == f"handover {code}")


def posted(form: Form, html: str, **changes: object) -> dict[str, object]:
    """The form as it comes (what is ticked and checked), with ``changes``."""
    data: dict[str, object] = {"csrf": re.search(r'name="csrf" value="([^"]+)"', html).group(1)}  # type: ignore
    for name, inputs in form.fields.items():
        if inputs[0].get("type") == "checkbox":
            data[name] = [i.get("value") for i in inputs if "checked" in i]
        elif inputs[0].get("type") == "radio":
            data[name] = next(i.get("value") for i in inputs if "checked" in i)
        elif inputs[0].get("type") == "hidden":
            data[name] = inputs[0].get("value")
    return {**data, **changes}


def test_consent_given_now_and_the_handover_are_saved_in_one_submit(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    html = client.get(f"/cases/{reference}").text
    form = handover_form(html, "K6")
    # The scope the police handover needs comes ticked; consent given now is the basis chosen.
    assert [i.get("value") for i in form.fields["scope"] if "checked" in i] == ["name", "contact", "threat_assessment"]
    assert [i.get("value") for i in form.fields["basis"] if "checked" in i] == ["consent_now"]
    before = world.version(reference)

    r = client.post(form.action, data=posted(form, html), follow_redirects=False)

    assert r.status_code == 303 and r.headers["location"] == f"/cases/{reference}?done=handover#handovers"
    case = services.get_case(uow=world.core.uow(), reference=reference)
    assert case.consents["police"].scope == ("contact", "name", "threat_assessment")
    assert [(t.code, t.basis, t.status) for t in case.handovers] == [("K6", "consent", "requested")]
    assert case.version == before + 2  # two events, one for each command
    with world.core.engine.connect() as conn:
        logged = set(conn.execute(sa.select(access_t.c.action).where(
            access_t.c.case_reference == reference, access_t.c.username == "koordinator")).scalars())
    assert {"case.consent", "case.handover"} <= logged
    page = client.get(r.headers["location"]).text
    handovers = re.search(r'<section id="handovers".*?</section>', page, re.S).group(0)  # type: ignore[union-attr]
    assert "Lagret." in handovers and "forespurt" in handovers
    assert "K6 har allerede en åpen overleveringsoppgave." in handovers  # and no second form for it


def test_a_refused_handover_stores_neither_the_consent_nor_the_task(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    html = client.get(f"/cases/{reference}").text
    form = handover_form(html, "K6")
    before = world.version(reference)

    # The consent is valid on its own, but does not cover the threat assessment the handover needs.
    r = client.post(form.action, data=posted(form, html, scope=["name", "contact"]), follow_redirects=False)

    assert r.status_code == 409
    assert "Mangler samtykke til Politiet for: Trusselvurdering." in r.text
    case = services.get_case(uow=world.core.uow(), reference=reference)
    assert case.version == before and "police" not in case.consents and case.handovers == []


def test_the_legal_bases_offered_are_the_agencys_own(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    html = client.get(f"/cases/{reference}").text
    bases = {code: [i.get("value") for i in handover_form(html, code).fields["basis"]] for code in ("K6", "K7")}
    assert bases == {"K6": ["consent_now", "avert_crime"], "K7": ["consent_now"]}
    assert "child_welfare_duty" not in html  # the duty to inform child welfare never reaches police or NAV


def test_a_handover_on_a_legal_basis_needs_its_reason_and_stores_nothing_without_one(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    html = client.get(f"/cases/{reference}").text
    form = handover_form(html, "K6")
    r = client.post(form.action, data=posted(form, html, basis="avert_crime", scope=[]), follow_redirects=False)
    assert r.status_code == 422
    assert services.get_case(uow=world.core.uow(), reference=reference).handovers == []
    r = client.post(form.action, data=posted(form, html, basis="avert_crime", scope=[],
                                             reason="alvorlig trussel, avvergingsplikt"), follow_redirects=False)
    assert r.status_code == 303
    case = services.get_case(uow=world.core.uow(), reference=reference)
    assert [(t.code, t.basis) for t in case.handovers] == [("K6", "avert_crime")] and "police" not in case.consents
