"""The gettext catalogs: every text the pages and the errors can show has its bokmål, and says the same things."""

from __future__ import annotations

import re

import pytest

from api.catalogs import extract, read
from api.i18n import gettext, negotiate, say
from pathway.errors import ConsentRequired, InvalidArgument, OperationNotAllowed

pytestmark = pytest.mark.any_date
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


@pytest.fixture(scope="module")
def extracted() -> dict[str, list[tuple[str, int]]]:
    return {m.id: m.locations for m in extract() if m.id}


def test_no_marked_text_is_an_f_string_that_no_catalog_can_hold(capfd: pytest.CaptureFixture[str]) -> None:
    extract()
    skipped = [line for line in capfd.readouterr().err.splitlines() if "f-string" in line]
    assert not skipped, "a message with parameters is a template and its params, not an f-string:\n" + "\n".join(
        skipped)


def test_every_text_of_the_pages_and_the_errors_has_its_bokmal(extracted: dict[str, list[tuple[str, int]]]) -> None:
    nb = read("nb")
    assert len(extracted) > 400  # the pages, the labels, the errors: a broken extraction finds few
    missing = {text: where[0] for text, where in extracted.items()
               if text not in nb or not nb[text].string or nb[text].fuzzy}
    assert not missing, f"no bokmål (run `make catalogs`, then translate in forlop.po): {missing}"


def test_a_translation_keeps_the_placeholders_of_its_text() -> None:
    wrong = {m.id: m.string for m in read("nb") if m.id and m.string
             and sorted(PLACEHOLDER.findall(m.id)) != sorted(PLACEHOLDER.findall(str(m.string)))}
    assert not wrong


def test_the_catalog_holds_no_text_the_code_no_longer_uses(extracted: dict[str, list[tuple[str, int]]]) -> None:
    assert not [m.id for m in read("nb") if m.id and m.id not in extracted]


@pytest.mark.parametrize(("header", "lang"), [
    (None, "nb"), ("", "nb"), ("en", "en"), ("en-GB,en;q=0.9", "en"), ("nb-NO,nb;q=0.9,en;q=0.5", "nb"),
    ("nn", "nb"), ("no", "nb"), ("de-DE,en;q=0.5", "en"), ("de", "nb"), ("en;q=0.2,nb;q=0.8", "nb"),
    ("en;q=0,nb", "nb"), ("en;q=abc", "nb"), ("*", "nb"),
])
def test_the_language_of_an_accept_language_header(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang


def test_a_domain_error_is_said_in_the_readers_language_with_its_codes_named() -> None:
    refused = OperationNotAllowed("complete", phase="intake", allowed=["pause", "close"])
    assert str(refused) == "'complete' is not allowed in phase 'intake'; allowed now: pause, close"
    names = {"phase": {"intake": "Kartlegging"}.get, "operation": {"complete": "Fullfør"}.get,
             "allowed": lambda ops: [{"pause": "Pause", "close": "Avslutt"}[o] for o in ops]}
    said = say(refused, "nb", names)
    assert "Kartlegging" in said and "Fullfør" in said and "Pause, Avslutt" in said
    assert "allowed" not in said and "not" not in said.split()


def test_an_invalid_argument_names_its_field_and_keeps_its_parameters_out_of_the_catalog() -> None:
    error = InvalidArgument("password", "at least {n} characters", n=8)
    assert str(error) == "password: at least 8 characters"
    assert error.params == {"field": "password", "n": 8}
    assert say(error, "nb", {"field": lambda f: gettext("nb")({"password": "Password"}[f])}) == "Passord: minst 8 tegn"


def test_a_refusal_of_consent_in_bokmal_names_the_missing_scopes() -> None:
    error = ConsentRequired("police", ["threat_assessment"])
    said = say(error, "nb", {"agency": {"police": "Politiet"}.get,
                             "missing_scope": lambda s: [{"threat_assessment": "Trusselvurdering"}[x] for x in s]})
    assert "Politiet" in said and "Trusselvurdering" in said and "consent" not in said


def test_english_is_the_text_itself() -> None:
    assert gettext("en")("Cases") == "Cases" and gettext("nb")("Cases") == "Saker"
