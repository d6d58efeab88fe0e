"""Case 5: over HTTP every route needs the bearer token; a public bind needs one; Host/Origin allow-list."""

from __future__ import annotations

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gems_mcp.cli import main
from gems_mcp.config import load_settings
from gems_mcp.http import BindRefused, build_app
from tests.hardening._client import make

TOKEN = "s3cret-token-of-32-characters-xx"
INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def _extra(request):
    return PlainTextResponse("extra")


def _app(host="127.0.0.1", **overrides):
    settings = {"http_token": TOKEN} | overrides
    server, _ = make(**settings)

    @server.custom_route("/probe", methods=["GET"])
    async def probe(request):
        return PlainTextResponse("probe")

    return build_app(server, load_settings(**settings), host=host, routes=[Route("/extra", _extra)])


def _client(app, host="127.0.0.1:8000"):
    return TestClient(app, base_url=f"http://{host}")


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-wrong-token-xx", "Basic " + TOKEN, "Bearer " + TOKEN[:-1]])
def test_mcp_without_the_right_token_is_401_with_www_authenticate(auth):
    with _client(_app()) as client:
        headers = HEADERS | ({"authorization": auth} if auth else {})
        response = client.post("/mcp", json=INIT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_mcp_with_the_token_works():
    with _client(_app()) as client:
        response = client.post("/mcp", json=INIT, headers=HEADERS | {"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert "gems-mcp" in response.text


@pytest.mark.parametrize("path", ["/probe", "/extra", "/gallery"])
def test_every_other_route_sits_behind_the_same_token(path):
    with _client(_app()) as client:
        refused = client.get(path)
        allowed = client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 401 and "www-authenticate" in refused.headers
    assert allowed.status_code != 401


def test_a_public_bind_without_a_token_is_refused_when_the_app_is_built():
    server, _ = make()

    with pytest.raises(BindRefused, match="GEMS_HTTP_TOKEN"):
        build_app(server, load_settings(), host="0.0.0.0")


def test_serve_on_0000_without_a_token_exits_with_one_clear_sentence(capsys, monkeypatch):
    monkeypatch.delenv("GEMS_HTTP_TOKEN", raising=False)
    code = main(["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.count(". ") == 0
    assert "GEMS_HTTP_TOKEN" in err and "0.0.0.0" in err


def test_a_public_bind_checks_host_and_origin_against_the_allow_list():
    app = _app(host="0.0.0.0", http_allowed_hosts="gpu-box:8000")
    auth = {"authorization": f"Bearer {TOKEN}"}
    evil = {"host": "evil.example:8000"}
    with _client(app, "gpu-box:8000") as client:
        assert client.post("/mcp", json=INIT, headers=HEADERS | auth).status_code == 200
        assert client.post("/mcp", json=INIT, headers=HEADERS | auth | evil).status_code == 421
        assert client.get("/probe", headers=auth | evil).status_code == 421
        origin = HEADERS | auth | {"origin": "http://evil.example"}
        assert client.post("/mcp", json=INIT, headers=origin).status_code == 403


def test_a_loopback_bind_without_a_token_keeps_working():
    server, _ = make()

    with _client(build_app(server, load_settings())) as client:
        assert client.post("/mcp", json=INIT, headers=HEADERS).status_code == 200


def test_a_browser_signs_in_to_the_gallery_once_and_the_cookie_opens_nothing_else():
    from gems_mcp.gallery.login import COOKIE

    with _client(_app()) as client:
        browser = client.get("/gallery", headers={"accept": "text/html,*/*"}, follow_redirects=False)
        form = client.get("/gallery/login")
        wrong = client.post("/gallery/login", data={"token": "not-the-token-not-the-token"}, follow_redirects=False)
        assert COOKIE not in client.cookies
        right = client.post("/gallery/login", data={"token": TOKEN}, follow_redirects=False)
        gallery = client.get("/gallery")
        mcp = client.post("/mcp", json=INIT, headers=HEADERS)  # the cookie rides along, and must not count here
        probe = client.get("/probe")
    assert browser.status_code == 303 and browser.headers["location"] == "/gallery/login"
    assert form.status_code == 200 and 'name="token"' in form.text
    assert wrong.status_code == 401 and "Wrong token" in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/gallery"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/gallery" in cookie
    assert gallery.status_code == 200
    assert mcp.status_code == 401 and probe.status_code == 401


def test_the_gallery_cookie_with_a_wrong_token_is_refused():
    from gems_mcp.gallery.login import COOKIE

    with _client(_app()) as client:
        client.cookies.set(COOKIE, "forged-token-forged-token-xx", path="/gallery")
        assert client.get("/gallery").status_code == 401


def test_the_right_cookie_sent_beyond_the_gallery_opens_neither_mcp_nor_other_routes():
    from gems_mcp.gallery.login import COOKIE

    with _client(_app()) as client:
        client.cookies.set(COOKIE, TOKEN)  # as if a browser sent it everywhere
        assert client.get("/gallery").status_code == 200
        assert client.post("/mcp", json=INIT, headers=HEADERS).status_code == 401
        assert client.get("/probe").status_code == 401
        assert client.get("/extra").status_code == 401
