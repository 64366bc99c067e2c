"""The case page's handovers, over HTTP: one form per checkpoint and agency (K9 to NAV or the housing office, one
open task at a time), a message to the agency stored with the task, a handover to child welfare on its duty to
inform without consent from a child's pathway page (B2: its provision named, a warning shown, a reason required),
the table of tasks with who answered and what, and the threat level recorded from the page."""

from __future__ import annotations

import re
import uuid

import pytest

from pathway import services
from pathway.people import ChildRecord

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import World, synthetic_person  # noqa: E402
from tests.e2e.test_case_page_operations import Form, forms_of  # noqa: E402
from tests.e2e.test_consent_and_handover_form import posted  # noqa: E402
from tests.e2e.test_web_pages import browser  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
NOTE = "Ring før kl. 15, bruk trygg kontaktkanal"  # synthetic


def in_support(world: World, conditions: list[str] | None = None) -> str:
    """A new case past intake (K1, K2 done, support started): K9 is open."""
    reference = world.open_case(synthetic_person(), conditions=conditions)["reference"]
    for code in ("K1", "K2"):
        world.operate(reference, f"steps/{code}/complete")
    world.operate(reference, "transitions/start_support")
    return reference


def child_pathway(world: World) -> tuple[str, str]:
    """A child's pathway (barn.yaml), opened on a new case with children as the case page opens one: the adult's
    reference and the child's pathway's."""
    adult = world.open_case(synthetic_person(), conditions=["children"])["reference"]
    child = ChildRecord(first_name="Testbarn Ås", birth_year=2018, school="Fiktiv barneskole")
    return adult, services.open_child_pathway(uow=world.core.uow(), reference=adult, expected_version=None,
                                              child=child, actor="koordinator", keys=world.core.keys,
                                              reference_prefix=world.core.settings.reference_prefix).reference


def handover_forms(html: str, code: str) -> dict[str, Form]:
    """The page's handover forms for ``code``, by the agency each posts."""
    return {str(f.fields["agency"][0].get("value")): f for f in forms_of(html) if f.key == f"handover {code}"}


def section(html: str, name: str) -> str:
    return re.search(rf'<section id="{name}".*?</section>', html, re.S).group(0)  # type: ignore[union-attr]


def test_k9_offers_nav_and_the_housing_office_as_two_forms_each_with_a_message_to_the_agency(world: World) -> None:
    client = browser(world, "koordinator")
    reference = in_support(world)
    html = client.get(f"/cases/{reference}").text

    forms = handover_forms(html, "K9")
    assert set(forms) == {"nav", "housing"}
    for agency, form in forms.items():
        assert form.fields["chosen"][0].get("value") == "1"  # the checkpoint names several: the form says which
        assert form.fields["note"][0]["tag"] == "textarea" and form.fields["note"][0].get("maxlength") == "2000"
        assert "note" not in form.required
        assert any(label.startswith("Melding til etaten") for label in form.labels.values())
    ids = re.findall(r'id="(handover-K9-[^"]+)"', html)
    assert len(ids) == len(set(ids)) and any(i.startswith("handover-K9-nav-") for i in ids)
    assert "Send overlevering: Boligkontoret (K9)" in html and "Send overlevering: NAV (K9)" in html
    assert "Vises bare for denne etaten. Ikke skriv adresse." in html

    r = client.post(forms["housing"].action, data=posted(forms["housing"], html, note=NOTE), follow_redirects=False)

    assert r.status_code == 303, r.text
    case = services.get_case(uow=world.core.uow(), reference=reference)
    assert [(t.code, t.agency, t.note, t.status) for t in case.handovers] == [("K9", "housing", NOTE, "requested")]
    table = section(client.get(f"/cases/{reference}").text, "handovers")
    assert "Boligkontoret" in table and NOTE in table and "forespurt" in table


def test_a_second_task_for_k9_is_refused_while_the_first_is_open(world: World) -> None:
    client = browser(world, "koordinator")
    reference = in_support(world)
    html = client.get(f"/cases/{reference}").text
    forms = handover_forms(html, "K9")
    assert client.post(forms["nav"].action, data=posted(forms["nav"], html), follow_redirects=False).status_code == 303

    page = client.get(f"/cases/{reference}").text
    assert handover_forms(page, "K9") == {}  # neither agency is offered a second task
    assert "K9 har allerede en åpen overleveringsoppgave." in section(page, "handovers")
    # Posted all the same (an old page): refused, and nothing is stored.
    fresh = {**posted(forms["housing"], html), "version": str(world.version(reference)),
             "csrf": re.search(r'name="csrf" value="([^"]+)"', page).group(1)}  # type: ignore[union-attr]
    r = client.post(forms["housing"].action, data=fresh, follow_redirects=False)
    assert r.status_code == 409
    assert "K9 har allerede en åpen overleveringsoppgave." in r.text
    assert [t.agency for t in services.get_case(uow=world.core.uow(), reference=reference).handovers] == ["nav"]


def test_after_nav_declines_k9_goes_to_the_housing_office_and_the_table_says_who_declined_and_why(world: World) -> None:
    client = browser(world, "koordinator")
    reference = in_support(world)
    html = client.get(f"/cases/{reference}").text
    forms = handover_forms(html, "K9")
    client.post(forms["nav"].action, data=posted(forms["nav"], html, note=NOTE), follow_redirects=False)
    task = services.get_case(uow=world.core.uow(), reference=reference).handovers[0]
    r = world.client.post(f"/api/v1/tasks/{task.id}/decline", json={"reason": "Boligkontoret har saken"},
                          headers=world.auth("nav"))
    assert r.status_code == 200, r.text

    page = client.get(f"/cases/{reference}").text
    table = section(page, "handovers")
    assert "Avslått av nav" in table and "Boligkontoret har saken" in table and NOTE in table
    forms = handover_forms(page, "K9")
    assert set(forms) == {"nav", "housing"}  # after a decline, either may be asked
    r = client.post(forms["housing"].action, data=posted(forms["housing"], page), follow_redirects=False)

    assert r.status_code == 303, r.text
    case = services.get_case(uow=world.core.uow(), reference=reference)
    assert [(t.agency, t.status) for t in case.handovers] == [("nav", "declined"), ("housing", "requested")]


def test_b2_to_child_welfare_on_the_duty_to_inform_warns_and_needs_a_reason(world: World) -> None:
    """The child-welfare notice is sent from the child's own pathway (B2); the adult's K5 only maps the children."""
    client = browser(world, "koordinator")
    adult, reference = child_pathway(world)
    page = client.get(f"/cases/{adult}").text
    assert handover_forms(page, "K6") and handover_forms(page, "K5") == {}  # no longer from the adult's pathway
    html = client.get(f"/cases/{reference}").text
    form = handover_forms(html, "B2")["child_welfare"]
    assert "chosen" not in form.fields  # B2 has one agency
    assert "child_welfare_duty" in [i.get("value") for i in form.fields["basis"]]
    assert "Opplysningsplikt til barnevernet (barnevernsloven § 13-2)" in form.labels[
        "handover-B2-child_welfare-child_welfare_duty"]
    handovers = section(html, "handovers")
    assert ("⚠ Sendes uten samtykke, på grunnlag av opplysningsplikt til barnevernet (barnevernsloven § 13-2). "
            "Personen skal som hovedregel informeres.") in handovers
    assert 'aria-describedby="handover-B2-child_welfare-child_welfare_duty-warning"' in handovers
    assert "Begrunnelse (påkrevd uten samtykke)" in handovers

    r = client.post(form.action, data=posted(form, html, basis="child_welfare_duty", scope=[]),
                    follow_redirects=False)
    assert r.status_code == 422
    assert "en begrunnelse er påkrevd for denne handlingen" in r.text  # in bokmål, beside the form
    assert services.get_case(uow=world.core.uow(), reference=reference).handovers == []

    r = client.post(form.action, data=posted(form, html, basis="child_welfare_duty", scope=[],
                                             reason="Bekymring for barnets omsorgssituasjon"), follow_redirects=False)
    assert r.status_code == 303, r.text
    case = services.get_case(uow=world.core.uow(), reference=reference)
    assert [(t.code, t.agency, t.basis) for t in case.handovers] == [("B2", "child_welfare", "child_welfare_duty")]
    assert "child_welfare" not in case.consents
    table = section(client.get(f"/cases/{reference}").text, "handovers")
    assert "Opplysningsplikt til barnevernet (barnevernsloven § 13-2)" in table


def test_the_threat_level_is_recorded_from_the_page_and_shown_with_a_symbol_when_high(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    html = client.get(f"/cases/{reference}").text
    assert "Trusselnivå: Ikke vurdert" in re.sub(r"\s+", " ", html)
    form = next(f for f in forms_of(html) if f.key == "risk")
    assert [i.get("value") for i in form.fields["level"]] == ["low", "medium", "high"]
    assert [form.labels[f"risk-{v}"] for v in ("low", "medium", "high")] == ["Lav", "Middels", "Høy"]

    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    r = client.post(form.action, data={"csrf": csrf, "version": str(world.version(reference)), "level": "high",
                                       "reason": "Trusler om vold siste uke"}, follow_redirects=False)

    assert r.status_code == 303 and r.headers["location"] == f"/cases/{reference}?done=risk#risk"
    assert services.get_case(uow=world.core.uow(), reference=reference).risk == "high"
    page = client.get(r.headers["location"]).text
    assert "⚠ Høy risiko" in page and "Lagret." in page
    assert 'id="risk-high" name="level" value="high" required checked' in page
    # A handover sent now carries the level as its urgency, shown in words in the table.
    form = handover_forms(page, "K6")["police"]
    client.post(form.action, data=posted(form, page), follow_redirects=False)
    assert "⚠ Høy risiko" in section(client.get(f"/cases/{reference}").text, "handovers")


def test_the_case_read_shows_the_threat_level_and_each_tasks_note(world: World) -> None:
    reference = world.open_case(synthetic_person())["reference"]
    world.operate(reference, "risk", {"level": "medium"})
    world.operate(reference, "consents/police", {"scope": ["name", "contact", "threat_assessment"]})
    detail = world.operate(reference, "handovers", {"code": "K6", "note": NOTE})
    assert detail["risk"] == "medium"
    task = detail["handovers"][0]
    assert (task["note"], task["urgency"], task["updated_by"], task["reply"]) == (NOTE, "medium", None, None)
    assert uuid.UUID(task["id"])
