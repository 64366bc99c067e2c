"""The people who work with Forløp: coordinators and managers of a unit, partner contacts of an agency, admins; and
what an administrator changes in their accounts (role and placement, work phone, deactivation, password), each
change in the access log in its own transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from pathway.accounts import ROLES, hash_password
from pathway.errors import DomainError, InvalidArgument, NotFound
from pathway.store.access import access_writer
from pathway.store.engine import WRITE
from pathway.store.tables import calendar_feed_t, token_t, user_t
from pathway.views import users as views
from pathway.views.access import target_reason

if TYPE_CHECKING:
    from pathway.settings import Settings
    from pathway.store.catalog import DefinitionCatalog

PLACED_IN_UNIT = ("coordinator", "manager")
MIN_PASSWORD = 8
MAX_PHONE = 32  # user_account.phone
# A work phone as people write one: digits and spaces, perhaps a leading +; 5 to 15 digits (E.164's most).
_PHONE = re.compile(r"\+?[0-9][0-9 ]*")


class AccountRefused(DomainError):
    """An administrator's change to an account broke a rule: ``rule`` is ``self`` (deactivating themself),
    ``last_admin`` (it would leave no active administrator) or ``provider_account`` (a password for an account of an
    identity provider)."""

    def __init__(self, rule: str, message: str, **params: Any) -> None:
        self.rule = rule
        super().__init__(message, **params)


@dataclass(frozen=True, slots=True)
class Choices:
    """Where a user can belong: the configured units and the agencies of the registered pathways."""

    units: Collection[str]
    agencies: Collection[str]

    @classmethod
    def of(cls, settings: Settings, catalog: DefinitionCatalog) -> Choices:
        """The lists every entry point checks against (``views.users.units`` and ``views.users.agencies``)."""
        return cls(units=views.units(settings), agencies=tuple(views.agencies(catalog)))


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change to an account, as the access log names them, and from where (``cli`` for the CLI)."""

    username: str
    role: str
    client: str | None


def placement(role: str, unit: str | None, agency: str | None,
              choices: Choices | None) -> tuple[str | None, str | None]:
    """The one rule of where a user belongs: coordinators and managers to a unit, partner contacts to an agency,
    administrators to neither; from the lists when ``choices`` are given. Returns the (unit, agency) to store: what
    the role does not use is not kept."""
    if role not in ROLES:
        raise InvalidArgument("role", "must be one of {choices}", choices=list(ROLES))
    if role in PLACED_IN_UNIT:
        if not unit:
            raise InvalidArgument("unit", "a {role} belongs to a unit", role=role)
        if choices is not None and unit not in choices.units:
            raise InvalidArgument("unit", "must be one of {choices}", choices=list(choices.units))
        return unit, None
    if role == "partner":
        if not agency:
            raise InvalidArgument("agency", "a partner contact belongs to an agency")
        if choices is not None and agency not in choices.agencies:
            raise InvalidArgument("agency", "must be one of {choices}", choices=list(choices.agencies))
        return None, agency
    return None, None


def valid_username(username: str) -> bool:
    """The one rule for an account's name: 1 to 64 letters, digits, '.', '-' or '_'."""
    return 0 < len(username) <= 64 and username.replace("-", "").replace("_", "").replace(".", "").isalnum()


def add_user(*, engine: sa.Engine, username: str, role: str, unit: str | None = None, agency: str | None = None,
             language: str = "nb", email: str | None = None, webhook_url: str | None = None,
             choices: Choices | None = None, password: str | None = None, by: Actor | None = None,
             phone: str | None = None) -> None:
    """Create a user. Coordinators and managers belong to a unit, partner contacts to an agency (from ``choices``
    when given); ``phone`` is a work phone partners may call. With ``by``, the creation is in the access log
    (``user.add``), in the same transaction."""
    unit, agency = placement(role, unit, agency, choices)
    phone = phone_number(phone)
    if language not in ("nb", "en"):
        raise InvalidArgument("language", "nb or en")
    if not valid_username(username):
        raise InvalidArgument("username", "1–64 letters, digits, '.', '-' or '_'")
    hashed = _hashed(password) if password is not None else None
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.execute(sa.select(user_t.c.id).where(user_t.c.username == username)).first() is not None:
            raise InvalidArgument("username", "'{username}' exists already", username=username)
        conn.execute(sa.insert(user_t).values(
            id=uuid.uuid4(), username=username, role=role, unit=unit, agency=agency, language=language,
            email=email, webhook_url=webhook_url, phone=phone, active=True, created_at=datetime.now(timezone.utc),
            password_hash=hashed))
        if by is not None:
            _logged(conn, by, "user.add", target_reason(username, ("role", role), ("unit", unit), ("agency", agency)))


def phone_number(value: str | None) -> str | None:
    """A work phone as stored: spaces tidied, None for none; anything but digits, spaces and a leading + (or too few
    or too many digits) is refused."""
    phone = " ".join((value or "").split())
    if not phone:
        return None
    digits = sum(c.isdigit() for c in phone)
    if len(phone) > MAX_PHONE or not _PHONE.fullmatch(phone) or not 5 <= digits <= 15:
        raise InvalidArgument("phone", "a phone number: digits and spaces, perhaps starting with +")
    return phone


# -- an administrator's changes: one command each, one handler for all ------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeUser:
    """Give a user another role, unit or agency (from the lists): it takes effect at their next request."""

    action: ClassVar[str] = "user.update"
    username: str
    role: str
    unit: str | None = None
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class Deactivate:
    """A leaver: every session and token of the user ends at once, and signing in is refused."""

    action: ClassVar[str] = "user.deactivate"
    username: str


@dataclass(frozen=True, slots=True)
class Reactivate:
    """Let a deactivated user sign in again (their old sessions and tokens stay ended)."""

    action: ClassVar[str] = "user.reactivate"
    username: str


@dataclass(frozen=True, slots=True)
class ResetPassword:
    """Give a user a new password: the old one no longer signs in, and their sessions and tokens end."""

    action: ClassVar[str] = "user.password"
    username: str
    password: str

    def __repr__(self) -> str:  # never the password, not even in a traceback
        return f"ResetPassword(username={self.username!r})"


@dataclass(frozen=True, slots=True)
class SetPhone:
    """Give a user a work phone that partner agencies may call about a case (None: take it away)."""

    action: ClassVar[str] = "user.phone"
    username: str
    phone: str | None


UserCommand = ChangeUser | Deactivate | Reactivate | ResetPassword | SetPhone


def administer(command: UserCommand, *, engine: sa.Engine, by: Actor, choices: Choices,
               now: datetime | None = None, then: Sequence[UserCommand] = ()) -> None:
    """Carry out an administrator's change to an account, and log it (``command.action``, the user named in the
    reason, never the password) in the same transaction; ``then`` carries out more in it (all, or none). An
    administrator cannot deactivate themself, and no change may leave no active administrator."""
    now = now or datetime.now(timezone.utc)
    # A password is hashed (slow) and a phone checked before the transaction: nothing is locked meanwhile.
    prepared = [(each, _hashed(each.password) if isinstance(each, ResetPassword) else None,
                 phone_number(each.phone) if isinstance(each, SetPhone) else None) for each in (command, *then)]
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        for each, hashed, phone in prepared:
            _carry_out(conn, each, hashed=hashed, phone=phone, by=by, choices=choices, now=now)


def _carry_out(conn: sa.Connection, command: UserCommand, *, hashed: str | None, phone: str | None, by: Actor,
               choices: Choices, now: datetime) -> None:
    # The active admins are locked first (PostgreSQL; SQLite's writer holds the database), so that two admins
    # removing each other at once cannot both see the other one left.
    admins = set(conn.execute(sa.select(user_t.c.username).where(
        user_t.c.role == "admin", user_t.c.active.is_(True)).with_for_update()).scalars())
    target = conn.execute(sa.select(user_t).where(user_t.c.username == command.username)
                          .with_for_update()).first()
    if target is None:
        raise NotFound("user", command.username)
    changes: tuple[tuple[str, object], ...] = ()
    values: dict[str, object] = {}
    if isinstance(command, ChangeUser):
        unit, agency = placement(command.role, command.unit, command.agency, choices)
        if target.username in admins and command.role != "admin":
            _keep_an_admin(admins, target.username)
        values = dict(role=command.role, unit=unit, agency=agency)
        changes = (("role", command.role), ("unit", unit), ("agency", agency))
    elif isinstance(command, SetPhone):
        if phone == target.phone:  # the page sends the phone with every change: unchanged, nothing to log
            return
        values = dict(phone=phone)
        changes = (("phone", phone.replace(" ", "") if phone else "none"),)
    elif isinstance(command, Deactivate):
        if target.username == by.username:
            raise AccountRefused("self", "'{username}' cannot deactivate themself; another administrator can",
                                 username=by.username)
        if target.username in admins:
            _keep_an_admin(admins, target.username)
        values = dict(active=False)
        end_sessions(conn, target, now)
    elif isinstance(command, Reactivate):
        values = dict(active=True, failed_logins=0, locked_until=None)
    else:
        if target.idp is not None:  # a password would let them past the provider's groups
            raise AccountRefused("provider_account", "'{username}' signs in through an identity provider and has no "
                                 "password", username=target.username)
        values = dict(password_hash=hashed, failed_logins=0, locked_until=None)
        end_sessions(conn, target, now)
    conn.execute(sa.update(user_t).where(user_t.c.id == target.id).values(**values))
    _logged(conn, by, command.action, target_reason(target.username, *changes))


def _keep_an_admin(admins: set[str], leaving: str) -> None:
    if not admins - {leaving}:
        raise AccountRefused("last_admin", "'{username}' is the last active administrator; make another one first",
                             username=leaving)


def end_sessions(conn: sa.Connection, target: Any, now: datetime) -> None:
    """Revoke every live credential of a user: API sessions, page sessions, personal tokens and calendar-feed
    addresses alike (a reactivated user starts over; none of them comes back)."""
    conn.execute(sa.update(token_t).where(token_t.c.user_id == target.id, token_t.c.revoked_at.is_(None))
                 .values(revoked_at=now))
    conn.execute(sa.update(calendar_feed_t).where(calendar_feed_t.c.username == target.username,
                                                  calendar_feed_t.c.revoked_at.is_(None)).values(revoked_at=now))


def _hashed(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidArgument("password", "at least {n} characters", n=MIN_PASSWORD)
    if len(password) > 1024:
        raise InvalidArgument("password", "at most 1024 characters")
    return hash_password(password)


def _logged(conn: sa.Connection, by: Actor, action: str, reason: str) -> None:
    access_writer(username=by.username, role=by.role, action=action, client=by.client, reason=reason)(conn)
