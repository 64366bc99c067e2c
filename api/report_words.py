"""The managers' report in words of a language: deadlines and checkpoint intervals as people say them, and the
report's downloads (CSV, Excel) in those words. Shared by the pages and the API (both offer the downloads), so it
lives beside ``api.i18n`` rather than among the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from fastapi.responses import Response

from api.i18n import N_, gettext
from pathway.definition import CONSENT_PREFIX, Checkpoint, Offset, PathwayDefinition
from pathway.errors import DefinitionVersionMissing
from pathway.metrics.checkpoints import Interval, intervals
from pathway.metrics.export import (CSV_FILENAME, CSV_MEDIA_TYPE, XLSX_FILENAME, XLSX_MEDIA_TYPE, Labels, to_csv,
                                    to_xlsx)
from pathway.metrics.report import Report

if TYPE_CHECKING:
    from pathway.bootstrap import Forlop

FileKind = Literal["csv", "xlsx"]
_FILES = {"csv": (to_csv, CSV_MEDIA_TYPE, CSV_FILENAME), "xlsx": (to_xlsx, XLSX_MEDIA_TYPE, XLSX_FILENAME)}

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


_BEFORE = N_("{amount} before")


def offset_words(offset: Offset, lang: str, *, every: bool = False) -> str:
    """An offset of a definition as people say it: "24 timer", "2 virkedager"; a negative one counts back from its
    anchor, "3 virkedager før" (K10, before moving out); ``every``: "hver 28. dag"."""
    t = gettext(lang)
    one, more = (_EVERY if every else _AMOUNTS)[offset.unit.value]
    words = t(one if abs(offset.amount) == 1 else more).format(n=abs(offset.amount))
    return t(_BEFORE).format(amount=words) if offset.amount < 0 and not every else words


def deadline_words(checkpoint: Checkpoint, repeat: bool, lang: str) -> str:
    """A checkpoint's deadline rule in words: its deadline ("2 virkedager"), or how often it repeats ("hver 28.
    dag ×2, deretter hver 42. dag")."""
    if not repeat:
        return offset_words(checkpoint.deadline, lang) if checkpoint.deadline is not None else ""
    each = [offset_words(r.every, lang, every=True) + (f" ×{r.times}" if r.times else "") for r in checkpoint.repeat]
    return gettext(lang)(N_(", then ")).join(each)


def interval_words(definition: PathwayDefinition, interval: Interval, lang: str) -> str:
    """A checkpoint interval of the report in words: what its deadline counts from, and the checkpoint
    ("Samtykke til Politiet → K6 Overlevering til politiet"; a repeat: "K12 Oppfølging, gjentatt"). An interval
    counted from another checkpoint names it instead of giving its code ("Koordinator tildelt → K8 Samordningsmøte",
    not "K3 → K8 ..."): a manager reads names, not codes. The page, the workbook and the CSV all say these words."""
    t = gettext(lang)
    checkpoint = definition.checkpoint[interval.checkpoint]
    to = f"{checkpoint.code} {checkpoint.name.get(lang)}"
    if interval.repeat or checkpoint.deadline is None:
        return t("{checkpoint}, repeated").format(checkpoint=to)
    after = checkpoint.deadline.after
    kind = definition.anchor_kind(after)
    anchor = interval.name.split("→")[0]  # a checkpoint's code, also for first contact (the checkpoint opening)
    if anchor in definition.checkpoint:
        start = definition.checkpoint[anchor].name.get(lang) if anchor != checkpoint.code else anchor
    elif kind == "milestone":
        start = definition.milestones[after].get(lang)
    elif kind == "consent":
        agency = after.removeprefix(CONSENT_PREFIX)
        start = t("consent to {agency}").format(agency=definition.agencies[agency].get(lang))
    else:
        start = t("First contact") if kind == "first_contact" else after
    return f"{start} → {to}"


def report_labels(report: Report, lang: str, *, definition: Callable[[str], PathwayDefinition],
                  unit_name: Callable[[str], str]) -> Labels:
    """The words of the report's downloads in ``lang``: the catalog's texts, and each interval, deadline and outcome
    by the newest version of its pathway (``definition``: ``DefinitionCatalog.latest``); a pathway no longer
    registered keeps its codes."""
    names: dict[tuple[str, str], str] = {}
    deadlines: dict[tuple[str, str], str] = {}
    outcomes: dict[tuple[str, str], str] = {}
    for pathway_id in sorted({r.pathway for r in report.intervals} | {c.pathway for c in report.cases}):
        try:
            found = definition(pathway_id)
        except DefinitionVersionMissing:
            continue
        for i in intervals(found):
            names[pathway_id, i.name] = interval_words(found, i, lang)
            deadlines[pathway_id, i.name] = deadline_words(found.checkpoint[i.checkpoint], i.repeat, lang)
        outcomes |= {(pathway_id, code): text.get(lang) for code, text in found.outcomes.items()}
    return Labels(translate=gettext(lang), unit_name=unit_name, intervals=names, deadlines=deadlines,
                  outcomes=outcomes)


def download(core: Forlop, report: Report, kind: FileKind, lang: str) -> Response:
    """The report as a file to save (``kind``: "csv" or "xlsx"), its headers and names in ``lang``."""
    write, media_type, filename = _FILES[kind]
    labels = report_labels(report, lang, definition=core.catalog.latest, unit_name=core.settings.unit_name)
    return Response(write(report, labels), media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
