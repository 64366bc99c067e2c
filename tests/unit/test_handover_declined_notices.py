"""Who hears that an agency declined a handover, and what they are told: the case's coordinator (else the unit's
coordinators), sent to the case page, named the case, the checkpoint and the agency in their language, and nothing
more."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from notifications.dispatcher import to_message
from notifications.notices import Notice, handover_declined_notices
from notifications.render import render
from notifications.routing import Candidate

DUE = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
PEOPLE = [
    Candidate("kari", "coordinator", unit="krisesenter vest", email="kari@example.invalid"),
    Candidate("ola", "coordinator", unit="krisesenter vest", webhook_url="https://hooks.example.invalid/ola"),
    Candidate("per", "coordinator", unit="krisesenter øst", email="per@example.invalid"),
    Candidate("leder", "manager", unit="krisesenter vest", email="leder@example.invalid"),
    Candidate("politi", "partner", agency="police", email="politi@example.invalid"),
]


def notices(coordinator: str | None) -> dict[str, Notice]:
    return {n.username: n for n in handover_declined_notices(
        case_reference="BGO-2026-0042", unit="krisesenter vest", coordinator=coordinator, step_code="K6",
        agency={"nb": "Politiet", "en": "Police"}, due_at=DUE, candidates=PEOPLE,
        public_url="https://forlop.example/")}


def test_the_cases_coordinator_hears_of_it_and_no_one_else() -> None:
    assert list(notices("ola")) == ["ola"]
    assert notices("ola")["ola"].channels == ("webhook",)


def test_without_a_coordinator_of_the_unit_every_coordinator_of_the_unit_hears_of_it() -> None:
    assert list(notices(None)) == ["kari", "ola"]
    assert list(notices("per")) == ["kari", "ola"]  # another unit's coordinator named on the case: not them


def test_the_message_names_the_case_the_checkpoint_and_the_agency_in_the_readers_language() -> None:
    notice = notices("kari")["kari"]
    assert notice.link == "https://forlop.example/cases/BGO-2026-0042"
    for language, agency in (("nb", "Politiet"), ("en", "Police")):
        rendered = render(to_message(uuid.uuid4(), "kari", language, notice.payload()))
        said = "\n".join((rendered.subject, rendered.text, rendered.html))
        assert "BGO-2026-0042" in said and "K6" in said and agency in said and notice.link in said
    assert set(notice.payload()) == {"kind", "due_at", "link", "case_reference", "step_code", "unit", "count",
                                     "actor", "agency"}
