"""Shared pieces of the HTTP API tests (tests/e2e/test_api_*.py).

One seeded world per test module (demo users with the password "demo", ~30 synthetic cases), on SQLite and on
PostgreSQL, the scheduler off; bearer tokens for every role; the app's route table read the way FastAPI serves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from pathway.demo import DEMO_PASSWORD, seed_demo
from pathway.settings import Settings
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


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API operation the app serves, as the app resolves it (FastAPI >= 0.16x includes routers lazily:
    ``app.routes`` then holds the included routers, whose effective routes carry the prefix and dependencies)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied into app.routes
        contexts: Iterator[Any] = iter(app.routes)
    else:
        contexts = iter_route_contexts(app.routes)
    found = []
    for ctx in contexts:
        original = getattr(ctx, "original_route", ctx)
        if not isinstance(original, APIRoute):
            continue  # /openapi.json, /docs, /redoc: served by FastAPI itself
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
    return getattr(info, "annotation", None) or getattr(body_field, "type_", None)


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


def make_core(url: str) -> Forlop:
    return bootstrap(Settings(env="test", database_url=url, scheduler="off", definitions_dir=ROOT / "definitions"))


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


_PERSONS = 0


def synthetic_person(**overrides: Any) -> dict[str, Any]:
    """An obviously invented person, unique per call (a name no one has, an address in no town)."""
    global _PERSONS
    _PERSONS += 1
    n = _PERSONS
    person = {"name": f"Tora Oppdiktadottir {n:04d}", "birth_date": f"19{50 + n % 40:02d}-0{1 + n % 9}-1{n % 9}",
              "address": f"Påfunnveien {n}, 0000 Ingenstedby", "safe_contact": f"+47 000 00 {n:03d}"}
    person.update(overrides)
    return person


def _world(url: str, backend: str) -> World:
    core = make_core(url)
    seed_demo(core, cases=DEMO_CASES, seed=SEED)
    app = create_app(core)
    return World(core=core, app=app, client=TestClient(app), lenient=TestClient(app, raise_server_exceptions=False),
                 backend=backend)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          postgres_url: str | None) -> Iterator[World]:
    """A seeded world for one test module: its own database, dropped afterwards.

    The TestClient is used without ``with``: the app's lifespan (which would start a scheduler and close the
    core) is not run; the scheduler is off anyway."""
    if request.param == "sqlite":
        w = _world(f"sqlite:///{tmp_path_factory.mktemp('api') / 'forlop.db'}", "sqlite")
        yield w
        w.core.close()
        return
    if postgres_url is None:
        pytest.skip("PostgreSQL not reachable (required and run under CI)")
    server = sa.engine.make_url(postgres_url)
    name = f"{server.database}_api_{uuid.uuid4().hex[:6]}"[:63]
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        w = _world(server.set(database=name).render_as_string(hide_password=False), "postgresql")
        yield w
        w.core.close()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
