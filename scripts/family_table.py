"""Write the README's family support table from the family matrix (tests/families).

Each row is one family of the matrix: its tiny pipeline is built from configs (nothing downloaded)
and asked which path each lever takes, exactly as the server decides it when GEMS_MODEL loads
that family. Every row is a family the lever battery (tests/families/test_levers.py) and the
stdio battery (tests/families/test_stdio_families.py) run.

Usage: python scripts/family_table.py            rewrite the table in README.md
       python scripts/family_table.py --check    exit 1 when README.md's table differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

README = ROOT / "README.md"
START, END = "<!-- family-table:start (scripts/family_table.py writes it) -->", "<!-- family-table:end -->"


def lever_path(levers: object, task: str) -> str:
    pipe, generic = levers.get(task, task)  # type: ignore[attr-defined]
    return "generic latent path" if generic else f"`{type(pipe).__name__}`"


def rows() -> list[str]:
    """One markdown row per family in the matrix."""
    import torch

    from gems_mcp.generation.levers import Levers
    from gems_mcp.generation.loading import accepts
    from tests.families.builders import FAMILIES

    lines = []
    for family in FAMILIES.values():
        torch.manual_seed(0)
        pipe = family.build()
        levers = Levers(pipe)
        negative = "yes" if accepts(pipe, "negative_prompt") else "no"
        lines.append(
            f"| {family.title} | `{type(pipe).__name__}` | {lever_path(levers, 'image-to-image')} | "
            f"{lever_path(levers, 'inpainting')} | {negative} | {family.note} |"
        )
    return lines


def table() -> str:
    header = [
        "| family | pipeline | edit | inpaint and layout | negative prompt | notes |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join([START, *header, *rows(), END])


def replaced(readme: str, new_table: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} ... {END} section")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return before + new_table + after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's table is not what this writes")
    args = parser.parse_args()
    readme = README.read_text()
    updated = replaced(readme, table())
    if args.check:
        if updated != readme:
            print("README.md's family table is out of date: run python scripts/family_table.py", file=sys.stderr)
            sys.exit(1)
        print("README.md's family table is up to date")
        return
    README.write_text(updated)
    print(f"wrote the family table ({len(updated.splitlines())} lines) to {README}")


if __name__ == "__main__":
    main()
