"""Checks of free values an agent sends (prompts, questions, experiences, seeds), in one place.

Each raises InvalidRequest with what was wrong and what is allowed.
"""

from __future__ import annotations

import random

from gems_mcp.errors import InvalidRequest

MAX_PROMPT_CHARS = 2000
MAX_QUESTION_CHARS = 300
MAX_QUESTIONS = 30
MAX_EXPERIENCE_WORDS = 100
MAX_SEED = 2**32 - 1


def prompt(text: str | None, name: str = "prompt") -> str:
    if text is None or not text.strip():
        raise InvalidRequest(f"{name} is empty; describe the image in words")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"{name} is {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    return text.strip()


def question(text: str) -> str:
    text = (text or "").strip()
    if not text or len(text) > MAX_QUESTION_CHARS:
        raise InvalidRequest(f"each requirement must be a yes/no question of 1 to {MAX_QUESTION_CHARS} characters")
    return text


def experience(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    words = len(text.split())
    if words >= MAX_EXPERIENCE_WORDS:
        raise InvalidRequest(f"experience has {words} words; keep it under {MAX_EXPERIENCE_WORDS}")
    return text.strip()


def seed(value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_SEED:
        raise InvalidRequest(f"seed must be between 0 and {MAX_SEED}, got {value}")


def candidates(n: int, limit: int) -> None:
    if not 1 <= n <= limit:
        raise InvalidRequest(f"n must be between 1 and {limit} (GEMS_MAX_CANDIDATES), got {n}")


def seeds(first: int | None, n: int) -> list[int]:
    """n consecutive seeds from `first`, or from a random start."""
    start = random.SystemRandom().randrange(0, MAX_SEED - 64) if first is None else first
    return [(start + i) % (MAX_SEED + 1) for i in range(n)]
