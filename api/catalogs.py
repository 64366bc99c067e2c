"""Keeping the gettext catalogs: extract every marked text, merge it into each language's ``.po``, compile.

``make catalogs`` runs ``python -m api.catalogs`` after a change of texts: new texts appear untranslated in
``api/locale/nb/LC_MESSAGES/forlop.po`` for a translator, texts no longer used are marked obsolete (``#~``).
``make`` compiles the catalogs (``python -m api.catalogs compile``); a test fails on a text without bokmål.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from api.i18n import DOMAIN, LANGUAGES, LOCALE

ROOT = Path(__file__).resolve().parent.parent
# Where the texts are: the pages, and the messages of the code (errors among them) in every package.
METHODS = [("api/web/templates/**.html", "jinja2"), ("api/**.py", "python"), ("pathway/**.py", "python"),
           ("notifications/**.py", "python")]
# What marks a text: the pages' t(), N_() where a text is defined apart from where it is shown, and the English
# templates of the errors (their message argument).
KEYWORDS = {**DEFAULT_KEYWORDS, "t": None, "N_": None, "InvalidArgument": (2,), "NotPermitted": (2,),
            "AccountRefused": (2,), "HTTPException": (2,), "Refused": (2,), "not_allowed": (2,)}
OPTIONS = {"api/web/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def extract() -> Catalog:
    """Every marked text of the code and the pages, as a template catalog (``forlop.pot``)."""
    template = Catalog(project="Forløp", domain=DOMAIN, msgid_bugs_address="", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            ROOT, METHODS, OPTIONS, KEYWORDS, comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        if message and "tests" not in Path(filename).parts:
            template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def update() -> None:
    template = extract()
    with (LOCALE / f"{DOMAIN}.pot").open("wb") as f:
        write_po(f, template, width=120, omit_header=False, sort_output=False)
    for lang in LANGUAGES:
        if lang == "en":
            continue  # the texts are English
        catalog = read(lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()  # a text no longer used goes; git keeps its history
        with po_path(lang).open("wb") as f:
            write_po(f, catalog, width=120, include_previous=False)
        untranslated = [m.id for m in catalog if m.id and not m.string]
        print(f"{lang}: {len(catalog)} texts, {len(untranslated)} without a translation", file=sys.stderr)


def compile_all() -> None:
    for lang in LANGUAGES:
        if lang == "en":
            continue
        with po_path(lang).with_suffix(".mo").open("wb") as f:
            write_mo(f, read(lang), use_fuzzy=False)


if __name__ == "__main__":
    {"update": update, "compile": compile_all}[(sys.argv[1:] or ["update"])[0]]()
