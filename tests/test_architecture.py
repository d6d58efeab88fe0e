"""The house rules of ARCHITECTURE.md, checked on the source: one-way imports, room sizes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gems_mcp"

# Lower ranks never import higher ones. Keys are module paths relative to gems_mcp/ (a folder
# stands for everything in it).
LAYERS = {
    "errors": 0, "boxes": 0, "checks": 0, "types": 0, "config": 0, "uris": 0, "inputs": 0,
    "images": 1, "generation": 1, "critique": 1, "memory": 1, "skills": 1,
    "shapes": 2,
    "params": 3, "guide": 3, "checklist": 3, "rounds": 3, "verdicts": 3, "results": 3, "loop": 3, "backends": 3,
    "server": 4, "advice": 4, "commands": 4, "gallery": 4, "arguments": 4, "http": 4,
    "bench": 5,
    "cli": 6, "__init__": 6, "__main__": 6,  # the entry points: the CLI imports the bench lazily
}
GENERIC = {name for name, rank in LAYERS.items() if rank <= 1}


def _room(module: str) -> str:
    """'gems_mcp.generation.base' -> 'generation'; 'gems_mcp' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "__init__"


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every gems_mcp module a file imports, at any depth (lazy imports count too), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names] if node.module == "gems_mcp" else [node.module]
            found += [(n, node.lineno) for n in names if n.startswith("gems_mcp")]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("gems_mcp")]
    return found


def _sources() -> list[tuple[Path, str]]:
    return [(p, _room("gems_mcp." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts))) for p in PACKAGE.rglob("*.py")]


def test_every_module_has_a_layer():
    assert {room for _, room in _sources()} <= set(LAYERS)


def test_imports_point_down_or_sideways_never_up():
    upward = []
    for path, room in _sources():
        for module, line in _imports(path):
            target = _room(module)
            if target == "__init__":
                continue  # the package root holds only main() and the version string
            if LAYERS[target] > LAYERS[room]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert upward == []


def test_no_generic_layer_knows_the_shapes_world_or_the_bench():
    leaks = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path, room in _sources() if room in GENERIC
        for module, line in _imports(path) if _room(module) in ("shapes", "bench")
    ]
    assert leaks == []


def test_generation_and_critique_meet_only_through_their_protocols():
    crossings = []
    for path, room in _sources():
        other = {"generation": "critique", "critique": "generation"}.get(room)
        for module, line in _imports(path):
            if other and _room(module) == other and module != f"gems_mcp.{other}.base":
                crossings.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert crossings == []


@pytest.mark.parametrize(("limit", "what"), [(450, "module")])
def test_rooms_stay_small(limit, what):
    big = [str(p.relative_to(PACKAGE.parent)) for p, _ in _sources() if len(p.read_text().splitlines()) > limit]
    assert big == [], f"{what}s over {limit} lines"


def test_no_class_grows_past_250_lines():
    big = []
    for path, _ in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250:
                big.append(f"{path.relative_to(PACKAGE.parent)}:{node.name}")
    assert big == []


def test_the_server_loads_without_the_bench_the_shapes_world_or_torch():
    # bm25s brings scipy: lessons load it when they rank, not at every start
    heavy = "('gems_mcp.bench', 'gems_mcp.shapes', 'torch', 'diffusers', 'bm25s', 'scipy', 'transformers', 'ray')"
    code = f"import sys, gems_mcp.server\nprint(' '.join(m for m in sys.modules if m.startswith({heavy})))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
