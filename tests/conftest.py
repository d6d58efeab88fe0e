"""Shared fixtures: all user state goes to a temp folder, nothing reaches a hub."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend():
    """Async tests (`@pytest.mark.anyio`) run on asyncio, like the server."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("gems-home")
    monkeypatch.setenv("GEMS_HOME", str(home))
    monkeypatch.delenv("GEMS_MODEL", raising=False)
    monkeypatch.delenv("GEMS_SKILLS_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home
