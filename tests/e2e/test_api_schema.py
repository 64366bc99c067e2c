"""The API answers as its OpenAPI document says, and never with a server error, whatever it is sent.

Schemathesis reads /openapi.json from the app in-process (ASGI) and generates requests for every operation,
signed in as the coordinator and, separately, as the administrator: data that fits the schema, data that does
not, and (for routes on a case or a task) data that fits with the path pointing at a real case or task, so
that the operations themselves run. Checks: no server error, and every documented answer has its documented
shape. Bounded and derandomized for CI.

(Schemathesis's own pytest loader, ``schemathesis.pytest.from_fixture``, relies on a pytest internal that
pytest 9 removed, so the operations are parametrized here from the app's route table and each is driven
with ``APIOperation.as_strategy`` under Hypothesis.)
"""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.app import create_app
from pathway.bootstrap import Forlop

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, api_routes, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

# Asserts nothing that depends on the date: not run again at the Makefile's TEST_DATES.
pytestmark = pytest.mark.any_date

CHECKS = [not_a_server_error, response_schema_conformance]
MAX_EXAMPLES = 15
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
# The operations, from the route table of an app that is never started (the table needs no database).
OPERATIONS = [r.label for r in api_routes(create_app(cast(Forlop, None)))]


@pytest.fixture(scope="module")
def api_schema(world: World) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", world.app)


@pytest.fixture(scope="module")
def real_ids(world: World) -> dict[str, str]:
    """Path parameters that point at something that exists (a case of the coordinator's unit, a police task)."""
    reference, task_id = world.handover_case("police", person=synthetic_person())
    return {"reference": reference, "task_id": str(task_id), "pathway_id": "krisesenter", "version": "1"}


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str], path_parameters: dict[str, Any]) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)

    @BOUNDED
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing of this operation can be made invalid (e.g. GET /me): there is no negative case to send


# Generating the data is what costs (not the database): the fuzzing runs on SQLite; what PostgreSQL refuses that
# SQLite accepts (NUL characters, integers beyond 32 bits) is pinned on both by the regression test below.
@pytest.mark.parametrize("world", ["sqlite"], indirect=True, scope="module")
@pytest.mark.parametrize("username", ["koordinator", "admin"])
@pytest.mark.parametrize("operation_label", OPERATIONS)
def test_the_api_answers_as_documented(api_schema: Any, real_ids: dict[str, str], world: World, username: str,
                                       operation_label: str) -> None:
    method, path = operation_label.split(" ", 1)
    operation = api_schema[path][method]
    headers = world.auth(username)
    names = [p.name for p in operation.path_parameters]
    # Data that fits, aimed at a real case or task where the path has one (so that the operation itself runs);
    # then data that does not fit, anywhere.
    _run(operation, GenerationMode.POSITIVE, headers, {name: real_ids[name] for name in names if name in real_ids})
    _run(operation, GenerationMode.NEGATIVE, headers, {})


def test_every_operation_is_tested_and_documents_its_errors_as_problems() -> None:
    paths = create_app(cast(Forlop, None)).openapi()["paths"]
    assert {f"{m.upper()} {p}" for p, ops in paths.items() for m in ops} == set(OPERATIONS)
    assert f"POST {API}/cases" in OPERATIONS
    # Errors are problem+json everywhere (FastAPI's default 422 "HTTPValidationError" is not what is sent), so
    # that the conformance check above validates the error answers too.
    for path, ops in paths.items():
        for method, op in ops.items():
            for status in ("4XX", "5XX"):
                content = op["responses"].get(status, {}).get("content", {})
                assert list(content) == ["application/problem+json"], f"{method.upper()} {path} {status}"
                assert content["application/problem+json"]["schema"]["required"] == \
                    ["type", "title", "status", "detail", "instance"]
            assert "422" not in op["responses"], f"{method.upper()} {path} documents FastAPI's 422 shape"


def test_values_the_database_cannot_hold_are_refused_not_server_errors(world: World) -> None:
    """Found by fuzzing: each of these answered 500 (PostgreSQL refuses NUL characters; SQLite 64-bit integers;
    an unknown pathway was a missing definition version). Now each is a 4xx problem."""
    w = world
    k, admin = w.auth("koordinator"), w.auth("admin")
    answers = {
        "q with NUL": w.lenient.get(f"{API}/cases", params={"q": "\x00"}, headers=k),
        "stage with NUL": w.lenient.get(f"{API}/cases", params={"stage": "a\x00b"}, headers=k),
        "phase with NUL": w.lenient.get(f"{API}/cases", params={"phase": "a\x00b"}, headers=k),
        "audit user with NUL": w.lenient.get(f"{API}/audit/access", params={"user": "a\x00"}, headers=admin),
        "pathway with NUL": w.lenient.post(f"{API}/cases", json={"pathway": "kri\x00"}, headers=k),
        "unknown pathway": w.lenient.post(f"{API}/cases", json={"pathway": "ingen-slik"}, headers=k),
        "username with NUL": w.lenient.post(f"{API}/auth/token", data={"username": "a\x00", "password": "x"}),
        "unit with NUL": w.lenient.post(f"{API}/users", json={"username": "nulenhet", "role": "coordinator",
                                                              "unit": "u\x00", "password": "et-langt-passord"},
                                        headers=admin),
        "huge version": w.lenient.get(f"{API}/pathways/krisesenter/9223372036854775808/diagram", headers=k),
    }
    # (SQLite stores a NUL character like any other, so there those may succeed: never with a 5xx)
    refused = {"unknown pathway", "huge version"} | ({n for n in answers if "NUL" in n} if w.backend == "postgresql"
                                                     else set())
    wrong = {name: (r.status_code, r.text[:200]) for name, r in answers.items()
             if r.status_code >= 500 or (r.status_code >= 400 and r.headers["content-type"] != "application/problem+json")
             or (name in refused and not 400 <= r.status_code < 500)}
    assert not wrong
    assert answers["unknown pathway"].json()["errors"][0]["loc"] == ["body", "pathway"]
