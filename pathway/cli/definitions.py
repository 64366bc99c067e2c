"""Commands on pathway definitions: validate, diagram, schema, and migrate open cases between versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from pathway.cli.common import Actor, DatabaseUrl, _core, _count, _fail, _progress, app, err, out
from pathway.errors import DefinitionError, ForlopError


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Definition files (YAML).")]) -> None:
    """Check pathway definitions; print every problem as file:line:column: field: message (exit 2 on any)."""
    from pathway.definition import load_definition

    failed = 0
    for path in files:
        try:
            definition = load_definition(path)
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                out.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        else:
            checkpoints = _count(len(definition.checkpoints), "checkpoint")
            err.print(f"{path}: ok ({definition.id} v{definition.version}, {checkpoints})",
                      markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)


@app.command()
def diagram(
    file: Annotated[Path, typer.Argument(help="A definition file (YAML).")],
    lang: Annotated[str, typer.Option(help="nb or en")] = "nb",
) -> None:
    """Print the pathway as a Mermaid state diagram."""
    from pathway.definition import load_definition
    from pathway.machine import mermaid

    try:
        definition = load_definition(file)
    except DefinitionError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    sys.stdout.write(mermaid(definition, lang="en" if lang == "en" else "nb"))


@app.command()
def schema(
    output: Annotated[Optional[Path], typer.Option(help="Write here instead of standard output.")] = None,
    check: Annotated[bool, typer.Option(help="Exit 1 if OUTPUT differs from the current schema.")] = False,
) -> None:
    """Print (or write) the JSON Schema of the definition format, for editors."""
    from pathway.definition import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    elif check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            err.print(f"{output} is out of date; run `forlop schema --output {output}`")
            raise typer.Exit(1)
    else:
        output.write_text(text, encoding="utf-8")


def _version_of(text: str, pathway_id: str) -> tuple[str, int]:
    name, _, version = text.rpartition("@")
    try:
        return (name or pathway_id, int(version.lstrip("v")))
    except ValueError:
        raise typer.BadParameter(f"expected a version like 2 or krisesenter@2, not {text!r}") from None


@app.command()
def migrate(
    from_version: Annotated[str, typer.Option("--from", help="Version the open cases are on (2 or krisesenter@2).")],
    to_version: Annotated[str, typer.Option("--to", help="Version to move them to.")],
    map_file: Annotated[Path, typer.Option("--map", help="YAML mapping old checkpoint code → new code.")],
    actor: Actor,
    pathway_id: Annotated[Optional[str], typer.Option(
        "--pathway", help="Pathway id; default FORLOP_DEFAULT_PATHWAY (krisesenter).")] = None,
    reason: Annotated[str, typer.Option("--reason", "-r")] = "pathway definition updated",
    apply: Annotated[bool, typer.Option("--apply", help="Really move the cases (default: dry run).")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Move open cases to a new definition version with an explicit checkpoint mapping (dry run by default)."""
    from ruamel.yaml import YAML

    from pathway import policy, services
    from pathway.errors import NotPermitted

    core = _core(database_url)
    try:
        with core.engine.connect() as conn:
            user = policy.acting_user(conn, actor)
        if not policy.may_migrate(user):
            raise NotPermitted(user.username, "move cases to another version of their pathway (an administrator does)")
    except ForlopError as exc:
        raise _fail(exc) from None
    try:
        pathway = pathway_id or core.settings.default_pathway
        source = core.catalog.resolve(*_version_of(from_version, pathway))
        target = core.catalog.resolve(*_version_of(to_version, pathway))
    except ForlopError as exc:
        raise _fail(exc, 2) from None
    try:
        mapping = YAML(typ="safe").load(map_file.read_text(encoding="utf-8")) or {}
    except Exception as exc:  # noqa: BLE001 - any YAML/IO failure is a usage error here
        err.print(f"{map_file}: cannot read the mapping: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        err.print(f"{map_file}:1:1: (mapping): expected old code: new code pairs", markup=False)
        raise typer.Exit(2)
    with _progress() as progress:
        task = progress.add_task("migrating" if apply else "checking", total=None)
        summary = services.migrate_cases(uow_factory=core.uow, source=source, target=target, mapping=mapping,
                                         actor=actor, reason=reason, apply=apply,
                                         progress=lambda n: progress.advance(task, n))
    if summary.unmapped:
        err.print(f"refused: checkpoints in use are not mapped: {', '.join(sorted(summary.unmapped))}",
                  markup=False, soft_wrap=True)
        raise typer.Exit(2)
    if summary.refused and not summary.moved:
        for why, n in summary.refused.items():
            err.print(f"refused ({n}): {why}", markup=False, soft_wrap=True)
        raise typer.Exit(2)
    verb = "moved" if apply else "would move"
    out.print(f"{_count(summary.open_cases, 'open case')} on {source.id} v{source.version}; {verb} {summary.moved} "
              f"to v{target.version}" + ("" if apply else " (dry run; add --apply)"))
    for why, n in summary.refused.items():
        out.print(f"  not moved ({n}): {why}", markup=False)
