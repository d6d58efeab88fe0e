"""Fixtures for the memory tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gems_mcp.memory.store import MemoryStore


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    """The GEMS_HOME the autouse fixture points at."""
    return Path(_isolated_home)


@pytest.fixture
def store(home: Path) -> MemoryStore:
    return MemoryStore(home)
