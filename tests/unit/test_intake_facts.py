"""What intake records beyond the clock: how first contact came (a fact of the open event, replayed as recorded)
and the person's home municipality (one of the region's, never free text)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pathway.case import replay
from pathway.case.aggregate import CONTACT_CHANNELS
from pathway.definition import PathwayDefinition
from pathway.errors import InvalidArgument
from pathway.people import PersonRecord, municipalities
from tests.unit.conftest import OpenCase


def test_how_first_contact_came_is_in_the_open_event_and_replay_reproduces_it(
        open_case: OpenCase, definition: PathwayDefinition) -> None:
    case = open_case(contact_channel="police_escort")
    opened = case.new_events[0]
    assert opened.operation == "open" and opened.payload["contact_channel"] == "police_escort"
    again = replay(list(case.new_events), lambda pathway, version: definition)
    assert again.version == case.version  # the hashes matched, event by event


def test_an_open_event_without_a_channel_is_as_it_always_was(open_case: OpenCase) -> None:
    # Older cases have no channel: their open event must hash as before, so the key is left out, not null.
    assert "contact_channel" not in open_case().new_events[0].payload


@pytest.mark.parametrize("channel", ["email", "", "Phone"])
def test_a_channel_not_in_the_list_is_refused_and_opens_nothing(open_case: OpenCase, channel: str) -> None:
    with pytest.raises(InvalidArgument, match="contact_channel"):
        open_case(contact_channel=channel)


def test_the_channels_are_the_ways_first_contact_comes() -> None:
    assert set(CONTACT_CHANNELS) == {"phone", "walk_in", "police_escort", "referral", "police"}


def test_a_home_municipality_is_one_of_the_regions() -> None:
    assert municipalities()[0] == "Bergen" and "Askøy" in municipalities() and len(municipalities()) == 19
    assert PersonRecord(name="Tora Testesen", home_municipality="Askøy").home_municipality == "Askøy"
    assert PersonRecord(name="Tora Testesen").home_municipality is None  # not recorded
    for outside in ("Oslo", "askøy", " Askøy", ""):
        with pytest.raises(ValidationError) as raised:
            PersonRecord(name="Tora Testesen", home_municipality=outside)
        assert raised.value.errors()[0]["loc"] == ("home_municipality",)


def test_a_record_written_before_home_municipality_existed_still_reads() -> None:
    old = {"name": "Tora Testesen", "address_protection": "code7", "children_ages": [4]}
    assert PersonRecord.model_validate(old).home_municipality is None
