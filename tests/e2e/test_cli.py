"""End-to-end tests of the ``forlop`` command line: the installed script, run as a subprocess.

Every test runs the real CLI against its own SQLite file in ``tmp_path`` (``--database-url``) with
``FORLOP_ENV=test``, and asserts on exit codes and printed output only (plus the database file where the
test is about what was stored). All data is synthetic. No CLI output may ever contain a stack trace.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pathway.calendar import OSLO
from pathway.definition import load_definition
from pathway.settings import DEV_ENCRYPTION_KEYS

ROOT = Path(__file__).resolve().parents[2]
FORLOP = Path(sys.executable).with_name("forlop")
KRISESENTER = ROOT / "definitions" / "krisesenter.yaml"
EXAMPLES = ROOT / "definitions" / "examples"
LIVE = load_definition(KRISESENTER).version  # the shipped version new cases open on
NEXT = LIVE + 1  # a version made here (or the example) to migrate to
SCHEMA = ROOT / "definitions" / "pathway.schema.json"
ACTOR = ("--as", "tester")  # a coordinator of test-unit, where the tests open their cases
UNITS = {"FORLOP_UNITS": "test-unit,other-unit"}  # the units these tests' users belong to
ADMIN = ("--as", "tester-admin")

pytestmark = [pytest.mark.process,
              pytest.mark.skipif(not FORLOP.exists(), reason=f"the console script is not installed at {FORLOP}")]


# -- running the CLI --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def line_with(self, fragment: str) -> str:
        """The one output line containing ``fragment`` (messages must not be wrapped over several lines)."""
        lines = [line for line in self.output.splitlines() if fragment in line]
        assert lines, f"no output line contains {fragment!r}:\n{self}"
        return lines[0]

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def run(*args: object, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    """Run ``forlop ARGS`` in a clean environment (FORLOP_ENV=test, no inherited FORLOP_* settings)."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("FORLOP_") and k not in ("DATABASE_URL", "COLUMNS", "LINES")}
    environ["FORLOP_ENV"] = "test"
    environ.update(env or {})
    proc = subprocess.run([str(FORLOP), *map(str, args)], capture_output=True, text=True, encoding="utf-8",
                          env=environ, cwd=ROOT, timeout=300, check=False, input=stdin)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in result.output, f"forlop {' '.join(map(str, args))} printed a stack trace:\n{result}"
    return result


@dataclass
class Database:
    """One SQLite database file, and the CLI pointed at it."""

    path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def run(self, *args: object, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        return run(*args, "--database-url", self.url, env={**self.env, **(env or {})}, stdin=stdin)

    def ok(self, *args: object, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        result = self.run(*args, env=env, stdin=stdin)
        assert result.code == 0, f"forlop {' '.join(map(str, args))} failed:\n{result}"
        return result

    def open_case(self, *extra: object) -> str:
        return self.ok("case", "open", "--unit", "test-unit", *ACTOR, *extra).stdout.strip()

    def snapshot(self, reference: str) -> dict[str, Any]:
        return json.loads(self.ok("case", "show", reference, "--json", *ACTOR).stdout)

    def add_user(self, name: str, *options: str) -> None:
        self.ok("users", "add", name, *options, "--password-stdin", stdin="et-langt-syntetisk-passord\n")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> int:
        conn = sqlite3.connect(self.path)
        try:
            changed = conn.execute(sql, params).rowcount
            conn.commit()
        finally:
            conn.close()
        return changed

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - table names are ours


def step_states(snapshot: dict[str, Any]) -> dict[str, str]:
    """Checkpoint code → state of its latest occurrence, from ``case show --json``."""
    return {step[1]: step[4] for step in snapshot["steps"]}


def copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database file (each CLI run has ended, so there is no open write-ahead log to lose)."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


@pytest.fixture
def fresh_database(tmp_path: Path) -> Database:
    return Database(tmp_path / "forlop.db", UNITS)


@pytest.fixture(scope="session")
def upgraded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database made by `forlop db upgrade`, copied for each test that starts from an empty database."""
    path = tmp_path_factory.mktemp("upgraded") / "forlop.db"
    database = Database(path, UNITS)
    database.ok("db", "upgrade")
    database.add_user("tester", "--role", "coordinator", "--unit", "test-unit")
    database.add_user("tester-admin", "--role", "admin")
    return path


@pytest.fixture
def database(fresh_database: Database, upgraded_template: Path) -> Database:
    copy_database(upgraded_template, fresh_database.path)
    return fresh_database


@pytest.fixture
def case(database: Database) -> str:
    """A freshly opened case with children, on the shipped pathway."""
    return database.open_case("--condition", "children")


def move_to_support(database: Database, reference: str) -> None:
    database.ok("case", "complete", reference, "K1", *ACTOR)
    database.ok("case", "complete", reference, "K2", *ACTOR)
    database.ok("case", "advance", reference, "start_support", *ACTOR)


# -- help ------------------------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.code == 0, result
    for command in ("validate", "diagram", "schema", "migrate", "demo", "serve", "db", "audit", "case", "keys"):
        assert re.search(rf"^\W*{command}\b", result.stdout, re.MULTILINE), f"{command} missing:\n{result}"


def test_case_help_lists_the_case_operations() -> None:
    result = run("case", "--help")
    assert result.code == 0, result
    for command in ("open", "show", "complete", "skip", "advance", "pause", "resume", "consent", "handover", "close"):
        assert re.search(rf"^\W*{command}\b", result.stdout, re.MULTILINE), f"{command} missing:\n{result}"


# -- validate ---------------------------------------------------------------------------------------------

VALID = """\
# A small synthetic pathway, valid as written: the tests below break it on purpose.
id: synthetic
version: 1
title: {nb: Syntetisk forløp, en: Synthetic pathway}
roles:
  worker: {nb: Saksbehandler, en: Case worker}
agencies:
  police: {nb: Politiet, en: Police}
consent_scopes:
  name: {nb: Navn, en: Name}
outcomes:
  done: {nb: Ferdig, en: Done}
phases:
  - id: intake
    title: {nb: Mottak, en: Intake}
  - id: closed
    title: {nb: Avsluttet, en: Closed}
    final: true
transitions:
  - {trigger: close, source: intake, dest: closed}
checkpoints:
  - code: A0
    name: {nb: Første kontakt, en: First contact}
    phases: [intake]
    owner: worker
    completed_by: open
    skippable: false
  - code: A1
    name: {nb: Kartlegging, en: Mapping}
    phases: [intake]
    owner: worker
    needs: [A0]
    deadline: {after: first_contact, hours: 24}
  - code: A2
    name: {nb: Plan, en: Plan}
    phases: [intake]
    owner: worker
    deadline: {after: A1, days: 3}
  - code: A3
    name: {nb: Avslutning, en: Closure}
    phases: [intake]
    owner: worker
    completed_by: close
    skippable: false
"""

# Each break: (the valid line, the broken line, the token whose position is reported, field, words in the message)
UNKNOWN_NEEDS = ("    needs: [A0]", "    needs: [A9]", "A9", "checkpoints[1].needs[0]", ("unknown", "A9"))
DUPLICATE_CODE = ("  - code: A3", "  - code: A1", "code", "checkpoints[3].code", ("duplicate", "A1"))
NOWHERE_ANCHOR = ("    deadline: {after: first_contact, hours: 24}", "    deadline: {after: nowhere, hours: 24}",
                  "after", "checkpoints[1].deadline.after", ("anchored on nothing", "nowhere"))
MISSING_EN = ("    name: {nb: Plan, en: Plan}", "    name: {nb: Plan}", "name", "checkpoints[2].name.en", ("required",))


def broken(*breaks: tuple[str, str, str, str, tuple[str, ...]]) -> str:
    text = VALID
    for valid, bad, *_ in breaks:
        assert text.count(valid + "\n") == 1, valid
        text = text.replace(valid + "\n", bad + "\n")
    return text


def expected_problem(path: Path, text: str, brk: tuple[str, str, str, str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    """``FILE:LINE:COLUMN: FIELD: `` for a break, with the line and column found in the text as written."""
    _, bad, token, field, words = brk
    lines = text.splitlines()
    line_no = max(i for i, line in enumerate(lines, start=1) if line == bad)  # a duplicate is the later one
    column = lines[line_no - 1].index(token) + 1
    return f"{path}:{line_no}:{column}: {field}: ", words


def assert_problems(result: Result, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert result.code == 2, result
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    for prefix, words in expected:
        matching = [line for line in lines if line.startswith(prefix)]
        assert len(matching) == 1, f"expected one line starting {prefix!r}:\n{result}"
        for word in words:
            assert word.lower() in matching[0].lower(), f"{word!r} not in {matching[0]!r}"
    assert len(lines) == len(expected), f"expected {len(expected)} problem lines:\n{result}"


def test_validate_accepts_the_shipped_definition() -> None:
    result = run("validate", "definitions/krisesenter.yaml")
    assert result.code == 0, result
    assert "ok" in result.output


def test_validate_accepts_the_synthetic_definition_before_it_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.yaml"
    path.write_text(VALID, encoding="utf-8")
    result = run("validate", path)
    assert result.code == 0, result


def test_validate_prints_every_reference_problem_on_its_own_line_with_its_position(tmp_path: Path) -> None:
    breaks = (UNKNOWN_NEEDS, DUPLICATE_CODE, NOWHERE_ANCHOR)
    text = broken(*breaks)
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    assert_problems(run("validate", path), [expected_problem(path, text, b) for b in breaks])


def test_validate_reports_a_missing_translation_at_its_line(tmp_path: Path) -> None:
    text = broken(MISSING_EN)
    path = tmp_path / "untranslated.yaml"
    path.write_text(text, encoding="utf-8")
    assert_problems(run("validate", path), [expected_problem(path, text, MISSING_EN)])


def test_validate_prints_every_problem_of_a_file_with_structural_and_reference_problems(tmp_path: Path) -> None:
    breaks = (UNKNOWN_NEEDS, DUPLICATE_CODE, MISSING_EN, NOWHERE_ANCHOR)
    text = broken(*breaks)
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    assert_problems(run("validate", path), [expected_problem(path, text, b) for b in breaks])


def test_validate_reports_the_problems_of_both_files_given_at_once(tmp_path: Path) -> None:
    first_text, second_text = broken(UNKNOWN_NEEDS, DUPLICATE_CODE), broken(MISSING_EN)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(first_text, encoding="utf-8")
    second.write_text(second_text, encoding="utf-8")
    result = run("validate", first, second)
    assert_problems(result, [expected_problem(first, first_text, UNKNOWN_NEEDS),
                             expected_problem(first, first_text, DUPLICATE_CODE),
                             expected_problem(second, second_text, MISSING_EN)])


def test_validate_fails_when_one_of_two_files_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    text = broken(UNKNOWN_NEEDS)
    path.write_text(text, encoding="utf-8")
    result = run("validate", KRISESENTER, path)
    assert_problems(result, [expected_problem(path, text, UNKNOWN_NEEDS)])


# -- diagram and schema -------------------------------------------------------------------------------------


def test_diagram_prints_a_mermaid_state_diagram_with_every_phase() -> None:
    result = run("diagram", "definitions/krisesenter.yaml")
    assert result.code == 0, result
    assert result.stdout.startswith("stateDiagram-v2\n")
    for phase in load_definition(KRISESENTER).phases:
        assert f'state "{phase.title.nb}" as {phase.id}' in result.stdout, phase.id


def test_diagram_in_english_uses_the_english_titles() -> None:
    result = run("diagram", "definitions/krisesenter.yaml", "--lang", "en")
    assert result.code == 0, result
    assert result.stdout.startswith("stateDiagram-v2\n")
    for phase in load_definition(KRISESENTER).phases:
        assert f'state "{phase.title.en}" as {phase.id}' in result.stdout, phase.id
        if phase.title.en != phase.title.nb:
            assert phase.title.nb not in result.stdout


def test_diagram_of_a_broken_file_prints_its_problems_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(broken(UNKNOWN_NEEDS), encoding="utf-8")
    result = run("diagram", path)
    assert result.code == 2, result
    assert "stateDiagram" not in result.stdout
    assert f"{path}:" in result.stderr


def test_the_committed_json_schema_is_current() -> None:
    result = run("schema", "--output", "definitions/pathway.schema.json", "--check")
    assert result.code == 0, result


def test_schema_check_fails_on_an_outdated_schema_file(tmp_path: Path) -> None:
    stale = tmp_path / "pathway.schema.json"
    stale.write_text(SCHEMA.read_text(encoding="utf-8").replace('"title"', '"titel"', 1), encoding="utf-8")
    result = run("schema", "--output", stale, "--check")
    assert result.code == 1, result
    assert "out of date" in result.stderr


# -- database and cases -------------------------------------------------------------------------------------


def test_db_upgrade_creates_the_database(fresh_database: Database) -> None:
    assert not fresh_database.path.exists()
    result = fresh_database.run("db", "upgrade")
    assert result.code == 0, result
    assert fresh_database.path.exists()
    assert fresh_database.count("pathway_case") == 0
    # The live version only: the examples in definitions/examples/ are not live.
    assert f"krisesenter v{LIVE}\n" in result.stderr and f"krisesenter v{NEXT}" not in result.stderr


@pytest.mark.dated  # the calendar is the CLI's own here
def test_opening_a_case_prints_a_reference_for_the_current_year(database: Database) -> None:
    year = datetime.now(OSLO).year
    first = database.open_case("--condition", "children")
    second = database.open_case()
    assert re.fullmatch(rf"BGO-{year}-\d{{4}}", first), first
    assert re.fullmatch(rf"BGO-{year}-\d{{4}}", second), second
    assert first != second
    assert database.count("pathway_case") == 2


def test_show_prints_the_phase_and_the_first_checkpoints(database: Database, case: str) -> None:
    result = database.ok("case", "show", case, *ACTOR)
    assert re.search(r"\bstep\b.*\bname\b.*\bstate\b.*\bdue \(Oslo\).*\boverdue\b", result.stdout), result
    assert case in result.stdout
    assert "phase: intake" in result.stdout
    assert "version: 1" in result.stdout
    assert "K1#1" in result.stdout
    assert "K5#1" in result.stdout  # the case has children
    assert "allowed now:" in result.stdout


def test_show_json_gives_the_pathway_phase_and_version(database: Database, case: str) -> None:
    snapshot = database.snapshot(case)
    assert snapshot["reference"] == case
    assert snapshot["pathway"] == ["krisesenter", LIVE]
    assert snapshot["phase"] == "intake"
    assert snapshot["version"] == 1
    assert snapshot["conditions"] == ["children"]
    assert step_states(snapshot)["K1"] == "active"


def test_showing_an_unknown_case_exits_1(database: Database) -> None:
    result = database.run("case", "show", "BGO-1999-9999", *ACTOR)
    assert result.code == 1, result
    assert "not found" in result.stderr


def test_the_cli_acts_as_a_user_the_access_policy_lets_at_the_case(database: Database, case: str) -> None:
    """--as names a real user, and the API's rules apply to them: a coordinator of another unit, an administrator and
    a name that is no user are refused, change nothing, and the refusals are in the access log like the API's."""
    database.add_user("other-coordinator", "--role", "coordinator", "--unit", "other-unit")
    for actor, says in (("other-coordinator", "not a case of their unit"), ("tester-admin", "not a case of their unit"),
                        ("nobody", "no active user")):
        result = database.run("case", "complete", case, "K1", "--as", actor)
        assert result.code == 1, result
        assert says in result.line_with("may not"), result
        assert database.run("case", "show", case, "--as", actor).code == 1
    refused = database.query("SELECT username, action, status, client FROM access_log WHERE status <> 200")
    assert ("other-coordinator", "case.complete", 403, "cli") in refused and ("tester-admin", "case.read", 403, "cli") \
        in refused
    assert database.snapshot(case)["version"] == 1
    opened_elsewhere = database.run("case", "open", "--unit", "other-unit", *ACTOR)
    assert opened_elsewhere.code == 1 and "open a case in unit 'other-unit'" in opened_elsewhere.stderr
    migrate = database.run("migrate", "--from", "1", "--to", "1", "--map", KRISESENTER, *ACTOR)
    assert migrate.code == 1 and "an administrator does" in migrate.stderr


def test_every_cli_read_and_write_of_a_case_is_in_the_access_log(database: Database, case: str) -> None:
    database.ok("case", "complete", case, "K1", *ACTOR)
    database.ok("case", "show", case, *ACTOR)
    database.ok("case", "list", *ACTOR)
    rows = database.query("SELECT username, action, case_reference, status, client FROM access_log "
                          "WHERE action NOT LIKE 'user.%' ORDER BY at")  # the fixture's users are logged too
    assert rows == [("tester", "case.open", case, 200, "cli"), ("tester", "case.complete", case, 200, "cli"),
                    ("tester", "case.read", case, 200, "cli"), ("tester", "case.list", None, 200, "cli")]
    # ... and each change's event says it came through the CLI
    assert database.query("SELECT operation, channel FROM case_event ORDER BY seq") == [("open", "cli"),
                                                                                      ("complete", "cli")]


def test_completing_a_checkpoint_records_it_and_raises_the_version(database: Database, case: str) -> None:
    result = database.ok("case", "complete", case, "K1", *ACTOR)
    assert f"{case}: phase intake, version 2" in result.stdout
    snapshot = database.snapshot(case)
    assert snapshot["version"] == 2
    assert step_states(snapshot)["K1"] == "done"


def test_completing_with_the_current_version_works(database: Database, case: str) -> None:
    database.ok("case", "complete", case, "K1", *ACTOR, "--version", "1")
    assert database.snapshot(case)["version"] == 2


def test_a_stale_version_is_refused_and_nothing_changes(database: Database, case: str) -> None:
    database.ok("case", "complete", case, "K1", *ACTOR)
    before = database.snapshot(case)
    result = database.run("case", "complete", case, "K2", *ACTOR, "--version", "1")
    assert result.code == 1, result
    line = result.line_with("changed by someone else")
    assert case in line
    assert "version 1 was given" in line and "now at version 2" in line
    after = database.snapshot(case)
    assert after["version"] == before["version"] == 2
    assert step_states(after)["K2"] == "active"
    assert after == before


def test_a_version_the_case_has_not_reached_is_refused_naming_both(database: Database, case: str) -> None:
    result = database.run("case", "complete", case, "K1", *ACTOR, "--version", "2")
    assert result.code == 1, result
    line = result.line_with("error:")
    assert case in line and "at version 1" in line and "version 2 was given" in line
    assert "someone else" not in line  # nobody changed it: the number given is wrong
    assert step_states(database.snapshot(case))["K1"] == "active"


def test_list_names_every_column_and_says_how_many_it_leaves_out(database: Database) -> None:
    references = [database.open_case() for _ in range(3)]
    database.ok("case", "pause", references[0], *ACTOR, "--reason", "synthetic: in hospital")
    result = database.ok("case", "list", "--limit", "2", *ACTOR)
    header = next(line for line in result.stdout.splitlines() if "reference" in line)
    assert re.search(r"\breference\b.*\bphase\b.*\bunit\b.*\bnext deadline \(Oslo\).*\bstatus\b", header), result
    assert sum(ref in result.stdout for ref in references) == 2
    assert result.stderr.strip() == "showing 2 of 3; use --limit N or --all for more"

    everything = database.ok("case", "list", "--all", *ACTOR)
    assert all(ref in everything.stdout for ref in references)
    assert "paused" in everything.line_with(references[0])
    assert "showing" not in everything.output
    assert "showing" not in database.ok("case", "list", *ACTOR).output  # 3 of 3 under the default limit of 50


def test_an_operation_not_allowed_names_the_phase_and_the_allowed_operations(database: Database, case: str) -> None:
    result = database.run("case", "complete", case, "K6", *ACTOR)
    assert result.code == 1, result
    line = result.line_with("not allowed")
    assert "'intake'" in line
    assert "allowed now:" in line
    assert "advance:start_support" in line
    assert database.snapshot(case)["version"] == 1


def test_advancing_without_the_required_checkpoints_is_refused(database: Database, case: str) -> None:
    result = database.run("case", "advance", case, "start_support", *ACTOR)
    assert result.code == 1, result
    line = result.line_with("not allowed")
    assert "K1" in line and "K2" in line
    assert database.snapshot(case)["phase"] == "intake"


def test_a_handover_without_consent_is_refused_naming_the_agency(database: Database, case: str) -> None:
    move_to_support(database, case)
    before = database.snapshot(case)
    result = database.run("case", "handover", case, "K6", *ACTOR)
    assert result.code == 1, result
    line = result.line_with("refused")
    assert "'police'" in line
    assert "consent" in line
    assert database.snapshot(case) == before


def test_a_handover_with_consent_creates_a_task(database: Database, case: str) -> None:
    move_to_support(database, case)
    database.ok("case", "consent", case, "police", *ACTOR,
                "--scope", "name", "--scope", "contact", "--scope", "threat_assessment")
    database.ok("case", "handover", case, "K6", *ACTOR)
    result = database.ok("case", "show", case, *ACTOR)
    assert "consent police: given" in result.stdout
    assert re.search(r"handover \S+ K6 → police: ", result.stdout), result


def test_a_backdated_first_contact_without_a_reason_is_refused(database: Database) -> None:
    two_days_ago = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(timespec="minutes")
    result = database.run("case", "open", "--unit", "test-unit", *ACTOR, "--first-contact", two_days_ago)
    assert result.code == 1, result
    assert "reason" in result.line_with("error:")
    assert database.count("pathway_case") == 0


@pytest.mark.dated  # the calendar is the CLI's own here
def test_a_backdated_first_contact_with_a_reason_starts_the_clock_then(database: Database) -> None:
    first_contact = (datetime.now(timezone.utc) - timedelta(days=2)).replace(second=0, microsecond=0)
    reference = database.open_case("--first-contact", first_contact.isoformat(),
                                   "--reason", "registered late: synthetic test")
    snapshot = database.snapshot(reference)
    assert datetime.fromisoformat(snapshot["opened_at"]) == first_contact


def test_a_first_contact_that_is_not_a_time_is_a_usage_error(database: Database) -> None:
    result = database.run("case", "open", "--unit", "test-unit", *ACTOR, "--first-contact", "yesterday-ish")
    assert result.code == 2, result
    assert database.count("pathway_case") == 0


# -- audit --------------------------------------------------------------------------------------------------


def test_audit_verify_passes_on_an_intact_database(database: Database, case: str) -> None:
    move_to_support(database, case)
    result = database.run("audit", "verify")
    assert result.code == 0, result
    assert re.search(r"^1 case, \d+ events: chain intact$", result.stderr, re.MULTILINE), result


def test_audit_verify_names_the_case_and_event_whose_reason_was_edited(database: Database, case: str) -> None:
    database.ok("case", "skip", case, "K5", *ACTOR, "--reason", "synthetic: no children after all")
    database.ok("case", "complete", case, "K1", *ACTOR)
    [(seq,)] = database.query(
        "SELECT seq FROM case_event WHERE reason IS NOT NULL"
        " AND case_id = (SELECT id FROM pathway_case WHERE reference = ?)", (case,))
    assert database.execute(
        "UPDATE case_event SET reason = 'synthetic: rewritten afterwards' WHERE seq = ?"
        " AND case_id = (SELECT id FROM pathway_case WHERE reference = ?)", (seq, case)) == 1
    result = database.run("audit", "verify")
    assert result.code == 1, result
    line = result.line_with(f"event {seq}")
    assert case in line
    assert "altered" in line


def test_audit_verify_notices_that_the_last_event_of_a_case_was_deleted(database: Database, case: str) -> None:
    other = database.open_case()
    database.ok("case", "complete", case, "K1", *ACTOR)
    assert database.execute(
        "DELETE FROM case_event WHERE case_id = (SELECT id FROM pathway_case WHERE reference = ?)"
        " AND seq = (SELECT max(seq) FROM case_event WHERE case_id ="
        " (SELECT id FROM pathway_case WHERE reference = ?))", (case, case)) == 1
    result = database.run("audit", "verify")
    assert result.code == 1, result
    assert case in result.line_with("deleted")
    assert other not in result.stdout


# -- demo ---------------------------------------------------------------------------------------------------


def test_demo_seeds_the_requested_number_of_cases_and_the_chain_verifies(fresh_database: Database) -> None:
    result = fresh_database.run("demo", "--cases", "20")
    assert result.code == 0, result
    assert "20 synthetic cases" in result.stdout
    assert fresh_database.query("SELECT count(*) FROM pathway_case WHERE parent_id IS NULL") == [(20,)]
    children = fresh_database.query("SELECT count(*) FROM pathway_case WHERE parent_id IS NOT NULL")[0][0]
    assert children > 0, "the demo's children have pathways of their own"
    verify = fresh_database.run("audit", "verify")
    assert verify.code == 0, verify
    assert f"{20 + children} cases" in verify.stderr


def test_demo_is_refused_in_production_even_with_production_keys(fresh_database: Database) -> None:
    keys = {"FORLOP_ENV": "production", "FORLOP_ENCRYPTION_KEYS": f"prod:{run('keys', 'new').stdout.strip()}",
            "FORLOP_INDEX_KEY": run("keys", "new").stdout.strip(),
            "FORLOP_WEBHOOK_SECRET": run("keys", "new").stdout.strip()}
    result = fresh_database.run("demo", env=keys)
    assert result.code != 0, result
    assert "demo" in result.stderr and "refused" in result.stderr
    assert not fresh_database.path.exists()


def test_demo_is_refused_in_production_with_the_development_keys(fresh_database: Database) -> None:
    result = fresh_database.run("demo", env={"FORLOP_ENV": "production"})
    assert result.code != 0, result
    assert "development key" in result.stderr
    assert not fresh_database.path.exists()


# -- migrating cases to a new definition version ----------------------------------------------------------------


@pytest.fixture(scope="session")
def migration_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A definitions directory with a copy of the shipped pathway (v2), and a database with one case on it
    in the support phase (so K8 is in use). Copied for each test."""
    directory = tmp_path_factory.mktemp("migration")
    (directory / "definitions").mkdir()
    shutil.copy(KRISESENTER, directory / "definitions" / "krisesenter.yaml")
    database = Database(directory / "forlop.db", {**UNITS, "FORLOP_DEFINITIONS_DIR": str(directory / "definitions")})
    database.ok("db", "upgrade")
    database.add_user("tester", "--role", "coordinator", "--unit", "test-unit")
    database.add_user("tester-admin", "--role", "admin")
    reference = database.open_case()
    move_to_support(database, reference)
    assert "K8" in step_states(database.snapshot(reference))
    return directory, reference


@pytest.fixture
def migrating(tmp_path: Path, migration_template: tuple[Path, str]) -> tuple[Database, str]:
    """The template's case on the live version, and a new definition file of the next version in which K8 is renamed
    K8b."""
    template, reference = migration_template
    definitions = tmp_path / "definitions"
    shutil.copytree(template / "definitions", definitions)
    database = Database(tmp_path / "forlop.db", {**UNITS, "FORLOP_DEFINITIONS_DIR": str(definitions)})
    copy_database(template / "forlop.db", database.path)

    text = (definitions / "krisesenter.yaml").read_text(encoding="utf-8")
    text, versions = re.subn(rf"^version: {LIVE}$", f"version: {NEXT}", text, flags=re.MULTILINE)
    text, renamed = re.subn(r"^(\s*- code: )K8$", r"\1K8b", text, flags=re.MULTILINE)
    assert (versions, renamed) == (1, 1)
    assert not re.search(r"\bK8\b", text), "the live version refers to K8 elsewhere: update this fixture"
    (definitions / f"krisesenter-v{NEXT}.yaml").write_text(text, encoding="utf-8")
    assert run("validate", definitions / f"krisesenter-v{NEXT}.yaml").code == 0
    return database, reference


def write_map(path: Path, *, without: str | None = None) -> Path:
    codes = [c.code for c in load_definition(KRISESENTER).checkpoints if c.code != without]
    path.write_text("".join(f"{code}: {'K8b' if code == 'K8' else code}\n" for code in codes), encoding="utf-8")
    return path


def test_migrate_refuses_a_map_that_misses_a_checkpoint_in_use(migrating: tuple[Database, str], tmp_path: Path) -> None:
    database, reference = migrating
    mapping = write_map(tmp_path / "map.yaml", without="K8")
    result = database.run("migrate", "--from", str(LIVE), "--to", str(NEXT), "--map", mapping, *ADMIN, "--apply")
    assert result.code == 2, result
    assert "K8" in result.line_with("not mapped")
    assert database.snapshot(reference)["pathway"] == ["krisesenter", LIVE]


def test_migrate_dry_run_reports_the_count_and_moves_nothing(migrating: tuple[Database, str], tmp_path: Path) -> None:
    database, reference = migrating
    before = database.snapshot(reference)
    result = database.run("migrate", "--from", str(LIVE), "--to", str(NEXT), "--map", write_map(tmp_path / "map.yaml"), *ADMIN)
    assert result.code == 0, result
    assert "would move 1" in result.stdout
    assert "dry run" in result.stdout
    after = database.snapshot(reference)
    assert after["pathway"] == ["krisesenter", LIVE]
    assert after == before


def test_migrate_apply_moves_the_case_and_the_chain_still_verifies(migrating: tuple[Database, str],
                                                                    tmp_path: Path) -> None:
    database, reference = migrating
    result = database.run("migrate", "--from", str(LIVE), "--to", str(NEXT), "--map", write_map(tmp_path / "map.yaml"), *ADMIN,
                          "--apply")
    assert result.code == 0, result
    assert "moved 1" in result.stdout
    snapshot = database.snapshot(reference)
    assert snapshot["pathway"] == ["krisesenter", NEXT]
    assert "K8b" in step_states(snapshot) and "K8" not in step_states(snapshot)
    verify = database.run("audit", "verify")
    assert verify.code == 0, verify


def test_migrate_from_an_unknown_version_exits_2_without_a_stack_trace(migrating: tuple[Database, str],
                                                                      tmp_path: Path) -> None:
    database, _ = migrating
    result = database.run("migrate", "--from", "7", "--to", str(NEXT), "--map", write_map(tmp_path / "map.yaml"), *ADMIN)
    assert result.code == 2, result
    assert "v7" in result.line_with("error:")


def test_the_shipped_example_next_version_and_its_mapping_move_a_case_in_support(database: Database,
                                                                                   case: str) -> None:
    """definitions/examples/: the next version adds a safety-plan review with the police as K8 and renumbers the live
    K8-K15 as K9-K16."""
    move_to_support(database, case)
    before = step_states(database.snapshot(case))
    assert before["K8"] == "pending" and "K16" not in before
    database.ok("db", "upgrade", env={"FORLOP_DEFINITIONS_DIR": str(EXAMPLES / f"krisesenter-v{NEXT}")})
    result = database.ok("migrate", "--from", str(LIVE), "--to", str(NEXT), "--map", EXAMPLES / f"krisesenter-v{LIVE}-to-v{NEXT}.yaml",
                         *ADMIN, "--apply")
    assert f"1 open case on krisesenter v{LIVE}; moved 1 to v{NEXT}" in result.stdout
    snapshot = database.snapshot(case)
    after = step_states(snapshot)
    assert snapshot["pathway"] == ["krisesenter", NEXT]
    assert after["K9"] == before["K8"] and after["K10"] == before["K9"] and after["K14"] == before["K13"]
    assert after["K8"] == "pending"  # the new review with the police, until consent (K4) and their handover (K6)
    database.ok("audit", "verify")


# -- keys ---------------------------------------------------------------------------------------------------


def test_keys_new_prints_a_fresh_32_byte_key_each_time() -> None:
    first, second = run("keys", "new"), run("keys", "new")
    assert first.code == second.code == 0
    key = first.stdout.strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != second.stdout.strip()


def test_key_rotation_rewraps_each_demo_case_key_once_and_rewrites_no_record(fresh_database: Database) -> None:
    fresh_database.ok("demo", "--cases", "12")
    cases = fresh_database.count("pathway_case")
    assert fresh_database.count("child_record") > 0
    records = fresh_database.query("SELECT case_id, ciphertext FROM person UNION ALL "
                                   "SELECT case_id, ciphertext FROM child_record ORDER BY 1")
    env = {"FORLOP_ENCRYPTION_KEYS": f"new:{run('keys', 'new').stdout.strip()},{DEV_ENCRYPTION_KEYS}"}
    first = fresh_database.ok("keys", "rotate", env=env)
    assert f"{cases} case keys re-wrapped under key 'new' (no record or text rewritten)" in first.stdout
    assert fresh_database.query("SELECT DISTINCT master_key_id FROM case_key") == [("new",)]
    assert fresh_database.query("SELECT case_id, ciphertext FROM person UNION ALL "
                                "SELECT case_id, ciphertext FROM child_record ORDER BY 1") == records
    second = fresh_database.ok("keys", "rotate", env=env)
    assert "0 case keys re-wrapped" in second.stdout


def test_a_malformed_key_list_is_an_error_not_a_stack_trace(database: Database) -> None:
    result = database.run("keys", "rotate", env={"FORLOP_ENCRYPTION_KEYS": "not-a-key-list"})
    assert result.code != 0, result
    assert "error:" in result.stderr


@pytest.mark.dated  # the calendar is the CLI's own here
def test_reports_snapshot_stores_every_tertials_figures_of_every_unit(fresh_database: Database) -> None:
    fresh_database.ok("demo", "--cases", "30")
    help_text = fresh_database.ok("reports", "snapshot", "--help").stdout
    assert "FORLOP_REPORT_SNAPSHOT_MINUTES" in help_text
    result = fresh_database.ok("reports", "snapshot")
    written = int(re.search(r"report snapshots: (\d+) written", result.line_with("report snapshots")).group(1))
    units = {u for (u,) in fresh_database.query("SELECT unit FROM pathway_case UNION SELECT unit FROM user_account "
                                                "WHERE unit IS NOT NULL")}  # units with figures or managers
    rows = fresh_database.query("SELECT period_start, unit FROM report_snapshot WHERE period = 'tertial'")
    tertials = {start for start, _ in rows}
    assert len(tertials) == 10  # three years of tertials and the current one
    # per tertial: every unit with figures or staff, all units ("*") and each unit side by side ("#units")
    assert written == len(rows) == len(tertials) * (len(units) + 2)
    assert {u for _, u in rows} == units | {"*", "#units"}
    fresh_database.ok("reports", "snapshot")  # run again: the current tertial replaced, never added
    assert fresh_database.count("report_snapshot") == written
