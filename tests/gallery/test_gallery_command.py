"""`gems-mcp gallery`: the gallery on its own over GEMS_HOME, announced while it runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from gems_mcp.gallery import gallery_url


@pytest.mark.slow
def test_the_gallery_command_serves_the_home_and_announces_itself_until_stopped(tmp_path):
    env = {**os.environ, "GEMS_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gems_mcp", "gallery", "--port", "0", "--no-browser"],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/gallery)", line).group(1)
        deadline = time.monotonic() + 20
        while gallery_url(tmp_path) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gallery_url(tmp_path, "t-1") == f"{url}#t-1"
        with urllib.request.urlopen(f"{url}/api/trajectories", timeout=10) as response:
            assert json.load(response) == []
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"gems-mcp gallery" in response.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert gallery_url(tmp_path) is None and not (tmp_path / "gallery.json").exists()
