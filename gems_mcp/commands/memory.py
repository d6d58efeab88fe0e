"""`gems-mcp memory ...`: list, show, export, import and prune the stored trajectories."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from gems_mcp import uris
from gems_mcp.config import load_settings
from gems_mcp.errors import EXIT_OK, GemsError, InvalidRequest, UnknownTrajectory, exit_code
from gems_mcp.images import ImageStore
from gems_mcp.memory import retention
from gems_mcp.memory.store import MemoryStore
from gems_mcp.memory.transfer import read_export
from gems_mcp.memory.views import build_view


def add_memory_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `memory` with list/show/export/import/prune to an argparse subparsers object."""
    memory = subparsers.add_parser(
        "memory", help="Inspect and manage stored trajectories and lessons.",
        description="Inspect and manage the trajectories and lessons stored in GEMS_HOME.",
    )
    memory.set_defaults(func=run_memory_command)
    actions = memory.add_subparsers(dest="memory_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="Recent trajectories, newest first.")
    listing.add_argument("--limit", type=int, default=20, help="How many to list (default 20).")

    show = actions.add_parser("show", help="One trajectory's memory view, as recall_memory gives it.")
    show.add_argument("trajectory_id", metavar="ID", help="a trajectory id, as `gems-mcp memory list` shows them")
    show.add_argument("--budget", type=int, default=None, help="Characters (default GEMS_MEMORY_BUDGET).")

    export = actions.add_parser("export", help="All trajectories and lessons as JSON.")
    export.add_argument("--out", type=Path, default=None, help="Write to FILE instead of stdout.")

    imports = actions.add_parser("import", help="Add the trajectories and lessons of an export file.",
                                 description="Add the trajectories and lessons of a file `gems-mcp memory export` "
                                 "wrote. Every record is checked first: a malformed file is refused with its "
                                 "line and field, and nothing of it is stored.")
    imports.add_argument("file", type=Path, metavar="FILE", help="a file written by `gems-mcp memory export --out`")
    imports.add_argument("--existing", choices=("skip", "refuse"), default="skip",
                         help="Ids already stored: skip those records (default), or refuse the whole file.")

    prune = actions.add_parser("prune", help="Delete old trajectories, or one by id, with their images.")
    which = prune.add_mutually_exclusive_group(required=True)
    which.add_argument("--older-than", type=float, metavar="DAYS",
                       help="Delete trajectories not updated for DAYS days.")
    which.add_argument("--trajectory", metavar="ID", help="Delete this one trajectory.")
    return memory


def run_memory_command(args: argparse.Namespace) -> int:
    """Run the parsed `memory` action; returns the process exit code."""
    try:
        settings = load_settings()
        store = MemoryStore(settings.home, settings.max_lessons, int(settings.max_lessons_mb * 1e6))
        action = args.memory_action
        if action == "list":
            return _list(store, args.limit)
        if action == "show":
            budget = args.budget if args.budget is not None else settings.memory_budget
            return _show(store, args.trajectory_id, budget, settings.memory_recent)
        if action == "export":
            return _export(store, args.out)
        if action == "import":
            return _import(store, args.file, refuse_existing=args.existing == "refuse")
        return _prune(store, args.older_than, args.trajectory)
    except (GemsError, OSError) as exc:
        hint = "; `gems-mcp memory list` shows the stored ones" if isinstance(exc, UnknownTrajectory) else ""
        print(f"gems-mcp memory: {exc}{hint}", file=sys.stderr)
        return exit_code(exc)


def _list(store: MemoryStore, limit: int) -> int:
    trajectories = store.list_trajectories(limit=limit)
    if not trajectories:
        print(f"No trajectories stored in {store.home}.")
        return EXIT_OK
    for traj in trajectories:
        best = traj.best_round()
        score = f"{best.passed}/{len(traj.checklist)}" if best else "-"
        created = datetime.fromtimestamp(traj.created_at).strftime("%Y-%m-%d %H:%M")
        intent = traj.intent if len(traj.intent) <= 60 else traj.intent[:59] + "…"
        rounds = len(traj.rounds)
        print(f"{traj.id}  {created}  {traj.status:6}  rounds {rounds:>2}  best {score:>5}  {intent}")
    return EXIT_OK


def _show(store: MemoryStore, trajectory_id: str, budget: int, recent: int) -> int:
    if budget < 500:
        raise InvalidRequest(f"--budget must be at least 500 characters, not {budget}")
    traj = store.get_trajectory(trajectory_id)
    sheet = uris.sheet(traj.id) if traj.rounds else None
    print(build_view(traj, budget=budget, recent=recent, sheet_uri=sheet).to_text())
    return EXIT_OK


def _export(store: MemoryStore, out: Path | None) -> int:
    data = store.export()
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        print(text)
        return EXIT_OK
    out = out.expanduser()
    # Written beside the target and renamed, so an interrupted export never leaves half a file.
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"Exported {len(data['trajectories'])} trajectories and {len(data['lessons'])} lessons to {out}.")
    return EXIT_OK


def _import(store: MemoryStore, file: Path, refuse_existing: bool) -> int:
    export = read_export(file.expanduser())
    added, skipped, lessons, lessons_skipped = store.import_records(
        export.trajectories, export.lessons, refuse_existing=refuse_existing)
    print(f"Imported {added} trajectories and {lessons} lessons from {file}; "
          f"skipped {skipped} trajectories and {lessons_skipped} lessons already stored.")
    return 0


def _prune(store: MemoryStore, older_than: float | None, trajectory_id: str | None) -> int:
    images = ImageStore(store.home / "images")
    if trajectory_id is not None:
        pictures = retention.delete(store, images, trajectory_id)
        print(f"Deleted trajectory {trajectory_id} and {_images(pictures)} only it used.")
        return EXIT_OK
    assert older_than is not None
    removed, pictures = retention.prune(store, images, older_than)
    print(f"Deleted {removed} trajectories not updated for {older_than:g} days and {_images(pictures)}.")
    return EXIT_OK


def _images(n: int) -> str:
    return f"{n} image" + ("" if n == 1 else "s")
