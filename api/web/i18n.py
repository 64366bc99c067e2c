"""The pages' own words. The texts are in the gettext catalogs (``api/i18n.py``), keyed by the English; pathway
words (phases, checkpoints, agencies, scopes, outcomes) come from the definition, which has both languages.
Texts defined here, apart from where they are shown, are marked ``N_`` for the catalog.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from api.i18n import ACTIONS, FIELDS, N_, gettext, invalid
from api.report_words import deadline_words, interval_words, offset_words  # noqa: F401 (the API's downloads too)
from pathway.case.commands import COMMANDS
from pathway.metrics.periods import period_parts


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
    "child_pathway_opened": N_("A child's pathway opened"),
}
# A change of the person record in the timeline: the first one records it, a later one corrects it (rectification,
# GDPR art. 16: the event supersedes the fields it names, which the timeline says in words).
PERSON_RECORDED, PERSON_CORRECTED = N_("Personal details recorded: {fields}"), N_("Details corrected: {fields}")
# A reminder's kind.
KINDS = {
    "due_soon": N_("Deadline soon"), "due_now": N_("Deadline now"), "overdue": N_("Overdue"),
    "escalation": N_("Escalation"), "manager_escalation": N_("Escalation to the manager"),
    "handover_unaccepted": N_("Handover not accepted"), "break_glass": N_("Emergency access to a case of your unit"),
    "handover_declined": N_("Handover declined by the agency"),
    "overdue_digest": N_("Daily overview of overdue steps"),
    "referral_received": N_("New police referral"), "referral_declined": N_("Police referral declined"),
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


def person_change(fields: list[str], lang: str, *, first: bool) -> str:
    """A ``person_updated`` event in words, naming the fields it changed: "Opplysninger rettet: navn, adresse"."""
    t = gettext(lang)
    named = ", ".join(_lower_first(t(FIELD_LABELS.get(f, f))) for f in fields)
    return t(PERSON_RECORDED if first else PERSON_CORRECTED).format(fields=named)


def first_person_change(seqs_and_operations: list[tuple[int, str]]) -> int | None:
    """The seq of a case's first ``person_updated`` event (recording the person), None if it has none."""
    return next((seq for seq, operation in seqs_and_operations if operation == "person_updated"), None)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def kind_label(kind: str, lang: str) -> str:
    return gettext(lang)(KINDS.get(kind, kind))


# What the access log says was done, by its action (an operation on a case is named by its command).
LOGGED = {
    "case.read": N_("Read a case"), "case.list": N_("Listed cases"), "case.open": N_("Opened a case"),
    "case.search_by_name": N_("Searched for a case by name"), "case.break_glass": N_("Emergency access"),
    "case.break_glass_write": N_("Emergency access with write access"),
    "case.break_glass_end": N_("Ended emergency access"), "person.read": N_("Read personal details"),
    "person.list": N_("Read names in a list"), "person.write": N_("Changed personal details"),
    "child.read": N_("Read children's details"), "case.children": N_("Opened a child's pathway"),
    "report.read": N_("Read the report"), "report.csv": N_("Downloaded the report (CSV)"),
    "report.xlsx": N_("Downloaded the report (Excel)"),
    "task.list": N_("Listed handover tasks"), "task.read": N_("Read a handover task"),
    "task.read_fhir": N_("Read a handover task (FHIR)"), "task.update": N_("Answered a handover task"),
    "task.accepted": N_("Accepted a handover task"), "task.declined": N_("Declined a handover task"),
    "task.completed": N_("Completed a handover task"), "case.copy": N_("Exported the person's copy"),
    "audit.read": N_("Read the access log"), "break_glass.review": N_("Reviewed emergency accesses"),
    "calendar.create": N_("Made a calendar feed"), "calendar.read": N_("Calendar feed read"),
    "calendar.revoke": N_("Revoked a calendar feed"), "user.add": N_("Added a user"),
    "user.update": N_("Changed a user"), "user.deactivate": N_("Deactivated a user"),
    "user.reactivate": N_("Reactivated a user"), "user.password": N_("Set a password"),
    "referral.send": N_("Sent a police referral"), "referral.send_fhir": N_("Sent a police referral (FHIR)"),
    "referral.list": N_("Listed own police referrals"), "referral.read": N_("Read police referrals"),
    "referral.accept": N_("Accepted a police referral"), "referral.decline": N_("Declined a police referral"),
    "retention.list": N_("Read what will be erased when"), "retention.run": N_("Erased the cases due"),
    "retention.log": N_("Read the erasure log"), "retention.hold": N_("Set a legal hold"),
    "retention.release": N_("Lifted a legal hold"),
    "sign_in": N_("Signed in through an identity provider"),
    "sign_in.unmapped": N_("Refused sign-in: no group gives a role"),
    "sign_in.blocked": N_("Refused sign-in: the account is blocked"),
    "sign_in.name_taken": N_("Refused sign-in: the account name is taken"),
}


def logged_action(action: str, lang: str) -> str:
    """An access-log action in words ("Read a case", "Pause the clock"); one nobody has named stays its code."""
    if action in LOGGED:
        return gettext(lang)(LOGGED[action])
    command = next((c for c in COMMANDS.values() if c.action == action), None)
    if command is None or command.operation not in ACTIONS:
        return action
    return gettext(lang)(ACTIONS[command.operation])


# The months and tertials of the report in words ("desember 2026", "3. tertial 2026"), and short for a chart's axis
# ("des 26", "T3 26").
MONTH_NAMES = (
    N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"), N_("July"), N_("August"),
    N_("September"), N_("October"), N_("November"), N_("December"),
)
MONTH_SHORT = (
    N_("Jan"), N_("Feb"), N_("Mar"), N_("Apr"), N_("May"), N_("Jun"), N_("Jul"), N_("Aug"), N_("Sep"), N_("Oct"),
    N_("Nov"), N_("Dec"),
)
_TERTIAL = N_("T{n} {year}")
_SO_FAR = N_("{period} (so far)")


def period_words(key: str, lang: str, *, partial: bool = False, short: bool = False) -> str:
    """A report's period as people say it: "desember 2026" or "3. tertial 2026" (``short``: "des 26", "T3 26");
    ``partial``: a period not over yet, "desember 2026 (så langt)". A key that is no period stays itself."""
    t = gettext(lang)
    try:
        year, first_month, months = period_parts(key)
    except ValueError:
        return key
    shown_year = f"{year % 100:02d}" if short else str(year)
    if months > 1:  # a tertial
        n = (first_month - 1) // months + 1
        words = f"T{n} {shown_year}" if short else t(_TERTIAL).format(n=n, year=year)
    else:
        words = f"{t((MONTH_SHORT if short else MONTH_NAMES)[first_month - 1])} {shown_year}"
    return t(_SO_FAR).format(period=words) if partial and not short else words
