"""The person's copy as a readable document (bokmål by default, English on request), to print or to save: the page
``/cases/{reference}/copy`` and ``forlop case copy --format html`` render the same template, the page with the
site's stylesheet, the file with the stylesheet inside it (it is read away from the site)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from api import i18n
from api.i18n import N_
from api.deps import Core
from api.routes.person_copy import export_copy
from api.web.coordinator import PROTECTION_LABELS
from api.web.i18n import FIELD_LABELS, first_person_change, logged_action, operation_label, person_change, translator
from api.web.render import env, local
from api.web.session import Page, Session, language
from pathway.definition import PathwayDefinition
from pathway.services.person_copy import CopyCase, PersonCopy

router = APIRouter(include_in_schema=False)
STYLESHEET = Path(__file__).parent / "static" / "copy.css"
# A person's needs in words (bokmål in the catalog), as the record has them (``pathway.people.Need``).
NEEDS = {"disability": N_("Disability"), "substance_use": N_("Substance use"), "mental_health": N_("Mental health"),
         "elderly": N_("Elderly"), "minority_background": N_("Minority background"), "lgbtq": N_("LGBTQ+"),
         "pregnancy": N_("Pregnancy"), "no_permanent_residence": N_("No permanent residence"),
         "forced_marriage": N_("Forced marriage"), "honour_violence": N_("Honour-related violence")}
ExporterPage = Annotated[Session, Depends(Page("coordinator", "admin"))]


def render_document(copy: PersonCopy, lang: str, *, resolve: Callable[[str, int], PathwayDefinition],
                    unit_name: Callable[[str], str], standalone: bool = False) -> str:
    """The copy as an HTML document in ``lang``, each pathway's words (agencies, scopes, outcomes) from its own
    definition version (``resolve``); ``standalone``: with its stylesheet inside (a file, not a page)."""
    t = translator(lang)

    def what(case: CopyCase) -> Any:
        first = first_person_change([(e.seq, e.operation) for e in case.events])

        def said(event: Any) -> str:
            if event.operation == "person_updated":
                return person_change(list(event.payload.get("fields", [])), lang, first=event.seq == first)
            return operation_label(event.operation, lang)

        return said

    def field(name: str) -> str:
        return t(FIELD_LABELS.get(name) or name)

    return env.get_template("person_copy.html").render(
        copy=copy, lang=lang, t=t, gettext=t, _=t, ngettext=i18n.translations(lang).ngettext,
        when=lambda v, with_time=True: local(v, lang, with_time=with_time), what=what,
        definition=lambda case: resolve(case.pathway, case.pathway_version), unit_name=unit_name,
        protection_labels=PROTECTION_LABELS, needs=lambda codes: ", ".join(t(NEEDS.get(c, c)) for c in codes),
        logged=lambda action: logged_action(action, lang), field=field,
        text=lambda v: v.get(lang) or v.get("nb", ""),
        stylesheet=Markup(STYLESHEET.read_text(encoding="utf-8")) if standalone else None)


@router.get("/cases/{reference}/copy")
def copy_page(request: Request, core: Core, session: ExporterPage, reference: str) -> Response:
    """The person's copy for an administrator or the case's coordinator (anyone else: not found); logged."""
    copy = export_copy(request, core, session.user, reference)
    document = render_document(copy, language(request, session.user), resolve=core.catalog.resolve,
                               unit_name=core.settings.unit_name)
    return HTMLResponse(document, headers={"Cache-Control": "no-store"})
