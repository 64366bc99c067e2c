"""Wire everything in one place: settings → engine (migrated) → definition catalog → units of work."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import sqlalchemy as sa

from notifications.channels import EmailChannel, WebhookChannel
from pathway.crypto import KeyRing
from pathway.identity import Identity, load_config
from pathway.services.users import Choices
from pathway.settings import Settings, get_settings
from pathway.store.catalog import DefinitionCatalog
from pathway.store.engine import create_engine
from pathway.store.migrate import upgrade
from pathway.store.uow import UnitOfWork


@dataclass
class Forlop:
    """The wired application core, shared by the CLI, the server and the scheduler."""

    settings: Settings
    engine: sa.Engine
    catalog: DefinitionCatalog

    def uow(self, *, read_only: bool = False, snapshot: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, self.catalog, read_only=read_only, snapshot=snapshot, keys=self.keys)

    @cached_property
    def keys(self) -> KeyRing:
        return KeyRing.parse(self.settings.encryption_keys)

    @cached_property
    def identity(self) -> Identity:
        """The identity providers of ``FORLOP_OIDC_CONFIG`` (none without it); read once, at the first sign-in."""
        path = self.settings.oidc_config
        environ = dict(os.environ)  # the providers' secrets, by the variables the file names
        config = load_config(path, choices=Choices.of(self.settings, self.catalog), environ=environ,
                             production=self.settings.env == "production") if path is not None else None
        return Identity(config, environ)

    @cached_property
    def email_channel(self) -> EmailChannel | None:
        s = self.settings
        if not s.smtp_host:
            return None
        return EmailChannel(host=s.smtp_host, port=s.smtp_port, sender=s.smtp_sender, starttls=s.smtp_starttls,
                            username=s.smtp_username, password=s.smtp_password)

    @cached_property
    def webhook_channel(self) -> WebhookChannel:
        return WebhookChannel(secret=self.settings.webhook_secret, timeout=self.settings.webhook_timeout_seconds)

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, *, migrate: bool = True, register_definitions: bool = True,
              serving: bool = False) -> Forlop:
    """Build the core: migrate the database to the newest schema and register the definitions directory.

    ``serving``: the core of an API process, whose statements are bounded by ``db_statement_timeout_seconds``
    (batch work such as ``forlop audit verify`` or a migration may rightly run longer)."""
    settings = settings or get_settings()
    engine = create_engine(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds if serving else None,
    )
    if migrate:
        upgrade(engine)
    catalog = DefinitionCatalog(engine)
    if register_definitions and settings.definitions_dir.is_dir():
        catalog.register_directory(settings.definitions_dir)
    return Forlop(settings=settings, engine=engine, catalog=catalog)
