"""Database: the files of one GEMS home's memory, their locks, the schema, and what start-up found.

Layout (schema 2):  memory.json            the index: per trajectory id, intent, status, created, updated
                    trajectories/<id>.json one tinydb file per trajectory, with <id>.json.lock
                    lessons.json           lessons; lessons-index.json their recall counts (lesson_store)
Start-up reads the index only. Every file is replaced whole (temp file, fsync, rename), so readers
never take a lock; writers take the locks write_locks() names.

Start-up never fails on bad state: a corrupt file is moved aside (bytes intact) with a notice
recall_memory gives once (a corrupt index is rebuilt from the trajectory files); a home, file or
lock that cannot be written leaves the database read-only, and every write says why.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tinydb import TinyDB

from gems_mcp.errors import MemoryCorrupted, MemorySchemaTooNew, MemoryStoreError
from gems_mcp.memory import migration
from gems_mcp.memory.lesson_store import LessonFile
from gems_mcp.memory.shards import TMP_DIR, TRAJECTORY_DIR, ShardSet
from gems_mcp.memory.storage import (
    LOCK_TIMEOUT_S,
    META,
    SCHEMA_VERSION,
    AtomicJSONStorage,
    RawTables,
    holding,
    schema_version,
)

log = logging.getLogger(__name__)

DB_NAME = "memory.json"
TRAJECTORIES = "trajectories"
LESSONS = "lessons"
MIGRATIONS = migration.MIGRATIONS


def _cannot(what: str, exc: OSError, path: Path) -> str:
    """'The memory database /h/memory.json cannot be written (Is a directory: /h/memory.json.lock)'."""
    if isinstance(exc, FileExistsError) and not path.is_dir():
        return f"The memory folder {path} cannot be {what} (it exists and is not a folder)"
    where = f": {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
    return f"The memory database {path} cannot be {what} ({exc.strerror or exc}{where})"


class Database:
    """The memory files of one home, safe to share between processes; MemoryStore adds the operations."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / DB_NAME
        self.notice: str | None = None
        """What start-up found and recall_memory says once (a corrupt database moved aside)."""
        self.write_problem: str | None = None
        """Why nothing can be written (home or lock unwritable); reads still work when they can."""
        self.read_problem: str | None = None
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.write_problem = _cannot("written", exc, self.home)
        self.index_lock = FileLock(str(self.home / (DB_NAME + ".lock")), timeout=LOCK_TIMEOUT_S)
        self._mutex = threading.RLock()  # the index's in-process structures
        self._db = TinyDB(self.path, self.index_lock, storage=AtomicJSONStorage)
        self._storage: AtomicJSONStorage = self._db.storage  # type: ignore[assignment]
        self.shards = ShardSet(self.home / TRAJECTORY_DIR)
        self.lesson_file = LessonFile(self.home)
        self._open()

    # -- locks -----------------------------------------------------------------------------

    def write_locks(self, trajectory_id: str | None = None) -> list[FileLock]:
        """The cross-process locks writers take, in the order they take them.

        With an id: that trajectory's own lock first; then the index's and the lessons'. Reads take
        none of them. A test can hold these (`holding_write_locks`) to play a slow writer.
        """
        own = [self.shards.get(trajectory_id).lock] if trajectory_id is not None else []
        return [*own, self.index_lock, self.lesson_file.lock]

    @contextmanager
    def holding_write_locks(self, trajectory_id: str | None = None) -> Iterator[None]:
        """Hold every lock of write_locks(trajectory_id) until the block ends."""
        with ExitStack() as stack:
            for lock in self.write_locks(trajectory_id):
                stack.enter_context(holding(lock, Path(lock.lock_file)))
            yield

    @contextmanager
    def _locked(self, lock: FileLock | None = None, mutex: Any = None) -> Iterator[None]:
        """Hold a cross-process lock (the index's by default), then the in-process one; OS errors become a reason.

        The file lock comes first: a thread waiting on another process never holds the mutex that
        this process's readers take.
        """
        self.check_writable()
        try:
            lock = lock or self.index_lock
            with holding(lock, Path(lock.lock_file).with_suffix("")), (mutex or self._mutex):
                yield
        except OSError as exc:
            raise MemoryStoreError(_cannot("written", exc, self.path)) from exc

    @contextmanager
    def _reading(self) -> Iterator[None]:
        if self.read_problem is not None:
            raise MemoryStoreError(self.read_problem)
        try:
            yield
        except OSError as exc:
            raise MemoryStoreError(_cannot("read", exc, self.path)) from exc

    def check_writable(self) -> None:
        """MemoryStoreError with the reason when this store cannot be written."""
        if self.write_problem is not None:
            raise MemoryStoreError(self.write_problem)

    def take_notice(self) -> str | None:
        """The start-up notice, once."""
        notice, self.notice = self.notice, None
        return notice

    # -- start-up --------------------------------------------------------------------------

    def _open(self) -> None:
        """Read the index; make, migrate or rebuild it under the lock only when needed; sweep what no writer holds.

        A home already in shape opens without waiting on any lock, however busy other processes are.
        A corrupt index is moved aside; other trouble leaves the store read-only.
        """
        for _ in range(2):
            try:
                self._probe_writable()
                version = self._storage.peek_version()  # the index is parsed when first listed
                if version is None:  # no index, or not one this version wrote: parse it whole
                    tables = self._storage.read()
                    version = None if tables is None else schema_version(tables)
                if version is not None and version > SCHEMA_VERSION:
                    raise MemorySchemaTooNew(self.path, version, SCHEMA_VERSION)
                if version is None or version < SCHEMA_VERSION:
                    self._rebuild()
                self._sweep()
                return
            except MemoryCorrupted as exc:  # moved aside: the second pass rebuilds from the trajectory files
                self.notice = str(exc)
            except MemoryStoreError as exc:
                self.write_problem = self.write_problem or str(exc)
                break
            except OSError as exc:
                self.write_problem = self.write_problem or _cannot("written", exc, self.path)
                break
        if self.write_problem is None:
            return
        log.error("%s; tools that only read keep working, tools that write will say why", self.write_problem)
        self.notice = " ".join(filter(None, [self.notice, f"{self.write_problem}: memory is read-only until fixed."]))
        try:
            self._storage.read()
        except (OSError, MemoryStoreError) as exc:
            self.read_problem = _cannot("read", exc, self.path) if isinstance(exc, OSError) else str(exc)

    def _probe_writable(self) -> None:
        """OSError when the index lock cannot be taken at all (a folder, no permission); busy is fine."""
        self.check_writable()
        (self.shards.folder / TMP_DIR).mkdir(parents=True, exist_ok=True)
        try:
            self.index_lock.acquire(timeout=0)
        except Timeout:
            return
        self.index_lock.release()
        for folder in (self.home, self.shards.folder):
            if folder.is_dir() and not os.access(folder, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))

    def _sweep(self) -> None:
        """Delete temp files of killed writers, each under its file's lock, skipping what a live writer holds."""
        names = [entry.name for entry in os.scandir(self.home)]
        for storage in (self._storage, self.lesson_file.bodies, self.lesson_file.index, self.lesson_file.segment):
            if not any(name.startswith(storage.path.name + ".tmp-") for name in names):
                continue
            try:
                with storage.lock.acquire(timeout=0):
                    storage.remove_orphan_temps()
            except Timeout:
                continue
        self.shards.sweep_temps()

    def _rebuild(self) -> None:
        with self._locked(), holding(self.lesson_file.lock, self.lesson_file.path):
            self._prepare()

    def _index_tables(self) -> RawTables:
        """The index; one found damaged after start-up is moved aside and rebuilt from the trajectory files."""
        try:
            return self._storage.read() or {}
        except MemoryCorrupted as exc:
            self.notice = str(exc)
            self._rebuild()
            return self._storage.read() or {}

    def _prepare(self) -> None:
        """Under the index lock: a missing index is made (from the trajectory files, if any), an old file split."""
        self.shards.folder.mkdir(exist_ok=True)
        tables = self._storage.read()  # again: another process may have done it while we waited
        if tables is None:
            entries = migration.rebuild_index(self.shards)
            self._storage.write({META: {"1": {"schema_version": SCHEMA_VERSION}}, TRAJECTORIES: entries})
            if entries:
                log.warning("memory index %s rebuilt from %d trajectory files", self.path, len(entries))
            return
        version = schema_version(tables)
        if version < SCHEMA_VERSION:
            upgraded = migration.split_single_file(self.path, tables, version, self.shards, self.lesson_file)
            self._storage.write(upgraded)  # the commit point: until here the old file is the database

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the index."""
        with self._mutex:
            tables = self._storage.read()
        return SCHEMA_VERSION if tables is None else schema_version(tables)
