"""ImageStore: content-addressed PNGs with their parameters, thumbnails and contact sheets."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from gems_mcp.errors import InvalidRequest, StoreError, UnknownImage

log = logging.getLogger(__name__)

_ID = re.compile(r"\A[0-9a-f]{16}\Z")
TMP_SUFFIX = ".tmp"
TMP_GRACE_S = 600.0
"""A temp file older than this has no live writer: a PNG is written in well under a second."""
PARAMS_KEY = "gems:params"
# Thumbnails above this size are re-encoded as JPEG so a tool result stays small.
_THUMBNAIL_MAX_BYTES = 300_000


def cannot_write(path: Path, exc: OSError) -> str:
    """'/home/u/.gems/images cannot be written (No space left on device)': the path and the errno text."""
    if isinstance(exc, FileExistsError) and not path.is_dir():
        return f"{path} cannot be written (it exists and is not a folder)"
    return f"{path} cannot be written ({exc.strerror or exc})"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ImageStore:
    """PNG files under ``root``, named by the hash of their pixels and parameters."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.problem: str | None = None
        """Why images cannot be stored (the folder cannot be made), or None."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.problem = cannot_write(self.root, exc)
            log.error("images: %s; generate and refine will say so", self.problem)
            return
        self.sweep_temps()

    def check_writable(self) -> None:
        """StoreError with the reason when images cannot be stored; tried again on each call."""
        if self.problem is not None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError:
                raise StoreError(f"the image store {self.problem}") from None
            self.problem = None
        if not os.access(self.root, os.W_OK | os.X_OK):  # a read-only folder: say so before generating
            raise StoreError(f"the image store {self.root} cannot be written (Permission denied)")

    def save(self, image: Image.Image, params: dict[str, Any] | None = None) -> str:
        """Store ``image`` with ``params`` in a PNG text chunk; return its id."""
        self.check_writable()
        data = encode_png(image, params)
        image_id = hashlib.sha256(data).hexdigest()[:16]
        path = self._path(image_id)
        if not path.exists():
            self._write(path, data)
        return image_id

    def _write(self, path: Path, data: bytes) -> None:
        """Temp file and rename; on any failure the temp file goes and the reason is a StoreError."""
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=TMP_SUFFIX)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise StoreError(f"the image store {cannot_write(self.root, exc)}") from exc

    def sweep_temps(self, older_than_s: float = TMP_GRACE_S) -> int:
        """Delete temp files of interrupted writes (old enough that no live writer owns them)."""
        cutoff = time.time() - older_than_s
        removed = 0
        for tmp in self.root.glob("*" + TMP_SUFFIX):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except OSError:
                continue
        if removed:
            log.warning("removed %d temp files left in %s by interrupted writes", removed, self.root)
        return removed

    def ids(self) -> dict[str, float]:
        """Every stored image id with its file's modification time."""
        found: dict[str, float] = {}
        for path in self.root.glob("*.png"):
            if _ID.match(path.stem):
                try:
                    found[path.stem] = path.stat().st_mtime
                except OSError:
                    continue
        return found

    def delete(self, image_ids: Iterable[str]) -> int:
        """Remove these images (ids that are malformed or already gone are skipped); how many went."""
        removed = 0
        for image_id in image_ids:
            if isinstance(image_id, str) and _ID.match(image_id):
                try:
                    self._path(image_id).unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def path(self, image_id: str) -> Path:
        """The file of a stored image; UnknownImage if there is none."""
        if not isinstance(image_id, str) or not _ID.match(image_id):
            raise UnknownImage(f"{str(image_id)[:24]!r} is not an image id; image ids are 16 hex characters")
        path = self._path(image_id)
        if not path.exists():
            raise UnknownImage(f"No image '{image_id}' in this server's store.")
        return path

    def load(self, image_id: str) -> Image.Image:
        with Image.open(self.path(image_id)) as im:
            return im.convert("RGB")

    def png_bytes(self, image_id: str) -> bytes:
        return self.path(image_id).read_bytes()

    def _path(self, image_id: str) -> Path:
        return self.root / f"{image_id}.png"


def encode_png(image: Image.Image, params: dict[str, Any] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if params:
        info.add_text(PARAMS_KEY, json.dumps(params, sort_keys=True, default=str))
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", pnginfo=info, optimize=False)
    return buf.getvalue()


def thumbnail(image: Image.Image, max_side: int = 512) -> tuple[bytes, str]:
    """A small encoding of ``image`` (longest side <= max_side): (bytes, mime type)."""
    im = image.convert("RGB")
    scale = max_side / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    if buf.tell() <= _THUMBNAIL_MAX_BYTES:
        return buf.getvalue(), "image/png"
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return buf.getvalue(), "image/jpeg"


def contact_sheet(
    images: Sequence[Image.Image], labels: Sequence[str] | None = None, tile: int = 256, columns: int | None = None
) -> Image.Image:
    """A grid of ``images`` scaled into ``tile``-sized cells, each with its label underneath."""
    if not images:
        raise InvalidRequest("a contact sheet needs at least one image")
    labels = list(labels or [""] * len(images))
    columns = columns or min(len(images), 4)
    rows = -(-len(images) // columns)
    label_h = 18 if any(labels) else 0
    pad = 4
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + label_h + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (im, label) in enumerate(zip(images, labels, strict=True)):
        cell = im.convert("RGB")
        cell.thumbnail((tile, tile), Image.Resampling.NEAREST if max(cell.size) <= tile // 2 else Image.Resampling.LANCZOS)
        if max(cell.size) < tile:
            factor = tile / max(cell.size)
            cell = cell.resize((round(cell.width * factor), round(cell.height * factor)), Image.Resampling.NEAREST)
        x = pad + (i % columns) * (tile + pad)
        y = pad + (i // columns) * (tile + label_h + pad)
        sheet.paste(cell, (x + (tile - cell.width) // 2, y + (tile - cell.height) // 2))
        if label:
            draw.text((x + 2, y + tile + 2), label, fill=(235, 235, 235), font=font)
    return sheet
