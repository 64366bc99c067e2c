"""The JSON Schema of the definition format, for editors."""

from __future__ import annotations

from typing import Any

from pathway.definition.model import PathwayDefinition


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the definition format, for editors (written to definitions/pathway.schema.json)."""
    schema = PathwayDefinition.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Forløp pathway definition"
    schema.get("properties", {}).pop("sha256", None)
    schema.get("properties", {}).pop("source", None)
    return schema
