"""Each family's tiny pipeline, saved once per test session and loaded the way GEMS_MODEL loads it."""

from __future__ import annotations

import pytest

from tests.families.builders import save


@pytest.fixture(scope="session")
def family_folder(tmp_path_factory):
    """``family_folder(name)``: the saved folder of a family's tiny pipeline (built on first use)."""
    root = tmp_path_factory.mktemp("families")
    built = {}

    def folder(name: str):
        if name not in built:
            built[name] = save(name, root / name)
        return built[name]

    return folder
