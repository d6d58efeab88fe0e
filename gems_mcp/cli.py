"""gems-mcp serve | run | gallery | bench | skills | memory | doctor.

Exit codes, every subcommand: 0 it worked, 1 the job failed (a model, a file, a failed check), 2 bad usage
(arguments or settings that cannot work; argparse uses 2 as well): the table is errors.exit_code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gems_mcp.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, GemsError, exit_code

if TYPE_CHECKING:
    from gems_mcp.config import Settings

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    # Idle OpenMP threads spin by default; on a small machine shared with the agent (or a second
    # server) spinning threads starve the process doing the work: 3.4 s per step instead of 0.1 s
    # on 2 cores. Must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    problem = _settings_problem()
    if problem:
        print(f"gems-mcp: {problem}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("gems-mcp: interrupted", file=sys.stderr)
        return 130
    except (GemsError, OSError) as exc:  # a fact for the user, in one line
        if args.verbose:
            raise
        print(f"gems-mcp {args.command}: {exc}", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:  # a bug: one line for the user; the traceback only when asked for
        if args.verbose:
            raise
        log.debug("%s failed", args.command, exc_info=True)
        print(f"gems-mcp {args.command}: {exc} (run with --verbose for the details)", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    from gems_mcp import __version__
    from gems_mcp.commands.gallery import add_gallery_command
    from gems_mcp.commands.images import add_images_command
    from gems_mcp.commands.memory import add_memory_command
    from gems_mcp.commands.skills import add_skills_command

    parser = argparse.ArgumentParser(prog="gems-mcp", description="GEMS image-generation loop as an MCP server.")
    parser.add_argument("--version", action="version", version=f"gems-mcp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging and library messages on stderr, full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                       help="stdio for a client that starts the server (default); http for streamable HTTP at /mcp, "
                       "with the gallery at /gallery")
    serve.add_argument("--host", default="127.0.0.1", help="http only (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="http only (default 8000)")
    serve.add_argument("--preload", action="store_true", help="load the model at start, not on first use")
    serve.set_defaults(func=_serve)

    run = sub.add_parser("run", help="run the whole loop on one prompt, offline, and save the result")
    run.add_argument("prompt", help="what to draw, e.g. 'a yellow square above a purple circle'")
    run.add_argument("--out", type=Path, default=Path("gems-output"), help="folder for the images (default ./gems-output)")
    run.add_argument("--rounds", type=int, default=None, help="round budget (default GEMS_MAX_ROUNDS)")
    run.add_argument("--n", type=int, default=2, help="candidates per round (default 2)")
    run.add_argument("--seed", type=int, default=None, help="seed of the first candidate (default random)")
    run.set_defaults(func=_run)

    bench = sub.add_parser("bench", help="benchmarks: embedded model, loop conditions")
    bench_sub = bench.add_subparsers(dest="bench", metavar="WHICH")
    emb = bench_sub.add_parser("embedded", help="first-try pass rates and speed of the embedded model")
    emb.add_argument("--limit", type=int, default=None, help="prompts to use (default: the whole held-out set)")
    emb.set_defaults(func=_bench_embedded)
    loop = bench_sub.add_parser("loop", help="single / best-of-B / layout / loop / repair / gems / gems+lessons through MCP")
    loop.add_argument("--split", choices=["dev", "test"], default="test",
                      help="test: the fixed held-out prompts (default); dev: a disjoint set for tuning")
    loop.add_argument("--limit", type=int, default=None,
                      help="prompts to use, spread over the categories (default: the whole split)")
    loop.add_argument("--prompts", type=Path, default=None, help="a file of prompts, one per line")
    loop.add_argument("--budget", type=int, default=5, help="images per prompt (B, default 5)")
    loop.add_argument("--conditions", default="single,best-of-B,layout,loop,repair,gems,gems+lessons",
                      help="comma-separated conditions to compare (default: all seven)")
    loop.add_argument("--out", type=Path, default=Path("gems-bench"), help="folder for results.json and curve.png")
    loop.add_argument("--transport", choices=["memory", "stdio"], default="memory",
                      help="reach the server in-process (default) or as a stdio subprocess")
    loop.add_argument("--backend", choices=["local", "ray"], default="local",
                      help="run the model in the server's process (default) or on Ray Serve (GEMS_RAY_ADDRESS)")
    loop.set_defaults(func=_bench_loop)

    add_gallery_command(sub)
    add_skills_command(sub)
    add_memory_command(sub)
    add_images_command(sub)

    doctor = sub.add_parser("doctor", help="check the installation, the model and the settings")
    doctor.set_defaults(func=_doctor)
    return parser


def _settings_problem() -> str | None:
    """One line per GEMS_* variable that does not validate, or None when all do."""
    from pydantic import ValidationError

    from gems_mcp.config import load_settings

    try:
        load_settings()
    except ValidationError as exc:
        return "; ".join(f"GEMS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
    return None


def _configure_logging(args: argparse.Namespace) -> None:
    from gems_mcp.config import load_settings

    # stdout belongs to the protocol (serve) or to the command's output.
    if args.verbose:
        logging.basicConfig(stream=sys.stderr, level="DEBUG", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    elif args.command == "serve" or "GEMS_LOG_LEVEL" in os.environ:
        level = load_settings().log_level
        logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        # A command prints its own progress and one line per error; the server's and the SDK's logs
        # (an SDK line before every tool error, model loading) would say it all twice.
        logging.basicConfig(stream=sys.stderr, level="WARNING", format="gems-mcp: %(message)s")
        logging.getLogger("mcp").setLevel(logging.CRITICAL)


def _serve(args: argparse.Namespace) -> int:
    from gems_mcp.config import load_settings
    from gems_mcp.server import create_server

    settings = load_settings(preload=True) if args.preload else load_settings()
    if args.transport == "http":
        from gems_mcp.errors import BindRefused
        from gems_mcp.http import check_bind

        try:  # before anything loads: a refused bind is one sentence, not a traceback
            check_bind(args.host, settings)
        except BindRefused as exc:
            print(f"gems-mcp serve: {exc}.", file=sys.stderr)
            return exit_code(exc)
    server = create_server(settings)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        from gems_mcp.gallery import announced

        # Tool results of this server (and of stdio servers over the same home) link to its /gallery.
        with announced(settings.home, f"{_local_url(args.host, args.port)}/gallery"):
            from gems_mcp.http import serve

            serve(server, settings, args.host, args.port)  # every route behind GEMS_HTTP_TOKEN when set
    return EXIT_OK


def _local_url(host: str, port: int) -> str:
    """The address a browser on this machine uses to reach a server bound to host:port."""
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _run(args: argparse.Namespace) -> int:
    import anyio

    from gems_mcp.bench.agent import run_prompt

    problem = _run_usage_problem(args)
    if problem:
        print(f"gems-mcp run: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = anyio.run(lambda: run_prompt(args.prompt, args.out, n=args.n, rounds=args.rounds, seed=args.seed))
    except (GemsError, OSError) as exc:  # a prompt the model refuses, or cannot judge, is bad usage (the table)
        print(f"gems-mcp run: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(report)
    return EXIT_OK


def _run_usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with `run`'s arguments, in one sentence, or None."""
    from gems_mcp import inputs
    from gems_mcp.config import load_settings

    settings = load_settings()
    try:
        inputs.prompt(args.prompt)
    except GemsError as exc:
        return str(exc)
    if not 1 <= args.n <= settings.max_candidates:
        return f"--n must be 1..{settings.max_candidates} (GEMS_MAX_CANDIDATES), not {args.n}"
    if args.rounds is not None and not 1 <= args.rounds <= 100:
        return f"--rounds must be 1..100, not {args.rounds}"
    if args.seed is not None and not 0 <= args.seed < 2**32:
        return f"--seed must be 0..2^32-1, not {args.seed}"
    return None


def _bench_embedded(args: argparse.Namespace) -> int:
    from gems_mcp.shapes import bench

    bench.run(limit=args.limit, out=sys.stdout)
    return EXIT_OK


def _bench_loop(args: argparse.Namespace) -> int:
    import anyio

    from gems_mcp.bench.loop import run_benchmark

    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    try:
        anyio.run(lambda: run_benchmark(
            args.split, args.limit, args.prompts, args.budget, conditions, args.out, sys.stdout, args.transport,
            args.backend,
        ))
    except (GemsError, OSError) as exc:
        print(f"gems-mcp bench loop: {exc}", file=sys.stderr)
        return exit_code(exc)
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    import platform

    from gems_mcp import __version__
    from gems_mcp.backends import load_generator
    from gems_mcp.config import load_settings

    settings = load_settings()
    print(f"gems-mcp {__version__} on Python {platform.python_version()}")
    print(f"home: {settings.home}")
    print(f"model: {settings.model or 'embedded shapes-world model'}")
    try:
        import torch

        print(f"torch {torch.__version__}; cuda available: {torch.cuda.is_available()}")
    except ImportError:
        print("torch is not installed")
        return EXIT_FAILED
    try:
        generator = load_generator(settings)
        caps = generator.capabilities()
        features = ", ".join(sorted(caps.features)) or "none"
        print(f"loaded {generator.name}: defaults {caps.width}x{caps.height}, {caps.steps} steps; features: {features}")
    except Exception as exc:
        log.debug("the model failed to load", exc_info=True)
        print(f"model failed to load: {exc}")
        return EXIT_FAILED
    return _doctor_judge(settings)


def _doctor_judge(settings: Settings) -> int:
    """Name the server judge and, for a model judge, load its models once (where a first critique would fail)."""
    print(f"judge: {settings.judge}")
    if not settings.judge_models:
        return EXIT_OK
    from gems_mcp.backends import load_judge

    try:
        judge = load_judge(settings.model_copy(update={"backend": "local"}))
        if judge is None:
            print("no judge was loaded")
            return EXIT_FAILED
        for part in (getattr(judge, "detector", None), getattr(judge, "vlm", None), judge):
            slot = getattr(part, "slot", None)
            if slot is not None:
                slot.get()
    except Exception as exc:
        log.debug("the judge failed to load", exc_info=True)
        print(f"judge failed to load: {exc}")
        return EXIT_FAILED
    print(f"loaded judge {judge.name} on {getattr(judge, 'device', 'cpu')}")
    return EXIT_OK
