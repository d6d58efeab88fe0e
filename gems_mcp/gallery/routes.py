"""The gallery's HTTP routes, on the MCP server (`serve --transport http`) or on their own (`gems-mcp gallery`).

    GET /gallery                          the page (HTML, CSS and JS in one document)
    GET /gallery/api/trajectories         newest first: id, intent, status, rounds, updated_at
    GET /gallery/api/trajectories/{id}    one trajectory as stored, its best round and its lessons
    GET /gallery/images/{image_id}.png    a full-size image
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gems_mcp.errors import NotFound
from gems_mcp.gallery import data
from gems_mcp.gallery.pages import gallery_html
from gems_mcp.images import ImageStore
from gems_mcp.memory.store import MemoryStore

Handler = Callable[[Request], Awaitable[Response]]

PREFIX = "/gallery"
# The page talks only to its own origin; images are same-origin PNGs.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def handlers(store: MemoryStore, images: ImageStore) -> dict[str, Handler]:
    """Path -> handler, reading trajectories from ``store`` and images from ``images``."""

    async def page(request: Request) -> Response:
        return HTMLResponse(gallery_html(), headers=_PAGE_HEADERS)

    async def trajectories(request: Request) -> Response:
        rows = await anyio.to_thread.run_sync(data.summaries, store)
        return JSONResponse(rows, headers={"Cache-Control": "no-store"})

    async def trajectory(request: Request) -> Response:
        trajectory_id = request.path_params["trajectory_id"]
        try:
            detail = await anyio.to_thread.run_sync(data.detail, store, trajectory_id)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(detail, headers={"Cache-Control": "no-store"})

    async def image(request: Request) -> Response:
        image_id = request.path_params["name"].removesuffix(".png")
        try:
            png = await anyio.to_thread.run_sync(images.png_bytes, image_id)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        # Image ids are hashes of the bytes: an id always names the same picture.
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=31536000, immutable",
                                 "X-Content-Type-Options": "nosniff"})

    return {
        PREFIX: page,
        f"{PREFIX}/": page,
        f"{PREFIX}/api/trajectories": trajectories,
        f"{PREFIX}/api/trajectories/{{trajectory_id}}": trajectory,
        f"{PREFIX}/images/{{name}}": image,
    }


def register_routes(mcp: Any, store: MemoryStore, images: ImageStore) -> None:
    """Add the gallery to an MCPServer's HTTP app (through custom_route, so the server's auth wraps it)."""
    for path, handler in handlers(store, images).items():
        mcp.custom_route(path, methods=["GET"], include_in_schema=False)(handler)


def standalone_app(home: Path, allowed_hosts: list[str] | None = None) -> Starlette:
    """The gallery alone over a GEMS home folder, for `gems-mcp gallery`; `/` leads to the page.

    ``allowed_hosts`` refuses requests whose Host header names another site (DNS rebinding).
    """
    store, images = MemoryStore(home), ImageStore(home / "images")

    async def root(request: Request) -> Response:
        return RedirectResponse(PREFIX + (f"?{request.url.query}" if request.url.query else ""))

    routes = [Route("/", root, methods=["GET"])]
    routes += [Route(path, handler, methods=["GET"]) for path, handler in handlers(store, images).items()]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware)
