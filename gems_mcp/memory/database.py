"""Database: the memory file of one GEMS home, its locks, its schema, and what start-up found.

Start-up never fails on bad state: a corrupt file is moved aside (bytes intact) and a new one
started, with a notice recall_memory gives once; a home, file or lock that cannot be written
leaves the database read-only, and every write says why (path and errno text).
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock
from tinydb import TinyDB

from gems_mcp.memory.storage import (
    LOCK_TIMEOUT_S,
    META,
    SCHEMA_VERSION,
    AtomicJSONStorage,
    MemoryCorrupted,
    MemoryStoreError,
    RawTables,
    holding,
    schema_version,
)

log = logging.getLogger(__name__)

DB_NAME = "memory.json"

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


# version -> function that upgrades raw tables from that version to the next one.
MIGRATIONS: dict[int, Migration] = {0: _migrate_v0}


def _cannot(what: str, exc: OSError, path: Path) -> str:
    """'The memory database /h/memory.json cannot be written (Is a directory: /h/memory.json.lock)'."""
    if isinstance(exc, FileExistsError) and not path.is_dir():
        return f"The memory folder {path} cannot be {what} (it exists and is not a folder)"
    where = f": {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
    return f"The memory database {path} cannot be {what} ({exc.strerror or exc}{where})"


class Database:
    """The memory file, safe to share between processes; MemoryStore adds trajectories and lessons."""

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
        self._filelock = FileLock(str(self.home / (DB_NAME + ".lock")), timeout=LOCK_TIMEOUT_S)
        # tinydb's in-process structures are not thread-safe; one RLock per store covers them.
        self._mutex = threading.RLock()
        self._storage: AtomicJSONStorage
        self._db = TinyDB(self.path, self._filelock, storage=AtomicJSONStorage)
        self._storage = self._db.storage  # type: ignore[assignment]
        self._open()

    # -- locking and schema ----------------------------------------------------------------

    def _open(self) -> None:
        """Sweep and migrate; a corrupt file is moved aside for a new one; other trouble leaves the store read-only."""
        for _ in range(2):
            try:
                with self._locked():
                    self._storage.remove_orphan_temps()
                    self._migrate()
                return
            except MemoryCorrupted as exc:  # moved aside: the second pass starts an empty database
                self.notice = str(exc)
            except MemoryStoreError as exc:
                self.write_problem = self.write_problem or str(exc)
                break
        if self.write_problem is None:
            return
        log.error("%s; tools that only read keep working, tools that write will say why", self.write_problem)
        self.notice = " ".join(filter(None, [self.notice, f"{self.write_problem}: memory is read-only until fixed."]))
        try:
            self._storage.read()
        except (OSError, MemoryStoreError) as exc:
            self.read_problem = _cannot("read", exc, self.path) if isinstance(exc, OSError) else str(exc)

    def take_notice(self) -> str | None:
        """The start-up notice, once."""
        notice, self.notice = self.notice, None
        return notice

    def check_writable(self) -> None:
        """MemoryStoreError with the reason when this store cannot be written."""
        if self.write_problem is not None:
            raise MemoryStoreError(self.write_problem)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the in-process and cross-process locks for a read-modify-write; OS errors become a reason."""
        self.check_writable()
        try:
            # The file lock first: a writer waiting on another process must not hold the mutex
            # that this process's readers need.
            with holding(self._filelock, self.path), self._mutex:
                yield
        except OSError as exc:
            raise MemoryStoreError(_cannot("written", exc, self.path)) from exc

    @contextmanager
    def _reading(self) -> Iterator[None]:
        if self.read_problem is not None:
            raise MemoryStoreError(self.read_problem)
        try:
            with self._mutex:
                yield
        except OSError as exc:
            raise MemoryStoreError(_cannot("read", exc, self.path)) from exc

    def _migrate(self) -> None:
        tables = self._storage.read()
        if tables is None:
            self._storage.write({META: {"1": {"schema_version": SCHEMA_VERSION}},
                                 TRAJECTORIES: {}, LESSONS: {}})
            return
        version = schema_version(tables)
        if version == SCHEMA_VERSION:
            return
        backup = self.path.with_name(f"{DB_NAME}.bak-v{version}")
        shutil.copy2(self.path, backup)
        log.info("migrating %s from schema %d to %d (copy kept at %s)",
                 self.path, version, SCHEMA_VERSION, backup)
        # A copy: a migration that fails half-way must not leave the cache half-migrated.
        upgraded = copy.deepcopy(tables)
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise MemoryStoreError(
                    f"The memory database {self.path} has schema version {version}, "
                    f"which no migration of this gems-mcp upgrades."
                )
            upgraded = step(upgraded)
            version += 1
        upgraded[META] = {"1": {"schema_version": SCHEMA_VERSION}}
        self._storage.write(upgraded)

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database file."""
        with self._mutex:
            tables = self._storage.read()
        return SCHEMA_VERSION if tables is None else schema_version(tables)
