"""A deadline rule of a definition in words, in bokmål and English (the report's and the case page's), and the
report's checkpoint intervals in words (the page's, the workbook's and the CSV's)."""

from __future__ import annotations

import pytest

from api.report_words import interval_words
from api.web.i18n import deadline_words, offset_words
from pathway.definition import Checkpoint, Offset, PathwayDefinition
from pathway.metrics.checkpoints import intervals

pytestmark = pytest.mark.any_date


@pytest.mark.parametrize(("offset", "nb", "en"), [
    ({"hours": 24}, "24 timer", "24 hours"), ({"hours": 1}, "1 time", "1 hour"),
    ({"days": 1}, "1 dag", "1 day"), ({"days": 28}, "28 dager", "28 days"),
    ({"working_days": 2}, "2 virkedager", "2 working days"), ({"working_days": 1}, "1 virkedag", "1 working day"),
    # a negative offset counts back from its anchor (K10: the move-out plan before moving out)
    ({"working_days": -3}, "3 virkedager før", "3 working days before"), ({"days": -1}, "1 dag før", "1 day before"),
    ({"hours": -2}, "2 timer før", "2 hours before"),
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


def test_the_move_out_plan_is_due_before_moving_out(definition: PathwayDefinition) -> None:
    assert deadline_words(definition.checkpoint["K10"], False, "nb") == "3 virkedager før"
    assert deadline_words(definition.checkpoint["K10"], False, "en") == "3 working days before"


def test_an_interval_counted_from_another_checkpoint_names_it(definition: PathwayDefinition) -> None:
    said = {i.name: (interval_words(definition, i, "nb"), interval_words(definition, i, "en"))
            for i in intervals(definition)}
    assert said["K3→K8"] == ("Koordinator tildelt → K8 Samordningsmøte; individuell plan vurdert",
                             "Coordinator assigned → K8 Coordination meeting; individual plan assessed")
    assert said["K0→K1"][0] == "Første henvendelse registrert → K1 Innledende kartlegging og trusselvurdering"
    assert said["consent.police→K6"][0] == "samtykke til Politiet → K6 Overlevering til politiet"
    assert said["move_out_planned→K10"][0] == "Planlagt utflytting → K10 Utflyttingsplan"
    assert said["K12→K12"][0] == "K12 Evalueringspunkt, gjentatt"  # a repeat counts from itself: no name twice
    assert not any(words.split(" → ")[0] in definition.checkpoint for both in said.values() for words in both)
