"""Checks of free values an agent sends (prompts, questions, experiences, seeds), in one place.

Each raises InvalidRequest with what was wrong and what is allowed.
"""

from __future__ import annotations

import random
import re

from gems_mcp.errors import InvalidRequest

MAX_PROMPT_CHARS = 2000
MAX_QUESTION_CHARS = 300
MAX_QUESTIONS = 30
MAX_EXPERIENCE_WORDS = 100
MAX_EXPERIENCE_CHARS = 1000
MAX_NOTE_CHARS = 500
MAX_ID_CHARS = 64
MAX_TEXT_CHARS = MAX_PROMPT_CHARS
"""Any other string an agent sends (a negative prompt, a background, a region prompt)."""
MAX_LIST_ITEMS = 64
MAX_SEED = 2**32 - 1
QUOTED_CHARS = 24
"""An error message quotes at most this much of a value it refuses."""

ID_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# C0 controls but tab, newline and carriage return; DEL and the C1 controls; line/paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def quoted(value: object) -> str:
    """A refused value for an error message: its repr, cut to a short prefix."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else text[: QUOTED_CHARS - 1] + "…"


def free_text(value: str, name: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Refuse a string over ``limit`` characters or with a control character; return it unchanged."""
    if len(value) > limit:
        raise InvalidRequest(f"{name} is {len(value)} characters; at most {limit} characters are allowed")
    bad = _CONTROL.search(value)
    if bad:
        raise InvalidRequest(
            f"{name} contains a control character (U+{ord(bad.group()):04X} at position {bad.start()}); "
            "only printable text, newlines and tabs are allowed"
        )
    return value


def identifier(value: str, name: str) -> str:
    """An id such as a trajectory or image id: letters, digits, '.', '_' and '-', at most MAX_ID_CHARS."""
    if len(value) > MAX_ID_CHARS:
        raise InvalidRequest(f"{name} is {len(value)} characters; at most {MAX_ID_CHARS} characters are allowed")
    if not ID_PATTERN.match(value):
        raise InvalidRequest(
            f"{name} {quoted(value)} is not an id; ids are letters, digits, '.', '_' and '-' "
            f"(at most {MAX_ID_CHARS}), as the server returned them"
        )
    return value


def prompt(text: str | None, name: str = "prompt") -> str:
    if text is None or not text.strip():
        raise InvalidRequest(f"{name} is empty; describe the image in words")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"{name} is {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    return free_text(text, name).strip()


def question(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > MAX_QUESTION_CHARS:
        raise InvalidRequest(f"each requirement must be a yes/no question of 1 to {MAX_QUESTION_CHARS} characters")
    return free_text(value, "requirements")


def experience(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    free_text(value, "experience", MAX_EXPERIENCE_CHARS)
    words = len(value.split())
    if words >= MAX_EXPERIENCE_WORDS:
        raise InvalidRequest(f"experience has {words} words; keep it under {MAX_EXPERIENCE_WORDS}")
    return value.strip()


MIN_BUDGET, MAX_BUDGET = 500, 100_000


def budget(value: int | None, default: int) -> int:
    """recall_memory's budget: the default when left out; 0 or a huge value is an error, not the default."""
    value = default if value is None else value
    if not MIN_BUDGET <= value <= MAX_BUDGET:
        raise InvalidRequest(f"budget must be {MIN_BUDGET} to {MAX_BUDGET} characters, got {value}")
    return value


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
