"""Which unit's figures a manager's report shows: the access policy's one rule, asked by the API, the page and the
downloads alike."""

from __future__ import annotations

import uuid

import pytest

from pathway import policy
from pathway.accounts import User

pytestmark = pytest.mark.any_date


def manager(unit: str | None) -> User:
    return User(id=uuid.uuid4(), username="leder-test", role="manager", unit=unit, agency=None, language="nb")


def test_a_manager_sees_their_own_unit_or_every_unit_together() -> None:
    assert policy.report_unit(manager("bergen-sentrum"), "unit") == "bergen-sentrum"
    assert policy.report_unit(manager("bergen-sentrum"), "all") is None


def test_a_manager_without_a_unit_gets_every_unit_together_for_their_own() -> None:
    # aggregates only, which any manager may read for all units: nothing to withhold, and no empty report that hides
    # the missing unit; the break-glass review, which names case references, gives such a manager nothing
    assert policy.report_unit(manager(None), "unit") is None
    assert policy.report_unit(manager(None), "all") is None
    assert policy.break_glass_reviewed(manager(None)) is None
