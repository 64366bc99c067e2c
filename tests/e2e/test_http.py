"""The HTTP surface that exists so far: health, readiness, definitions, problem+json errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from pathway import services
from pathway.accounts import set_password
from pathway.bootstrap import Forlop
from pathway.definition import load_definition
from tests.unit.conftest import SHIPPED


def signed_in(core: Forlop) -> TestClient:
    services.add_user(engine=core.engine, username="admin1", role="admin")
    set_password(core.engine, "admin1", "et passord")
    client = TestClient(create_app(core))
    token = client.post("/api/v1/auth/token", data={"username": "admin1", "password": "et passord"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return client


def test_health_readiness_and_the_definitions_are_served(core: Forlop) -> None:
    client = signed_in(core)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert TestClient(create_app(core)).get("/api/v1/pathways").status_code == 401  # only for signed-in users
    versions = client.get("/api/v1/pathways").json()
    # Every shipped definition is registered at start: the adult's and the child's pathway, side by side.
    live = load_definition(SHIPPED).version
    assert [(v["id"], v["version"]) for v in versions] == [("barn", 1), ("krisesenter", live)]
    diagram = client.get(f"/api/v1/pathways/krisesenter/{live}/diagram", params={"lang": "en"})
    assert diagram.text.startswith("stateDiagram-v2") and "Intake" in diagram.text


def test_errors_are_problem_json_that_say_what_and_where(core: Forlop) -> None:
    client = signed_in(core)
    missing = client.get("/api/v1/pathways/krisesenter/99/diagram")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404 and missing.json()["instance"] == "/api/v1/pathways/krisesenter/99/diagram"
    invalid = client.get("/api/v1/pathways/krisesenter/not-a-number/diagram")
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["errors"][0]["loc"] == ["path", "version"]
    assert "not-a-number" not in str(invalid.json()["errors"])  # the rejected value is not echoed
