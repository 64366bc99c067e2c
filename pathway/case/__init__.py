"""The case: its state, its deadline engine, the commands that change it, its events and their replay."""

from pathway.case.aggregate import Case
from pathway.case.commands import COMMANDS, Command, Context, Resolver
from pathway.case.events import GENESIS, Event, canonical, event_hash
from pathway.case.replay import replay
from pathway.case.values import (
    ANSWERED,
    EARLIEST,
    HANDOVER_STATUSES,
    LATEST,
    OPEN_HANDOVER,
    Consent,
    HandoverTask,
    Step,
    iso,
    parse_iso,
    shareable,
    utc,
)

__all__ = [
    "ANSWERED", "COMMANDS", "EARLIEST", "GENESIS", "HANDOVER_STATUSES", "LATEST", "OPEN_HANDOVER", "Case", "Command", "Consent",
    "Context", "Event", "HandoverTask", "Resolver", "Step", "canonical", "event_hash", "iso", "parse_iso", "replay",
    "shareable", "utc",
]
