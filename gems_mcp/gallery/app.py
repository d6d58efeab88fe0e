"""The MCP App (SEP-1865): `ui://gems/trajectory`, the trajectory's rounds and verdicts inside the chat.

generate and refine carry `_meta.ui.resourceUri` pointing at it; hosts that render MCP Apps show it
next to the result, others ignore the key and see the result as before.
"""

from __future__ import annotations

from typing import Any

from mcp.server.apps import Apps, ResourceCsp

from gems_mcp.gallery.pages import app_html

APP_URI = "ui://gems/trajectory"
# `ui/resourceUri` is the key hosts read before the extension settled on `ui.resourceUri`.
TOOL_META: dict[str, Any] = {"ui": {"resourceUri": APP_URI}, "ui/resourceUri": APP_URI}


def trajectory_app() -> Apps:
    """The Apps extension holding the trajectory view; pass it to MCPServer(extensions=[...])."""
    apps = Apps()
    apps.add_html_resource(
        APP_URI, app_html(), name="trajectory view", title="GEMS trajectory",
        description="The trajectory's rounds, images and verdicts; follows new rounds while it is active.",
        # Everything arrives through the host (resources/read): no network, images as data: URLs.
        csp=ResourceCsp(connect_domains=[], resource_domains=[]), prefers_border=True,
    )
    return apps
