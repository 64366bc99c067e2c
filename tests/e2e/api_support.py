"""Shared pieces of the HTTP API tests (tests/e2e/test_api_*.py).

One seeded world per test module (demo users with the password "demo", ~30 synthetic cases), on SQLite and on
PostgreSQL, the scheduler off; bearer tokens for every role; the app's route table read the way FastAPI serves it.
"""

from __future__ import annotations

import re
import shutil
import types
import typing
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Allow
from pathway import services
from pathway.bootstrap import Forlop, bootstrap
from pathway.calendar import OSLO, is_working_day
from pathway.demo import DEMO_PASSWORD, seed_demo
from pathway.scheduler import run_digest
from pathway.settings import Settings
from pathway.store.digest import DigestResult
from pathway.store.tables import case_t

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
SEED = 20260127
DEMO_CASES = 30

# The roles of the authorization matrix -> the demo user who plays it (None: no token at all).
ACTORS: dict[str, str | None] = {
    "coordinator": "koordinator",         # unit bergen-sentrum: the unit of the cases under test
    "other_coordinator": "koordinator2",  # unit bergen-nord
    "police": "politi",                   # partner, agency police: the agency of the tasks under test
    "nav": "nav",                         # partner of another agency
    "manager": "leder",
    "admin": "admin",
    "anonymous": None,
}
UNIT = "bergen-sentrum"
ROLE_OF_ACTOR = {"coordinator": "coordinator", "other_coordinator": "coordinator", "police": "partner",
                 "nav": "partner", "manager": "manager", "admin": "admin"}


# -- the route table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    name: str
    dependant: Dependant
    openapi_extra: dict[str, Any]
    body_model: Any | None
    form: bool = False  # the body is a form (application/x-www-form-urlencoded), not JSON

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _routes(app: FastAPI) -> Iterator[tuple[Any, APIRoute]]:
    """Every route the app serves, as the app resolves it (FastAPI >= 0.16x includes routers lazily:
    ``app.routes`` then holds the included routers, whose effective routes carry the prefix and dependencies)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        contexts: Iterator[Any] = iter(app.routes)
    else:
        contexts = iter_route_contexts(app.routes)
    for ctx in contexts:
        original = getattr(ctx, "original_route", ctx)
        if isinstance(original, APIRoute):  # not /openapi.json and /docs: plain routes of api/docs.py
            yield ctx, original


def page_routes(app: FastAPI, method: str) -> list[str]:
    """The paths of the web pages (routes left out of the API's schema) answering ``method``."""
    return sorted({ctx.path_format or ctx.path for ctx, original in _routes(app)
                   if not original.include_in_schema and method in (ctx.methods or ())})


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API operation the app serves (the web pages have their own matrix, in test_web_pages.py)."""
    found = []
    for ctx, original in _routes(app):
        if not original.include_in_schema:
            continue
        body_field = getattr(ctx, "body_field", None)
        for method in sorted(ctx.methods or ()):
            found.append(RouteInfo(
                method=method, path=ctx.path_format or ctx.path, name=ctx.name, dependant=ctx.dependant,
                openapi_extra=dict(ctx.openapi_extra or {}),
                body_model=_annotation(body_field),
                form=isinstance(getattr(body_field, "field_info", None), params.Form)))
    return found


def _annotation(body_field: Any) -> Any:
    if body_field is None:
        return None
    info = getattr(body_field, "field_info", None)
    annotation = getattr(info, "annotation", None) or getattr(body_field, "type_", None)
    # an optional body (``AcceptBody | None``): the model it takes when one is sent
    given = [a for a in typing.get_args(annotation) if a is not type(None)]
    return given[0] if isinstance(annotation, types.UnionType) and len(given) == 1 else annotation


def allow_of(route: RouteInfo) -> Allow | None:
    """The route's ``Allow`` rule, found anywhere among its dependencies."""
    def walk(dep: Dependant) -> Iterator[Allow]:
        if isinstance(dep.call, Allow):
            yield dep.call
        for sub in dep.dependencies:
            yield from walk(sub)

    rules = list(walk(route.dependant))
    if len({(r.roles, r.hide) for r in rules}) > 1:
        raise AssertionError(f"{route.label} has several different Allow rules: {rules}")
    return rules[0] if rules else None


def is_public(route: RouteInfo) -> bool:
    return route.openapi_extra.get("x-public") is True


# -- the world -----------------------------------------------------------------------------------------------


def make_core(url: str, extra_units: tuple[str, ...] = ()) -> Forlop:
    """The test world's core: the default units (FORLOP_UNITS), and any more a test module names in its
    ``EXTRA_UNITS``."""
    settings = Settings(env="test", database_url=url, scheduler="off", definitions_dir=ROOT / "definitions",
                        sqlite_synchronous="NORMAL")
    return bootstrap(settings.model_copy(update={"units": (*settings.units, *extra_units)}))


@dataclass
class World:
    core: Forlop
    app: FastAPI
    client: TestClient  # raises server exceptions (a traceback beats a bare 500 in a flow test)
    lenient: TestClient  # answers 500 like a server would (for matrices and sweeps)
    tokens: dict[str, str] = field(default_factory=dict)  # username -> session bearer token
    backend: str = "sqlite"

    def login(self, username: str, password: str = DEMO_PASSWORD) -> str:
        r = self.client.post(f"{API}/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]  # type: ignore[no-any-return]

    def auth(self, username: str | None) -> dict[str, str]:
        if username is None:
            return {}
        if username not in self.tokens:
            self.tokens[username] = self.login(username)
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def version(self, reference: str) -> int:
        return services.get_case(uow=self.core.uow(), reference=reference).version

    def references(self, *, unit: str | None = None) -> list[str]:
        query = sa.select(case_t.c.reference).order_by(case_t.c.reference)
        if unit is not None:
            query = query.where(case_t.c.unit == unit)
        with self.core.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # -- doing things as the coordinator of bergen-sentrum, through HTTP --

    def open_case(self, person: dict[str, Any] | None = None, *, user: str = "koordinator",
                  conditions: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"conditions": conditions or []}
        if person is not None:
            body["person"] = person
        r = self.client.post(f"{API}/cases", json=body, headers=self.auth(user))
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def operate(self, reference: str, path: str, body: dict[str, Any] | None = None, *,
                user: str = "koordinator", expect: int = 200) -> dict[str, Any]:
        headers = {**self.auth(user), "If-Match": f'"{self.version(reference)}"'}
        r = self.client.post(f"{API}/cases/{reference}/{path}", json=body or {}, headers=headers)
        assert r.status_code == expect, f"{path}: {r.status_code} {r.text}"
        return r.json()  # type: ignore[no-any-return]

    def handover_case(self, agency: str = "police", *, scope: list[str] | None = None,
                      person: dict[str, Any] | None = None) -> tuple[str, uuid.UUID]:
        """A bergen-sentrum case with consent for ``agency`` and its handover task requested: (reference, task id)."""
        code, full = {"police": ("K6", ["name", "contact", "threat_assessment"]),
                      "nav": ("K7", ["name", "contact", "finances"])}[agency]
        reference = self.open_case(person or synthetic_person())["reference"]
        self.operate(reference, f"consents/{agency}", {"scope": scope or full})
        detail = self.operate(reference, "handovers", {"code": code})
        task = next(t for t in detail["handovers"] if t["code"] == code and t["status"] == "requested")
        return reference, uuid.UUID(task["id"])


def production_client(world: World) -> TestClient:
    """The same database under an app that believes it runs in production (https: its cookies are Secure)."""
    settings = world.core.settings.model_copy(update={"env": "production"})
    core = Forlop(settings=settings, engine=world.core.engine, catalog=world.core.catalog)
    return TestClient(create_app(core), base_url="https://testserver")


def signed_in(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> TestClient:
    """``client`` with a page session (cookie), as a browser has after signing in at /login."""
    page = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": username, "password": password, "nonce": nonce},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


_PERSONS = 0


def digest_on_a_working_day(core: Forlop, after: datetime) -> DigestResult:
    """The managers' daily digest of the first working day from ``after`` on (at noon in Oslo, so on any date), or of
    the next working day whose digest is not yet made (each working day has one, for every unit at once)."""
    day = after.astimezone(OSLO).date()
    for _ in range(60):
        if is_working_day(day):
            result = run_digest(core, now=datetime.combine(day, time(12, 0), OSLO))
            if result.units:
                return result
        day += timedelta(days=1)
    raise AssertionError(f"no unit had steps past their manager rung in the 60 days from {after:%Y-%m-%d}")


def synthetic_person(**overrides: Any) -> dict[str, Any]:
    """An obviously invented person, unique per call (a name no one has, an address in no town)."""
    global _PERSONS
    _PERSONS += 1
    n = _PERSONS
    person = {"name": f"Tora Oppdiktadottir {n:04d}", "birth_date": f"19{50 + n % 40:02d}-0{1 + n % 9}-1{n % 9}",
              "address": f"Påfunnveien {n}, 0000 Ingenstedby", "safe_contact": f"+47 000 00 {n:03d}"}
    person.update(overrides)
    return person


@contextmanager
def _cheap_passwords() -> Iterator[None]:
    """Argon2 at its cheapest while a module's world lives: the tests need speed, not hardness. (A hash carries
    its parameters, so verifying is as cheap as hashing was; the dummy hash, verified for unknown users, too.)"""
    from argon2 import PasswordHasher

    from pathway import accounts

    saved = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts._DUMMY_HASH = accounts._hasher.hash("not a password anyone has")
    try:
        yield
    finally:
        accounts._hasher, accounts._DUMMY_HASH = saved


@dataclass
class _Template:
    """A seeded database, made once per test session and backend, that each module's world is copied from.
    (Only the data: each world signs in for itself, as session tokens expire.)"""
    url: str


def _seed_template(url: str) -> _Template:
    core = make_core(url)
    try:
        seed_demo(core, cases=DEMO_CASES, seed=SEED)
        return _Template(url=url)
    finally:
        core.close()


@pytest.fixture(scope="session")
def _api_templates(tmp_path_factory: pytest.TempPathFactory, postgres_url: str | None) -> Iterator[dict[str, Any]]:
    made: dict[str, Any] = {"sqlite_dir": tmp_path_factory.mktemp("api-template"), "postgres_url": postgres_url}
    try:
        yield made
    finally:
        if "postgresql" in made:
            _drop_database(postgres_url, made["postgresql"].url)


def _template(templates: dict[str, Any], backend: str) -> _Template:
    if backend not in templates:
        if backend == "sqlite":
            templates[backend] = _seed_template(f"sqlite:///{templates['sqlite_dir'] / 'template.db'}")
        else:
            templates[backend] = _seed_template(_create_database(templates["postgres_url"], "tmpl"))
    return templates[backend]  # type: ignore[no-any-return]


def _create_database(server_url: str, suffix: str, *, template: str | None = None) -> str:
    """A new database on the server of ``server_url`` (connected through that database, never the template)."""
    server = sa.engine.make_url(server_url)
    name = f"{server.database}_{suffix}_{uuid.uuid4().hex[:6]}"[-63:]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    finally:
        admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str | None, url: str) -> None:
    target = sa.engine.make_url(url)
    admin = sa.create_engine(sa.engine.make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _world(url: str, backend: str, extra_units: tuple[str, ...] = ()) -> World:
    core = make_core(url, extra_units)
    app = create_app(core)
    return World(core=core, app=app, client=TestClient(app), lenient=TestClient(app, raise_server_exceptions=False),
                 backend=backend)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          _api_templates: dict[str, Any]) -> Iterator[World]:
    """A seeded world for one test module: its own copy of the session's seeded database, dropped afterwards.

    The TestClient is used without ``with``: the app's lifespan (which would start a scheduler and close the
    core) is not run; the scheduler is off anyway."""
    if request.param == "postgresql" and _api_templates["postgres_url"] is None:
        pytest.skip("PostgreSQL not reachable (required and run under CI)")
    with _cheap_passwords():
        yield from _copied_world(request.param, tmp_path_factory, _api_templates,
                                 tuple(getattr(request.module, "EXTRA_UNITS", ())))


def _copied_world(backend: str, tmp_path_factory: pytest.TempPathFactory, _api_templates: dict[str, Any],
                  extra_units: tuple[str, ...] = ()) -> Iterator[World]:
    template = _template(_api_templates, backend)
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("api") / "forlop.db"
        shutil.copyfile(sa.engine.make_url(template.url).database, path)  # closed: the WAL is checkpointed
        url = f"sqlite:///{path}"
    else:
        url = _create_database(_api_templates["postgres_url"], "api", template=sa.engine.make_url(template.url).database)
    w = _world(url, backend, extra_units)
    try:
        yield w
    finally:
        w.core.close()
        if backend == "postgresql":
            _drop_database(_api_templates["postgres_url"], url)
