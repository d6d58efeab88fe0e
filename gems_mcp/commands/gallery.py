"""`gems-mcp gallery`: the web gallery over GEMS_HOME on its own, for clients that run the server over stdio."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import webbrowser

from gems_mcp.config import load_settings
from gems_mcp.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def add_gallery_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `gallery` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "gallery", help="serve the live gallery of trajectories in GEMS_HOME and open it in a browser",
        description="A local web page of every trajectory (newest first) that updates while a loop runs. "
        "`gems-mcp serve --transport http` serves the same page at /gallery.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to listen on (default 127.0.0.1); to share the gallery, use "
                        "`gems-mcp serve --transport http` with GEMS_HTTP_TOKEN")
    parser.add_argument("--port", type=int, default=8700, help="port (default 8700; 0 picks a free one)")
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    parser.set_defaults(func=run_gallery_command)
    return parser


def run_gallery_command(args: argparse.Namespace) -> int:
    """Serve until interrupted; tool results of servers over the same home link to it meanwhile."""
    import uvicorn

    from gems_mcp.gallery import announced, standalone_app

    if not 0 <= args.port <= 65535:
        print(f"gems-mcp gallery: --port must be 0..65535, not {args.port}", file=sys.stderr)
        return EXIT_USAGE
    from gems_mcp.http import LOOPBACK

    if args.host not in LOOPBACK:
        # No token here: anyone who reached the port would see every image.
        print(f"gems-mcp gallery: --host must be a loopback address ({', '.join(sorted(LOOPBACK))}), not "
              f"{args.host}; `gems-mcp serve --transport http` with GEMS_HTTP_TOKEN shares the gallery safely",
              file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    try:
        sock = socket.create_server((args.host, args.port), family=_family(args.host))
    except OSError as exc:
        print(f"gems-mcp gallery: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
              "pick another --port", file=sys.stderr)
        return EXIT_FAILED
    port = sock.getsockname()[1]
    url = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{port}/gallery"
    # Only requests naming loopback are served: a web page cannot rebind its name to this port.
    app = standalone_app(settings.home, allowed_hosts=[*LOOPBACK, "[::1]"])
    level = "info" if logging.getLogger().isEnabledFor(logging.DEBUG) else "warning"
    server = uvicorn.Server(uvicorn.Config(app, log_level=level, access_log=False))
    print(f"gems-mcp gallery: {url} (trajectories in {settings.home}); Ctrl+C stops it", file=sys.stderr)
    if not args.no_browser and _can_show_a_browser():
        threading.Timer(0.5, _open_browser, args=(url,)).start()
    # uvicorn re-raises the signal that stopped it; as SystemExit it still lets `announced` clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))
    with announced(settings.home, url):
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _can_show_a_browser() -> bool:
    """A graphical session: elsewhere webbrowser may start a text browser that takes over the terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> None:
    try:
        webbrowser.open(url, new=2)
    except Exception:  # no browser here (a server, a container): the address is printed already
        logging.getLogger(__name__).debug("could not open a browser", exc_info=True)
