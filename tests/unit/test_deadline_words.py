"""A deadline rule of a definition in words, in bokmål and English (the report's and the case page's)."""

from __future__ import annotations

import pytest

from api.web.i18n import deadline_words, offset_words
from pathway.definition import Checkpoint, Offset

pytestmark = pytest.mark.any_date


@pytest.mark.parametrize(("offset", "nb", "en"), [
    ({"hours": 24}, "24 timer", "24 hours"), ({"hours": 1}, "1 time", "1 hour"),
    ({"days": 1}, "1 dag", "1 day"), ({"days": 28}, "28 dager", "28 days"),
    ({"working_days": 2}, "2 virkedager", "2 working days"), ({"working_days": 1}, "1 virkedag", "1 working day"),
])
def test_an_offset_in_words(offset: dict[str, int], nb: str, en: str) -> None:
    assert offset_words(Offset(**offset), "nb") == nb
    assert offset_words(Offset(**offset), "en") == en


def test_a_repeating_checkpoint_says_how_often() -> None:
    checkpoint = Checkpoint.model_validate({
        "code": "K12", "name": {"nb": "Oppfølging", "en": "Follow-up"}, "phases": ["after_stay"], "owner": "coordinator",
        "deadline": {"after": "moved_out", "days": 14},
        "repeat": [{"every": {"days": 28}, "times": 2}, {"every": {"days": 42}}]})
    assert deadline_words(checkpoint, False, "nb") == "14 dager"
    assert deadline_words(checkpoint, True, "nb") == "hver 28. dag ×2, deretter hver 42. dag"
    assert deadline_words(checkpoint, True, "en") == "every 28 days ×2, then every 42 days"
