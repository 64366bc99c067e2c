"""Turn a Message into subject, plain text and HTML, from one Jinja2 template per kind and language."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from notifications.message import AGGREGATED, KINDS, Message, Rendered

LANGUAGES: tuple[str, ...] = ("nb", "en")
OSLO = ZoneInfo("Europe/Oslo")
TEMPLATES = Path(__file__).resolve().parent / "templates"

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Line and paragraph breaks, other control characters and invisible format characters (bidi overrides):
# none of them belongs in a step code or a reference, and CR/LF in a subject is header injection.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _one_line(value: Any) -> Any:
    """Every ``{{ value }}`` passes through here: a value can never start a new line or reorder the text."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    return "".join(" " if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in value)


@pass_context
def oslo_time(context: Context, value: datetime) -> str:
    """``27.11.2026 kl. 14:00`` (nb) or ``27 Nov 2026 14:00`` (en), in Europe/Oslo whatever the season."""
    local = value.astimezone(OSLO)
    if context["language"] == "nb":
        return f"{local:%d.%m.%Y} kl. {local:%H:%M}"
    return f"{local.day} {_EN_MONTHS[local.month - 1]} {local.year} {local:%H:%M}"


def _environment(*, autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        finalize=_one_line,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["oslo_time"] = oslo_time
    return env


# The same template files load twice: subject and text must not be HTML-escaped, the html block must be.
_PLAIN = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def render(message: Message) -> Rendered:
    """Subject, text and HTML for ``message``.

    Raises ValueError for an unknown kind or language, a naive ``due_at`` or a link that is not an absolute
    http(s) URL.
    """
    _check(message)
    variables = _variables(message)
    name = f"{message.kind}.{message.language}.j2"
    plain = _PLAIN.get_template(name)
    return Rendered(
        subject=" ".join(_block(plain, "subject", variables).split()),
        text=_block(plain, "text", variables),
        html=_block(_HTML.get_template(name), "html", variables),
    )


def _check(message: Message) -> None:
    # The messages never echo the offending value: it may be anything, and errors end up in logs.
    if message.kind not in KINDS:
        raise ValueError("unknown notification kind")
    if message.language not in LANGUAGES:
        raise ValueError(f"notification language must be one of {', '.join(LANGUAGES)}")
    if message.due_at.tzinfo is None or message.due_at.utcoffset() is None:
        raise ValueError("notification due_at must be timezone-aware")
    link = urlsplit(message.link)
    clean = not any(ch.isspace() or not ch.isprintable() for ch in message.link)
    if link.scheme not in ("https", "http") or not link.netloc or not clean:
        raise ValueError("notification link must be an absolute http(s) URL without whitespace or control characters")


def _variables(message: Message) -> dict[str, Any]:
    """Only what a template may say. Recipient and idempotency key are for delivery, not for the text."""
    return {
        "kind": message.kind,
        "language": message.language,
        "due_at": message.due_at,
        "link": message.link,
        # A manager sees aggregated figures only: drop the reference even if the sender set one.
        "case_reference": None if message.kind in AGGREGATED else message.case_reference,
        "step_code": message.step_code,
        "unit": message.unit,
        "count": message.count,
        "actor": message.actor,
        # The digest names its unit by its display name; a unit without one, by its code.
        "unit_name": message.unit_name or message.unit,
    }


def _block(template: Template, name: str, variables: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(variables))).strip()
