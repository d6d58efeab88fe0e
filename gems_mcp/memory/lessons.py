"""Cross-task memory: lessons kept when a trajectory ends, recalled for similar new prompts."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from pydantic import BaseModel

from gems_mcp.memory.levers import lever
from gems_mcp.memory.views import derive_experience, round_statuses
from gems_mcp.types import Lesson, Requirement, RequirementKind, Trajectory

LESSON_MAX_WORDS = 99
LESSON_MAX_CHARS = 400
"""A lesson's text is cut to this many characters when kept and when recalled (older ones may be longer)."""
# BM25's usual constants (Robertson & Zaragoza).
BM25_K1 = 1.5
BM25_B = 0.75
KIND_BOOST = 0.5
# A lesson is recalled only when it shares this much of the query's vocabulary: enough that
# "four red circles above a square" finds a red-circles lesson, "a watercolor portrait" does not.
MIN_SHARED_TERMS = 2
MIN_COVERAGE = 0.25

# -- requirement kinds -------------------------------------------------------------------------

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "single": "1", "pair": "2", "couple": "2", "dozen": "12",
}
_COUNT = set(_NUMBER_WORDS) | {
    "count", "many", "number", "exactly", "several", "multiple", "few", "both", "twice",
}
_POSITION = {
    "left", "right", "above", "below", "under", "underneath", "beneath", "behind", "front",
    "beside", "between", "next", "top", "bottom", "center", "centre", "middle", "corner",
    "near", "inside", "outside", "adjacent", "facing", "over", "atop", "leftmost", "rightmost",
    "upper", "lower", "position", "positioned", "side",
}
_COLOR = {
    "red", "green", "blue", "yellow", "orange", "purple", "violet", "pink", "brown", "black",
    "white", "gray", "grey", "cyan", "magenta", "teal", "gold", "golden", "silver", "beige",
    "turquoise", "crimson", "navy", "maroon", "color", "colour", "colored", "coloured",
    "colors", "colours",
}
_STYLE = {
    "style", "styled", "painting", "painted", "watercolor", "watercolour", "oil", "sketch",
    "drawing", "drawn", "cartoon", "anime", "photorealistic", "realistic", "photograph",
    "photo", "illustration", "pixel", "render", "rendered", "minimalist", "impressionist",
    "cinematic", "lighting", "vintage", "noir", "art", "aesthetic", "mood",
}
_ATTRIBUTE = {
    "big", "small", "large", "tiny", "huge", "tall", "short", "long", "shiny", "matte",
    "wooden", "metal", "metallic", "glass", "plastic", "striped", "dotted", "texture",
    "textured", "material", "size", "sized", "bigger", "smaller", "larger", "open", "closed",
    "wet", "dry", "old", "young", "smiling", "transparent", "empty", "full",
}
_TEXT = {
    "text", "word", "words", "written", "writing", "says", "say", "letters", "letter",
    "caption", "label", "labeled", "labelled", "spell", "spelled", "spells", "title",
    "reads", "font", "typography",
}
_OBJECT = {"there", "contain", "contains", "show", "shows", "visible", "present", "include", "includes"}
_QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”|(?<!\w)'[^']+'(?!\w)")
_DIGIT = re.compile(r"\d")
_RAW_WORD = re.compile(r"[a-z0-9]+")

_KIND_WORDS: list[tuple[RequirementKind, set[str]]] = [
    ("count", _COUNT),
    ("position", _POSITION),
    ("color", _COLOR),
    ("style", _STYLE),
    ("attribute", _ATTRIBUTE),
]


def _kinds_in(text: str) -> list[RequirementKind]:
    """Every kind the text's keywords point at, most specific first."""
    lowered = text.lower()
    words = set(_RAW_WORD.findall(lowered))
    kinds: list[RequirementKind] = []
    if _QUOTED.search(text) or words & _TEXT:
        kinds.append("text")
    for kind, vocabulary in _KIND_WORDS:
        if words & vocabulary or (kind == "count" and _DIGIT.search(lowered)):
            kinds.append(kind)
    phrases = ("in front", "next to", "on top")
    if "position" not in kinds and any(p in lowered for p in phrases):
        kinds.append("position")
    return kinds


def classify_kind(question: str) -> RequirementKind:
    """The requirement kind a yes/no question most likely checks, by keywords."""
    kinds = _kinds_in(question)
    if kinds:
        return kinds[0]
    if set(_RAW_WORD.findall(question.lower())) & _OBJECT:
        return "object"
    return "other"


def query_kinds(query: str) -> set[RequirementKind]:
    """The kinds of requirement a new prompt will likely be checked for."""
    return set(_kinds_in(query))


# -- extraction --------------------------------------------------------------------------------


def _lesson_id(trajectory_id: str, round_index: int, requirement_id: str) -> str:
    digest = hashlib.sha1(f"{trajectory_id}:{round_index}:{requirement_id}".encode()).hexdigest()
    return f"l-{digest[:10]}"


def _clip_words(text: str, limit: int) -> str:
    words = text.split()
    text = text if len(words) <= limit else " ".join(words[:limit]) + "…"
    # a single 'word' can be a megabyte: words alone do not bound the size
    return text if len(text) <= LESSON_MAX_CHARS else text[: LESSON_MAX_CHARS - 1] + "…"


def extract_lessons(traj: Trajectory) -> list[Lesson]:
    """Lessons from a trajectory: before each fail->pass flip, the experience and the lever that flipped it;
    for a task that passed in round 1, what round 1 was drawn from."""
    lessons: list[Lesson] = []
    requirements = {req.id: req for req in traj.checklist}
    for prev, rnd in zip(traj.rounds, traj.rounds[1:], strict=False):
        before, after = round_statuses(traj, prev), round_statuses(traj, rnd)
        flipped = [q for q in after if before[q] is False and after[q] is True]
        if not flipped:
            continue
        # The refiner wrote the previous round's experience and then pulled this round's lever;
        # without one, the derived account of this round names what changed and what flipped.
        experience = prev.experience or derive_experience(traj, rnd.index)
        text = (
            _clip_words(experience.strip(), LESSON_MAX_WORDS - 40)
            + " Lever that worked: "
            + _clip_words(lever(prev, rnd), 35)
        )
        for qid in flipped:
            lessons.append(_lesson(traj, rnd.index, requirements[qid], text))
    first = traj.rounds[0] if traj.rounds else None
    if first is not None and not lessons and traj.checklist and first.judged and first.passed == len(traj.checklist):
        text = f"Passed in round 1, every question at once. Drawn from: {_clip_words(lever(None, first), 60)}"
        lessons.append(_lesson(traj, 1, _main_requirement(traj), text))
    return lessons


def _lesson(traj: Trajectory, round_index: int, req: Requirement, text: str) -> Lesson:
    return Lesson(
        id=_lesson_id(traj.id, round_index, req.id),
        trajectory_id=traj.id,
        intent=traj.intent,
        question=req.question,
        kind=req.kind if req.kind != "other" else classify_kind(req.question),
        skill=traj.skill,
        text=text,
    )


_TASK_REQUIREMENT: dict[str, tuple[RequirementKind, ...]] = {
    "position": ("position",), "count": ("count",), "groups": ("count",), "attribution": ("attribute", "color"),
}


def _main_requirement(traj: Trajectory) -> Requirement:
    """The question that says most about the kind of task (a count for a count task), for a success's lesson."""
    wanted = _TASK_REQUIREMENT.get(task_kind(traj.intent), ())
    return next((req for req in traj.checklist if req.kind in wanted), traj.checklist[0])


# -- kinds of task -----------------------------------------------------------------------------

_RELATION_WORDS = {"left", "right", "above", "below", "under", "underneath", "beneath", "behind", "over", "atop",
                   "between", "beside"}
_MANY = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "pair",
         "couple", "dozen", "several", "many"}
_POLITE = {"please", "thanks", "thank", "you", "now"}
_PARTS = re.compile(r"\s*(?:,|\band\b|\bwith\b)\s*")


def task_kind(text: str) -> str:
    """The kind of task a request is: position, groups, count, attribution (several objects, each its own
    color or look) or single."""
    lowered = text.lower()
    if set(_RAW_WORD.findall(lowered)) & _RELATION_WORDS or any(p in lowered for p in ("in front", "next to", "on top")):
        return "position"
    parts = [p for p in _PARTS.split(lowered) if set(_RAW_WORD.findall(p)) - _POLITE]
    counted = any(_counts_many(p) for p in parts)
    if len(parts) > 1:
        return "groups" if counted else "attribution"
    return "count" if counted else "single"


def _counts_many(part: str) -> bool:
    words = _RAW_WORD.findall(part)
    words = words[1:] if words[:1] == ["the"] else words
    return bool(words) and (words[0] in _MANY or (words[0].isdigit() and int(words[0]) > 1))


# -- recall ------------------------------------------------------------------------------------


class LessonHit(BaseModel):
    """A recalled lesson and why: its score, whether its task was of the query's kind, and its question's kind."""

    lesson: Lesson
    score: float
    kind_match: bool
    task_match: bool = False


def clip_hit(hit: LessonHit) -> LessonHit:
    """The hit with its lesson's text and intent cut to size, for lessons stored before the caps."""
    lesson = hit.lesson
    if len(lesson.text) <= LESSON_MAX_CHARS and len(lesson.intent) <= LESSON_MAX_CHARS:
        return hit
    clipped = lesson.model_copy(update={"text": _clip_words(lesson.text, LESSON_MAX_WORDS),
                                        "intent": _clip_words(lesson.intent, LESSON_MAX_WORDS)})
    return hit.model_copy(update={"lesson": clipped})


_STOPWORDS = {
    "a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "with", "is", "are", "be",
    "it", "its", "this", "that", "these", "those", "there", "does", "do", "has", "have",
    "image", "picture", "show", "shows", "showing", "for", "from", "by", "as", "into", "any",
    "some", "each", "which", "what", "who", "visible", "depicted", "contain", "contains",
    "containing", "clearly", "exactly", "please", "make", "create", "generate", "draw",
}


@functools.lru_cache(maxsize=32768)
def _terms(text: str) -> tuple[str, ...]:
    """Lowercased content words, numbers as digits, a crude plural fold ('circles' = 'circle')."""
    out = []
    for word in _RAW_WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        word = _NUMBER_WORDS.get(word, word)
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _bm25_index(docs: tuple[tuple[str, ...], ...]) -> Any:
    """The BM25 index of these documents, built once while the stored lessons stay the same.

    Building it is most of a recall's cost (about 50 ms for 1,200 lessons); scoring a query against it is not.
    """
    import bm25s  # here, not at the top: it brings scipy, a third of a second at every server start

    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
    retriever.index([list(doc) for doc in docs], show_progress=False)
    return retriever


def _bm25_scores(docs: list[tuple[str, ...]], query: list[str]) -> list[float]:
    """BM25 of each document for the query (each query term once), by bm25s.

    bm25s' Lucene variant has the usual idf, log(1 + (N - df + 0.5) / (df + 0.5)), and leaves out the
    (k1 + 1) factor of the term-frequency part, which only scales every score alike; it is put back so
    the scores stay those of the textbook formula.
    """
    if not any(docs):
        return [0.0] * len(docs)
    retriever = _bm25_index(tuple(docs))
    known = [term for term in query if term in retriever.vocab_dict]
    if not known:
        return [0.0] * len(docs)
    return [float(x) * (BM25_K1 + 1) for x in retriever.get_scores(known)]


def _relevant(shared: int, query_size: int) -> bool:
    """Enough of the query's words in the lesson: one shared word ('red') is a coincidence."""
    return shared >= min(MIN_SHARED_TERMS, query_size) and shared / query_size >= MIN_COVERAGE


def recall_lessons(
    lessons: list[Lesson], query: str, top_k: int = 5, kinds: set[str] | None = None
) -> list[LessonHit]:
    """Lessons from tasks of the query's kind first, then those whose past intent and question share its words
    (BM25, boosted where the question's kind matches), best first."""
    if top_k <= 0:
        return []
    pool = [lesson for lesson in lessons if kinds is None or lesson.kind in kinds]
    query_terms = set(_terms(query))
    if not pool or not query_terms:
        return []
    docs = [_terms(f"{lesson.intent} {lesson.question}") for lesson in pool]
    scores = _bm25_scores(docs, sorted(query_terms))
    wanted = query_kinds(query)
    task = task_kind(query)

    hits: dict[str, LessonHit] = {}
    for lesson, doc, score in zip(pool, docs, scores, strict=True):
        shared = len(query_terms.intersection(doc))
        # A task of the same kind (a count for a count) teaches more than shared words: one shared word will do.
        same_task = task != "single" and shared >= 1 and task_kind(lesson.intent) == task
        if not (same_task or _relevant(shared, len(query_terms))):
            continue
        kind_match = lesson.kind in wanted
        score *= 1 + KIND_BOOST * kind_match
        # The same experience can stand behind several flipped questions: show it once.
        previous = hits.get(lesson.text)
        if previous is None or score > previous.score:
            hits[lesson.text] = LessonHit(lesson=lesson, score=round(score, 4), kind_match=kind_match,
                                          task_match=same_task)
    # The kind of task first, then shared words (BM25), then the newest.
    return sorted(hits.values(), key=lambda h: (-h.task_match, -h.score, -h.lesson.created_at))[:top_k]
