"""A partner agency's handover task as an HL7 FHIR R4 ``Task`` resource.

A partner agency (the police, NAV, child welfare, ...) sees only what the handover needs:
the pseudonymous case reference, which checkpoint is asked for, the deadline, and whom to
call at the crisis centre. :func:`task_resource` builds exactly that and nothing more: never
an address, a birth date or free text, and the person's name only when the consent's scope
includes ``"name"`` (enforced by :class:`PartnerTaskView` itself, the partner's view in
``pathway.views.tasks``). When the consent was narrowed or withdrawn after the handover, a
``note`` says what is no longer shared, with the time of the change.

Status mapping (Forløp -> FHIR ``task-status``)::

    requested -> requested
    accepted  -> accepted
    declined  -> rejected
    completed -> completed
    cancelled -> cancelled

FHIR's ``in-progress`` (and ``draft``, ``received``, ``ready``, ``on-hold``, ``failed``,
``entered-in-error``) are never produced: Forløp's handover tasks have no such states.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pathway.views.tasks import PartnerTaskView

__all__ = ["FHIR_STATUS", "LEGAL_BASIS_NOTES", "task_resource", "withheld_note"]

FHIR_STATUS: dict[str, str] = {
    "requested": "requested",
    "accepted": "accepted",
    "declined": "rejected",
    "completed": "completed",
    "cancelled": "cancelled",
}

# The note a partner sees when a task was handed over without consent.
LEGAL_BASIS_NOTES: dict[str, str] = {
    "avert_crime": "Legal basis: avert_crime (straffeloven § 196, avvergingsplikt); handed over without consent.",
    "child_welfare_duty": "Legal basis: child_welfare_duty (opplysningsplikt til barnevernet); handed over without consent.",
}


def _instant(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def _text_input(kind: str, value: str) -> dict[str, Any]:
    return {"type": {"text": kind}, "valueString": value}


def task_resource(task: PartnerTaskView, *, base_url: str) -> dict[str, Any]:
    """Return ``task`` as a JSON-able FHIR R4 ``Task`` resource; ``base_url`` roots the identifier systems."""
    base = base_url.rstrip("/")
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(task.id),
        "identifier": [
            {"system": f"{base}/fhir/task-id", "value": str(task.id)},
            {"system": f"{base}/fhir/case-reference", "value": task.case_reference},
        ],
        "status": FHIR_STATUS[task.status],
        "intent": "order",
        "priority": "urgent" if task.basis == "avert_crime" else "routine",
        "code": {"coding": [{"system": f"{base}/fhir/checkpoint", "code": task.code, "display": task.title_nb}]},
        "description": task.title_nb,
        "authoredOn": _instant(task.created_at),
        "lastModified": _instant(task.updated_at),
        "requester": {"display": task.contact},  # whom to call at the crisis centre
        "owner": {"display": task.agency_name, "identifier": {"system": f"{base}/fhir/agency", "value": task.agency}},
    }
    if task.due_at is not None:
        resource["restriction"] = {"period": {"end": _instant(task.due_at)}}
    inputs = [_text_input("consent-scope", code) for code in task.scope]
    if task.person_name is not None:
        inputs.append(_text_input("name", task.person_name))
    if inputs:
        resource["input"] = inputs
    notes = []
    if task.basis != "consent":
        notes.append({"text": LEGAL_BASIS_NOTES[task.basis]})
    if task.withheld:
        notes.append(withheld_note(task))
    if notes:
        resource["note"] = notes
    return resource


def withheld_note(task: PartnerTaskView) -> dict[str, Any]:
    """The note (an R4 Annotation) that the consent changed and what of the task's scope is no longer shared: in
    bokmål, as the rest of the resource, with the scope codes for a machine."""
    note: dict[str, Any] = {"text": f"Samtykket er endret: {', '.join(task.withheld_nb)} deles ikke lenger "
                                    f"(consent-scope withheld: {', '.join(task.withheld)})."}
    if task.consent_changed_at is not None:
        note["time"] = _instant(task.consent_changed_at)
    return note
