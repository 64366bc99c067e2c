"""Who hears that an agency declined a handover, and what they are told: the case's coordinator (else the unit's
coordinators), sent to the case page, named the case and the checkpoint, and nothing more: never the agency, whose name
alone says that children or the police are involved."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from notifications.dispatcher import to_message
from notifications.notices import Notice, handover_declined_notices
from notifications.render import render
from notifications.routing import Candidate

DUE = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
# What would name an agency (definitions/krisesenter.yaml, either language, any case): never in a declined notice.
AGENCY = re.compile(r"politi|police|barnevern|child welfare|\bnav\b|helse|health|kriminalomsorg|correctional|bolig"
                    r"|housing", re.IGNORECASE)
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
        due_at=DUE, candidates=PEOPLE,
        public_url="https://forlop.example/")}


def test_the_cases_coordinator_hears_of_it_and_no_one_else() -> None:
    assert list(notices("ola")) == ["ola"]
    assert notices("ola")["ola"].channels == ("webhook",)


def test_without_a_coordinator_of_the_unit_every_coordinator_of_the_unit_hears_of_it() -> None:
    assert list(notices(None)) == ["kari", "ola"]
    assert list(notices("per")) == ["kari", "ola"]  # another unit's coordinator named on the case: not them


def test_the_message_names_the_case_and_the_checkpoint_and_never_the_agency() -> None:
    notice = notices("kari")["kari"]
    assert notice.link == "https://forlop.example/cases/BGO-2026-0042"
    openings = {"nb": "Mottakende instans har avslått en overleveringsoppgave. Steget trenger oppfølging.",
                "en": "The receiving agency declined a handover task. The step needs follow-up."}
    for language, opening in openings.items():
        rendered = render(to_message(uuid.uuid4(), "kari", language, notice.payload()))
        said = "\n".join((rendered.subject, rendered.text, rendered.html))
        assert rendered.text.startswith(opening) and opening in rendered.html
        assert "BGO-2026-0042" in said and "K6" in said and notice.link in said
        assert AGENCY.search(said) is None, said
    assert set(notice.payload()) == {"kind", "due_at", "link", "case_reference", "step_code", "unit", "count",
                                     "actor"}
    assert AGENCY.search(repr(notice)) is None
