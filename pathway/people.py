"""The person behind a case: only what the work needs, encrypted at rest, found by a keyed blind index."""

from __future__ import annotations

import uuid
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from ruamel.yaml import YAML

from pathway.case.events import Plain
from pathway.crypto import CaseKey, KeyRing, blind_index
from pathway.errors import CryptoError

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


CASE_SEALED = "~case"  # the key id of a record sealed under its case's own key (never a master key's: not an id)
_CASE_BLOB = b"c1:"  # its blob's header (a master key's blob begins "v1:")


def seal_record(value: dict[str, object], *, case_id: uuid.UUID, keys: KeyRing, sealer: object) -> tuple[str, bytes]:
    """(key id, ciphertext bound to the case): under the case's own key (``sealer``, a ``CaseKey``), or under the
    master key ring for a case from before case keys (``sealer`` None or ``PLAIN``); an erased case's refuses."""
    if isinstance(sealer, CaseKey):
        return CASE_SEALED, _CASE_BLOB + sealer.seal_json(value, aad=case_id.bytes)
    if sealer is not None and not isinstance(sealer, Plain):
        sealer.seal("")  # type: ignore[attr-defined]  # ERASED raises CaseErased, LOCKED a CryptoError
        raise CryptoError("a record can be sealed only under its case's key")
    blob = keys.encrypt_json(value, aad=case_id.bytes)
    return keys.key_id_of(blob), blob


def unseal_record(blob: bytes, *, case_id: uuid.UUID, keys: KeyRing | None, sealer: object) -> object:
    if bytes(blob).startswith(_CASE_BLOB):
        if not isinstance(sealer, CaseKey):
            raise CryptoError("the record is sealed under its case's key, which is erased or was not given")
        return sealer.open_json(bytes(blob)[len(_CASE_BLOB):], aad=case_id.bytes)
    if keys is None:
        raise CryptoError("the record is sealed and no key ring was given")
    return keys.decrypt_json(blob, aad=case_id.bytes)


def seal_child(child: ChildRecord, *, case_id: uuid.UUID, keys: KeyRing, sealer: object) -> tuple[str, bytes]:
    """(key id, ciphertext bound to the child's case), under the case's key (``sealer``) where it has one."""
    return seal_record(child.model_dump(mode="json"), case_id=case_id, keys=keys, sealer=sealer)


def unseal_child(blob: bytes, *, case_id: uuid.UUID, keys: KeyRing | None, sealer: object = None) -> ChildRecord:
    return ChildRecord.model_validate(unseal_record(blob, case_id=case_id, keys=keys, sealer=sealer))


def seal(person: PersonRecord, *, case_id: uuid.UUID, keys: KeyRing, index_key: str,
         sealer: object) -> tuple[str, bytes, str]:
    """(key id, ciphertext bound to the case, blind index of the name), under the case's key (``sealer``, the case's
    own) where it has one (required: a record sealed under the master key by mistake would outlive its case)."""
    key_id, blob = seal_record(person.model_dump(mode="json"), case_id=case_id, keys=keys, sealer=sealer)
    return key_id, blob, blind_index(index_key, person.name)


def unseal(blob: bytes, *, case_id: uuid.UUID, keys: KeyRing | None, sealer: object = None) -> PersonRecord:
    return PersonRecord.model_validate(unseal_record(blob, case_id=case_id, keys=keys, sealer=sealer))


def changed_fields(old: PersonRecord | None, new: PersonRecord) -> list[str]:
    names = list(PersonRecord.model_fields)
    if old is None:
        return [n for n in names if getattr(new, n) not in (None, (), "none")] or ["name"]
    return [n for n in names if getattr(old, n) != getattr(new, n)]
