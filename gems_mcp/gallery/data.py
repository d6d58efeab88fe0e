"""What the gallery page shows, as JSON: trajectories newest first, and one trajectory in full."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from gems_mcp.memory.lessons import recall_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.results import answer_text
from gems_mcp.types import Lesson, Trajectory

LIST_LIMIT = 50
_RECALLED: OrderedDict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = OrderedDict()
"""recalled_for's answers: the same while no earlier lesson changes, and asked for at every poll of a running loop."""
RECALLED_KEPT = 256


def summaries(store: MemoryStore, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Newest first: enough for the page to tell which trajectories changed since it last looked."""
    return [
        {
            "id": t.id,
            "intent": t.intent,
            "status": t.status,
            "rounds": len(t.rounds),
            "updated_at": t.updated_at,
            "created_at": t.created_at,
        }
        for t in store.list_trajectories(limit=limit)
    ]


def detail(store: MemoryStore, trajectory_id: str) -> dict[str, Any]:
    """One trajectory as stored, its best round and answer (the image to show), the lessons recalled for it and the lessons it left."""
    trajectory = store.get_trajectory(trajectory_id)
    lessons = store.lessons()
    best = trajectory.best_round()
    return {
        "trajectory": trajectory.model_dump(mode="json"),
        "best_round": best.index if best else None,
        "answer": answer_text(trajectory),
        "lessons_recalled": recalled_for(trajectory, lessons),
        "lessons_kept": [_lesson(lesson) for lesson in lessons if lesson.trajectory_id == trajectory.id],
    }


def recalled_for(trajectory: Trajectory, lessons: list[Lesson]) -> list[dict[str, Any]]:
    """What recall_memory(query=<intent>) offered when the trajectory started: lessons kept before it."""
    earlier = [lesson for lesson in lessons if lesson.created_at < trajectory.created_at]
    key = (trajectory.id, tuple(lesson.id for lesson in earlier))
    if key not in _RECALLED:
        hits = recall_lessons(earlier, trajectory.intent)
        _RECALLED[key] = [{**_lesson(hit.lesson), "score": hit.score} for hit in hits]
        while len(_RECALLED) > RECALLED_KEPT:
            _RECALLED.popitem(last=False)
    return _RECALLED[key]


def _lesson(lesson: Lesson) -> dict[str, Any]:
    return {"id": lesson.id, "kind": lesson.kind, "question": lesson.question, "intent": lesson.intent,
            "text": lesson.text}
