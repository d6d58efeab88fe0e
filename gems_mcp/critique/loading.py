"""A judge's model and processor: found from a hub id or a folder, loaded on first use, optionally kept on the CPU.

The judges (vlm, detect) share this: where the weights come from, which device and dtype they run in,
the one sentence a user reads when they cannot be loaded, and offloading between rounds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gems_mcp.errors import JudgeError, first_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeOptions:
    """Where and how a judge runs: the device and torch dtype the composition root picked, and its settings."""

    device: str = "cpu"
    dtype: Any = None
    """A torch dtype; None keeps what the weights were saved in."""
    offload: bool = False
    threshold: float = 0.3
    batch: int = 8


def resolve_source(model: str, kind: str) -> str:
    """A local folder as an absolute path, or the hub id as given; a path that does not exist is an error."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise JudgeError(f"GEMS_JUDGE={kind}:{model} is a file; give the model's folder or a hub id")
        return str(path.resolve())
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model:
        raise JudgeError(f"GEMS_JUDGE={kind}:{model} does not exist; give a local model folder or a hub id")
    return model



class ModelSlot:
    """One model and its processor, loaded on first use, on the judge's device (or the CPU between uses)."""

    def __init__(self, model: str, kind: str, what: str, options: JudgeOptions,
                 load: Callable[[str, Any], tuple[Any, Any]]) -> None:
        self.model = model
        self.kind = kind
        self.what = what
        self.options = options
        self._load = load
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def get(self) -> tuple[Any, Any]:
        """(model, processor), loading them once; a failed load is retried on the next call."""
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_once()
            return self._loaded

    def _load_once(self) -> tuple[Any, Any]:
        source = resolve_source(self.model, self.kind)
        try:
            model, processor = self._load(source, self.options.dtype)
        except JudgeError:
            raise
        except Exception as exc:  # transformers raises many types; the user needs one sentence
            raise JudgeError(
                f"GEMS_JUDGE={self.kind}:{self.model} could not be loaded as {self.what}: {first_line(exc)}"
            ) from exc
        model.eval()
        home = "cpu" if self.options.offload else self.options.device
        self._move(model, home)
        log.info("loaded judge %s:%s (%s) on %s", self.kind, self.model, type(model).__name__, home)
        return model, processor

    @contextmanager
    def use(self) -> Iterator[tuple[Any, Any]]:
        """The model on its device for one judging job; with offload it goes back to the CPU afterwards."""
        model, processor = self.get()
        if self.options.offload:
            self._move(model, self.options.device)
        try:
            yield model, processor
        finally:
            if self.options.offload:
                self._move(model, "cpu")
                _empty_cache(self.options.device)

    def _move(self, model: Any, device: str) -> None:
        try:
            model.to(device)
        except (RuntimeError, ValueError) as exc:  # out of memory, or a dtype the device lacks
            raise JudgeError(f"GEMS_JUDGE={self.kind}:{self.model} could not be put on {device}: {first_line(exc)}") from exc


def _empty_cache(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def model_device(model: Any) -> Any:
    """The device of a model's first parameter (where its inputs must go)."""
    return next(model.parameters()).device
