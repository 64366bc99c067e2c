"""The daily digest of overdue steps as notices: who hears it, what it carries, and what it never says: email and
webhook the total only (1 to 4 as "fewer than 5"), the inbox the counts per checkpoint with the report's small-count
rule."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone

from notifications.dispatcher import to_message
import pytest

from notifications.channels.webhook import payload_for
from notifications.notices import OVERDUE_DIGEST, CheckpointCount, Notice, inbox_digest, overdue_digest_notices
from notifications.routing import Candidate

AT = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)  # Thursday 07:00 in Oslo
URL = "https://forlop.example.invalid/"
UNIT = "bergen-sentrum"
K1 = CheckpointCount("K1", {"nb": "Innledende kartlegging og trusselvurdering",
                            "en": "Initial mapping and threat assessment"}, 42)
K2 = CheckpointCount("K2", {"nb": "Sikkerhetsplan og beslutning om botilbud", "en": "Safety plan and shelter decision"},
                     36)
COORDINATOR = Candidate("k1", "coordinator", unit=UNIT, email="k1@example.invalid")
MANAGER = Candidate("m1", "manager", unit=UNIT, email="m1@example.invalid", webhook_url="https://hooks.example.invalid")
ELSEWHERE = Candidate("m9", "manager", unit="voss")


K5 = CheckpointCount("K5", {"nb": "Barn kartlagt; barnas egne forløp opprettet",
                            "en": "Children mapped; the children's own pathways opened"}, 1)
K6 = CheckpointCount("K6", {"nb": "Overlevering til politiet", "en": "Handover to police"}, 1)
ADHOC = CheckpointCount(None, {}, 3)
NAMES = ("K1", "K2", "K5", "K6", "kartlegging", "mapping", "Barn", "Children", "politi", "police", "Sikkerhetsplan")


def digest(*candidates: Candidate, lines: tuple[CheckpointCount, ...] = (K1, K2),
           unit_name: str | None = "Bergen sentrum") -> list[Notice]:
    return overdue_digest_notices(unit=UNIT, checkpoints=lines, candidates=candidates, public_url=URL, at=AT,
                                  unit_name=unit_name)


def test_the_units_managers_hear_it_by_every_channel_they_gave_and_its_coordinators_do_not() -> None:
    [notice] = digest(COORDINATOR, MANAGER, ELSEWHERE)
    assert (notice.username, notice.channels, notice.kind) == ("m1", ("email", "webhook"), OVERDUE_DIGEST)


def test_a_unit_without_a_manager_tells_its_coordinators_with_a_link_they_may_open() -> None:
    [notice] = digest(COORDINATOR, ELSEWHERE)
    assert (notice.username, notice.link) == ("k1", "https://forlop.example.invalid/cases?deadline=overdue")


def test_its_outbox_payload_carries_the_total_the_units_name_and_the_reports_link_and_no_checkpoint() -> None:
    [notice] = digest(MANAGER)
    assert (notice.case_reference, notice.step_code, notice.count, notice.link, notice.due_at) == (
        None, None, 78, "https://forlop.example.invalid/reports", AT)
    payload = notice.payload()
    assert (payload["count"], payload["unit"], payload["unit_name"], payload["case_reference"],
            payload["step_code"]) == (78, UNIT, "Bergen sentrum", None, None)
    assert "checkpoints" not in payload
    assert not [word for word in NAMES if word in repr(payload)]


@pytest.mark.parametrize("lines", [(K5,), (K5, K6), (K5, K6, CheckpointCount(None, {}, 2))])
def test_a_total_from_1_to_4_is_never_in_the_payload_nor_in_the_message_nor_in_the_webhook(
        lines: tuple[CheckpointCount, ...]) -> None:
    payload = digest(MANAGER, lines=lines)[0].payload()
    assert payload["count"] is None
    message = to_message(uuid.uuid4(), "m1", "en", payload)
    assert message.count is None
    hook = payload_for(message)
    assert hook["count"] is None and hook["unit"] == UNIT and hook["step"] is None
    assert not [word for word in NAMES if word in repr(hook)]


def test_a_payload_written_before_the_rule_loses_its_checkpoints_and_its_small_total() -> None:
    old = {**digest(MANAGER, lines=(K5, K6))[0].payload(), "count": 2,
           "checkpoints": [{"code": "K5", "names": dict(K5.names), "count": 1},
                           {"code": "K6", "names": dict(K6.names), "count": 1}]}
    message = to_message(uuid.uuid4(), "m1", None, old)
    assert message.count is None and not [word for word in NAMES if word in repr(message)]


def test_a_unit_without_a_display_name_is_called_by_its_code() -> None:
    [notice] = digest(MANAGER, unit_name=UNIT)
    assert notice.payload()["unit_name"] is None
    assert to_message(uuid.uuid4(), "m1", None, notice.payload()).unit == UNIT


def test_the_inbox_keeps_each_checkpoint_of_5_or_more_with_its_count_and_the_exact_total() -> None:
    [notice] = digest(MANAGER)
    assert notice.inbox_digest() == {"total": 78, "lines": [
        {"code": "K1", "names": dict(K1.names), "count": 42, "other": False},
        {"code": "K2", "names": dict(K2.names), "count": 36, "other": False}]}


def test_the_inbox_folds_one_small_checkpoint_into_other_checkpoints_so_the_total_cannot_name_it() -> None:
    # K1 42 and K6 (police) 1: a line "K6: fewer than 5" beside the total 43 would say K6 has 1.
    assert inbox_digest((K1, K6)) == {"total": 43, "lines": [
        {"code": "K1", "names": dict(K1.names), "count": 42, "other": False},
        {"code": None, "names": {}, "count": None, "other": True}]}


def test_the_inbox_folds_every_small_line_into_one_whose_sum_is_shown_from_5() -> None:
    folded = inbox_digest((K1, CheckpointCount("K5", K5.names, 4), K6, ADHOC))
    assert folded == {"total": 50, "lines": [
        {"code": "K1", "names": dict(K1.names), "count": 42, "other": False},
        {"code": None, "names": {}, "count": 8, "other": True}]}
    assert inbox_digest((K5, K6)) == {"total": None, "lines": [
        {"code": None, "names": {}, "count": None, "other": True}]}
    adhoc = CheckpointCount(None, {}, 5)  # steps added to cases, 5 of them: a line of its own, as any checkpoint
    assert inbox_digest((adhoc,))["lines"] == [{"code": None, "names": {}, "count": 5, "other": False}]


def test_no_named_line_of_the_inbox_ever_has_a_count_below_5() -> None:
    counts = [CheckpointCount(f"K{n}", {"nb": f"nb{n}", "en": f"en{n}"}, n) for n in range(0, 13)]
    shown = inbox_digest(counts)
    named = [line for line in shown["lines"] if not line["other"]]
    assert [line["count"] for line in named] == list(range(5, 13))
    assert shown["lines"][-1] == {"code": None, "names": {}, "count": 10, "other": True}  # 1 + 2 + 3 + 4
    assert shown["total"] == sum(range(13))


def test_other_notices_keep_nothing_for_the_inbox_to_show() -> None:
    [notice] = digest(MANAGER)
    assert dataclasses.replace(notice, kind="break_glass").inbox_digest() is None


def test_nothing_to_tell_tells_nobody() -> None:
    assert digest(MANAGER, lines=()) == []
    assert digest(MANAGER, lines=(CheckpointCount("K1", K1.names, 0),)) == []
