"""Notification templates: every kind in both languages, Oslo time, escaping, and never a person's data."""

from __future__ import annotations

import dataclasses
import inspect
import re
from datetime import date, datetime, timezone
from html.parser import HTMLParser

import pytest
from jinja2 import Environment, FileSystemLoader, meta

from notifications.message import AGGREGATED, KINDS, Message, Rendered
from notifications.render import LANGUAGES, TEMPLATES, oslo_time, render
from pathway.people import PersonRecord

WINTER = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)  # CET, UTC+1
SUMMER = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)  # CEST, UTC+2
LINK = "https://forlop.example/saker/3f2b9c1e-8d4a-4e6b-9a1f-2c7d5e8b0a14"
REPORT = "https://forlop.example/rapporter/tidsbruk?enhet=krisesenter-vest"
EVERY_TEMPLATE = [(kind, language) for kind in KINDS for language in LANGUAGES]


def message(kind: str = "due_soon", language: str = "nb", **changes: object) -> Message:
    fields: dict[str, object] = {
        "idempotency_key": f"{kind}:{language}:1",
        "kind": kind,
        "language": language,
        "recipient": "koordinator1",
        "due_at": WINTER,
        "link": REPORT if kind in AGGREGATED else LINK,
        "case_reference": "BGO-2026-0042",
        "step_code": "K6",
        "unit": "krisesenter-vest",
        "count": 3,
    }
    return Message(**{**fields, **changes})  # type: ignore[arg-type]


def template_environment() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES))
    environment.filters["oslo_time"] = oslo_time
    return environment


def everything(rendered: Rendered) -> str:
    return "\n".join((rendered.subject, rendered.text, rendered.html))


@pytest.mark.parametrize(("kind", "language"), EVERY_TEMPLATE)
def test_every_kind_renders_in_every_language(kind: str, language: str) -> None:
    sent = message(kind, language)
    rendered = render(sent)

    assert rendered.subject
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert sent.link in rendered.text
    assert f'href="{sent.link}"' in rendered.html.replace("&amp;", "&")
    deadline = "27.11.2026 kl. 14:00" if language == "nb" else "27 Nov 2026 14:00"
    assert deadline in rendered.text
    assert deadline in rendered.html


@pytest.mark.parametrize(("kind", "language"), EVERY_TEMPLATE)
def test_each_template_defines_subject_text_and_html(kind: str, language: str) -> None:
    template = template_environment().get_template(f"{kind}.{language}.j2")

    assert set(template.blocks) == {"subject", "text", "html"}


@pytest.mark.parametrize(
    ("due_at", "nb", "en"),
    [
        (WINTER, "27.11.2026 kl. 14:00", "27 Nov 2026 14:00"),
        (SUMMER, "15.06.2026 kl. 14:00", "15 Jun 2026 14:00"),
    ],
    ids=["winter", "summer"],
)
def test_the_deadline_is_shown_in_oslo_time_whatever_the_season(due_at: datetime, nb: str, en: str) -> None:
    assert nb in render(message("overdue", "nb", due_at=due_at)).text
    assert en in render(message("overdue", "en", due_at=due_at)).text


@pytest.mark.parametrize("kind", KINDS)
def test_bokmaal_reads_norwegian_and_english_reads_english(kind: str) -> None:
    nb = render(message(kind, "nb"))
    en = render(message(kind, "en"))

    dated = kind != "referral_declined"  # a declined referral has no deadline: it says when it was declined
    for text in (nb.text, nb.html):
        assert re.search(r"\bsteg\b", text, re.IGNORECASE)
        assert re.search(r"\bfrist", text, re.IGNORECASE) or not dated
        assert not re.search(r"\b(the|step|due)\b", text, re.IGNORECASE)
    for text in (en.text, en.html):
        assert re.search(r"\bsteps?\b", text, re.IGNORECASE)
        assert re.search(r"\bdue\b", text, re.IGNORECASE) or not dated
        assert not re.search(r"\b(og|steg|frist\w*)\b", text, re.IGNORECASE)
    assert nb.subject != en.subject


@pytest.mark.parametrize("kind", sorted(AGGREGATED))
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_message_to_managers_never_names_a_case_even_if_given_one(kind: str, language: str) -> None:
    rendered = render(message(kind, language, case_reference="BGO-2026-0042", count=7))

    assert "BGO-2026-0042" not in everything(rendered)
    assert "0042" not in everything(rendered)
    assert "7" in rendered.subject
    assert "krisesenter-vest" in rendered.text


@pytest.mark.parametrize(("language", "count", "subject", "sentence"), [
    ("nb", 43, "Daglig oversikt: 43 forsinkede steg i Forløp",
     "Daglig oversikt over forsinkede steg ved Krisesenter vest: 43 steg har passert fristen"),
    ("en", 43, "Daily overview: 43 overdue steps in Forløp",
     "Daily overview of overdue steps in Krisesenter vest: 43 steps are past their due date"),
    ("nb", None, "Daglig oversikt: færre enn 5 forsinkede steg i Forløp",
     "Daglig oversikt over forsinkede steg ved Krisesenter vest: færre enn 5 steg har passert fristen"),
    ("en", None, "Daily overview: fewer than 5 overdue steps in Forløp",
     "Daily overview of overdue steps in Krisesenter vest: fewer than 5 steps are past their due date"),
])
def test_the_digest_tells_the_total_the_units_name_the_date_and_the_link_and_no_checkpoint(
        language: str, count: int | None, subject: str, sentence: str) -> None:
    rendered = render(message("overdue_digest", language, count=count, step_code=None, unit_name="Krisesenter vest"))

    assert rendered.subject == subject
    assert sentence in rendered.text and sentence in rendered.html
    assert ("27.11.2026 kl. 14:00" if language == "nb" else "27 Nov 2026 14:00") in rendered.text
    assert REPORT in rendered.text and f'href="{REPORT}"' in rendered.html
    assert not re.search(r"\bK\d", everything(rendered))


def test_the_digest_of_a_unit_without_a_display_name_names_its_code() -> None:
    assert "ved krisesenter-vest:" in render(message("overdue_digest", "nb", count=7)).text


@pytest.mark.parametrize(("kind", "language"), EVERY_TEMPLATE)
def test_html_escapes_markup_in_the_reference_and_the_link(kind: str, language: str) -> None:
    hostile = message(
        kind,
        language,
        case_reference="<script>alert(1)</script>",
        step_code="<b>K6</b>",
        unit="<img src=x onerror=alert(1)>",
        link='https://forlop.example/saker/"><script>alert(2)</script>',
    )

    html = render(hostile).html

    assert "<script" not in html
    assert "<b>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert '"><' not in html  # the quote cannot close the href attribute


@pytest.mark.parametrize(("kind", "language"), EVERY_TEMPLATE)
def test_html_is_a_small_accessible_fragment(kind: str, language: str) -> None:
    fragment = Fragment()
    fragment.feed(render(message(kind, language)).html)
    fragment.close()

    assert fragment.tags <= {"div", "p", "a", "br"}
    assert fragment.open == []  # every element is closed
    assert not fragment.styled
    assert fragment.links == [message(kind, language).link]
    assert fragment.link_text.lower() not in ("", "her", "klikk her", "here", "click here")  # says where it goes
    assert fragment.languages == [language]


@pytest.mark.parametrize(("kind", "language"), EVERY_TEMPLATE)
def test_line_breaks_in_the_inputs_cannot_reach_the_subject_or_start_a_line(kind: str, language: str) -> None:
    injected = message(
        kind,
        language,
        case_reference="BGO-2026-0042\r\nBcc: someone@example.com",
        step_code="K6\nX-Injected: 1",
        unit="krisesenter-vest\u2028Bcc: other@example.com",
    )

    rendered = render(injected)
    clean = render(message(kind, language))

    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    assert all(not line.startswith(("Bcc:", "X-Injected:")) for line in rendered.text.splitlines())
    assert len(rendered.text.splitlines()) == len(clean.text.splitlines())
    assert "\r" not in rendered.text and "\u2028" not in rendered.text


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "/saker/3f2b9c1e",
        "forlop.example/saker/1",
        "https://forlop.example/saker/1\r\nBcc: someone@example.com",
        "https://forlop.example/saker/1 trailing",
    ],
)
def test_a_link_that_is_not_an_absolute_http_url_is_refused(link: str) -> None:
    with pytest.raises(ValueError):
        render(message("due_now", "nb", link=link))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        render(message("birthday"))


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        render(message("due_soon", "nn"))


def test_a_deadline_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError):
        render(message("due_soon", due_at=datetime(2026, 11, 27, 13, 0)))


# The privacy test: a person with a confidential address, and every notification about their case.

PERSON = PersonRecord(
    name="Testperson Hemmelig",
    address="Skjultveien 7, 5003 Bergen",
    address_protection="code6",
    birth_date=date(1980, 2, 3),
    safe_contact="+47 000 11 222",
)


def person_values(person: PersonRecord) -> list[str]:
    """Every field value, every part of name and address, the birth date as people write it."""
    assert person.birth_date is not None and person.address is not None and person.safe_contact is not None
    born = person.birth_date
    return [
        person.name,
        *person.name.split(),
        person.address,
        *re.split(r"[,\s]+", person.address),
        person.address_protection,
        born.isoformat(),
        f"{born:%d.%m.%Y}",
        f"{born.day}.{born.month}.{born.year}",
        f"{born:%d.%m.%y}",
        f"{born:%d%m%y}",  # the first six digits of a fødselsnummer
        f"{born.day} Feb {born.year}",
        f"{born.day}. februar {born.year}",
        str(born.year),
        person.safe_contact,
        person.safe_contact.replace(" ", ""),
        person.safe_contact.removeprefix("+47 "),
        person.safe_contact.removeprefix("+47 ").replace(" ", ""),
    ]


@pytest.mark.parametrize(("kind", "language"), EVERY_TEMPLATE)
def test_no_notification_about_a_case_carries_anything_of_the_person(kind: str, language: str) -> None:
    about_their_case = message(kind, language, case_reference="BGO-2026-0042", step_code="K6")

    rendered = everything(render(about_their_case))

    for value in person_values(PERSON):
        # Whole words only: "7" (the house number) must not match inside "27.11.2026".
        assert not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", rendered, re.IGNORECASE), value


def test_render_takes_only_a_message_so_a_person_cannot_be_passed_in() -> None:
    parameters = inspect.signature(render).parameters

    assert list(parameters) == ["message"]
    assert parameters["message"].annotation in (Message, "Message")
    message_fields = {field.name for field in dataclasses.fields(Message)}
    assert message_fields.isdisjoint(PersonRecord.model_fields)
    with pytest.raises(TypeError):
        Message(**{**dataclasses.asdict(message()), "person": PERSON})  # type: ignore[arg-type]


def test_the_templates_use_nothing_but_fields_of_a_message() -> None:
    environment = template_environment()
    message_fields = {field.name for field in dataclasses.fields(Message)}

    for path in sorted(TEMPLATES.glob("*.j2")):
        used = meta.find_undeclared_variables(environment.parse(path.read_text(encoding="utf-8")))
        assert used <= message_fields, (path.name, used - message_fields)


class Fragment(HTMLParser):
    """Collects what the html test needs to know about a rendered fragment."""

    VOID = frozenset({"br"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.open: list[str] = []
        self.styled = False
        self.links: list[str | None] = []
        self.link_text = ""
        self.languages: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        self.styled |= "style" in attributes or tag == "style"
        if tag == "a":
            self.links.append(attributes.get("href"))
        if "lang" in attributes:
            self.languages.append(attributes["lang"])
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "a":
            self.link_text += data.strip()
