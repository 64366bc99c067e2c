"""A partner's handover task as a FHIR R4 Task: valid, correctly mapped, and showing only what the handover needs.

Validation uses ``fhir.resources``. In 8.x its top-level modules (``fhir.resources.task``) are FHIR R5,
and it ships ``R4B`` and ``STU3`` subpackages but no plain ``R4``. R4B changed nothing in ``Task`` from
R4 (same elements, cardinalities and ``task-status`` codes; R4B's changes are in other resources), so a
resource that validates as an R4B Task is a valid R4 Task.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.task import Task

from api.fhir import FHIR_STATUS, task_resource
from pathway.case.commands import Advance, CompleteStep, CreateHandover, RecordConsent, UpdateHandover
from pathway.case import HANDOVER_STATUSES, Case, HandoverTask
from pathway.definition import PathwayDefinition
from pathway.views.tasks import PartnerTaskView

BASE = "https://forlop.example.org"
CREATED = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
ADDRESS = "Storgata 17 B, 0184 Oslo"
BIRTH_DATE = "1987-04-12"
NAME = "Kari Nordmann"
# The person record the crisis centre holds; a partner task may carry the name (with consent), nothing else of it.
PERSON = {"name": NAME, "address": ADDRESS, "birth_date": BIRTH_DATE, "phone": "+47 912 34 567"}

MakeView = Callable[..., PartnerTaskView]

# http://hl7.org/fhir/R4/valueset-task-status.html (required binding). fhir.resources checks a code's
# syntax only, not its value set (it accepts status "declined"), so the tests check membership themselves.
R4_TASK_STATUS = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
                  "on-hold", "failed", "completed", "entered-in-error"}
R4_TASK_PRIORITY = {"routine", "urgent", "asap", "stat"}


@pytest.fixture
def view() -> MakeView:
    def make(**changes: Any) -> PartnerTaskView:
        fields: dict[str, Any] = {
            "id": uuid.UUID(int=42),
            "case_reference": "VIR-2026-0001",
            "code": "K6",
            "title_nb": "Overlevering til politiet",
            "title_en": "Handover to the police",
            "agency": "police",
            "agency_name": "Politiet",
            "status": "requested",
            "basis": "consent",
            "scope": ("name", "contact", "threat_assessment"),
            "due_at": CREATED + timedelta(days=1),
            "created_at": CREATED,
            "updated_at": CREATED + timedelta(hours=2),
            "contact": "Bergen krisesenter, vakttelefon (coordinator-1)",
            "person_name": None,
        }
        fields.update(changes)
        return PartnerTaskView(**fields)

    return make


def validate(resource: dict[str, Any]) -> Task:
    task = Task.model_validate(resource)
    assert task.status in R4_TASK_STATUS and task.priority in R4_TASK_PRIORITY
    return task


def strings(value: Any) -> Iterator[str]:
    """Every string leaf of a JSON-able value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def inputs(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["type"]["text"], i["valueString"]) for i in resource.get("input", [])]


# -- status mapping and validity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fhir_status"),
    [("requested", "requested"), ("accepted", "accepted"), ("declined", "rejected"),
     ("completed", "completed"), ("cancelled", "cancelled")],
)
def test_every_status_maps_onto_a_fhir_task_state_and_validates(view: MakeView, status: str, fhir_status: str) -> None:
    resource = task_resource(view(status=status), base_url=BASE)
    task = validate(resource)
    assert resource["status"] == task.status == fhir_status
    assert task.intent == "order"


def test_the_mapping_covers_exactly_forlops_statuses_and_never_produces_in_progress() -> None:
    assert set(FHIR_STATUS) == set(HANDOVER_STATUSES)
    assert set(FHIR_STATUS.values()) <= R4_TASK_STATUS
    assert "in-progress" not in FHIR_STATUS.values()


def test_an_unknown_status_is_refused(view: MakeView) -> None:
    # (A basis is the definition's to name: a task is built only from one the command let through.)
    with pytest.raises(ValueError, match="status"):
        view(status="in-progress")


def test_the_resource_carries_identifiers_code_owner_requester_and_deadline(view: MakeView) -> None:
    resource = task_resource(view(), base_url=BASE + "/")
    task = validate(resource)
    assert resource["resourceType"] == "Task" and resource["id"] == str(uuid.UUID(int=42))
    assert resource["identifier"] == [
        {"system": f"{BASE}/fhir/task-id", "value": str(uuid.UUID(int=42))},
        {"system": f"{BASE}/fhir/case-reference", "value": "VIR-2026-0001"},
    ]
    assert resource["code"] == {
        "coding": [{"system": f"{BASE}/fhir/checkpoint", "code": "K6", "display": "Overlevering til politiet"}]
    }
    assert resource["description"] == "Overlevering til politiet"
    assert resource["owner"] == {"display": "Politiet", "identifier": {"system": f"{BASE}/fhir/agency", "value": "police"}}
    assert resource["requester"] == {"display": "Bergen krisesenter, vakttelefon (coordinator-1)"}
    assert task.restriction is not None and task.restriction.period is not None
    assert task.restriction.period.end == CREATED + timedelta(days=1)
    assert inputs(resource) == [("consent-scope", "name"), ("consent-scope", "contact"),
                                ("consent-scope", "threat_assessment")]
    assert "note" not in resource, "no legal-basis note when the person consented"
    assert json.loads(json.dumps(resource)) == resource, "JSON-able"


def test_without_a_deadline_there_is_no_restriction(view: MakeView) -> None:
    resource = task_resource(view(due_at=None), base_url=BASE)
    validate(resource)
    assert "restriction" not in resource


# -- datetimes ------------------------------------------------------------------------------------------------

ISO_WITH_ZONE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def test_datetimes_are_iso_with_a_timezone_in_utc(view: MakeView) -> None:
    oslo = timezone(timedelta(hours=1))
    resource = task_resource(
        view(created_at=datetime(2026, 11, 23, 9, 0, tzinfo=oslo), updated_at=datetime(2026, 11, 23, 11, 0, tzinfo=oslo),
             due_at=datetime(2026, 11, 24, 9, 0, tzinfo=oslo)),
        base_url=BASE,
    )
    validate(resource)
    stamps = [resource["authoredOn"], resource["lastModified"], resource["restriction"]["period"]["end"]]
    assert all(ISO_WITH_ZONE.match(s) for s in stamps), stamps
    assert stamps == ["2026-11-23T08:00:00+00:00", "2026-11-23T10:00:00+00:00", "2026-11-24T08:00:00+00:00"]


def test_naive_datetimes_are_refused(view: MakeView) -> None:
    with pytest.raises(ValueError, match="created_at"):
        view(created_at=datetime(2026, 11, 23, 8, 0))
    with pytest.raises(ValueError, match="due_at"):
        view(due_at=datetime(2026, 11, 24, 8, 0))


# -- priority and legal basis ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("urgency", "same_day", "priority"), [
    (None, False, "routine"), ("low", False, "routine"), ("medium", False, "urgent"), ("high", False, "asap"),
    ("high", True, "stat")])
def test_priority_rises_with_the_threat_level_the_task_was_sent_at(view: MakeView, urgency: str | None,
                                                                    same_day: bool, priority: str) -> None:
    # request-priority, in rising order: routine < urgent < asap < stat (the same day is the highest).
    resource = task_resource(view(urgency=urgency, same_day=same_day), base_url=BASE)
    assert validate(resource).priority == resource["priority"] == priority


@pytest.mark.parametrize("basis", ["avert_crime", "child_welfare_duty"])
def test_a_legal_basis_alone_does_not_make_a_task_urgent(view: MakeView, basis: str) -> None:
    assert task_resource(view(basis=basis, scope=()), base_url=BASE)["priority"] == "routine"


@pytest.mark.parametrize(("basis", "named"), [
    ("avert_crime", "Avvergingsplikt (straffeloven § 196)"),
    ("child_welfare_duty", "Opplysningsplikt til barnevernet (barnevernsloven § 13-2)"),
    ("duty_of_care", "Omsorgsplikt (en lov som ikke finnes § 1)")])  # a basis a definition adds: no code
def test_a_task_without_consent_notes_its_legal_basis_by_the_definitions_name(view: MakeView, basis: str,
                                                                             named: str) -> None:
    resource = task_resource(view(basis=basis, scope=(), basis_nb=named, basis_en="(English)"), base_url=BASE)
    validate(resource)
    assert resource["note"] == [{"text": f"Sendt uten samtykke. Hjemmel: {named}; legal-basis: {basis}."}]
    assert "input" not in resource, "nothing consented, nothing handed over"


# -- whom to call, and what the coordinator wrote --------------------------------------------------------------


def test_the_coordinators_work_phone_is_on_a_contained_practitioner_role_the_requester_references(
        view: MakeView) -> None:
    resource = task_resource(view(coordinator="coordinator-1", phone="+47 099 00 001"), base_url=BASE)
    task = validate(resource)
    (role,) = task.contained or []
    assert role.get_resource_type() == "PractitionerRole"
    assert resource["requester"] == {"display": "Bergen krisesenter, vakttelefon (coordinator-1)",
                                     "reference": "#coordinator"}
    assert resource["contained"] == [{"resourceType": "PractitionerRole", "id": "coordinator",
                                      "telecom": [{"system": "phone", "value": "+47 099 00 001", "use": "work"}],
                                      "practitioner": {"display": "coordinator-1"}}]


def test_without_a_phone_nothing_is_contained(view: MakeView) -> None:
    resource = task_resource(view(coordinator="coordinator-1"), base_url=BASE)
    validate(resource)
    assert "contained" not in resource and resource["requester"] == {
        "display": "Bergen krisesenter, vakttelefon (coordinator-1)"}


def test_the_coordinators_note_and_the_agencys_answer_are_annotations(view: MakeView) -> None:
    resource = task_resource(view(note="Ring før kl. 15", coordinator="coordinator-1", status="declined",
                                  answered_by="politi-1", reply="ikke vårt distrikt"), base_url=BASE)
    validate(resource)
    assert resource["note"] == [
        {"text": "Ring før kl. 15", "time": "2026-11-23T08:00:00+00:00", "authorString": "coordinator-1"},
        {"text": "ikke vårt distrikt", "time": "2026-11-23T10:00:00+00:00", "authorString": "politi-1"}]


def test_the_safe_contact_channel_is_an_input_only_when_given(view: MakeView) -> None:
    assert ("safe-contact", "+47 400 00 000") in inputs(task_resource(view(safe_contact="+47 400 00 000"),
                                                                      base_url=BASE))
    assert all(kind != "safe-contact" for kind, _ in inputs(task_resource(view(), base_url=BASE)))
    with pytest.raises(ValueError, match="contact"):
        view(scope=("name", "threat_assessment"), safe_contact="+47 400 00 000")


# -- only what the handover needs -----------------------------------------------------------------------------


def test_the_name_appears_only_when_person_name_is_given(view: MakeView) -> None:
    without = task_resource(view(), base_url=BASE)
    with_name = task_resource(view(person_name=NAME), base_url=BASE)
    validate(without), validate(with_name)
    assert NAME not in json.dumps(without, ensure_ascii=False)
    assert ("name", NAME) not in inputs(without)
    assert inputs(with_name)[-1] == ("name", NAME)
    assert json.dumps(with_name, ensure_ascii=False).count(NAME) == 1


def test_a_name_without_name_in_the_consent_scope_is_refused(view: MakeView) -> None:
    with pytest.raises(ValueError, match="scope"):
        view(scope=("contact", "threat_assessment"), person_name=NAME)
    with pytest.raises(ValueError, match="scope"):
        view(basis="avert_crime", scope=(), person_name=NAME)


def test_the_view_has_no_field_for_an_address_a_birth_date_or_free_text() -> None:
    # Free text a partner sees is the crisis centre's own to it (the coordinator's note at the handover) and the
    # agency's own reply, and a phone the coordinator's work phone: nothing of the person's record but the name and
    # the safe contact channel, each under its consent.
    ours = {"note", "reply", "phone"}
    names = {f.name for f in dataclasses.fields(PartnerTaskView)} - ours
    assert not {n for n in names if re.search(r"address|birth|born|note|text|comment|reason|phone", n)}


@pytest.mark.parametrize("status", HANDOVER_STATUSES)
@pytest.mark.parametrize("basis", ["consent", "avert_crime"])
def test_the_address_and_birth_date_never_leave_the_crisis_centre(view: MakeView, status: str, basis: str) -> None:
    # Build the view the way the API would from the person record, sharing the name only under consent.
    consented = basis == "consent"
    task = view(status=status, basis=basis, scope=("name", "contact") if consented else (),
                person_name=PERSON["name"] if consented else None)
    resource = task_resource(task, base_url=BASE)
    validate(resource)
    text = json.dumps(resource, ensure_ascii=False)
    for secret in (ADDRESS, "Storgata", "0184", BIRTH_DATE, PERSON["phone"]):
        assert secret not in text
    assert (NAME in text) is consented


def test_every_string_in_the_resource_comes_from_the_view_or_a_fixed_vocabulary(view: MakeView) -> None:
    task = view(person_name=NAME, safe_contact="+47 400 00 000", note="Ring før kl. 15", coordinator="coordinator-1",
                phone="+47 099 00 001", urgency="high", same_day=True)
    resource = task_resource(task, base_url=BASE)
    from_view = {str(v) for v in dataclasses.astuple(task) if isinstance(v, (str, uuid.UUID))} | set(task.scope)
    vocabulary = {"Task", "order", "stat", "consent-scope", "name", "safe-contact", *FHIR_STATUS.values(),
                  "PractitionerRole", "coordinator", "#coordinator", "phone", "work",
                  *(f"{BASE}/fhir/{s}" for s in ("task-id", "case-reference", "checkpoint", "agency")),
                  "2026-11-23T08:00:00+00:00", "2026-11-23T10:00:00+00:00", "2026-11-24T08:00:00+00:00"}
    assert set(strings(resource)) <= from_view | vocabulary
    assert task.title_en not in set(strings(resource)), "one language: bokmål"


# -- built from a real handover task --------------------------------------------------------------------------


def from_handover(case: Case, definition: PathwayDefinition, task: HandoverTask, *, contact: str,
                  person_name: str | None) -> PartnerTaskView:
    checkpoint = definition.checkpoint[task.code]
    return PartnerTaskView(
        id=task.id, case_reference=case.reference, code=task.code, title_nb=checkpoint.name.nb,
        title_en=checkpoint.name.en, agency=task.agency, agency_name=definition.agencies[task.agency].nb,
        status=task.status, basis=task.basis, scope=task.scope, due_at=task.due_at, created_at=task.created_at,
        updated_at=task.updated_at, contact=contact,
        person_name=person_name if "name" in task.scope else None,
    )


def test_a_handover_task_of_a_case_becomes_a_valid_task(
    case: Case, definition: PathwayDefinition, hours: Callable[[float], datetime]
) -> None:
    actor = "coordinator-1"
    case.execute(CompleteStep("K1"), actor=actor, at=hours(1))
    case.execute(CompleteStep("K2"), actor=actor, at=hours(1))
    case.execute(Advance("start_support"), actor=actor, at=hours(1.5))
    case.execute(RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True), actor=actor, at=hours(3))
    task_id = case.execute(CreateHandover("K6"), actor=actor, at=hours(4))
    case.execute(UpdateHandover(task_id, "accepted"), actor="police-contact", at=hours(5))
    (handover,) = case.handovers

    resource = task_resource(from_handover(case, definition, handover, contact=actor, person_name=NAME), base_url=BASE)
    task = validate(resource)
    assert task.status == "accepted" and resource["priority"] == "routine"
    assert resource["identifier"][1]["value"] == case.reference
    assert resource["code"]["coding"][0]["display"] == "Overlevering til politiet"
    assert resource["owner"]["display"] == "Politiet"
    assert resource["restriction"]["period"]["end"] == handover.due_at.isoformat()  # type: ignore[union-attr]
    assert ("name", NAME) in inputs(resource)
