"""The person behind a case: only what the work needs, encrypted at rest, found by a keyed blind index."""

from __future__ import annotations

import uuid
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from ruamel.yaml import YAML

from pathway.crypto import KeyRing, blind_index

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Need = Literal[
    "disability", "substance_use", "mental_health", "elderly", "minority_background", "lgbtq",
    "pregnancy", "no_permanent_residence", "forced_marriage", "honour_violence",
]

Protection = Literal["none", "code7", "code6"]  # code 7 "fortrolig adresse", code 6 "strengt fortrolig adresse"


@cache
def municipalities() -> tuple[str, ...]:
    """The region's municipalities (``pathway/municipalities.yaml``): the values a home municipality may take."""
    names = YAML(typ="safe").load((Path(__file__).parent / "municipalities.yaml").read_text(encoding="utf-8"))
    return tuple(str(n) for n in names)


def _in_region(value: str | None) -> str | None:
    if value is not None and value not in municipalities():
        # The value is not repeated (errors never echo what was typed into a person field).
        raise ValueError("not one of the region's municipalities (pathway/municipalities.yaml)")
    return value


class PersonRecord(BaseModel):
    """Personal data of one case. Never logged, never in an event, notification or error message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Short
    birth_date: date | None = None
    safe_contact: Short | None = Field(default=None, description="a channel that is safe to use, e.g. a phone")
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    address_protection: Protection = "none"
    children_ages: tuple[Annotated[int, Field(ge=0, le=25)], ...] = ()
    interpreter_language: Annotated[str, StringConstraints(max_length=64)] | None = None
    needs: tuple[Need, ...] = ()
    home_municipality: Annotated[str | None, AfterValidator(_in_region)] = Field(
        default=None, description="one of the region's municipalities", examples=["Askøy"])

    @property
    def has_children(self) -> bool:
        return bool(self.children_ages)


class ChildRecord(BaseModel):
    """The child of a child's pathway: what the child's own follow-up needs (a first name to speak to, a birth year
    for an age-appropriate offer, the school or kindergarten to contact), and nothing more. Never an address.
    Encrypted like the person record, never logged, never in an event, notification or error message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    birth_year: Annotated[int, Field(ge=1990, le=2100)]
    school: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        default=None, description="the school or kindergarten the child attends or will attend")


def seal_child(child: ChildRecord, *, case_id: uuid.UUID, keys: KeyRing) -> tuple[str, bytes]:
    """(key id, ciphertext bound to the child's case)."""
    blob = keys.encrypt_json(child.model_dump(mode="json"), aad=case_id.bytes)
    return keys.key_id_of(blob), blob


def unseal_child(blob: bytes, *, case_id: uuid.UUID, keys: KeyRing) -> ChildRecord:
    return ChildRecord.model_validate(keys.decrypt_json(blob, aad=case_id.bytes))


def seal(person: PersonRecord, *, case_id: uuid.UUID, keys: KeyRing, index_key: str) -> tuple[str, bytes, str]:
    """(key id, ciphertext bound to the case, blind index of the name)."""
    blob = keys.encrypt_json(person.model_dump(mode="json"), aad=case_id.bytes)
    return keys.key_id_of(blob), blob, blind_index(index_key, person.name)


def unseal(blob: bytes, *, case_id: uuid.UUID, keys: KeyRing) -> PersonRecord:
    return PersonRecord.model_validate(keys.decrypt_json(blob, aad=case_id.bytes))


def changed_fields(old: PersonRecord | None, new: PersonRecord) -> list[str]:
    names = list(PersonRecord.model_fields)
    if old is None:
        return [n for n in names if getattr(new, n) not in (None, (), "none")] or ["name"]
    return [n for n in names if getattr(old, n) != getattr(new, n)]
