"""Every operation on a case, one frozen dataclass each: build one and hand it to ``Case.execute``.

Adding an operation means adding a command class to one of these modules (plus its words in the pages'
translations and, if the case page offers it, its form); the API's route, the page's form handling, the access
log's action and replay all follow from the class.
"""

# The order of registration is the order a case offers its operations in (the most common first).
from pathway.case.commands.base import COMMANDS, Command, Context, Resolver, arg, fields_of
from pathway.case.commands.steps import AddStep, CompleteStep, SkipStep  # isort: skip
from pathway.case.commands.facts import (  # isort: skip
    AssignCoordinator, NoteChildPathway, NotePersonChange, RecordConsent, RecordMilestone, RecordRisk, SetCondition,
)
from pathway.case.commands.phases import Advance, Close, Migrate, Transfer  # isort: skip
from pathway.case.commands.handovers import CreateHandover, UpdateHandover  # isort: skip
from pathway.case.commands.clock import Pause, Resume  # isort: skip

__all__ = [
    "COMMANDS", "AddStep", "Advance", "AssignCoordinator", "Close", "Command", "CompleteStep", "Context",
    "CreateHandover", "Migrate", "NoteChildPathway", "NotePersonChange", "Pause", "RecordConsent", "RecordMilestone", "Resolver",
    "RecordRisk", "Resume", "SetCondition", "SkipStep", "Transfer", "UpdateHandover", "arg", "fields_of",
]
