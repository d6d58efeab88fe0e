"""Migration: a single-file memory (schema 0 or 1) split into the index, trajectory files and lessons.

The old file stays where it is, and a copy beside it (memory.json.bak-v<N>), until the new index
replaces it in one rename: a conversion killed midway leaves the old database, which opens and is
converted again on the next start. Trajectory files already written by the killed attempt are
simply written again.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gems_mcp.errors import MemoryCorrupted, MemoryStoreError
from gems_mcp.memory.lesson_store import LessonFile
from gems_mcp.memory.shards import ShardSet, index_entry, index_key
from gems_mcp.memory.storage import META, SCHEMA_VERSION, RawTables

log = logging.getLogger(__name__)

Migration = Callable[[RawTables], RawTables]

TRAJECTORIES = "trajectories"
LESSONS = "lessons"


def _migrate_v0(tables: RawTables) -> RawTables:
    """v0 (a plain tinydb file without a schema version) -> v1: add the version record."""
    tables = dict(tables)
    tables.setdefault(TRAJECTORIES, {})
    tables.setdefault(LESSONS, {})
    tables[META] = {"1": {"schema_version": 1}}
    return tables


# version -> function that upgrades a single file's raw tables from that version to the next one;
# the last step, 1 -> 2, splits the file (split_single_file).
MIGRATIONS: dict[int, Migration] = {0: _migrate_v0}


def split_single_file(path: Path, tables: RawTables, version: int, shards: ShardSet,
                      lessons: LessonFile) -> RawTables:
    """Write a single-file database's trajectories and lessons to the sharded layout; returns the new index.

    Runs under the index and lessons locks; the caller writes the returned index over ``path``.
    """
    backup = path.with_name(f"{path.name}.bak-v{version}")
    shutil.copy2(path, backup)
    log.info("migrating %s from schema %d to %d (copy kept at %s)", path, version, SCHEMA_VERSION, backup)
    # A copy: a migration that fails half-way must not leave the cache half-migrated.
    upgraded = copy.deepcopy(tables)
    while version < 1:
        step = MIGRATIONS.get(version)
        if step is None:
            raise MemoryStoreError(
                f"The memory database {path} has schema version {version}, "
                f"which no migration of this gems-mcp upgrades."
            )
        upgraded = step(upgraded)
        version += 1
    entries: dict[str, Any] = {}
    for record in (upgraded.get(TRAJECTORIES) or {}).values():
        trajectory_id = record.get("id")
        if not isinstance(trajectory_id, str) or not trajectory_id:
            log.warning("migration of %s: a trajectory record without an id is left in %s", path, backup)
            continue
        shard = shards.get(trajectory_id)
        with shard.lock:
            shard.write_encoded(json.dumps(record, ensure_ascii=False).encode(), durable=False)
        entries[index_key(trajectory_id)] = index_entry(record)
    lessons.replace_all(upgraded)
    os.sync()  # every file above is on disk before the index that names them replaces the old file
    log.info("migrated %d trajectories and %d lessons to %s", len(entries),
             len(upgraded.get(LESSONS) or {}), shards.folder)
    return {META: {"1": {"schema_version": SCHEMA_VERSION}}, TRAJECTORIES: entries}


def rebuild_index(shards: ShardSet) -> dict[str, Any]:
    """Index entries for every readable trajectory file (a new home has none)."""
    entries: dict[str, Any] = {}
    for file in shards.files():
        try:
            record = shards.read_file(file)
        except MemoryCorrupted as exc:
            log.error("%s", exc)
            continue
        if record is not None and isinstance(record.get("id"), str):
            entries[index_key(record["id"])] = index_entry(record)
    return entries
