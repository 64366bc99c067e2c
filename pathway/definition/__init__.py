"""Parse and validate a pathway definition (YAML) into frozen objects.

Validation collects every problem, each with file, line, column and field, and raises one
``DefinitionError``. No I/O beyond reading the file.

- ``model``: the frozen definition objects (phases, transitions, checkpoints, offsets, texts)
- ``loader``: read, parse and validate a file or text
- ``reader``: the YAML reader that keeps positions and refuses hostile input
- ``problems``: a location path turned into file:line:column
- ``checks``: the semantic checks (references, duplicates, the phase graph)
- ``schema``: the JSON Schema export
"""

from pathway.definition.checks import Loc
from pathway.definition.loader import MAX_DEFINITION_BYTES, load_definition, parse_definition
from pathway.definition.model import (
    CONSENT_PREFIX,
    FIRST_CONTACT,
    RISK_LEVELS,
    Adaptation,
    Agency,
    Checkpoint,
    Code,
    CompletedBy,
    Deadline,
    Handover,
    Ident,
    Label,
    LegalBasis,
    Offset,
    PathwayDefinition,
    Phase,
    RepeatRule,
    RiskLevel,
    Rung,
    RungKind,
    Text,
    Transition,
)
from pathway.definition.reader import MAX_ALIASES, MAX_DEPTH, MAX_NODES
from pathway.definition.schema import json_schema

__all__ = [
    "CONSENT_PREFIX",
    "FIRST_CONTACT",
    "MAX_ALIASES",
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "RISK_LEVELS",
    "Adaptation",
    "Agency",
    "Checkpoint",
    "Code",
    "CompletedBy",
    "Deadline",
    "Handover",
    "Ident",
    "Label",
    "LegalBasis",
    "Loc",
    "Offset",
    "PathwayDefinition",
    "Phase",
    "RepeatRule",
    "RiskLevel",
    "Rung",
    "RungKind",
    "Text",
    "Transition",
    "json_schema",
    "load_definition",
    "parse_definition",
]
