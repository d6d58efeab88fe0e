"""The HTTP surface: one Starlette app whose every route sits behind the same bearer token and Host check.

The SDK protects only its `/mcp` route (custom routes are public by design), and checks Host and
Origin only on loopback binds. `build_app` wraps the whole app instead: the SDK's own
`BearerAuthBackend` + `RequireAuthMiddleware` (401 with `WWW-Authenticate`) in front of every
route, `/mcp`, routes added with `custom_route`, and routes passed in alike; and the SDK's
`TransportSecurityMiddleware` checks Host/Origin for every route when an allow-list is set.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from gems_mcp.config import Settings
from gems_mcp.errors import BindRefused
from gems_mcp.gallery.login import GalleryCookieBackend, SignInRedirect, login_route

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MCP_PATH = "/mcp"


class StaticTokenVerifier:
    """The SDK's TokenVerifier for one shared secret, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.strip().encode(), self._token):
            return AccessToken(token="GEMS_HTTP_TOKEN", client_id="gems-http", scopes=[])
        return None


def verifier(settings: Settings) -> StaticTokenVerifier | None:
    token = settings.http_token
    return StaticTokenVerifier(token.get_secret_value().strip()) if token is not None else None


def auth_options(settings: Settings) -> dict[str, Any]:
    """MCPServer keyword arguments that put the SDK's bearer auth on /mcp when GEMS_HTTP_TOKEN is set."""
    token_verifier = verifier(settings)
    if token_verifier is None:
        return {}
    # No OAuth server here: the issuer is only a required field; no metadata routes are added
    # because resource_server_url is unset.
    return {"token_verifier": token_verifier,
            "auth": AuthSettings(issuer_url=AnyHttpUrl("http://127.0.0.1"), resource_server_url=None)}


def check_bind(host: str, settings: Settings) -> None:
    """Refuse a non-loopback bind without a token, in one sentence."""
    if host not in LOOPBACK and settings.http_token is None:
        raise BindRefused(
            f"refusing to serve HTTP on {host} without a token: anyone who reaches the port could generate and "
            "read every image, so set GEMS_HTTP_TOKEN (16+ characters, from `openssl rand -hex 32`) "
            "or bind to 127.0.0.1"
        )


def transport_security(host: str, settings: Settings) -> TransportSecuritySettings | None:
    """Host/Origin allow-list: the SDK's own for loopback; GEMS_HTTP_ALLOWED_HOSTS elsewhere."""
    if host in LOOPBACK:
        return None  # the SDK turns DNS-rebinding protection on for loopback by itself
    hosts = settings.allowed_hosts
    if not hosts:
        log.warning("HTTP on %s: Host and Origin headers are not checked; set GEMS_HTTP_ALLOWED_HOSTS", host)
        return None
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class _HostCheck:
    """The SDK's Host/Origin check in front of every route, not only /mcp."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self.check.validate_request(Request(scope, receive), is_post=False)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(
    server: Any, settings: Settings, *, host: str = "127.0.0.1", routes: Sequence[BaseRoute] = (),
    path: str = MCP_PATH,
) -> Starlette:
    """The whole HTTP app for `server` (an MCPServer): /mcp, its custom routes and `routes`, all behind one gate."""
    check_bind(host, settings)
    security = transport_security(host, settings)
    inner = server.streamable_http_app(streamable_http_path=path, transport_security=security, host=host)
    inner.router.routes.extend(routes)
    app: ASGIApp = inner
    middleware: list[Middleware] = []
    token_verifier = verifier(settings)
    outer: list[BaseRoute] = []
    if token_verifier is not None:
        app = SignInRedirect(RequireAuthMiddleware(app, required_scopes=[]))
        middleware = [Middleware(AuthenticationMiddleware, backend=GalleryCookieBackend(token_verifier)),
                      Middleware(AuthContextMiddleware)]
        outer.append(login_route(token_verifier))  # the one route a browser reaches without the token
    if security is not None:
        middleware.insert(0, Middleware(_HostCheck, security=security))
    return Starlette(routes=[*outer, Mount("/", app=app)], middleware=middleware,
                     lifespan=lambda _app: server.session_manager.run())


def serve(server: Any, settings: Settings, host: str, port: int) -> None:
    """Run the app with uvicorn (blocking); BindRefused before anything listens."""
    import uvicorn

    app = build_app(server, settings, host=host)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
