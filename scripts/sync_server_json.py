"""Rewrite server.json's environment variables from the Settings model (run after adding a setting).

    python scripts/sync_server_json.py

tests/test_packaging.py fails when a setting is missing from server.json; this keeps the two in step.
"""

from __future__ import annotations

import json
from pathlib import Path

from gems_mcp.config import Settings

MANIFEST = Path(__file__).resolve().parent.parent / "server.json"


def main() -> None:
    manifest = json.loads(MANIFEST.read_text())
    package = manifest["packages"][0]
    variables = []
    for name, field in Settings.model_fields.items():
        entry: dict[str, object] = {"name": f"GEMS_{name.upper()}", "description": field.description, "isRequired": False}
        if "token" in name or "SecretStr" in str(field.annotation):
            entry["isSecret"] = True
        if field.default_factory is None and field.default is not None:
            default = field.default
            entry["default"] = str(default).lower() if isinstance(default, bool) else str(default)
        variables.append(entry)
    package["environmentVariables"] = variables
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"{MANIFEST}: {len(variables)} variables")


if __name__ == "__main__":
    main()
