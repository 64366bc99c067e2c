"""Who hears of an emergency (break-glass) access, and what they are told: the owning unit's coordinators (to the
case) and managers (to the report), by inbox and by each address they gave; never anyone else, never the reason."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from notifications.dispatcher import to_message
from notifications.notices import Notice, break_glass_notices
from notifications.render import render
from notifications.routing import Candidate

EXPIRES = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)
PEOPLE = [
    Candidate("kari", "coordinator", unit="krisesenter vest", email="kari@example.invalid",
              webhook_url="https://hooks.example.invalid/kari"),
    Candidate("ola", "coordinator", unit="krisesenter vest"),
    Candidate("leder", "manager", unit="krisesenter vest", email="leder@example.invalid"),
    Candidate("nord", "coordinator", unit="krisesenter nord", email="nord@example.invalid"),
    Candidate("politi", "partner", agency="police", email="politi@example.invalid"),
    Candidate("admin", "admin", email="admin@example.invalid"),
    Candidate("gjest", "coordinator", unit="krisesenter vest", email="gjest@example.invalid"),
]


def notices(actor: str = "gjest") -> dict[str, Notice]:
    return {n.username: n for n in break_glass_notices(case_reference="BGO-2026-0042", unit="krisesenter vest",
                                                       actor=actor, expires_at=EXPIRES, candidates=PEOPLE,
                                                       public_url="https://forlop.example/")}


def test_only_the_owning_units_coordinators_and_managers_are_told_but_not_the_holder() -> None:
    assert set(notices()) == {"kari", "ola", "leder"}
    assert set(notices(actor="nord")) == {"kari", "ola", "leder", "gjest"}


def test_each_is_told_by_inbox_and_by_every_address_they_gave() -> None:
    told = notices()
    assert [told[u].channels for u in ("kari", "ola", "leder")] == [("email", "webhook"), (), ("email",)]


def test_coordinators_are_sent_to_the_case_and_managers_to_the_report() -> None:
    told = notices()
    assert told["kari"].link == "https://forlop.example/cases/BGO-2026-0042"
    assert told["leder"].link == "https://forlop.example/reports?unit=krisesenter%20vest"


def test_the_message_names_the_case_the_unit_and_the_user_and_nothing_more() -> None:
    for language in ("nb", "en"):
        notice = notices()["leder"]
        rendered = render(to_message(uuid.uuid4(), "leder", language, notice.payload()))
        said = "\n".join((rendered.subject, rendered.text, rendered.html))
        assert "BGO-2026-0042" in said and "krisesenter vest" in said and "gjest" in said
        assert set(notice.payload()) == {"kind", "due_at", "link", "case_reference", "step_code", "unit",
                                         "count", "actor"}
