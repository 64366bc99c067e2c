"""The case page offers only what can be done, over HTTP: on every demo case of the unit, the forms the page shows
are the ones the case allows (``pathway.views.offers``), each one posted with valid input is saved, and the page
then returns to the section the form came from; what the case refuses is not an enabled form but its reason, in
bokmål; a required field is marked required, an optional one is not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from pathway import services
from pathway.views.offers import offers

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import World, synthetic_person  # noqa: E402
from tests.e2e.test_web_pages import browser  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

UNIT = "bergen-sentrum"


@dataclass
class Form:
    action: str
    fields: dict[str, list[dict[str, str | None]]] = field(default_factory=dict)  # name -> its inputs
    options: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)  # a select's (value, selected)
    required: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)  # an input's id -> its label's text

    @property
    def key(self) -> str:
        """Which form it is: its action and what it acts on."""
        target = self.fields.get("target", [{}])[0].get("value") if "target" in self.fields else None
        code = self.fields.get("code", [{}])[0].get("value") if "code" in self.fields else None
        return " ".join(p for p in (self.action.rsplit("/", 1)[1], target or code) if p)


class Forms(HTMLParser):
    """The forms of a page, with their inputs, selects' options and labels."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._label: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._form = Form(action=a.get("action") or "")
            self.forms.append(self._form)
        if self._form is None:
            return
        if tag in ("input", "textarea", "select") and a.get("name"):
            self._form.fields.setdefault(a["name"] or "", []).append({**a, "tag": tag})
            if "required" in a:
                self._form.required.add(a["name"] or "")
            if tag == "select":
                self._select = a["name"]
                self._form.options[a["name"] or ""] = []
        if tag == "option" and self._select:
            self._form.options[self._select].append((a.get("value") or "", "selected" in a))
        if tag == "label":
            self._label, self._text = a.get("for"), []

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        if tag == "select":
            self._select = None
        if tag == "label" and self._form is not None and self._label is not None:
            self._form.labels[self._label] = "".join(self._text).strip()
            self._label = None


def forms_of(html: str) -> list[Form]:
    parser = Forms()
    parser.feed(html)
    return [f for f in parser.forms if "/do/" in f.action or f.action.endswith("/handover")]


def expected_forms(w: World, reference: str) -> set[str]:
    """The forms the page should show, as the case answers (``offers``): the key of each one it allows."""
    case = services.get_case(uow=w.core.uow(), reference=reference)
    o = offers(case, at=datetime.now(timezone.utc))
    keys = {name for name, offer in o.forms.items() if offer.allowed}
    if not case.definition.conditions:
        keys.discard("condition")
    if not case.definition.milestones:
        keys.discard("milestone")
    for code, by in o.steps.items():
        keys |= {f"{operation} {code}" for operation, offer in by.items() if offer.allowed}
    keys |= {f"advance {m.trigger}" for m in o.moves if m.offer.allowed}
    keys |= {f"handover {h.code}" for h in o.handovers if h.allowed}
    return keys


def filled(form: Form, now: datetime) -> dict[str, str | list[str]]:
    """What a coordinator types into a form: every field, valid (a reason, the first option, a date ahead)."""
    data: dict[str, str | list[str]] = {}
    local = (now + timedelta(days=20)).astimezone().strftime("%Y-%m-%dT%H:%M")
    for name, inputs in form.fields.items():
        first = inputs[0]
        kind = first.get("type") or first["tag"]
        if kind == "hidden":
            data[name] = first.get("value") or ""
        elif kind == "checkbox":
            data[name] = [i.get("value") or "" for i in inputs if "checked" in i] or [inputs[0].get("value") or ""]
        elif kind == "radio":
            data[name] = next((i.get("value") or "" for i in inputs if "checked" in i), inputs[0].get("value") or "")
        elif first["tag"] == "select":
            options = form.options[name]
            data[name] = next((v for v, selected in options if selected), options[0][0])
        elif kind == "datetime-local":
            if name != "effective_at":
                data[name] = local
        elif name in ("reason", "note"):
            data[name] = "syntetisk begrunnelse"
        else:
            data[name] = "Testkommune" if name == "municipality" else "Syntetisk steg"
    if "confirm" in form.fields:
        data["confirm"] = "yes"
    if form.key.startswith("consent") and "scope" in form.fields:
        data["scope"] = ["name"]
    return data


def fresh(w: World, client: TestClient, reference: str) -> list[Form]:
    page = client.get(f"/cases/{reference}")
    assert page.status_code == 200, page.text
    return forms_of(page.text)


def test_every_demo_case_page_shows_exactly_the_forms_the_case_allows(world: World) -> None:
    client = browser(world, "koordinator")
    wrong = []
    references = world.references(unit=UNIT)
    assert len(references) >= 5
    for reference in references:
        shown = {f.key for f in fresh(world, client, reference)}
        expected = expected_forms(world, reference)
        if shown != expected:
            wrong.append(f"{reference}: shown but not allowed {sorted(shown - expected)}, "
                         f"allowed but not shown {sorted(expected - shown)}")
    assert not wrong, "\n".join(wrong)


def test_every_form_the_page_offers_is_saved_and_returns_to_its_section(world: World) -> None:
    """On demo cases in every phase of the unit (and a new one): post each form the page offers, one after the
    other as the case changes, with valid input; each is saved (303 back to its section, never a refusal)."""
    client = browser(world, "koordinator")
    by_phase: dict[str, str] = {}
    for reference in world.references(unit=UNIT):
        by_phase.setdefault(services.get_case(uow=world.core.uow(), reference=reference).phase, reference)
    references = [*by_phase.values(), world.open_case(synthetic_person())["reference"]]
    assert {"intake", "support"} <= set(by_phase), by_phase
    posted = 0
    for reference in references:
        tried: set[str] = set()
        while True:
            forms = [f for f in fresh(world, client, reference) if f.key not in tried]
            # The ones that end the case last, so that the others are tried first.
            forms.sort(key=lambda f: f.key.split(" ")[0] in ("close", "transfer"))
            if not forms:
                break
            form = forms[0]
            tried.add(form.key)
            data = filled(form, datetime.now(timezone.utc))
            if form.key == "condition":  # valid: a change (set what is not set, or clear what is)
                set_now = services.get_case(uow=world.core.uow(), reference=reference).conditions
                data["value"] = "no" if data["target"] in set_now else "yes"
            r = client.post(form.action, data={**data, "csrf": _csrf(client, reference)}, follow_redirects=False)
            assert r.status_code == 303, f"{reference} {form.key}: {r.status_code} {_alert(r.text)}"
            section = {"complete": "steps", "skip": "steps", "consent": "consents", "handover": "handovers",
                       "close": "result", "transfer": "result", "risk": "risk"}.get(form.key.split(" ")[0],
                                                                                     "actions")
            assert r.headers["location"].endswith(f"#{section}"), (form.key, r.headers["location"])
            posted += 1
    assert posted >= 20


def test_a_saved_form_shows_saved_in_its_own_section(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    form = next(f for f in fresh(world, client, reference) if f.key == "complete K1")
    r = client.post(form.action, data={**filled(form, datetime.now(timezone.utc)), "csrf": _csrf(client, reference)})
    steps = re.search(r'<section id="steps".*?</section>', r.text, re.S)
    assert steps is not None and 'role="status">Lagret.' in steps.group(0)
    assert r.text.count("Lagret.") == 1


def test_steps_done_by_another_operation_say_so_in_bokmal_instead_of_a_form(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    page = client.get(f"/cases/{reference}").text
    keys = {f.key for f in forms_of(page)}
    assert "complete K1" in keys and "skip K1" in keys
    for code in ("K3", "K4", "K6", "K7", "K13"):
        assert f"complete {code}" not in keys
    assert "skip K13" not in keys
    for said in ("K3 utføres ved tildeling av koordinator, ikke for hånd.", "utføres ved registrering av samtykke",
                 "K13 utføres ved avslutning av saken", "Fullfør eller hopp over først: K1, K2."):
        assert said in page, said


def test_closing_marks_its_reason_required_only_where_the_pathway_requires_one(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case(synthetic_person())["reference"]
    close = next(f for f in fresh(world, client, reference) if f.key == "close")
    assert "reason" in close.required  # closing from intake is closing early: a reason is required
    assert close.labels["close-reason"].startswith("Begrunnelse (påkrevd)")
    assert "*" in close.labels["close-reason"]
    pause = next(f for f in fresh(world, client, reference) if f.key == "pause")
    assert "reason" in pause.required
    coordinator = next(f for f in fresh(world, client, reference) if f.key == "coordinator")
    assert "reason" not in coordinator.required  # no coordinator yet: the first one needs no reason
    assert coordinator.labels["coordinator-reason"] == "Begrunnelse (valgfritt)"
    assert "* må fylles ut" in client.get(f"/cases/{reference}").text
    # In the phase with the pathway's own way to closure, closing needs no reason.
    after = next((r for r in world.references(unit=UNIT)
                  if services.get_case(uow=world.core.uow(), reference=r).phase == "after_stay"), None)
    if after is not None:
        close = next(f for f in fresh(world, client, after) if f.key == "close")
        assert "reason" not in close.required and close.labels["close-reason"] == "Begrunnelse (valgfritt)"


def _csrf(client: TestClient, reference: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(f"/cases/{reference}").text).group(1)  # type: ignore


def _alert(html: str) -> str:
    found = re.search(r'role="alert">(.*?)</div>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))) if found else html[:300]
