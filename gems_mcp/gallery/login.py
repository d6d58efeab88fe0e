"""Signing a browser in to the gallery of a token-protected HTTP server.

A browser cannot send `Authorization: Bearer`, so `/gallery/login` takes GEMS_HTTP_TOKEN once (a form,
POST, never in a URL) and answers with an HttpOnly, SameSite=Strict cookie holding it, scoped to
/gallery. The cookie is accepted only for GET requests under /gallery: the gallery only reads, and /mcp
(the only route that acts) still needs the header.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from starlette.authentication import AuthCredentials, BaseUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

GALLERY = "/gallery"
LOGIN_PATH = "/gallery/login"
COOKIE = "gems_gallery_token"
MAX_FORM_BYTES = 4096

_FORM = """<!doctype html><meta charset="utf-8"><title>gems-mcp gallery: sign in</title>
<style>body{{font:15px system-ui,sans-serif;margin:4em auto;max-width:28em}}input{{font:inherit;width:100%;
margin:.4em 0;padding:.4em}}p.err{{color:#b00}}</style>
<h1>gems-mcp gallery</h1><p>This server needs its token (GEMS_HTTP_TOKEN) to show the gallery.</p>{error}
<form method="post" action="{action}"><input type="password" name="token" autocomplete="current-password"
 autofocus placeholder="GEMS_HTTP_TOKEN"><input type="submit" value="Sign in"></form>"""


class GalleryCookieBackend(BearerAuthBackend):
    """The SDK's bearer check, plus the sign-in cookie for GET requests under /gallery."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        found: tuple[AuthCredentials, BaseUser] | None = await super().authenticate(conn)
        if found is not None or not _gallery_read(conn):
            return found
        token = conn.cookies.get(COOKIE)
        if not token:
            return None
        access = await self.token_verifier.verify_token(token)
        if access is None:
            return None
        # The same user object the header path gives, through the parent's own code.
        scope = dict(conn.scope)
        scope["headers"] = [*conn.scope["headers"], (b"authorization", f"Bearer {token}".encode())]
        signed_in: tuple[AuthCredentials, BaseUser] | None = await super().authenticate(HTTPConnection(scope))
        return signed_in


class SignInRedirect:
    """A browser (Accept: text/html) opening /gallery without the token is sent to the sign-in form,
    where any other client gets the 401 of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("method") == "GET" and scope.get("path") in (GALLERY, GALLERY + "/")
                and not getattr(scope.get("user"), "is_authenticated", False)
                and b"text/html" in dict(scope.get("headers", [])).get(b"accept", b"")):
            await RedirectResponse(LOGIN_PATH, status_code=303)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _gallery_read(conn: HTTPConnection) -> bool:
    path = conn.scope.get("path", "")
    return conn.scope.get("method") in ("GET", "HEAD") and (path == GALLERY or path.startswith(GALLERY + "/"))


def login_route(token_verifier: object) -> Route:
    """GET: the sign-in form; POST token=...: the cookie and a redirect to the gallery, or the form again."""

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return _form("")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _form("That is not a token.", status=400)
        token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0].strip()
        if not token or await token_verifier.verify_token(token) is None:  # type: ignore[attr-defined]
            return _form("Wrong token.", status=401)
        response = RedirectResponse(GALLERY, status_code=303)
        response.set_cookie(COOKIE, token, path=GALLERY, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    return Route(LOGIN_PATH, login, methods=["GET", "POST"])


def _form(error: str, status: int = 200) -> HTMLResponse:
    message = f'<p class="err">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(_FORM.format(error=message, action=LOGIN_PATH), status_code=status)
