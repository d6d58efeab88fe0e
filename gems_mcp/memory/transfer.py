"""Import: read what `gems-mcp memory export` writes, every record validated before anything is stored.

A malformed file is refused with the line and field of its first fault; nothing of it is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gems_mcp.errors import InvalidRequest
from gems_mcp.memory.storage import SCHEMA_VERSION
from gems_mcp.types import Lesson, Trajectory

_RECORD_LISTS = ("trajectories", "lessons")
_WHITESPACE = " \t\n\r"


@dataclass
class Export:
    """The validated content of an export file."""

    trajectories: list[Trajectory]
    lessons: list[Lesson]


class _Reader:
    """Walks the export's top-level object, noting the line each record starts on."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text
        self.decoder = json.JSONDecoder()
        self._pos_seen, self._line_seen = 0, 1

    def line(self, pos: int) -> int:
        # Positions only grow while reading: count newlines since the last call, not from the start.
        self._line_seen += self.text.count("\n", self._pos_seen, pos)
        self._pos_seen = pos
        return self._line_seen

    def fail(self, pos: int, what: str) -> InvalidRequest:
        return InvalidRequest(f"{self.path} line {self.line(pos)}: {what}; nothing was imported")

    def skip(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in _WHITESPACE:
            pos += 1
        return pos

    def expect(self, pos: int, chars: str, what: str) -> int:
        pos = self.skip(pos)
        if pos >= len(self.text) or self.text[pos] not in chars:
            raise self.fail(pos, f"expected {what}")
        return pos

    def value(self, pos: int) -> tuple[Any, int]:
        try:
            return self.decoder.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{self.path} line {exc.lineno}: not valid JSON ({exc.msg}); "
                                 "nothing was imported") from None

    def top(self) -> dict[str, Any]:
        """The top-level object; the record lists as (line, record) pairs."""
        out: dict[str, Any] = {}
        pos = self.expect(0, "{", "a JSON object as `gems-mcp memory export` writes")
        pos = self.skip(pos + 1)
        while pos < len(self.text) and self.text[pos] != "}":
            key, pos = self.value(self.expect(pos, '"', "a key in quotes"))
            pos = self.expect(pos, ":", "':'") + 1
            if key in _RECORD_LISTS:
                out[key], pos = self.records(pos)
            else:
                out[key], pos = self.value(self.skip(pos))
            pos = self.expect(pos, ",}", "',' or '}'")
            pos = self.skip(pos + 1) if self.text[pos] == "," else pos
        if pos >= len(self.text):
            raise self.fail(pos, "the file ends before the JSON object is closed")
        if self.skip(pos + 1) < len(self.text):
            raise self.fail(self.skip(pos + 1), "text after the end of the JSON object")
        return out

    def records(self, pos: int) -> tuple[list[tuple[int, Any]], int]:
        items: list[tuple[int, Any]] = []
        pos = self.expect(pos, "[", "a list '['") + 1
        while True:
            pos = self.skip(pos)
            if pos < len(self.text) and self.text[pos] == "]":
                return items, pos + 1
            start = pos
            record, pos = self.value(pos)
            items.append((self.line(start), record))
            pos = self.expect(pos, ",]", "',' or ']'")
            pos += self.text[pos] == ","


def _validated(path: Path, name: str, items: list[tuple[int, Any]], model: type[BaseModel]) -> list[Any]:
    out: list[Any] = []
    seen: dict[str, int] = {}
    for n, (line, record) in enumerate(items):
        where = f"{path} line {line}: {name}[{n}]"
        try:
            parsed = model.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "the record"
            raise InvalidRequest(f"{where} field {field!r}: {first['msg']}; nothing was imported") from None
        identity = parsed.id  # type: ignore[attr-defined]
        if identity in seen:
            raise InvalidRequest(f"{where}: id {identity!r} already appears on line {seen[identity]}; "
                                 "nothing was imported")
        seen[identity] = line
        out.append(parsed)
    return out


def read_export(path: Path) -> Export:
    """The trajectories and lessons of an export file, every one validated; InvalidRequest naming the first fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{path} is not UTF-8 text ({exc.reason}); nothing was imported") from None
    except OSError as exc:
        raise InvalidRequest(f"{path} cannot be read ({exc.strerror or exc}); nothing was imported") from None
    data = _Reader(path, text).top()
    version = data.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise InvalidRequest(f"{path}: schema_version {version!r} is not one this gems-mcp reads "
                             f"(1 to {SCHEMA_VERSION}); nothing was imported")
    for name in _RECORD_LISTS:
        if name not in data:
            raise InvalidRequest(f"{path}: no {name!r} list, as `gems-mcp memory export` writes; nothing was imported")
    return Export(trajectories=_validated(path, "trajectories", data["trajectories"], Trajectory),
                  lessons=_validated(path, "lessons", data["lessons"], Lesson))
