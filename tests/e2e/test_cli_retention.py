"""``forlop retention``: an administrator sees what would be erased when, erases what is due, puts a case on legal hold
and lifts it, and reads the erasure log; a coordinator may do none of it. The installed script runs as a subprocess on
a SQLite file of its own (test_cli's fixtures); a case is made due by moving its closure six years back in the file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_cli import ACTOR, ADMIN, FORLOP, Database, database, fresh_database, upgraded_template  # noqa: F401

pytestmark = [pytest.mark.process,
              pytest.mark.skipif(not FORLOP.exists(), reason=f"the console script is not installed at {FORLOP}")]
WIDE = {"COLUMNS": "250"}


def closed_long_ago(database: Database) -> str:
    """A case closed six years ago: past the default five years."""
    reference = database.open_case()
    database.ok("case", "close", reference, "declined", "--reason", "takket nei", *ACTOR)
    long_ago = (datetime.now(timezone.utc) - timedelta(days=6 * 365)).strftime("%Y-%m-%d %H:%M:%S.000000")
    assert database.execute("UPDATE pathway_case SET closed_at = ? WHERE reference = ?", (long_ago, reference)) == 1
    return reference


def test_list_is_a_dry_run_and_run_erases_what_is_due(database: Database) -> None:
    due = closed_long_ago(database)
    recent = database.open_case()
    database.ok("case", "close", recent, "declined", "--reason", "takket nei", *ACTOR)
    listed = database.ok("retention", "list", *ADMIN, env=WIDE)
    assert due in listed.stdout and recent in listed.stdout
    assert "2 closed cases not yet erased; 1 due now" in listed.stderr
    assert database.count("erasure_log") == 0  # the list changed nothing
    erased = database.ok("retention", "run", "--yes", *ADMIN)
    assert "1 case erased" in erased.stdout
    assert database.query("SELECT c.reference FROM case_key k JOIN pathway_case c ON c.id = k.case_id "
                          "WHERE k.erased_at IS NOT NULL") == [(due,)]
    assert "nothing to erase" in database.ok("retention", "run", "--yes", *ADMIN).stderr
    log = database.ok("retention", "log", *ADMIN, env=WIDE)
    assert due in log.stdout and "FORLOP_RETENTION_DAYS" in log.stdout and "tester-admin" in log.stdout
    assert recent not in log.stdout
    actions = {a for (a,) in database.query("SELECT action FROM access_log WHERE username = 'tester-admin'")}
    assert {"retention.list", "retention.run", "retention.log"} <= actions


def test_run_asks_first_and_erases_nothing_when_not_confirmed(database: Database) -> None:
    closed_long_ago(database)
    refused = database.run("retention", "run", *ADMIN, stdin="n\n")
    assert refused.code == 1 and "erase 1 case for good?" in refused.output and "nothing erased" in refused.stderr
    assert database.count("erasure_log") == 0


def test_a_hold_stops_the_run_until_it_is_lifted(database: Database) -> None:
    reference = closed_long_ago(database)
    held = database.ok("retention", "hold", reference, "--reason", "klage til Statsforvalteren", *ADMIN)
    assert f"case {reference} is on legal hold" in held.stdout
    assert "legal hold" in database.ok("retention", "list", *ADMIN, env=WIDE).stdout
    assert "nothing to erase; 1 held" in database.ok("retention", "run", "--yes", *ADMIN).stderr
    again = database.run("retention", "hold", reference, "--reason", "igjen", *ADMIN)
    assert again.code == 1 and "is on legal hold already" in again.stderr
    database.ok("retention", "release", reference, "--reason", "saken er avgjort", *ADMIN)
    none = database.run("retention", "release", reference, "--reason", "igjen", *ADMIN)
    assert none.code == 1 and "is not on legal hold" in none.stderr
    assert "1 case erased" in database.ok("retention", "run", "--yes", *ADMIN).stdout
    rows = database.query("SELECT action, case_reference, reason FROM access_log WHERE action LIKE 'retention.%'")
    assert ("retention.hold", reference, None) in rows and ("retention.release", reference, None) in rows
    assert "Statsforvalteren" not in repr(database.query("SELECT * FROM access_log"))


def test_bad_input_is_refused_with_a_message(database: Database) -> None:
    reference = closed_long_ago(database)
    empty = database.run("retention", "hold", reference, "--reason", "  ", *ADMIN)
    assert empty.code == 2 and "reason" in empty.stderr
    missing = database.run("retention", "hold", reference, *ADMIN)
    assert missing.code == 2 and "--reason" in missing.output
    unknown = database.run("retention", "hold", "TST-1999-0001", "--reason", "klage", *ADMIN)
    assert unknown.code == 1 and "TST-1999-0001" in unknown.stderr and "not found" in unknown.stderr


def test_only_an_administrator_may(database: Database) -> None:
    reference = closed_long_ago(database)
    for args in (("list",), ("run", "--yes"), ("log",), ("hold", reference, "--reason", "klage")):
        refused = database.run("retention", *args, *ACTOR)
        assert refused.code == 1 and "'tester' may not" in refused.stderr, refused
    assert database.count("erasure_log") == 0 and database.count("legal_hold") == 0


def test_a_unit_may_keep_its_cases_longer(database: Database) -> None:
    closed_long_ago(database)
    longer = {"FORLOP_RETENTION_DAYS_BY_UNIT": "test-unit=3650", **WIDE}
    assert "0 due now" in database.ok("retention", "list", *ADMIN, env=longer).stderr
    unknown = database.run("retention", "list", *ADMIN, env={"FORLOP_RETENTION_DAYS_BY_UNIT": "nowhere=30"})
    assert unknown.code == 2 and "nowhere" in unknown.stderr
