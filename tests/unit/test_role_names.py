"""The managers' role name, kept in the two modules the layers keep apart: the reminder ladders (the domain, which
imports neither the accounts nor the notifications) and the notifications library (which imports nothing of the
pathway). Both must say the role the accounts know and a definition's rung may be addressed to."""

from __future__ import annotations

from typing import get_args

import pytest

from notifications import routing
from pathway import reminders
from pathway.accounts import ROLES
from pathway.definition.model import Rung

pytestmark = pytest.mark.any_date


def test_the_managers_are_named_alike_wherever_the_layers_keep_their_name() -> None:
    assert reminders.MANAGER == routing.MANAGER
    assert reminders.MANAGER in ROLES
    assert reminders.MANAGER in get_args(Rung.model_fields["to"].annotation)
