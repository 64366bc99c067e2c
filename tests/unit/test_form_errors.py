"""A refused form says, in the page's language, which field (by its label) and what to do: never a field's code, a
list item's index or the validator's English."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.web.i18n import form_errors
from pathway.people import PersonRecord


def _refusal(**fields: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        PersonRecord.model_validate({"name": "Kari Testesen", **fields})
    return caught.value


def test_a_childs_age_is_named_by_its_field_not_by_its_place_in_the_list() -> None:
    shown = form_errors(_refusal(children_ages=["fire"]), "nb")
    assert [e["loc"] for e in shown] == ["Barn (alder)"]
    assert shown[0]["msg"] == "Oppgi et helt tall."


def test_a_municipality_outside_the_list_is_named_in_bokmal_and_in_english() -> None:
    refusal = _refusal(home_municipality="Atlantis")
    assert [e["loc"] for e in form_errors(refusal, "nb")] == ["Hjemkommune"]
    assert [e["loc"] for e in form_errors(refusal, "en")] == ["Home municipality"]
    assert all("Atlantis" not in e["msg"] for e in form_errors(refusal, "nb"))  # never the value typed


def test_a_too_long_text_says_the_limit() -> None:
    shown = form_errors(_refusal(name="x" * 500), "nb")
    assert shown[0]["loc"] == "Navn" and shown[0]["msg"].startswith("Skriv høyst ")
