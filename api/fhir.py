"""A partner agency's handover task as an HL7 FHIR R4 ``Task`` resource.

A partner agency (the police, NAV, child welfare, ...) sees only what the handover needs:
the pseudonymous case reference, which checkpoint is asked for, the deadline, and whom to
call at the crisis centre (the coordinator, with their work phone on a contained
``PractitionerRole``), how urgent it is, and the coordinator's note to the agency.
:func:`task_resource` builds exactly that and nothing more: never an address or a birth date,
the person's name only when the consent's scope includes ``"name"`` and their safe contact
channel only when it includes ``"contact"`` (enforced by :class:`PartnerTaskView` itself, the
partner's view in ``pathway.views.tasks``). A task sent without consent notes its legal basis,
by the definition's name for it; when the consent was narrowed or withdrawn after the
handover, a ``note`` says what is no longer shared, with the time of the change.

Status mapping (Forløp -> FHIR ``task-status``)::

    requested -> requested
    accepted  -> accepted
    declined  -> rejected
    completed -> completed
    cancelled -> cancelled

FHIR's ``in-progress`` (and ``draft``, ``received``, ``ready``, ``on-hold``, ``failed``,
``entered-in-error``) are never produced: Forløp's handover tasks have no such states.

Priority (FHIR ``request-priority``, in rising order routine < urgent < asap < stat) from the
case's threat level when the task was sent::

    none, low -> routine
    medium    -> urgent
    high      -> asap
    same day  -> stat   (the checkpoint asks for action the same day at this level: K6 at high risk)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pathway.views.tasks import PartnerTaskView

__all__ = ["FHIR_PRIORITY", "FHIR_STATUS", "basis_note", "priority", "task_resource", "withheld_note"]

FHIR_STATUS: dict[str, str] = {
    "requested": "requested",
    "accepted": "accepted",
    "declined": "rejected",
    "completed": "completed",
    "cancelled": "cancelled",
}

# The case's threat level when the task was sent -> FHIR request-priority (no level recorded: routine).
FHIR_PRIORITY: dict[str | None, str] = {None: "routine", "low": "routine", "medium": "urgent", "high": "asap"}


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
        "priority": priority(task),
        "code": {"coding": [{"system": f"{base}/fhir/checkpoint", "code": task.code, "display": task.title_nb}]},
        "description": task.title_nb,
        "authoredOn": _instant(task.created_at),
        "lastModified": _instant(task.updated_at),
        "requester": {"display": task.contact},  # whom to call at the crisis centre
        "owner": {"display": task.agency_name, "identifier": {"system": f"{base}/fhir/agency", "value": task.agency}},
    }
    if task.phone is not None:  # the requester's work phone: R4's Reference has no telecom, a PractitionerRole has
        resource["contained"] = [_coordinator(task)]
        resource["requester"]["reference"] = "#coordinator"
    if task.due_at is not None:
        resource["restriction"] = {"period": {"end": _instant(task.due_at)}}
    inputs = [_text_input("consent-scope", code) for code in task.scope]
    if task.person_name is not None:
        inputs.append(_text_input("name", task.person_name))
    if task.safe_contact is not None:
        inputs.append(_text_input("safe-contact", task.safe_contact))
    if inputs:
        resource["input"] = inputs
    notes = []
    if task.note is not None:
        notes.append({"text": task.note, "time": _instant(task.created_at),
                      **({"authorString": task.coordinator} if task.coordinator else {})})
    if task.basis != "consent":
        notes.append(basis_note(task))
    if task.withheld:
        notes.append(withheld_note(task))
    if task.reply is not None:  # the agency's own answer: why it declined, or its note on completing
        notes.append({"text": task.reply, "time": _instant(task.updated_at),
                      **({"authorString": task.answered_by} if task.answered_by else {})})
    if notes:
        resource["note"] = notes
    return resource


def priority(task: PartnerTaskView) -> str:
    """The task's FHIR priority: by the threat level it was sent at, ``stat`` where that asks for the same day."""
    return "stat" if task.same_day else FHIR_PRIORITY.get(task.urgency, "routine")


def _coordinator(task: PartnerTaskView) -> dict[str, Any]:
    """The coordinator to call, as a contained R4 ``PractitionerRole``: who, and their work phone."""
    role: dict[str, Any] = {"resourceType": "PractitionerRole", "id": "coordinator",
                            "telecom": [{"system": "phone", "value": task.phone, "use": "work"}]}
    if task.coordinator is not None:
        role["practitioner"] = {"display": task.coordinator}
    return role


def basis_note(task: PartnerTaskView) -> dict[str, Any]:
    """The note (an R4 Annotation) that a task was sent without consent, and on which legal basis: by the
    definition's name for it (a basis added to the definition needs no code), in bokmål as the rest of the
    resource, with the basis's code for a machine."""
    return {"text": f"Sendt uten samtykke. Hjemmel: {task.basis_nb}; legal-basis: {task.basis}."}


def withheld_note(task: PartnerTaskView) -> dict[str, Any]:
    """The note (an R4 Annotation) that the consent changed and what of the task's scope is no longer shared: in
    bokmål, as the rest of the resource, with the scope codes for a machine."""
    note: dict[str, Any] = {"text": f"Samtykket er endret: {', '.join(task.withheld_nb)} deles ikke lenger "
                                    f"(consent-scope withheld: {', '.join(task.withheld)})."}
    if task.consent_changed_at is not None:
        note["time"] = _instant(task.consent_changed_at)
    return note
