"""A partner's task whose consent was narrowed after the handover: the view says what is withheld, and the FHIR Task
notes it (valid R4, bokmål with the scope codes, the time of the change); an unchanged one carries no such note."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.task import Task

from api.fhir import basis_note, task_resource, withheld_note
from pathway.views.tasks import PartnerTaskView

BASE = "https://forlop.example.org"
CREATED = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
CHANGED = CREATED + timedelta(hours=5)


def view(**changes: Any) -> PartnerTaskView:
    fields: dict[str, Any] = {
        "id": uuid.UUID(int=7), "case_reference": "VIR-2026-0007", "code": "K6",
        "title_nb": "Overlevering til politiet", "title_en": "Handover to the police", "agency": "police",
        "agency_name": "Politiet", "status": "requested", "basis": "consent", "scope": ("contact", "threat_assessment"),
        "due_at": CREATED + timedelta(days=1), "created_at": CREATED, "updated_at": CHANGED,
        "contact": "k1 (Bergen sentrum)", "withheld": ("name",), "withheld_nb": ("Navn",), "withheld_en": ("Name",),
        "consent_changed_at": CHANGED,
    }
    fields.update(changes)
    return PartnerTaskView(**fields)


def test_a_narrowed_consent_becomes_a_note_with_what_is_withheld_and_when() -> None:
    resource = task_resource(view(), base_url=BASE)
    Task.model_validate(resource)
    assert resource["note"] == [{"text": "Samtykket er endret: Navn deles ikke lenger (consent-scope withheld: name).",
                                 "time": "2026-11-23T13:00:00+00:00"}]
    assert [i["valueString"] for i in resource["input"]] == ["contact", "threat_assessment"]


def test_several_withheld_scopes_are_named_in_one_note() -> None:
    task = view(scope=("threat_assessment",), withheld=("name", "contact"), withheld_nb=("Navn", "Trygg kontaktkanal"),
                withheld_en=("Name", "Safe contact channel"))
    assert withheld_note(task)["text"] == ("Samtykket er endret: Navn, Trygg kontaktkanal deles ikke lenger "
                                           "(consent-scope withheld: name, contact).")


def test_nothing_withheld_means_no_note() -> None:
    resource = task_resource(view(scope=("name", "contact", "threat_assessment"), withheld=(), withheld_nb=(),
                                  withheld_en=(), consent_changed_at=None), base_url=BASE)
    assert "note" not in resource


def test_a_legal_basis_note_stays_beside_a_withheld_one() -> None:
    task = view(basis="avert_crime", scope=(), basis_nb="Avvergingsplikt (straffeloven § 196)")
    resource = task_resource(task, base_url=BASE)
    Task.model_validate(resource)
    assert [n["text"] for n in resource["note"]][0] == basis_note(task)["text"]
    assert len(resource["note"]) == 2


def test_the_view_refuses_a_scope_both_shared_and_withheld_or_unnamed() -> None:
    with pytest.raises(ValueError, match="either shared or withheld"):
        view(scope=("name", "contact"))
    with pytest.raises(ValueError, match="name in bokmål and English"):
        view(withheld_nb=())
    with pytest.raises(ValueError, match="timezone-aware"):
        view(consent_changed_at=CHANGED.replace(tzinfo=None))
