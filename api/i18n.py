"""Bokmål and English at the edge: the gettext catalogs, the language a request asks for, and a domain error said in
that language.

The texts live in gettext catalogs (``api/locale/<lang>/LC_MESSAGES/forlop.po``, a translator's file), keyed by
the English text (the ``msgid``), so English needs no catalog. ``make catalogs`` extracts every marked text of the
pages and of the errors into ``api/locale/forlop.pot`` and merges it into the ``.po`` files; the build compiles them
(``pybabel compile``, run by ``make``). A checkout that has not been built yet compiles a ``.po`` in memory.

Domain errors (``pathway.errors``) carry an English template and its parameters; they are put into words only
here, in the reader's language, never in the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from pathway.case.refusals import Refusal
from pathway.definition import CONSENT_PREFIX, FIRST_CONTACT, PathwayDefinition
from pathway.errors import N_, ForlopError

__all__ = ["N_", "fill", "gettext", "names", "negotiate", "refusal_text", "say", "translations"]

LOCALE = Path(__file__).parent / "locale"
DOMAIN = "forlop"
LANGUAGES = ("nb", "en")  # bokmål first; English on request
DEFAULT = "nb"
# What Accept-Language may name for each of ours: Norwegian in any written form reads bokmål.
_ALIASES = {"nb": "nb", "no": "nb", "nn": "nb", "en": "en"}


@cache
def translations(lang: str) -> NullTranslations:
    if lang == "en":
        return NullTranslations()
    po = LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    with po.open("rb") as f:  # not built yet (a fresh checkout): compile the catalog in memory
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# The texts asked for in bokmål that its catalog lacks, since the process started (at most a few hundred kept): a
# test walks every page and fails on any. Only texts of the code and the pages reach a translator, never case data.
MISSED: set[str] = set()


def gettext(lang: str) -> Callable[[str], str]:
    """The translator of a language: English text in, the language's text out (the English where it has none)."""
    found = translations(lang if lang in LANGUAGES else DEFAULT)
    if lang == "en":
        return found.gettext
    catalog: dict[str, str] = getattr(found, "_catalog", {})

    def said(text: str) -> str:
        if text and text not in catalog and len(MISSED) < 500:
            MISSED.add(text)
        return found.gettext(text)
    return said


def negotiate(accept_language: str | None) -> str:
    """The language an ``Accept-Language`` header asks for (RFC 9110 §12.5.4), of ours; bokmål by default."""
    best, best_q = DEFAULT, -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ours = _ALIASES.get(tag.strip().lower().split("-")[0])
        if ours is not None and q > 0 and q - i * 1e-6 > best_q:  # equal weights: the first named wins
            best, best_q = ours, q - i * 1e-6
    return best


# What an operation is called where it is offered or refused, by the name the engine gives it.
ACTIONS = {
    "complete": N_("Complete a step"), "skip": N_("Skip a step"), "add_step": N_("Add a step"),
    "pause": N_("Pause the clock"), "resume": N_("Resume the clock"), "advance": N_("Change phase"),
    "record_milestone": N_("Record a milestone"), "record_consent": N_("Record consent"),
    "assign_coordinator": N_("Assign coordinator"), "set_condition": N_("Set a case characteristic"),
    "create_handover": N_("Create a handover task"), "update_handover": N_("Answer a handover task"),
    "record_risk": N_("Record the threat level"),
    "handover accepted": N_("Accept the handover task"), "handover declined": N_("Decline the handover task"),
    "handover completed": N_("Complete the handover task"), "handover cancelled": N_("Cancel the handover task"),
    "close": N_("Close the case"), "transfer": N_("Transfer to another municipality"),
    "migrate": N_("Move to a new version of the pathway"), "return": N_("Go back to an earlier phase"),
}
# What a field of a request is called, by its name in the request body (the pages' labels).
FIELDS = {
    "reason": N_("Reason"), "write_reason": N_("Reason for write access"), "note": N_("Note"),
    "password": N_("Password"), "username": N_("User name"), "role": N_("Role"), "unit": N_("Unit"),
    "agency": N_("Agency"), "language": N_("Language"), "email": N_("Email"), "start": N_("From"), "end": N_("To"),
    "title": N_("Title"), "owner": N_("Owner"), "due_at": N_("Deadline"), "outcome": N_("Outcome"),
    "coordinator": N_("Coordinator"), "scope": N_("Scope"), "scopes": N_("Scope"), "when": N_("When"),
    "first_contact_at": N_("First contact"), "municipality": N_("Municipality"), "version": N_("Version"),
    "name": N_("Name"), "safe_contact": N_("Safe contact channel"), "address_protection": N_("Address protection"),
    "children_ages": N_("Children (ages)"), "interpreter_language": N_("Interpreter (language)"),
    "home_municipality": N_("Home municipality"), "birth_date": N_("Date of birth"), "address": N_("Address"),
    "needs": N_("Needs"), "contact_channel": N_("How did first contact come?"),
    "effective_at": N_("Done at"), "at": N_("When"), "days": N_("Days"), "person": N_("Personal details"),
    "fields": N_("Personal details"), "conditions": N_("Case characteristics"), "value": N_("Value"),
    "status": N_("Status"), "task_id": N_("Handover task"), "code": N_("Checkpoint"), "mapping": N_("Mapping"),
    "pathway": N_("Pathway"), "actor": N_("Who"), "case": N_("Case"), "phone": N_("Work phone"),
    "level": N_("Threat level"),
    "first_name": N_("First name"), "birth_year": N_("Birth year"), "school": N_("School or kindergarten"),
}


# A validation error's type -> what to do (``{n}`` is the limit).
_VALIDATION = {
    "missing": N_("Fill this in."), "string_too_short": N_("Write at least {n} characters."),
    "string_too_long": N_("Write at most {n} characters."), "too_short": N_("Choose at least {n}."),
    "too_long": N_("Choose at most {n}."), "greater_than_equal": N_("At least {n}."),
    "less_than_equal": N_("At most {n}."), "int_parsing": N_("Give a whole number."),
    "datetime_parsing": N_("Give a date and a time."), "datetime_from_date_parsing": N_("Give a date and a time."),
    "date_parsing": N_("Give a date as YYYY-MM-DD."), "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."), "string_pattern_mismatch": N_("Not in the expected form."),
    "json_invalid": N_("Not valid JSON."), "model_attributes_type": N_("Give an object of fields."),
    "dict_type": N_("Give an object of fields."), "list_type": N_("Give a list."),
    "string_type": N_("Give a text."), "int_type": N_("Give a whole number."), "bool_type": N_("Give true or false."),
    "bool_parsing": N_("Give true or false."), "extra_forbidden": N_("There is no such field."),
}


def invalid(error: Mapping[str, Any], lang: str) -> tuple[str, str]:
    """One validation error (pydantic's) as (the field's name, what to do in ``lang``): the field, not a list
    item's index within it ("children_ages", not "0"); never the value typed, never the validator's English."""
    field = next((str(p) for p in reversed(error.get("loc") or ()) if not isinstance(p, int)), "")
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    limit = next((ctx[k] for k in ("min_length", "max_length", "ge", "le") if k in ctx), "")
    kind = "missing" if error["type"] == "string_too_short" and limit == 1 else error["type"]
    return field, gettext(lang)(_VALIDATION.get(kind, N_("This value is not valid."))).format(n=limit)


# How a checkpoint done by an operation of its own is done ("K0 is done by opening the case, not by hand").
_DONE_BY = {"open": N_("opening the case"), "assign_coordinator": N_("assigning the coordinator"),
            "consent": N_("recording consent"), "handover": N_("the agency completing its handover task"),
            "close": N_("closing the case")}


def names(definitions: Iterable[PathwayDefinition], lang: str) -> dict[str, Callable[[Any], Any]]:
    """How the parameters of an error that are codes are named in ``lang``: phases, agencies and scopes by the
    pathway definitions, operations and fields by the catalog. A code nobody names is shown as it is."""
    t = gettext(lang)
    phases: dict[str, str] = {}
    agencies: dict[str, str] = {}
    scopes: dict[str, str] = {}
    triggers: dict[str, str] = {}
    milestones: dict[str, str] = {}
    for d in definitions:
        milestones |= {k: v.get(lang) for k, v in d.milestones.items()}
        phases |= {p.id: p.title.get(lang) for p in d.phases}
        agencies |= {k: v.get(lang) for k, v in d.agencies.items()}
        scopes |= {k: v.get(lang) for k, v in d.consent_scopes.items()}
        triggers |= {tr.trigger: f"{t('Change phase')} ({phases.get(tr.dest, tr.dest)})" for tr in d.transitions}

    def operation(code: str) -> str:
        code = code.removeprefix("advance:")  # a transition offered by the advance command
        return t(ACTIONS[code]) if code in ACTIONS else triggers.get(code, code)

    def after(anchor: str) -> str:  # what a deadline counts from
        if anchor == FIRST_CONTACT:
            return t("first contact")
        if anchor.startswith(CONSENT_PREFIX):
            agency = anchor.removeprefix(CONSENT_PREFIX)
            return t("consent to {agency}").format(agency=agencies.get(agency, agency))
        return milestones.get(anchor, anchor)

    def each(named: Callable[[str], str]) -> Callable[[Any], Any]:
        return lambda value: _each(named, value)

    return {
        "phase": each(lambda c: phases.get(c, c)), "agency": each(lambda c: agencies.get(c, c)),
        "missing_scope": each(lambda c: scopes.get(c, c)), "scope": each(lambda c: scopes.get(c, c)),
        "operation": each(operation),
        "allowed": each(operation), "field": each(lambda c: t(FIELDS[c]) if c in FIELDS else c),
        "role": each(t), "roles": each(t), "state": each(t), "status": each(t), "basis": each(t), "valid": each(t),
        "by": each(lambda c: t(_DONE_BY[c]) if c in _DONE_BY else c), "after": each(after),
    }


Names = Mapping[str, Callable[[Any], Any]]


def say(error: ForlopError, lang: str, names: Names | None = None,
        shown: Callable[[Any], Any] = lambda value: value) -> str:
    """A domain error in the reader's words: each of its templates translated, then its parameters put in.
    ``names`` turns a parameter that is a code (a phase, an operation, a scope) into its display name in the same
    language; a list is said as a list. ``shown`` filters each value the engine did not write (the API keeps
    codes, not what was typed)."""
    params = {k: v if k in error.engine_params else _each(shown, v) for k, v in error.params.items()}
    return "".join(joint + fill(template, params, lang, names) for template, joint in error.pieces)


def fill(template: str, params: Mapping[str, Any], lang: str, names: Names | None = None) -> str:
    """An English template of the catalog in ``lang``, its parameters named (``names``) and put in."""
    named = {k: names[k](v) if names and k in names else v for k, v in params.items()}
    text = gettext(lang)(template)
    try:
        return text.format(**{k: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                              for k, v in named.items()})
    except (KeyError, IndexError, ValueError):  # a translation that is not a template: as it stands
        return text


def refusal_text(refusal: Refusal, lang: str, names: Names | None = None) -> str:
    """Why an operation cannot be done now (the engine's ``Refusal``), as a sentence of the reader's language."""
    text = say(refusal.cause, lang, names) if refusal.cause is not None else fill(refusal.template, refusal.params,
                                                                                   lang, names)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _each(f: Callable[[Any], Any], value: Any) -> Any:
    return [f(v) for v in value] if isinstance(value, (list, tuple)) else f(value)
