"""The API's documentation: /openapi.json and Swagger UI at /docs come from the app itself, so /docs works on a closed
network under the same Content-Security-Policy as every page (no foreign host, no inline script). In production
only an administrator gets them, by page session or bearer token; anyone else finds nothing (404).
"""

from __future__ import annotations

import re

import pytest

from api.web.headers import CSP

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import World, production_client, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

# Asserts nothing that depends on the date: not run again at the Makefile's TEST_DATES.
pytestmark = pytest.mark.any_date

LINKS = re.compile(r'\s(?:src|href)="([^"]*)"')
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
HIDDEN_404 = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "fant ikke"}  # bokmål: the default


def test_docs_load_their_script_and_styles_from_this_server_only(world: World) -> None:
    r = world.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<script>" not in r.text and "style=" not in r.text  # nothing inline: the policy would block it
    links = LINKS.findall(r.text)
    assert {link.rsplit(".", 1)[-1] for link in links if link.startswith("/")} == {"js", "css"}, links
    for link in links:
        if link == "data:,":  # the empty icon: no request for a favicon
            continue
        assert link.startswith("/") and not link.startswith("//"), link
        asset = world.client.get(link)
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[link[link.rindex("."):]]), link
        assert "no-store" not in asset.headers.get("cache-control", ""), link  # static: may be cached
    assert 'data-openapi-url="/openapi.json"' in r.text
    assert world.client.get("/openapi.json").json()["info"]["title"] == "Forløp"


def test_docs_have_the_same_content_security_policy_as_every_page_naming_no_other_host(world: World) -> None:
    csp = world.client.get("/docs").headers["content-security-policy"]
    assert csp == CSP
    assert not re.search(r"https?:|//|\*|unsafe-", csp), csp


def test_redoc_is_not_served(world: World) -> None:
    assert world.client.get("/redoc").status_code == 404


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_in_production_only_an_administrator_gets_the_docs_and_others_find_nothing(world: World, path: str) -> None:
    refused = {
        "anonymous": production_client(world).get(path),
        "a forged token": production_client(world).get(path, headers={"Authorization": "Bearer fs_" + "x" * 43}),
        "a coordinator's token": production_client(world).get(path, headers=world.auth("koordinator")),
        "a coordinator's session": signed_in(production_client(world), "koordinator").get(path),
        "a manager's session": signed_in(production_client(world), "leder").get(path),
    }
    for who, r in refused.items():
        assert r.status_code == 404 and r.json() == {**HIDDEN_404, "instance": path}, f"{who}: {r.text[:200]}"
    by_token = production_client(world).get(path, headers=world.auth("admin"))
    by_session = signed_in(production_client(world), "admin").get(path)
    for r in (by_token, by_session):
        assert r.status_code == 200, r.text[:200]
        assert r.headers["content-security-policy"] == CSP
    assert world.client.get(path).status_code == 200  # outside production: open
