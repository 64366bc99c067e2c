"""The pages' own words in bokmål and English. Pathway words (phases, checkpoints, agencies, outcomes) come from
the definition, which has both languages; everything else is in ``words.nb.yaml``, keyed by the English text.

A unit test reads every ``t("...")`` in the templates and fails on one that has no bokmål here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


def operation_label(operation: str, lang: str) -> str:
    if lang == "en":
        return operation.replace("_", " ").capitalize()
    return OPERATION_NB.get(operation, operation)


def kind_label(kind: str, lang: str) -> str:
    en, nb = KIND_LABELS.get(kind, (kind, kind))
    return en if lang == "en" else nb
