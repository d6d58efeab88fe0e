"""Agent memory: the trajectory store, its compressed views and cross-task lessons."""

from gems_mcp.errors import UnknownTrajectory
from gems_mcp.memory.lessons import LessonHit, classify_kind, extract_lessons, recall_lessons
from gems_mcp.memory.store import (
    MemoryBusy,
    MemoryCorrupted,
    MemorySchemaTooNew,
    MemoryStore,
    MemoryStoreError,
)
from gems_mcp.memory.views import MemoryView, build_view, derive_experience

__all__ = [
    "LessonHit",
    "MemoryBusy",
    "MemoryCorrupted",
    "MemorySchemaTooNew",
    "MemoryStore",
    "MemoryStoreError",
    "MemoryView",
    "UnknownTrajectory",
    "build_view",
    "classify_kind",
    "derive_experience",
    "extract_lessons",
    "recall_lessons",
]
