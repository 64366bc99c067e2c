"""The pages' own words in bokmål and English. Pathway words (phases, checkpoints, agencies, outcomes) come from
the definition, which has both languages; everything else is in ``words.nb.yaml``, keyed by the English text.

A unit test reads every ``t("...")`` in the templates and fails on one that has no bokmål here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML

_WORDS = YAML(typ="safe").load((Path(__file__).parent / "words.nb.yaml").read_text(encoding="utf-8"))
NB: dict[str, str] = _WORDS["words"]
# What an event in the timeline was, by its operation.
OPERATION_NB: dict[str, str] = _WORDS["operations"]
# A reminder's kind: (English, bokmål).
KIND_LABELS: dict[str, tuple[str, str]] = {k: (en, nb) for k, (en, nb) in _WORDS["reminder_kinds"].items()}


def translator(lang: str) -> Callable[[str], str]:
    if lang == "en":
        return lambda text: text
    return lambda text: NB.get(text, text)


# What a form field is called on the pages (the English label; bokmål from the words), by its name in a request body.
FIELD_LABELS = {
    "reason": "Reason", "write_reason": "Reason for write access", "note": "Note", "password": "Password",
    "username": "User name", "role": "Role", "unit": "Unit", "agency": "Agency", "language": "Language",
    "email": "Email", "start": "From", "end": "To", "title": "Title", "owner": "Owner", "due_at": "Deadline",
    "outcome": "Outcome", "coordinator": "Coordinator", "scope": "Scope", "when": "When",
    "first_contact_at": "First contact", "municipality": "Municipality", "version": "Version",
    "name": "Name", "safe_contact": "Safe contact channel", "address_protection": "Address protection",
    "children_ages": "Children (ages)", "interpreter_language": "Interpreter (language)",
    "home_municipality": "Home municipality", "contact_channel": "How did first contact come?",
}
# A validation error's type -> what the page says (English; bokmål from the words); ``{n}`` is the limit.
_VALIDATION = {
    "missing": "Fill this in.", "string_too_short": "Write at least {n} characters.",
    "string_too_long": "Write at most {n} characters.", "too_short": "Choose at least {n}.",
    "too_long": "Choose at most {n}.", "greater_than_equal": "At least {n}.", "less_than_equal": "At most {n}.",
    "int_parsing": "Give a whole number.", "datetime_parsing": "Give a date and a time.",
    "datetime_from_date_parsing": "Give a date and a time.", "date_parsing": "Give a date as YYYY-MM-DD.",
    "literal_error": "Choose one of the options.", "enum": "Choose one of the options.",
    "string_pattern_mismatch": "Not in the expected form.",
}


def form_errors(exc: ValidationError, lang: str) -> list[dict[str, str]]:
    """A body model's validation errors as a page shows them, in its language: which field (its label) and what to
    do, never the value typed (it may be personal data) and never the validator's English."""
    t = translator(lang)
    shown = []
    for e in exc.errors():
        # the field, not a list item's index within it ("children_ages", not "0")
        field = next((str(p) for p in reversed(e.get("loc") or ()) if not isinstance(p, int)), "")
        ctx: dict[str, Any] = dict(e.get("ctx") or {})
        limit = next((ctx[k] for k in ("min_length", "max_length", "ge", "le") if k in ctx), "")
        kind = "missing" if e["type"] == "string_too_short" and limit == 1 else e["type"]
        msg = t(_VALIDATION.get(kind, "This value is not valid.")).format(n=limit)
        shown.append({"loc": t(FIELD_LABELS.get(field, field)), "msg": msg})
    return shown


def operation_label(operation: str, lang: str) -> str:
    if lang == "en":
        return operation.replace("_", " ").capitalize()
    return OPERATION_NB.get(operation, operation)


def kind_label(kind: str, lang: str) -> str:
    en, nb = KIND_LABELS.get(kind, (kind, kind))
    return en if lang == "en" else nb
