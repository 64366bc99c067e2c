"""The HTTP surface that exists so far: health, readiness, definitions, problem+json errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from pathway.bootstrap import Forlop


def test_health_readiness_and_the_definitions_are_served(core: Forlop) -> None:
    client = TestClient(create_app(core))
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    versions = client.get("/api/v1/pathways").json()
    assert [(v["id"], v["version"]) for v in versions] == [("krisesenter", 1)]
    diagram = client.get("/api/v1/pathways/krisesenter/1/diagram", params={"lang": "en"})
    assert diagram.text.startswith("stateDiagram-v2") and "Intake" in diagram.text


def test_errors_are_problem_json_that_say_what_and_where(core: Forlop) -> None:
    client = TestClient(create_app(core))
    missing = client.get("/api/v1/pathways/krisesenter/99/diagram")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404 and missing.json()["instance"] == "/api/v1/pathways/krisesenter/99/diagram"
    invalid = client.get("/api/v1/pathways/krisesenter/not-a-number/diagram")
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["errors"][0]["loc"] == ["path", "version"]
    assert "not-a-number" not in str(invalid.json()["errors"])  # the rejected value is not echoed
