"""The Claude Desktop bundle's entry point: gems-mcp over stdio, started by `uv run` inside the bundle.

The bundle's pyproject.toml makes uv install the gems-mcp package; this file only starts its server.
"""

from __future__ import annotations

import os
import sys


def forget_unfilled_settings() -> None:
    """Drop GEMS_* variables that still hold a `${user_config.*}` placeholder: the host had no value for them.

    An empty value needs nothing here: gems-mcp treats an empty GEMS_* variable as unset.
    """
    for name in [n for n in os.environ if n.startswith("GEMS_")]:
        if os.environ[name].strip().startswith("${user_config."):
            del os.environ[name]


def main() -> None:
    forget_unfilled_settings()
    from gems_mcp import main as gems_main

    sys.argv = ["gems-mcp", "serve"]
    gems_main()


if __name__ == "__main__":
    main()
