"""The two HTML documents, each one self-contained file: shared CSS and JS are inlined when served."""

from __future__ import annotations

import functools
from importlib import resources


def _static(name: str) -> str:
    return resources.files("gems_mcp.gallery").joinpath("static", name).read_text(encoding="utf-8")


def _assemble(page: str, **parts: str) -> str:
    html = _static(page)
    for placeholder, file in parts.items():
        html = html.replace(f"/*{placeholder}*/", _static(file))
    return html


@functools.cache
def gallery_html() -> str:
    """The gallery page: polls /gallery/api and draws every trajectory."""
    return _assemble("index.html", GALLERY_CSS="gallery.css", RENDER_JS="render.js", GALLERY_JS="gallery.js")


@functools.cache
def app_html() -> str:
    """The MCP App: one trajectory, read through the host."""
    return _assemble("app.html", GALLERY_CSS="gallery.css", RENDER_JS="render.js", APP_JS="app.js")
