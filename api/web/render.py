"""Rendering pages: one Jinja2 environment (autoescaped), the frame's context, and local time in Europe/Oslo."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from api import i18n
from api.web.i18n import kind_label, logged_action, operation_label, translator
from api.web.session import Session, language
from pathway.policy import may_refer
from pathway.store import inbox

OSLO = ZoneInfo("Europe/Oslo")
HERE = Path(__file__).parent
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Jinja2's i18n extension: t("...") (the pages' name for gettext), _() and {% trans %} read the gettext catalog
# of the request's language, passed with each page (api/i18n.py).
env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"],
)
env.install_null_translations()  # type: ignore[attr-defined]  # added by the i18n extension


def local(value: datetime | date | None, lang: str, *, with_time: bool = True) -> str:
    """A time as people in Norway read it: 27.11.2026 14:05 (bokmål) or 27 Nov 2026 14:05 (English)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(OSLO)
    day = (f"{value.day:02d}.{value.month:02d}.{value.year}" if lang != "en"
           else f"{value.day} {MONTHS_EN[value.month - 1]} {value.year}")
    if with_time and isinstance(value, datetime):
        return f"{day} {value:%H:%M}"
    return day


def iso_local(value: datetime | None) -> str:
    """For a <time datetime="..."> attribute and for datetime-local inputs."""
    return "" if value is None else value.astimezone(OSLO).isoformat(timespec="minutes")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)} %"


env.filters.update(iso_local=iso_local, percent=percent)
env.globals.update(may_refer=may_refer)  # the menu asks the policy, as the routes do


def page(request: Request, template: str, session: Session | None, *, status: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    lang = language(request, session.user if session else None)
    core = request.app.state.core
    unread = inbox.unread_count(engine=core.engine, username=session.user.username) if session else 0
    html = env.get_template(template).render(
        request=request, session=session, user=session.user if session else None, lang=lang, t=translator(lang),
        gettext=translator(lang), _=translator(lang), ngettext=i18n.translations(lang).ngettext,
        when=lambda v, with_time=True: local(v, lang, with_time=with_time), op_label=lambda o: operation_label(o, lang),
        kind_label=lambda k: kind_label(k, lang), text=lambda v: v.get(lang),
        logged=lambda action: logged_action(action, lang), unit_name=core.settings.unit_name,
        unread=unread, demo=core.settings.env in ("demo", "development"), path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=headers)
