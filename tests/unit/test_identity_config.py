"""The identity providers' file (FORLOP_OIDC_CONFIG): a mistake is named by file, line and field, each of them at
once, and a group maps to a role by the same placement rule as any account (a coordinator to a unit of FORLOP_UNITS,
a partner to an agency of the pathways); `forlop serve` refuses to start with such a file (exit 2)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pathway.errors import DefinitionError
from pathway.identity import account_name, load_config
from pathway.services.users import Choices
from tests.e2e.web_support import FORLOP

pytestmark = pytest.mark.any_date
CHOICES = Choices(units=("bergen-sentrum", "askoy"), agencies=("police", "nav"))
GOOD = """\
providers:
  kommune:
    issuer: https://login.example.test/tenant/v2.0
    client_id: 11111111-2222-3333-4444-555555555555
    client_secret_env: FORLOP_OIDC_KOMMUNE_SECRET
    label: {nb: kommunen, en: the municipality}
    groups_claim: roles
    roles:
      - {group: Forlop.Koordinator.Sentrum, role: coordinator, unit: bergen-sentrum}
      - {group: Forlop.Admin, role: admin}
      - {group: Forlop.Politi, role: partner, agency: police}
"""


def test_a_good_file_maps_groups_to_roles_in_order(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(GOOD)
    provider = load_config(path, choices=CHOICES).providers["kommune"]
    assert provider.name == "kommune" and provider.scopes == ["openid", "profile", "email"]
    assert provider.secret({"FORLOP_OIDC_KOMMUNE_SECRET": "s3cret"}) == "s3cret"
    rule = provider.assignment({"roles": ["Other", "Forlop.Admin", "Forlop.Koordinator.Sentrum"]})
    assert rule is not None and (rule.role, rule.unit) == ("coordinator", "bergen-sentrum")  # the first rule wins
    assert provider.assignment({"roles": "Forlop.Politi"}).agency == "police"  # type: ignore[union-attr]
    assert provider.assignment({"roles": ["Other"]}) is None and provider.assignment({}) is None
    assert provider.text("en") == "the municipality" and provider.button_text("nb") is None


def test_every_mistake_is_named_by_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(GOOD.replace("unit: bergen-sentrum}", "unit: bergen-vest}")
                    .replace("role: partner, agency: police}", "role: partner}")
                    .replace("    groups_claim: roles\n", "    groups_claim: roles\n    scopes: [profile]\n"
                             "    colour: blue\n"))
    with pytest.raises(DefinitionError) as raised:
        load_config(path, choices=CHOICES)
    said = [str(p) for p in raised.value.problems]
    assert any(s.startswith(f"{path}:9:") and "colour" in s for s in said), said
    path.write_text(GOOD.replace("unit: bergen-sentrum}", "unit: bergen-vest}")
                    .replace("role: partner, agency: police}", "role: partner}")
                    .replace("    groups_claim: roles\n", "    groups_claim: roles\n    scopes: [profile]\n"))
    with pytest.raises(DefinitionError) as raised:
        load_config(path, choices=CHOICES)
    said = sorted(str(p) for p in raised.value.problems)
    assert any(s.startswith(f"{path}:10:") and "providers.kommune.roles[0].unit" in s and "bergen-sentrum" in s
               for s in said), said
    assert any(s.startswith(f"{path}:12:") and "providers.kommune.roles[2].agency" in s for s in said), said
    assert any(s.startswith(f"{path}:8:") and "providers.kommune.scopes" in s and "openid" in s for s in said), said
    path.write_text(GOOD.replace("    issuer: https://login.example.test/tenant/v2.0\n", ""))
    with pytest.raises(DefinitionError) as raised:
        load_config(path, choices=CHOICES)
    assert any("providers.kommune.issuer" in str(p) for p in raised.value.problems)


@pytest.mark.parametrize(("claim", "name"), [("kari", "kari"), ("kari.nordmann@bergen.kommune.no", "kari.nordmann"),
                                             ("ikke gyldig", None), (42, None), ("", None), ("a" * 65, None)])
def test_an_account_name_comes_from_the_claim_by_the_rule_of_every_account(claim: object, name: str | None) -> None:
    assert account_name(claim) == name


def test_serve_refuses_to_start_with_a_broken_file_and_names_where(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(GOOD.replace("unit: bergen-sentrum}", "unit: bergen-vest}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORLOP_")}
    env.update(FORLOP_ENV="test", FORLOP_DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}", FORLOP_OIDC_CONFIG=str(path),
               FORLOP_UNITS="bergen-sentrum,askoy")
    done = subprocess.run([str(FORLOP), "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{path}:9:" in done.stderr and "providers.kommune.roles[0].unit" in done.stderr



def test_a_file_that_would_weaken_the_checks_is_refused(tmp_path: Path) -> None:
    """A secret variable that is not set, two providers with one issuer, an API audience that is the client id (an
    ID token would pass for an access token), and in production an issuer without https."""
    path = tmp_path / "oidc.yaml"
    second = GOOD.split("  kommune:\n", 1)[1].replace("client_id: 11111111", "client_id: 99999999")
    path.write_text(GOOD.replace("    groups_claim: roles\n", "    groups_claim: roles\n"
                                 "    api_audience: 11111111-2222-3333-4444-555555555555\n")
                    + "  kopi:\n" + second)
    with pytest.raises(DefinitionError) as raised:
        load_config(path, choices=CHOICES, environ={})
    said = [str(p) for p in raised.value.problems]
    assert any("providers.kommune.client_secret_env" in s and "FORLOP_OIDC_KOMMUNE_SECRET is not set" in s
               for s in said), said
    assert any("providers.kommune.api_audience" in s and "client_id" in s for s in said), said
    assert any("providers.kopi.issuer" in s and "same issuer" in s for s in said), said
    path.write_text(GOOD.replace("https://login", "http://login"))
    env = {"FORLOP_OIDC_KOMMUNE_SECRET": "s"}
    assert load_config(path, choices=CHOICES, environ=env).providers["kommune"].issuer.startswith("http://")
    with pytest.raises(DefinitionError) as raised:
        load_config(path, choices=CHOICES, environ=env, production=True)
    assert any("providers.kommune.issuer" in str(p) and "https" in str(p) for p in raised.value.problems)
