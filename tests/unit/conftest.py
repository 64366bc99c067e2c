"""Shared fixtures for the unit tests: the shipped definitions (the adult's and the child's), a fixed clock and ways
to open cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pathway.case import Case
from pathway.definition import PathwayDefinition, load_definition

SHIPPED = Path(__file__).resolve().parents[2] / "definitions" / "krisesenter.yaml"
SHIPPED_CHILD = SHIPPED.with_name("barn.yaml")

# Monday 23 November 2026, 09:00 in Oslo (08:00 UTC): an ordinary working week, no holidays nearby.
MONDAY_MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)

OpenCase = Callable[..., Case]


@pytest.fixture(scope="session")
def shipped_text() -> str:
    return SHIPPED.read_text(encoding="utf-8")


# The shipped definition's version line (``version: 3\n``): tests that make a variant of it edit this line, whatever
# the version is now.
VERSION_LINE = f"version: {load_definition(SHIPPED).version}\n"


@pytest.fixture(scope="session")
def definition() -> PathwayDefinition:
    return load_definition(SHIPPED)


@pytest.fixture(scope="session")
def child_definition() -> PathwayDefinition:
    return load_definition(SHIPPED_CHILD)


@pytest.fixture
def start() -> datetime:
    """First contact, and the moment the case is opened: a fixed aware UTC time on a Monday morning."""
    return MONDAY_MORNING


@pytest.fixture
def hours(start: datetime) -> Callable[[float], datetime]:
    """``hours(n)``: n hours after ``start``; tests use it to keep their timestamps increasing."""
    return lambda n: start + timedelta(hours=n)


@pytest.fixture
def open_case(definition: PathwayDefinition, start: datetime) -> OpenCase:
    """Open a case of the shipped pathway at ``start`` (or as told); keyword arguments go to ``Case.open``."""

    def make(**kwargs: object) -> Case:
        args: dict[str, object] = {
            "case_id": uuid.UUID(int=1),
            "reference": "VIR-2026-0001",
            "unit": "bergen",
            "first_contact_at": start,
            "actor": "coordinator-1",
            "at": start,
        }
        args.update(kwargs)
        return Case.open(definition, **args)  # type: ignore[arg-type]

    return make


@pytest.fixture
def case(open_case: OpenCase) -> Case:
    """A freshly opened case in intake, first contact on Monday morning."""
    return open_case()


@pytest.fixture
def open_child_case(child_definition: PathwayDefinition, start: datetime) -> OpenCase:
    """Open a child's pathway of the shipped child definition (barn.yaml) at ``start``, part of the adult's case
    ``uuid.UUID(int=1)`` as ``open_case`` opens it (in the store, ``pathway.services.children.open_child_pathway`` opens
    one); keyword arguments go to ``Case.open``."""

    def make(**kwargs: object) -> Case:
        args: dict[str, object] = {
            "case_id": uuid.UUID(int=2),
            "reference": "VIR-2026-0002",
            "unit": "bergen",
            "first_contact_at": start,
            "actor": "coordinator-1",
            "at": start,
            "part_of": uuid.UUID(int=1),
        }
        args.update(kwargs)
        return Case.open(child_definition, **args)  # type: ignore[arg-type]

    return make
