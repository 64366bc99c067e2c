"""The pages' own words. The texts are in the gettext catalogs (``api/i18n.py``), keyed by the English; pathway
words (phases, checkpoints, agencies, scopes, outcomes) come from the definition, which has both languages.
Texts defined here, apart from where they are shown, are marked ``N_`` for the catalog.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from api.i18n import ACTIONS, FIELDS, N_, gettext, invalid
from pathway.case.commands import COMMANDS
from pathway.definition import CONSENT_PREFIX, Checkpoint, Offset, PathwayDefinition
from pathway.metrics.checkpoints import Interval


def translator(lang: str) -> Callable[[str], str]:
    return gettext(lang)


# What an event in the timeline was, by its operation.
OPERATIONS = {
    "open": N_("Case opened"), "complete": N_("Completed"), "skip": N_("Skipped"), "add_step": N_("Step added"),
    "pause": N_("Clock paused"), "resume": N_("Clock resumed"), "advance": N_("New phase"),
    "record_milestone": N_("Milestone"), "record_consent": N_("Consent"),
    "assign_coordinator": N_("Coordinator assigned"), "set_condition": N_("Case characteristic changed"),
    "create_handover": N_("Handover created"), "update_handover": N_("Handover updated"), "close": N_("Closed"),
    "transfer": N_("Transferred"), "migrate": N_("Moved to a new version"),
    "person_updated": N_("Personal details changed"), "record_risk": N_("Threat level recorded"),
}
# A reminder's kind.
KINDS = {
    "due_soon": N_("Deadline soon"), "due_now": N_("Deadline now"), "overdue": N_("Overdue"),
    "escalation": N_("Escalation"), "manager_escalation": N_("Escalation to the manager"),
    "handover_unaccepted": N_("Handover not accepted"), "break_glass": N_("Emergency access to a case of your unit"),
    "handover_declined": N_("Handover declined by the agency"),
    "overdue_digest": N_("Daily overview of overdue steps"),
}
# Codes the pages show through t(): a step's state, a handover task's status and basis, a role.
CODE_WORDS = (
    N_("open"), N_("active"), N_("pending"), N_("waiting"), N_("done"), N_("skipped"), N_("cancelled"),
    N_("not started"), N_("requested"), N_("accepted"), N_("declined"), N_("completed"), N_("consent"),
    N_("avert_crime"), N_("child_welfare_duty"), N_("coordinator"), N_("partner"), N_("manager"), N_("admin"),
)


# What a form field is called on the pages, by its name in a request body.
FIELD_LABELS = FIELDS
def form_errors(exc: ValidationError, lang: str) -> list[dict[str, str]]:
    """A body model's validation errors as a page shows them, in its language: which field (its label) and what to
    do, never the value typed (it may be personal data) and never the validator's English."""
    return [{"loc": gettext(lang)(FIELD_LABELS.get(field, field)), "msg": msg}
            for field, msg in (invalid(e, lang) for e in exc.errors())]


def operation_label(operation: str, lang: str) -> str:
    return gettext(lang)(OPERATIONS.get(operation, operation))


def kind_label(kind: str, lang: str) -> str:
    return gettext(lang)(KINDS.get(kind, kind))


# An amount of time, and a repetition, by its unit: (one, more), each a template of the catalog (bokmål counts
# as English does: one, or more).
_AMOUNTS = {
    "hours": (N_("{n} hour"), N_("{n} hours")), "days": (N_("{n} day"), N_("{n} days")),
    "working_days": (N_("{n} working day"), N_("{n} working days")),
}
_EVERY = {
    "hours": (N_("every hour"), N_("every {n} hours")), "days": (N_("every day"), N_("every {n} days")),
    "working_days": (N_("every working day"), N_("every {n} working days")),
}


def offset_words(offset: Offset, lang: str, *, every: bool = False) -> str:
    """An offset of a definition as people say it: "24 timer", "2 virkedager"; ``every``: "hver 28. dag"."""
    one, more = (_EVERY if every else _AMOUNTS)[offset.unit.value]
    return gettext(lang)(one if abs(offset.amount) == 1 else more).format(n=offset.amount)


def deadline_words(checkpoint: Checkpoint, repeat: bool, lang: str) -> str:
    """A checkpoint's deadline rule in words: its deadline ("2 virkedager"), or how often it repeats ("hver 28.
    dag ×2, deretter hver 42. dag")."""
    if not repeat:
        return offset_words(checkpoint.deadline, lang) if checkpoint.deadline is not None else ""
    each = [offset_words(r.every, lang, every=True) + (f" ×{r.times}" if r.times else "") for r in checkpoint.repeat]
    return gettext(lang)(N_(", then ")).join(each)


# What the access log says was done, by its action (an operation on a case is named by its command).
LOGGED = {
    "case.read": N_("Read a case"), "case.list": N_("Listed cases"), "case.open": N_("Opened a case"),
    "case.search_by_name": N_("Searched for a case by name"), "case.break_glass": N_("Emergency access"),
    "case.break_glass_write": N_("Emergency access with write access"),
    "case.break_glass_end": N_("Ended emergency access"), "person.read": N_("Read personal details"),
    "person.list": N_("Read names in a list"), "person.write": N_("Changed personal details"),
    "report.read": N_("Read the report"), "report.csv": N_("Downloaded the report (CSV)"),
    "task.list": N_("Listed handover tasks"), "task.read": N_("Read a handover task"),
    "task.read_fhir": N_("Read a handover task (FHIR)"), "task.update": N_("Answered a handover task"),
    "audit.read": N_("Read the access log"), "break_glass.review": N_("Reviewed emergency accesses"),
    "calendar.create": N_("Made a calendar feed"), "calendar.read": N_("Calendar feed read"),
    "calendar.revoke": N_("Revoked a calendar feed"), "user.add": N_("Added a user"),
    "user.update": N_("Changed a user"), "user.deactivate": N_("Deactivated a user"),
    "user.reactivate": N_("Reactivated a user"), "user.password": N_("Set a password"),
}


def logged_action(action: str, lang: str) -> str:
    """An access-log action in words ("Read a case", "Pause the clock"); one nobody has named stays its code."""
    if action in LOGGED:
        return gettext(lang)(LOGGED[action])
    command = next((c for c in COMMANDS.values() if c.action == action), None)
    if command is None or command.operation not in ACTIONS:
        return action
    return gettext(lang)(ACTIONS[command.operation])


def interval_words(definition: PathwayDefinition, interval: Interval, lang: str) -> str:
    """A checkpoint interval of the report in words: what its deadline counts from, and the checkpoint
    ("Samtykke til Politiet → K6 Overlevering til politiet"; a repeat: "K12 Oppfølging, gjentatt")."""
    t = gettext(lang)
    checkpoint = definition.checkpoint[interval.checkpoint]
    to = f"{checkpoint.code} {checkpoint.name.get(lang)}"
    if interval.repeat or checkpoint.deadline is None:
        return t("{checkpoint}, repeated").format(checkpoint=to)
    after = checkpoint.deadline.after
    kind = definition.anchor_kind(after)
    anchor = interval.name.split("→")[0]  # a checkpoint's code, also for first contact (the checkpoint opening)
    if anchor in definition.checkpoint:
        start = anchor
    elif kind == "milestone":
        start = definition.milestones[after].get(lang)
    elif kind == "consent":
        agency = after.removeprefix(CONSENT_PREFIX)
        start = t("consent to {agency}").format(agency=definition.agencies[agency].get(lang))
    else:
        start = t("First contact") if kind == "first_contact" else after
    return f"{start} → {to}"
