"""One settings object, read from the environment (prefix ``FORLOP_``; ``DATABASE_URL`` also works)."""

from __future__ import annotations

import os
import re
import stat
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

# Well-known keys for development, demo and tests only: refused in production.
DEV_ENCRYPTION_KEYS = "dev:ZGV2LW9ubHktZGV2LW9ubHktZGV2LW9ubHktZGV2LW8="
DEV_INDEX_KEY = "ZGV2LWluZGV4LWtleS1kZXYtaW5kZXgta2V5LWRldi0="
DEV_WEBHOOK_SECRET = "dev-webhook-secret"
ROOT = Path(__file__).resolve().parent.parent
UNIT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a unit's name, as FORLOP_UNITS lists it


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORLOP_", extra="ignore")

    env: Literal["development", "demo", "test", "production"] = "development"
    database_url: str = Field(
        default="sqlite:///forlop.db", validation_alias=AliasChoices("FORLOP_DATABASE_URL", "DATABASE_URL")
    )
    definitions_dir: Path = ROOT / "definitions"
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    index_key: str = DEV_INDEX_KEY
    reference_prefix: str = Field(default="BGO", pattern=r"^[A-Z]{2,8}$")
    # The pathway a case opens on when none is named (the API, the pages, the CLI and the demo alike).
    default_pathway: str = Field(default="krisesenter", pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    # The units a coordinator or manager can belong to (FORLOP_UNITS, comma-separated): the administrator's forms,
    # the API, the CLI and the demo choose from these.
    units: Annotated[tuple[str, ...], NoDecode] = ("bergen-sentrum", "bergen-nord", "askoy", "voss")
    # What the pages call a unit (FORLOP_UNIT_NAMES, "bergen-sentrum=Bergen sentrum,askoy=Askøy"): a proper name, the
    # same in every language; a unit without one is shown by its code.
    unit_names: Annotated[dict[str, str], NoDecode] = {
        "bergen-sentrum": "Bergen sentrum", "bergen-nord": "Bergen nord", "askoy": "Askøy", "voss": "Voss"}
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL"
    db_pool_size: int = Field(default=10, ge=1, le=100)  # per process; also the requests a worker runs at once
    db_max_overflow: int = Field(default=10, ge=0, le=100)  # extra connections opened under a burst, then closed
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # wait for a free connection, then 503
    db_connect_timeout_seconds: int = Field(default=5, ge=2, le=300)  # PostgreSQL: give up connecting after this
    db_statement_timeout_seconds: float = Field(default=30.0, ge=0, le=3600)  # PostgreSQL, the API only; 0: none
    shutdown_grace_seconds: int = Field(default=30, ge=1, le=3600)  # SIGTERM: in-flight requests get this long
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = Field(default="http://127.0.0.1:8000", description="base of the links in notifications")
    web_idle_minutes: int = Field(default=30, ge=1, le=480)  # a browser session ends after this long unused
    # Failed sign-in attempts (the API's token endpoint and the sign-in page together; a success is not counted),
    # counted in the database for every process: per client address and per account name, each in a window of this
    # many minutes; beyond: 429 until the window ends.
    login_attempts_per_client: int = Field(default=20, ge=1, le=100_000)
    login_attempts_per_name: int = Field(default=10, ge=1, le=100_000)
    login_window_minutes: int = Field(default=5, ge=1, le=1440)
    personal_token_max_days: int = Field(default=90, ge=1, le=365)  # the longest a personal API token lives
    # Identity providers (OpenID Connect) to sign in with: a YAML file naming each, its client and which of its
    # groups give which role (README, "Signing in with the municipality's identity provider"). None: passwords only.
    oidc_config: Path | None = None
    # Sign-in with a user name and password (the pages and the API's token endpoint); turn it off in production once
    # a provider is configured (FORLOP_PASSWORD_LOGIN=false).
    password_login: bool = True
    report_target_share: float = Field(default=0.8, gt=0, le=1)  # the target line of the timeliness charts
    # The default timeliness report is computed in the background this often and answered from while younger
    # than twice this; 0: always computed on request.
    report_snapshot_minutes: int = Field(default=15, ge=0, le=1440)
    # Retention: a closed case is erased (its case key destroyed, its person and child records deleted) this many days
    # after closure, unless on legal hold. GDPR art. 5(1)(e) (storage limitation) asks for a limit; the default, five
    # years, outlasts the limitation period of claims (foreldelsesloven § 9: three years from knowledge) and a
    # complaint to Statsforvalteren, and is never shorter than the three years a manager's report reaches back
    # (pathway.metrics.snapshots.YEARS_KEPT_FRESH), although erasure keeps every figure in any case. The municipality
    # sets its own from its bevarings- og kassasjonsplan.
    retention_days: int = Field(default=1826, ge=1, le=36_500)
    # Per unit (FORLOP_RETENTION_DAYS_BY_UNIT, "askoy=3650,voss=1096"): a unit's own period instead of the above.
    retention_days_by_unit: Annotated[dict[str, int], NoDecode] = {}

    # Reminders and delivery
    scheduler: Literal["embedded", "off"] = "embedded"  # "off" when `forlop scheduler` runs as its own process
    scan_interval_seconds: int = Field(default=60, ge=1, le=3600)
    dispatch_interval_seconds: int = Field(default=15, ge=1, le=3600)
    # When (Europe/Oslo wall clock, FORLOP_MANAGER_DIGEST_AT=07:00) a working day's digest of the steps past their
    # manager rung goes to each unit's managers: at the first scan from then on, once per unit and working day.
    manager_digest_at: time = time(7, 0)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_base_delay_seconds: int = Field(default=30, ge=1, le=86_400)
    outbox_lease_seconds: int = Field(default=300, ge=1, le=86_400)  # a claimed message is retried after this
    smtp_host: str | None = None  # no host: email is not sent (messages wait in the outbox)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "forlop@localhost"
    webhook_secret: str = DEV_WEBHOOK_SECRET
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("units", mode="before")
    @classmethod
    def _unit_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [u.strip() for u in value.split(",") if u.strip()]
        if isinstance(value, (list, tuple)):
            bad = [u for u in value if not isinstance(u, str) or not UNIT.fullmatch(u)]
            if bad or not value or len(set(value)) != len(value):
                raise ValueError("FORLOP_UNITS: one or more distinct unit names (a-z, 0-9, '-' or '_', at most 64), "
                                 "separated by commas")
        return value

    @field_validator("manager_digest_at")
    @classmethod
    def _oslo_wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("FORLOP_MANAGER_DIGEST_AT: a time of day in Oslo without an offset, e.g. 07:00")
        return value

    @field_validator("unit_names", mode="before")
    @classmethod
    def _unit_names(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [p.partition("=") for p in value.split(",") if p.strip()]
            if any(not sep or not UNIT.fullmatch(code.strip()) or not 0 < len(name.strip()) <= 80
                   for code, sep, name in pairs):
                raise ValueError("FORLOP_UNIT_NAMES: unit=Name pairs separated by commas, e.g. "
                                 "'bergen-sentrum=Bergen sentrum,askoy=Askøy' (a name of 1 to 80 characters)")
            value = {code.strip(): name.strip() for code, _, name in pairs}
        return value

    @field_validator("retention_days_by_unit", mode="before")
    @classmethod
    def _retention_by_unit(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [p.partition("=") for p in value.split(",") if p.strip()]
            if any(not sep or not UNIT.fullmatch(code.strip()) or not days.strip().isdigit()
                   for code, sep, days in pairs):
                raise ValueError("FORLOP_RETENTION_DAYS_BY_UNIT: unit=days pairs separated by commas, e.g. "
                                 "'askoy=3650,voss=1096'")
            value = {code.strip(): int(days) for code, _, days in pairs}
        if isinstance(value, dict) and any(not isinstance(d, int) or not 1 <= d <= 36_500 for d in value.values()):
            raise ValueError("FORLOP_RETENTION_DAYS_BY_UNIT: each unit's period is 1 to 36500 days")
        return value

    def retention_days_of(self, unit: str) -> int:
        """How many days after closure a case of ``unit`` is erased."""
        return self.retention_days_by_unit.get(unit, self.retention_days)

    def unit_name(self, unit: str | None) -> str:
        return "" if unit is None else self.unit_names.get(unit, unit)

    @property
    def web_idle(self) -> timedelta:
        return timedelta(minutes=self.web_idle_minutes)

    @property
    def report_snapshot_max_age(self) -> timedelta | None:
        """How old a report snapshot may be and still be answered from; ``None``: snapshots are off."""
        return timedelta(minutes=2 * self.report_snapshot_minutes) if self.report_snapshot_minutes else None

    @model_validator(mode="after")
    def _retention_of_known_units(self) -> Settings:
        unknown = sorted(set(self.retention_days_by_unit) - set(self.units))
        if unknown:
            raise ValueError(f"FORLOP_RETENTION_DAYS_BY_UNIT names units that are not in FORLOP_UNITS: "
                             f"{', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_values(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.encryption_keys == DEV_ENCRYPTION_KEYS or "dev:" in self.encryption_keys:
            problems.append("FORLOP_ENCRYPTION_KEYS is the development key; generate one with `forlop keys new`")
        if self.webhook_secret == DEV_WEBHOOK_SECRET or len(self.webhook_secret) < 16:
            problems.append("FORLOP_WEBHOOK_SECRET is the development secret or shorter than 16 characters")
        if not self.password_login and self.oidc_config is None:
            problems.append("FORLOP_PASSWORD_LOGIN=false without FORLOP_OIDC_CONFIG: nobody could sign in")
        if self.index_key == DEV_INDEX_KEY:
            problems.append("FORLOP_INDEX_KEY is the development key; generate one with `forlop keys new`")
        url = make_url(self.database_url)
        if url.drivername.startswith("sqlite") and url.database:
            for path in (Path(url.database + suffix) for suffix in ("", "-wal", "-shm")):  # the log holds data too
                if path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    problems.append(f"the database file {path} can be read or written by others than its owner "
                                    "(chmod 600 it)")
        if problems:
            raise ValueError("unsafe settings for production: " + "; ".join(problems))
        return self


def get_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


def is_demo_allowed(settings: Settings) -> bool:
    return settings.env in ("development", "demo", "test") and os.environ.get("FORLOP_ALLOW_DEMO", "1") != "0"
