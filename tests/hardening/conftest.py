"""The hardening tests start from no HTTP token, no allow-list and no retention, whatever the shell sets."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_security_settings(monkeypatch):
    for name in ("GEMS_HTTP_TOKEN", "GEMS_HTTP_ALLOWED_HOSTS", "GEMS_RETENTION_DAYS", "GEMS_MAX_LESSONS",
                 "GEMS_MAX_LESSONS_MB"):
        monkeypatch.delenv(name, raising=False)
