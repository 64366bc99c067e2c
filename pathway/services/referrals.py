"""Police referrals as use cases: a police contact sends one to a unit, a coordinator of the unit accepts it (which
opens a case whose clock starts when the referral was received) or declines it with a reason that goes back to the
police; the unit's queue and the sender's status list are read here too.

Who may do which is the access policy's (``pathway.policy.may_refer``, ``referrals_sent_by``, ``referral_queue``),
asked by the API and the pages before they call here. The person's name, phone and what happened are encrypted and
bound to the referral's id (as the person record is bound to its case); the notices say only that there is a referral
(``notifications.notices``). The police see a referral's status and a decline's reason, never the case it opened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from notifications.notices import referral_declined_notices, referral_received_notices
from notifications.routing import Candidate
from pathway.case import Case
from pathway.case.events import Sealer
from pathway.case.commands import RecordRisk
from pathway.crypto import KeyRing
from pathway.definition import RISK_LEVELS
from pathway.errors import N_, ConcurrencyConflict, InvalidArgument, NotFound, OperationNotAllowed
from pathway.people import PersonRecord, seal_record, unseal_record
from pathway.services.cases import open_case
from pathway.services.people import rotate_table
from pathway.store.casekeys import key_of, keys_of
from pathway.store.engine import WRITE
from pathway.store.inbox import write_notices
from pathway.store.tables import referral_t, user_t
from pathway.store.uow import UnitOfWork

RECEIVED, ACCEPTED, DECLINED = "received", "accepted", "declined"
STATUSES = (RECEIVED, ACCEPTED, DECLINED)
CONTACT_CHANNEL = "police"  # how first contact came, on the case an accepted referral opens
CONDITION = "police_referral"  # the definition's condition that brings in K15 (first contact after a referral)
DECIDED = N_("the referral has been decided already")

Writer = Callable[[sa.Connection], None]


class ReferralContent(BaseModel):
    """What a referral says of the person: encrypted at rest, never logged, never in a notice or an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    what_happened: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


@dataclass(frozen=True, slots=True)
class QueuedReferral:
    """A referral as its unit's coordinators read it (decrypted)."""

    id: uuid.UUID
    unit: str
    sent_by: str
    received_at: datetime
    status: str
    risk: str
    contact_agreed: bool
    version: int
    content: ReferralContent


@dataclass(frozen=True, slots=True)
class SentReferral:
    """A referral as its sender follows it: the status and a decline's reason; nothing of the case, nothing
    decrypted."""

    id: uuid.UUID
    unit: str
    received_at: datetime
    status: str
    decided_at: datetime | None
    decline_reason: str | None


def content_of(name: str, phone: str, what_happened: str) -> ReferralContent:
    """The content, checked; a bad field is an ``InvalidArgument`` naming it, never repeating what was typed."""
    try:
        return ReferralContent(name=name, phone=phone, what_happened=what_happened)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "referral"
        raise InvalidArgument(field, "required, at most {limit} characters",
                              limit=ReferralContent.model_fields[field].metadata[0].max_length
                              if field in ReferralContent.model_fields else 2000) from None


def send(*, engine: sa.Engine, keys: KeyRing, units: Sequence[str], sender: str, agency: str, unit: str,
         content: ReferralContent, risk: str, contact_agreed: bool, public_url: str, at: datetime | None = None,
         also: Callable[[sa.Connection, uuid.UUID], None] | None = None) -> uuid.UUID:
    """Record a referral to ``unit`` (received now) and tell the unit's coordinators, in one transaction; its id.
    ``also`` writes more in it (the access-log row, given the new id)."""
    at = at or datetime.now(timezone.utc)
    if unit not in units:
        raise InvalidArgument("unit", "not a unit of this service (choose one of {choices})", choices=list(units))
    if risk not in RISK_LEVELS:
        raise InvalidArgument("risk", "must be one of {choices}", choices=list(RISK_LEVELS))
    referral_id = uuid.uuid4()
    blob = keys.encrypt_json(content.model_dump(mode="json"), aad=referral_id.bytes)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.insert(referral_t).values(
            id=referral_id, unit=unit, agency=agency, sent_by=sender, received_at=at, status=RECEIVED, risk=risk,
            contact_agreed=contact_agreed, key_id=keys.key_id_of(blob), ciphertext=blob, version=1))
        notices = referral_received_notices(unit=unit, received_at=at, public_url=public_url,
                                            candidates=_candidates(conn, role="coordinator", unit=unit))
        write_notices(conn, notices, key=referral_id, at=at)
        if also is not None:
            also(conn, referral_id)
    return referral_id


def queue(conn: sa.Connection, *, unit: str, keys: KeyRing, status: str | None = RECEIVED) -> list[QueuedReferral]:
    """The unit's referrals (those waiting, by default), oldest first, decrypted, in the caller's transaction: the
    caller has asked the policy (``referral_queue``) and logs each one read in the same transaction."""
    query = (sa.select(referral_t).where(referral_t.c.unit == unit, referral_t.c.ciphertext.is_not(None))  # not forgotten
             .order_by(referral_t.c.received_at, referral_t.c.id))
    if status is not None:
        query = query.where(referral_t.c.status == status)
    rows = conn.execute(query).all()
    sealers = keys_of(conn, [r.case_id for r in rows if r.case_id is not None], keys)
    return [_queued(row, keys, sealers.get(row.case_id)) for row in rows]


def one(conn: sa.Connection, *, referral_id: uuid.UUID, unit: str, keys: KeyRing) -> QueuedReferral:
    """One referral of the unit, decrypted; ``NotFound`` for any other (another unit's is as if it were not there)."""
    row = conn.execute(sa.select(referral_t).where(referral_t.c.id == referral_id, referral_t.c.unit == unit,
                                                   referral_t.c.ciphertext.is_not(None))).first()
    if row is None:
        raise NotFound("referral", referral_id)
    return _queued(row, keys, key_of(conn, row.case_id, keys) if row.case_id is not None else None)


def sent_by(conn: sa.Connection, *, username: str) -> list[SentReferral]:
    """The referrals a police contact sent, newest first: status and a decline's reason only (``case_id`` is never
    selected)."""
    rows = conn.execute(sa.select(referral_t.c.id, referral_t.c.unit, referral_t.c.received_at, referral_t.c.status,
                                  referral_t.c.decided_at, referral_t.c.decline_reason)
                        .where(referral_t.c.sent_by == username)
                        .order_by(referral_t.c.received_at.desc(), referral_t.c.id))
    return [SentReferral(r.id, r.unit, r.received_at, r.status, r.decided_at, r.decline_reason) for r in rows]


def accept(*, uow: UnitOfWork, referral_id: uuid.UUID, unit: str, expected_version: int | None, actor: str,
           keys: KeyRing, index_key: str, reference_prefix: str, pathway_id: str, at: datetime | None = None,
           channel: str | None = None, also: Callable[[sa.Connection, Case], None] | None = None) -> Case:
    """Accept a referral of ``unit``: open its case (first contact = when the referral was received, channel
    "police", the person's name and phone, the risk the police gave, the ``police_referral`` condition) and mark the
    referral accepted, in one transaction. A referral decided already (or a stale version) changes nothing."""
    at = at or datetime.now(timezone.utc)
    with uow.engine.connect() as conn:
        referral = one(conn, referral_id=referral_id, unit=unit, keys=keys)
    _undecided(referral, "accept", expected_version)
    person = PersonRecord(name=referral.content.name, safe_contact=referral.content.phone)

    def decide(conn: sa.Connection, case: Case) -> None:
        case.execute(RecordRisk(referral.risk, reason="threat level given by the police in the referral"),
                     actor=actor, at=at, channel=channel)
        uow.cases.save(case)
        _decide(conn, referral, ACCEPTED, actor=actor, at=at, case_id=case.id)
        # From now on the referral is the case's: its content is sealed under the case's key, and so erased with it
        # in every backup too (under the master key, only the live database would forget it).
        key_id, blob = seal_record(referral.content.model_dump(mode="json"), case_id=referral.id, keys=keys,
                                   sealer=case.sealer)
        conn.execute(sa.update(referral_t).where(referral_t.c.id == referral.id).values(key_id=key_id,
                                                                                      ciphertext=blob))
        if also is not None:
            also(conn, case)

    return open_case(
        uow=uow, pathway_id=pathway_id, unit=unit, first_contact_at=referral.received_at, actor=actor, keys=keys,
        index_key=index_key, reference_prefix=reference_prefix, person=person, conditions=[CONDITION],
        # The clock starts when the referral was received; the reason for backdating carries no personal data.
        reason=f"police referral received {referral.received_at.isoformat()}", at=at, also=decide, channel=channel,
        contact_channel=CONTACT_CHANNEL)


def decline(*, engine: sa.Engine, keys: KeyRing, referral_id: uuid.UUID, unit: str, expected_version: int | None,
            actor: str, reason: str, public_url: str, at: datetime | None = None, also: Writer | None = None) -> None:
    """Decline a referral of ``unit`` with a reason, which its sender reads (and is told of, without it); a
    referral decided already (or a stale version) changes nothing."""
    at = at or datetime.now(timezone.utc)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidArgument("reason", "a reason is required: it goes back to the police")
    if len(reason) > 2000:
        raise InvalidArgument("reason", "at most {limit} characters", limit=2000)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        referral = one(conn, referral_id=referral_id, unit=unit, keys=keys)
        _undecided(referral, "decline", expected_version)
        _decide(conn, referral, DECLINED, actor=actor, at=at, reason=reason)
        notices = referral_declined_notices(sender=referral.sent_by, unit=unit, decided_at=at, public_url=public_url,
                                            candidates=_candidates(conn, username=referral.sent_by))
        write_notices(conn, notices, key=uuid.uuid5(referral_id, DECLINED), at=at)
        if also is not None:
            also(conn)


def _undecided(referral: QueuedReferral, operation: str, expected_version: int | None) -> None:
    if referral.status != RECEIVED:
        raise OperationNotAllowed(operation, phase=referral.status, allowed=[], detail=DECIDED)
    if expected_version is not None and expected_version != referral.version:
        raise ConcurrencyConflict(str(referral.id), expected_version, referral.version)


def _decide(conn: sa.Connection, referral: QueuedReferral, status: str, *, actor: str, at: datetime,
            reason: str | None = None, case_id: uuid.UUID | None = None) -> None:
    """Mark the referral decided, only if nobody decided it since it was read (else nothing of the transaction
    stays: the case it would have opened neither)."""
    done = conn.execute(sa.update(referral_t).where(
        referral_t.c.id == referral.id, referral_t.c.status == RECEIVED, referral_t.c.version == referral.version,
    ).values(status=status, decided_by=actor, decided_at=at, decline_reason=reason, case_id=case_id,
             version=referral.version + 1)).rowcount
    if done != 1:
        now = conn.execute(sa.select(referral_t.c.status).where(referral_t.c.id == referral.id)).scalar()
        raise OperationNotAllowed("accept" if status == ACCEPTED else "decline", phase=now or status, allowed=[],
                                  detail=DECIDED)


def _queued(row: sa.Row, keys: KeyRing, sealer: Sealer | None) -> QueuedReferral:  # type: ignore[type-arg]
    """``sealer``: the key of the case an accepted referral opened (its content is sealed under it)."""
    content = ReferralContent.model_validate(unseal_record(row.ciphertext, case_id=row.id, keys=keys, sealer=sealer))
    return QueuedReferral(row.id, row.unit, row.sent_by, row.received_at, row.status, row.risk,
                          bool(row.contact_agreed), row.version, content)


def _candidates(conn: sa.Connection, *, role: str | None = None, unit: str | None = None,
                username: str | None = None) -> list[Candidate]:
    query = sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.agency, user_t.c.email,
                      user_t.c.webhook_url).where(user_t.c.active.is_(True))
    if role is not None:
        query = query.where(user_t.c.role == role, user_t.c.unit == unit)
    if username is not None:
        query = query.where(user_t.c.username == username)
    return [Candidate(username=u.username, role=u.role, unit=u.unit, agency=u.agency, email=u.email,
                      webhook_url=u.webhook_url) for u in conn.execute(query)]


def rotate_referral_keys(*, engine: sa.Engine, keys: KeyRing, batch: int = 500) -> int:
    """Re-encrypt every referral not under the active key (as person records are), so that an old key can leave the
    ring; returns how many were rewritten."""
    return rotate_table(engine=engine, keys=keys, table=referral_t, key=referral_t.c.id, batch=batch)
