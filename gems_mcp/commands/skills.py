"""`gems-mcp skills list | show | check`: the skill library from the command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from gems_mcp.config import load_settings
from gems_mcp.errors import EXIT_FAILED, EXIT_OK, exit_code
from gems_mcp.skills import InvalidSkill, SkillLibrary, UnknownSkill, log


def add_skills_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `skills list|show|check` to an argparse subparsers object; handlers set args.func."""
    parser = subparsers.add_parser(
        "skills", help="list, show or check skills", description="Inspect the skill library."
    )
    commands = parser.add_subparsers(dest="skills_command", metavar="{list,show,check}", required=True)
    listing = commands.add_parser("list", help="one line per skill: id, source, description")
    listing.set_defaults(func=_cmd_list)
    show = commands.add_parser("show", help="a skill's instructions, checklist, defaults and references")
    show.add_argument("id", help="skill id, as in `skills list`")
    show.set_defaults(func=_cmd_show)
    check = commands.add_parser("check", help="validate the library, a folder of skills or one skill folder")
    check.add_argument("path", nargs="?", type=Path, help="folder to check instead of the configured library")
    check.set_defaults(func=_cmd_check)
    return parser


@contextlib.contextmanager
def _quiet_library() -> Iterator[None]:
    """The CLI prints problems itself; the library's warnings would repeat them on stderr."""
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _configured_library() -> SkillLibrary:
    with _quiet_library():
        return SkillLibrary.from_settings(load_settings())


def _cmd_list(args: argparse.Namespace) -> int:
    library = _configured_library()
    skills = library.skills()
    width = max((len(s) for s in skills), default=0)
    for skill_id, info in skills.items():
        print(f"{skill_id:<{width}}  {info.source:<7}  {_one_line(info.description)}")
    if library.errors:
        print(f"{len(library.errors)} skill(s) skipped; run `gems-mcp skills check` to see why", file=sys.stderr)
    return EXIT_OK


def _one_line(text: str, limit: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _cmd_show(args: argparse.Namespace) -> int:
    library = _configured_library()
    try:
        body = library.body(args.id)
    except UnknownSkill as exc:
        print(f"gems-mcp skills show: {exc}; `gems-mcp skills list` shows the ids", file=sys.stderr)
        return exit_code(exc)
    except InvalidSkill as exc:
        print(f"gems-mcp skills show: {exc}; `gems-mcp skills check` says what to fix", file=sys.stderr)
        return exit_code(exc)
    info = library.skills()[args.id]
    print(f"# {info.id} ({info.source}) {info.path}\n\n{info.description}\n\n{body.instructions}\n")
    if body.checklist:
        print("checklist:\n" + "\n".join(f"  - {q}" for q in body.checklist))
    defaults = body.defaults.model_dump(exclude_none=True)
    if defaults:
        print("defaults:\n" + "\n".join(f"  {k}: {v}" for k, v in defaults.items()))
    if body.examples:
        print("examples:\n" + "\n".join(f"  - {e}" for e in body.examples))
    if body.references:
        print("references:\n" + "\n".join(f"  - {r}" for r in body.references))
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    if args.path is None:
        library = _configured_library()
    else:
        with _quiet_library():
            library = SkillLibrary([args.path])
    problems = library.check()
    for problem in problems:
        print(problem)
    print(f"{len(library.skills())} skill(s) loaded, {len(problems)} problem(s)", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK
