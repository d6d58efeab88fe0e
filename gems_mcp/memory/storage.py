"""AtomicJSONStorage: the tinydb storage under MemoryStore (the store's errors live in gems_mcp.errors).

Whole-file writes through a temp file and a rename, a parsed cache that notices other
processes' writes, and unparseable files moved aside with their bytes intact.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tinydb.storages import Storage

from gems_mcp.errors import MemoryBusy, MemoryCorrupted, MemorySchemaTooNew, MemoryStoreError

__all__ = ["LOCK_TIMEOUT_S", "SCHEMA_VERSION", "AtomicJSONStorage", "MemoryBusy", "MemoryCorrupted",
           "MemorySchemaTooNew", "MemoryStoreError", "holding", "schema_version"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""1: one tinydb file for everything; 2: an index, one file per trajectory, lessons apart."""
LOCK_TIMEOUT_S = 30.0

RawTables = dict[str, dict[str, Any]]

META = "_meta"
# The first key of every file we write: a fresh token per write, so a reader can tell two
# versions apart even when inode, size and mtime all collide (inodes are reused after replace).
_WRITE_KEY = "_write"
_HEAD_BYTES = 64
_HEAD_VERSION = re.compile(rb'\{"' + _WRITE_KEY.encode() + rb'":"[0-9a-f]*","' + META.encode()
                           + rb'":\{"1":\{"schema_version":(\d+)\}\}')


# -- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """One parsed version of the file and what identifies it on disk."""

    key: tuple[int, int, int]  # (mtime_ns, size, inode)
    token: str | None
    tables: RawTables


def _head_token(head: bytes) -> str | None:
    """The write token from the first bytes of a file we wrote, else None."""
    prefix = b'{"' + _WRITE_KEY.encode() + b'":"'
    if not head.startswith(prefix):
        return None
    end = head.find(b'"', len(prefix))
    return head[len(prefix) : end].decode("ascii", "replace") if end > 0 else None


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def schema_version(tables: RawTables) -> int:
    """The schema version recorded in raw tables; 0 for a plain tinydb file without one."""
    meta = tables.get(META) or {}
    record = meta.get("1") or {}
    version = record.get("schema_version", 0)
    return version if isinstance(version, int) else 0


@contextmanager
def holding(lock: FileLock, path: Path) -> Iterator[None]:
    """Hold the cross-process lock; a clear MemoryBusy if another process keeps it too long."""
    try:
        lock.acquire()
    except Timeout:
        raise MemoryBusy(
            f"The memory database {path} stayed locked by another process for "
            f"{LOCK_TIMEOUT_S:.0f} s; try again, or stop the stuck process."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some platforms cannot open folders, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- storage ---------------------------------------------------------------------------------


class AtomicJSONStorage(Storage):
    """tinydb storage: atomic whole-file writes, a parsed cache, corruption quarantined.

    Reads take no lock (a replaced file is always whole); writes must run under ``lock``.
    """

    def __init__(self, path: Path, lock: FileLock, tmp_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.lock = lock
        self.tmp_dir = tmp_dir or self.path.parent
        """Where temp files are written before their rename (the same file system as ``path``)."""
        self._tmp_prefix = self.path.name + ".tmp-"
        self._snapshot: _Snapshot | None = None

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> RawTables | None:
        """The current tables, parsed once per on-disk version; None when there is no file."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                self._snapshot = None
                return None
            with os.fdopen(fd, "rb") as f:
                key = _stat_key(os.fstat(f.fileno()))
                head = f.read(_HEAD_BYTES)
                cached = self._snapshot
                if cached is not None and cached.key == key and cached.token == _head_token(head):
                    return cached.tables
                raw = head + f.read()
            try:
                self._snapshot = self._parse(raw, key)
                return self._snapshot.tables
            except ValueError as exc:
                # Raises MemoryCorrupted, unless another process replaced the file meanwhile.
                self._quarantine(key, str(exc))
        raise MemoryBusy(f"The memory database {self.path} kept changing while being read.")

    def _parse(self, raw: bytes, key: tuple[int, int, int]) -> _Snapshot:
        if not raw.strip():
            raise ValueError("the file is empty")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("the top level is not a JSON object")  # noqa: TRY004 - read() quarantines on ValueError
        token = data.pop(_WRITE_KEY, None)
        for name, table in data.items():
            if not isinstance(table, dict) or not all(isinstance(d, dict) for d in table.values()):
                raise ValueError(f"table {name!r} is not a mapping of documents")
        version = schema_version(data)
        if version > SCHEMA_VERSION:
            raise MemorySchemaTooNew(self.path, version, SCHEMA_VERSION)
        return _Snapshot(key=key, token=token if isinstance(token, str) else None, tables=data)

    def _quarantine(self, key: tuple[int, int, int], reason: str) -> None:
        """Move the unparseable file aside and raise MemoryCorrupted; return if already replaced."""
        with holding(self.lock, self.path):
            try:
                current = _stat_key(os.stat(self.path))
            except FileNotFoundError:
                return
            if current != key:
                return
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            # A rename keeps the original bytes exactly; nothing is rewritten or emptied.
            os.replace(self.path, backup)
            self._snapshot = None
            log.error("memory database %s is corrupt (%s); moved to %s", self.path, reason, backup)
            raise MemoryCorrupted(self.path, backup, reason)

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: RawTables, durable: bool = True) -> None:
        """Replace the file with ``data``: temp file in the same folder, fsync, rename.

        ``durable=False`` skips the fsync, for bulk writes that sync once at the end (an import).
        """
        if not self.lock.is_locked:
            raise RuntimeError("AtomicJSONStorage.write called without holding the memory lock")
        data.setdefault(META, {"1": {"schema_version": SCHEMA_VERSION}})
        token = uuid.uuid4().hex
        payload = {_WRITE_KEY: token, **data}
        try:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            self._replace_file(body, durable)
        except BaseException:
            # tinydb mutated the cached tables in place before calling us: they no longer
            # match the disk, so the next read must parse the file again.
            self._snapshot = None
            raise
        self._snapshot = _Snapshot(key=_stat_key(os.stat(self.path)), token=token, tables=data)

    def write_document(self, table: str, doc_id: str, encoded: bytes, durable: bool = True) -> None:
        """Replace the file with one table of one document already encoded as JSON (by pydantic, say).

        The same file write() would give, without building and encoding a dict: the cost of a round's write.
        """
        if not self.lock.is_locked:
            raise RuntimeError("AtomicJSONStorage.write_document called without holding the memory lock")
        token = uuid.uuid4().hex
        head = json.dumps({_WRITE_KEY: token, META: {"1": {"schema_version": SCHEMA_VERSION}}},
                          separators=(",", ":"))
        # '{"_write":..,"_meta":..,' + '"trajectory":{"1":' + encoded + '}}'
        prefix = f"{head[:-1]},{json.dumps(table)}:{{{json.dumps(doc_id)}:"
        self._snapshot = None  # the next read parses what was written
        self._replace_file(prefix.encode() + encoded + b"}}", durable)

    def peek_version(self) -> int | None:
        """The schema version from the first bytes of a file this storage wrote, without parsing the rest.

        None when there is no file or its start does not tell (another writer's layout): read() it whole then.
        """
        try:
            with open(self.path, "rb") as f:
                head = f.read(_HEAD_BYTES * 2)
        except FileNotFoundError:
            return None
        match = _HEAD_VERSION.match(head)
        return int(match.group(1)) if match else None

    def identity(self) -> tuple[tuple[int, int, int], str | None] | None:
        """What tells this version of the file from any other (stat and write token); None when there is no file."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            return _stat_key(os.fstat(f.fileno())), _head_token(f.read(_HEAD_BYTES))

    def read_bytes(self) -> bytes | None:
        """The file's bytes as they are (for a parser that reads JSON itself); None when there is no file."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def append_documents(self, table: str, docs: dict[str, bytes]) -> None:
        """Add documents, already encoded, to the one table of a file write() or write_document() wrote.

        The file is still replaced whole (temp file, fsync, rename), but what it held is copied as
        bytes, never parsed: the cost is a copy, not a parse and an encode. A file of another layout
        is read and written the ordinary way (call under the lock).
        """
        if not self.lock.is_locked:
            raise RuntimeError("AtomicJSONStorage.append_documents called without holding the memory lock")
        raw = self.read_bytes()
        marker = f",{json.dumps(table)}:{{".encode()
        at = -1 if raw is None else raw.find(marker, 0, _HEAD_BYTES * 2)
        if raw is None or at < 0 or not raw.endswith(b"}}") or self.peek_version() != SCHEMA_VERSION:
            tables = self.read() or {}
            merged = {**(tables.get(table) or {}), **{k: json.loads(v) for k, v in docs.items()}}
            self.write({META: {"1": {"schema_version": SCHEMA_VERSION}}, table: merged})
            return
        held = raw[at + len(marker) : -2]
        added = b",".join(json.dumps(k).encode() + b":" + v for k, v in docs.items())
        head = json.dumps({_WRITE_KEY: uuid.uuid4().hex, META: {"1": {"schema_version": SCHEMA_VERSION}}},
                          separators=(",", ":"))[:-1].encode()
        self._snapshot = None  # the next read parses what was written
        self._replace_file(head + marker + held + (b"," if held.strip() else b"") + added + b"}}", durable=True)

    def read_document(self, table: str, doc_id: str) -> bytes | None:
        """One document's JSON as stored, from a file write_document wrote; None when there is no file.

        The bytes go straight to pydantic (``model_validate_json``), with no dict built on the way. A
        file of another shape (an older writer, a hand edit) or a corrupt one goes through read(),
        which parses it or moves it aside.
        """
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        marker = f",{json.dumps(table)}:{{{json.dumps(doc_id)}:".encode()
        at = raw.find(marker, 0, 256)
        if at > 0 and raw.startswith(b'{"' + _WRITE_KEY.encode()) and raw.endswith(b"}}"):
            try:
                head = json.loads(raw[:at] + b"}")
            except ValueError:
                head = None
            if isinstance(head, dict) and schema_version(head) <= SCHEMA_VERSION:
                return raw[at + len(marker) : -2]
        doc = ((self.read() or {}).get(table) or {}).get(doc_id)
        return None if doc is None else json.dumps(doc, ensure_ascii=False).encode()

    def _replace_file(self, body: bytes, durable: bool) -> None:
        """Temp file, fsync, rename: a reader sees the old file or the new one, never a mix.

        The folder is not fsynced: after a power cut the rename may be lost, leaving the previous
        version, whole. That is the round being written lost, as the design allows.
        """
        fd, tmp = tempfile.mkstemp(prefix=self._tmp_prefix, dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def forget(self) -> None:
        """Drop the cached parse; the next read parses the file again."""
        self._snapshot = None

    def delete(self) -> None:
        """Remove the file (call under the lock); a reader then finds no file, never half of one."""
        self.path.unlink(missing_ok=True)
        self._snapshot = None
        _fsync_dir(self.path.parent)

    def remove_orphan_temps(self) -> None:
        """Delete temp files left by a writer that was killed mid-write (call under the lock)."""
        for orphan in self.tmp_dir.glob(self._tmp_prefix + "*"):
            log.warning("removing %s left by an interrupted write", orphan)
            orphan.unlink(missing_ok=True)
