"""See the loop: the web gallery of trajectories and the in-chat MCP App (`ui://gems/trajectory`).

`register(mcp, loop)` adds both to the MCP server: the gallery's routes under `/gallery` (served by
`serve --transport http`) and the app's `_meta` for generate and refine. `gems-mcp gallery` serves the
same routes on their own for stdio users (`standalone_app`).
"""

from __future__ import annotations

from gems_mcp.gallery.announce import announced, gallery_url
from gems_mcp.gallery.app import APP_URI, TOOL_META, trajectory_app
from gems_mcp.gallery.routes import register_routes, standalone_app

__all__ = [
    "APP_URI",
    "TOOL_META",
    "announced",
    "gallery_url",
    "register_routes",
    "standalone_app",
    "trajectory_app",
]
