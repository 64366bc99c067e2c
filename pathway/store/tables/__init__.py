"""SQLModel tables, by concept. Alembic migrations target ``SQLModel.metadata``; the store reads and writes them as
SQLAlchemy Core tables (``case_t``, ``step_t``, ...).

Every timestamp is timezone-aware UTC (``UTCDateTime`` also makes SQLite give them back aware).
"""

from pathway.store.tables.access import (
    AccessLogRow,
    ApiTokenRow,
    BreakGlassRow,
    IdempotencyRow,
    OidcLoginRow,
    RateLimitRow,
    ReportSnapshotRow,
    UserRow,
)
from pathway.store.tables.cases import (
    FAR_DUE_SQL,
    CaseRow,
    ChildRecordRow,
    EventRow,
    HandoverRow,
    PathwayDefinitionRow,
    PersonRow,
    ReferenceCounter,
    StepRow,
)
from pathway.store.tables.columns import UTCDateTime, table_of
from pathway.store.tables.feeds import CalendarFeedRow
from pathway.store.tables.privacy import CaseKeyRow, ErasureLogRow, LegalHoldRow
from pathway.store.tables.referrals import ReferralRow
from pathway.store.tables.messages import NotificationRow, OutboxRow, OverdueDigestRow, ReminderRow

definition_t = table_of(PathwayDefinitionRow)
case_t = table_of(CaseRow)
step_t = table_of(StepRow)
handover_t = table_of(HandoverRow)
event_t = table_of(EventRow)
person_t = table_of(PersonRow)
child_t = table_of(ChildRecordRow)
counter_t = table_of(ReferenceCounter)
user_t = table_of(UserRow)
reminder_t = table_of(ReminderRow)
notification_t = table_of(NotificationRow)
outbox_t = table_of(OutboxRow)
digest_t = table_of(OverdueDigestRow)
token_t = table_of(ApiTokenRow)
access_t = table_of(AccessLogRow)
break_glass_t = table_of(BreakGlassRow)
idempotency_t = table_of(IdempotencyRow)
snapshot_t = table_of(ReportSnapshotRow)
rate_limit_t = table_of(RateLimitRow)
calendar_feed_t = table_of(CalendarFeedRow)
referral_t = table_of(ReferralRow)
case_key_t = table_of(CaseKeyRow)
legal_hold_t = table_of(LegalHoldRow)
erasure_t = table_of(ErasureLogRow)
oidc_login_t = table_of(OidcLoginRow)

__all__ = [
    "FAR_DUE_SQL", "UTCDateTime", "access_t", "break_glass_t", "case_t", "child_t", "counter_t", "definition_t", "digest_t", "event_t",
    "handover_t", "idempotency_t", "notification_t", "outbox_t", "person_t", "rate_limit_t", "reminder_t", "snapshot_t", "step_t",
    "calendar_feed_t", "referral_t", "token_t", "user_t", "case_key_t", "legal_hold_t", "erasure_t", "oidc_login_t",
]
