"""`gems-mcp images prune`: delete stored PNGs that no trajectory names (orphans of failed or pruned rounds)."""

from __future__ import annotations

import argparse
import sys

from gems_mcp.config import load_settings
from gems_mcp.errors import EXIT_OK, EXIT_USAGE, GemsError, exit_code
from gems_mcp.images import ImageStore
from gems_mcp.memory import retention
from gems_mcp.memory.store import MemoryStore


def add_images_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `images prune` to an argparse subparsers object."""
    images = subparsers.add_parser(
        "images", help="Manage the stored PNGs.", description="Manage the PNGs stored in GEMS_HOME/images.",
    )
    images.set_defaults(func=run_images_command)
    actions = images.add_subparsers(dest="images_action", metavar="ACTION", required=True)
    prune = actions.add_parser(
        "prune", help="Delete images no stored trajectory uses.",
        description="Delete images that no stored trajectory names (left by failed, cancelled or pruned rounds).",
    )
    prune.add_argument("--older-than", type=float, default=retention.ORPHAN_GRACE_S / 3600, metavar="HOURS",
                       help="Only images older than HOURS (default 1: a round being generated has no trajectory yet).")
    prune.add_argument("--dry-run", action="store_true", help="List what would be deleted; delete nothing.")
    return images


def run_images_command(args: argparse.Namespace) -> int:
    """Run the parsed `images` action; returns the process exit code."""
    if not args.older_than >= 0:
        print(f"gems-mcp images: --older-than must be 0 or more hours, not {args.older_than:g}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings()
        store = MemoryStore(settings.home)
        images = ImageStore(settings.home / "images")
        if store.read_problem is not None:  # without the trajectories every image would look orphaned
            raise GemsError(store.read_problem)
        found = retention.orphans(store, images, args.older_than * 3600)
        if args.dry_run:
            for image_id in found:
                print(image_id)
            print(f"{len(found)} unused images would be deleted from {images.root}.")
            return EXIT_OK
        removed = images.delete(found)
        print(f"Deleted {removed} unused images from {images.root}.")
        return EXIT_OK
    except (GemsError, OSError) as exc:
        print(f"gems-mcp images: {exc}", file=sys.stderr)
        return exit_code(exc)
