"""The README's family table is the one scripts/family_table.py writes from the family matrix."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "family_table.py"


def load_script():
    spec = importlib.util.spec_from_file_location("family_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_what_the_script_writes_from_the_matrix():
    script = load_script()
    readme = script.README.read_text()
    table = script.table()
    assert script.replaced(readme, table) == readme, "run python scripts/family_table.py"
    from tests.families.builders import FAMILIES

    body = readme.split(script.START, 1)[1].split(script.END, 1)[0]
    assert [line.split("|")[1].strip() for line in body.strip().splitlines()[2:]] == [f.title for f in FAMILIES.values()]
    for family in FAMILIES.values():
        row = next(line for line in body.splitlines() if line.startswith(f"| {family.title} |"))
        assert ("generic latent path" in row) != family.own_levers
