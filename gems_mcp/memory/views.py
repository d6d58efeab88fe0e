"""Compression levels of a trajectory: derived experiences and a budgeted global view."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from gems_mcp.memory.levers import lever
from gems_mcp.types import Round, RoundMode, Trajectory

log = logging.getLogger(__name__)

PASS, FAIL, UNJUDGED = "✓", "✗", "·"
EXPERIENCE_MAX_WORDS = 99

# -- statuses --------------------------------------------------------------------------------


def round_statuses(traj: Trajectory, rnd: Round) -> dict[str, bool | None]:
    """Each checklist question's answer for the round's best candidate (None: not judged)."""
    statuses: dict[str, bool | None] = {req.id: None for req in traj.checklist}
    if not rnd.judged:
        return statuses
    for verdict in rnd.best_candidate().verdicts or []:
        if verdict.requirement_id in statuses:
            statuses[verdict.requirement_id] = verdict.passed
    return statuses


def _mark(status: bool | None) -> str:
    return UNJUDGED if status is None else PASS if status else FAIL


# -- level 1: derived experience ---------------------------------------------------------------

_WORD = re.compile(r"[\w'-]+", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _prompt_change(before: str, after: str, limit: int = 6) -> str:
    """'Prompt added "x, y"; removed "z".' in a few words, or that it stayed the same."""
    old, new = _words(before), _words(after)
    old_set, new_set = set(old), set(new)
    added = list(dict.fromkeys(w for w in new if w not in old_set))
    removed = list(dict.fromkeys(w for w in old if w not in new_set))
    if not added and not removed:
        return "Same prompt." if before.strip() == after.strip() else "Prompt reworded, same words."
    parts = []
    for verb, words in (("added", added), ("removed", removed)):
        if words:
            more = f" +{len(words) - limit} more" if len(words) > limit else ""
            parts.append(f'{verb} "{", ".join(words[:limit])}"{more}')
    return "Prompt " + "; ".join(parts) + "."


def _mode_phrase(rnd: Round) -> str:
    if rnd.mode == "edit":
        source, strength = rnd.params.source_image_id, rnd.params.strength
        phrase = f"edit of {source}" if source else "edit of an earlier image"
        return phrase + (f" at strength {strength:g}" if strength is not None else "")
    seeds = ", ".join(str(c.seed) for c in rnd.candidates[:4])
    return f"{rnd.mode}, seed {seeds}" if rnd.mode == "regenerate" else "first generation"


def _shorten(text: str, max_words: int) -> str:
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + "…"


def derive_experience(traj: Trajectory, round_index: int) -> str:
    """A factual < 100-word experience: flips since the last round, prompt/mode change, score."""
    rnd = traj.round(round_index)
    prev = traj.rounds[round_index - 2] if round_index >= 2 else None
    for question_words in (8, 4, 0):
        text = _experience_text(traj, rnd, prev, question_words)
        if len(text.split()) <= EXPERIENCE_MAX_WORDS:
            return text
    return _shorten(text, EXPERIENCE_MAX_WORDS - 1)


def _experience_text(traj: Trajectory, rnd: Round, prev: Round | None, question_words: int) -> str:
    questions = {req.id: req.question for req in traj.checklist}

    def name(qids: list[str]) -> str:
        if question_words == 0:
            return ", ".join(qids)
        return "; ".join(f"{q} ({_shorten(questions[q], question_words)})" for q in qids)

    now = round_statuses(traj, rnd)
    before = round_statuses(traj, prev) if prev is not None else {}
    gained = [q for q in now if before.get(q) is False and now[q] is True]
    lost = [q for q in now if before.get(q) is True and now[q] is False]
    still = [q for q in now if now[q] is False and q not in lost]
    if rnd.judged:
        judged = sum(s is not None for s in now.values())
        sentences = [f"Round {rnd.index} ({_mode_phrase(rnd)}) passed {rnd.passed}/{judged}."]
    else:
        sentences = [f"Round {rnd.index} ({_mode_phrase(rnd)}) is not judged yet."]
    if gained:
        sentences.append(f"Now passing: {name(gained)}.")
    if lost:
        sentences.append(f"Newly failing: {name(lost)}.")
    if prev is not None:
        if rnd.judged and prev.judged and not gained and not lost:
            sentences.append("No question changed.")
        reworded = rnd.prompt.strip() != prev.prompt.strip()
        if reworded:
            sentences.append(_prompt_change(prev.prompt, rnd.prompt))
        if not reworded or rnd.mode == "inpaint" or rnd.layout != prev.layout:  # "Same prompt." hid the lever
            sentences.append(f"Lever: {lever(prev, rnd)}.")
    if still:
        sentences.append(f"Still failing: {name(still)}.")
    return " ".join(sentences)


# -- levels 0-2: the budgeted view -------------------------------------------------------------


class QuestionView(BaseModel):
    """One checklist question, its answer in the best round and its answers over time."""

    id: str
    question: str
    kind: str
    passed: bool | None = Field(description="In the best round; null if never judged.")
    history: str = Field(description="One mark per round, oldest first: ✓ pass, ✗ fail, · unjudged.")


class BestRoundView(BaseModel):
    """The round the stop rule would answer with."""

    index: int
    passed: int
    total: int
    image_id: str
    prompt: str | None = Field(description="Null when the round is among the recent ones.")


class RoundView(BaseModel):
    """One recent round, verbatim up to the budget."""

    index: int
    mode: RoundMode
    strength: float | None = None
    prompt: str
    seeds: list[int]
    image_ids: list[str]
    passed: int | None = Field(description="Passes of the best candidate; null if not judged.")
    failed: list[str] = Field(description="Question ids the best candidate failed.")
    experience: str | None = None


class Digest(BaseModel):
    """Older rounds folded: the best of them and, in brief, the prompts tried."""

    rounds: str = Field(description="The folded round range, e.g. '1-47'.")
    best: str | None = Field(description="Best folded round and its score.")
    prompts: list[str] = Field(description="Most recent folded prompts, shortened.")
    prompts_omitted: int = 0


class MemoryView(BaseModel):
    """What recall_memory returns for one trajectory, sized to a character budget."""

    trajectory_id: str
    intent: str
    status: str
    skill: str | None = None
    rounds: int = Field(description="Rounds run so far.")
    max_rounds: int
    summary: str = Field(description="Every question's status in the best round, in one line.")
    checklist: list[QuestionView] = Field(description="Empty only when the budget is very tight.")
    best: BestRoundView | None
    digest: Digest | None
    recent: list[RoundView]
    sheet_uri: str | None = None
    compressed: str | None = Field(default=None, description="Set when parts were shortened to fit.")

    def to_text(self) -> str:
        """A compact rendering for a person or a model to read."""
        head = f"Trajectory {self.trajectory_id} ({self.status}, round {self.rounds}/{self.max_rounds})"
        lines = [head + (f", skill {self.skill}" if self.skill else "")]
        lines.append(f"Intent: {self.intent}")
        lines.append(self.summary)
        if self.checklist:
            lines.append("Checklist (status in best round; history oldest→newest):")
        for q in self.checklist:
            lines.append(f"  {q.id} {_mark(q.passed)} [{q.history}] {q.question}".rstrip())
        if self.best:
            b = self.best
            prompt = f": {b.prompt}" if b.prompt else ""
            lines.append(f"Best: round {b.index}, {b.passed}/{b.total} passed, image {b.image_id}{prompt}")
        if self.digest:
            d = self.digest
            lines.append(f"Rounds {d.rounds} (digest): best {d.best or 'none judged'}")
            lines.extend(f"  {p}" for p in d.prompts)
            if d.prompts_omitted:
                lines.append(f"  … {d.prompts_omitted} prompts not shown")
        for r in self.recent:
            mode = r.mode + (f" {r.strength:g}" if r.strength is not None else "")
            score = "unjudged" if r.passed is None else f"{r.passed} passed"
            lines.append(f"Round {r.index} ({mode}, {score}): {r.prompt}")
            ids = []
            if r.seeds:
                ids.append("seeds " + ", ".join(map(str, r.seeds)))
            if r.image_ids:
                ids.append("images " + ", ".join(r.image_ids))
            if ids:
                lines.append("  " + "; ".join(ids))
            if r.failed:
                lines.append(f"  failed: {', '.join(r.failed)}")
            if r.experience:
                lines.append(f"  experience: {r.experience}")
        if self.sheet_uri:
            lines.append(f"Contact sheet: {self.sheet_uri}")
        if self.compressed:
            lines.append(f"({self.compressed})")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Knobs:
    """How much of each part a view keeps; build_view tightens these until it fits."""

    recent: int
    prompt_chars: int = 400
    experience_chars: int = 600
    digest_prompts: int = 12
    digest_prompt_chars: int = 160
    best_prompt_chars: int = 400
    question_chars: int = 300
    intent_chars: int = 2000
    history: Literal["full", "runs", "tail"] = "full"
    ids: bool = True
    checklist: bool = True
    digest: bool = True


def _levels(recent: int) -> list[_Knobs]:
    """Ever tighter settings: digest first, then recent rounds' text, then everything else."""
    steps: list[dict[str, object]] = [
        {},
        {"digest_prompts": 6, "digest_prompt_chars": 100},
        {"digest_prompts": 3, "digest_prompt_chars": 60},
        {"digest_prompts": 0},
        {"prompt_chars": 240, "experience_chars": 300, "best_prompt_chars": 240},
        {"prompt_chars": 140, "experience_chars": 160, "best_prompt_chars": 140},
        {"history": "runs"},
    ]
    steps += [{"recent": n} for n in range(recent - 1, 0, -1)]
    steps += [
        {"question_chars": 120, "intent_chars": 400},
        {"prompt_chars": 80, "experience_chars": 80, "best_prompt_chars": 80, "ids": False},
        {"history": "tail", "question_chars": 60, "intent_chars": 160},
        {"recent": 0, "best_prompt_chars": 40, "question_chars": 30, "intent_chars": 80},
        {"question_chars": 0, "intent_chars": 40, "best_prompt_chars": 0},
        # Last resort: the one-line summary alone states every question's status.
        {"checklist": False, "digest": False},
    ]
    knobs = _Knobs(recent=recent)
    levels = []
    for step in steps:
        knobs = dataclasses.replace(knobs, **step)  # type: ignore[arg-type]
        levels.append(knobs)
    return levels


@dataclass
class _Facts:
    """What every level of a view shares, computed once."""

    traj: Trajectory
    statuses: list[dict[str, bool | None]]
    best: Round | None
    best_status: dict[str, bool | None]
    experiences: list[str | None]

    @classmethod
    def of(cls, traj: Trajectory) -> _Facts:
        best = traj.best_round()
        return cls(
            traj=traj,
            statuses=[round_statuses(traj, r) for r in traj.rounds],
            best=best,
            best_status=round_statuses(traj, best) if best else {},
            # Rounds the agent left without an experience get the derived one.
            experiences=[
                r.experience or (derive_experience(traj, r.index) if r.judged else None)
                for r in traj.rounds
            ],
        )


def build_view(traj: Trajectory, budget: int, recent: int, sheet_uri: str | None) -> MemoryView:
    """The trajectory's global view; its JSON and its text both stay under ``budget`` characters."""
    facts = _Facts.of(traj)
    view = None
    for level, knobs in enumerate(_levels(max(recent, 0))):
        view = _render(facts, knobs, sheet_uri)
        if level:
            view.compressed = f"shortened to fit {budget} characters"
        if len(view.model_dump_json()) < budget and len(view.to_text()) < budget:
            return view
    assert view is not None
    log.warning(
        "view of %s needs %d characters even at its tightest; budget is %d",
        traj.id, len(view.model_dump_json()), budget,
    )
    return view


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…" if limit > 1 else ""


def _history(marks: str, mode: str) -> str:
    if mode == "full" or len(marks) <= 8:
        return marks
    runs = [(m.group(0)[0], len(m.group(0))) for m in re.finditer(r"(.)\1*", marks)]
    runs_text = "".join(c if n == 1 else f"{c}{n}" for c, n in runs)
    if mode == "runs" and len(runs_text) < len(marks):
        return runs_text
    return f"{len(marks) - 5}…" + marks[-5:]


def _summary(facts: _Facts) -> str:
    ids = [req.id for req in facts.traj.checklist]
    if facts.best is None:
        return f"No round judged yet; unjudged {' '.join(ids)}."
    groups = {
        "passing": [q for q in ids if facts.best_status[q] is True],
        "failing": [q for q in ids if facts.best_status[q] is False],
        "unjudged": [q for q in ids if facts.best_status[q] is None],
    }
    parts = [f"{name} {' '.join(qs)}" for name, qs in groups.items() if qs]
    return f"Best round {facts.best.index}: {facts.best.passed}/{len(ids)}; " + "; ".join(parts) + "."


def _render(facts: _Facts, k: _Knobs, sheet_uri: str | None) -> MemoryView:
    traj = facts.traj
    n_recent = min(k.recent, len(traj.rounds))
    folded = traj.rounds[: len(traj.rounds) - n_recent]
    shown = traj.rounds[len(traj.rounds) - n_recent :]
    checklist = [
        QuestionView(
            id=req.id,
            question=_clip(req.question, k.question_chars),
            kind=req.kind,
            passed=facts.best_status.get(req.id),
            history=_history("".join(_mark(s[req.id]) for s in facts.statuses), k.history),
        )
        for req in traj.checklist
    ] if k.checklist else []
    return MemoryView(
        trajectory_id=traj.id,
        intent=_clip(traj.intent, k.intent_chars),
        status=traj.status + (f" ({traj.done_reason})" if traj.done_reason else ""),
        skill=traj.skill,
        rounds=len(traj.rounds),
        max_rounds=traj.max_rounds,
        summary=_summary(facts),
        checklist=checklist,
        best=_best_view(facts, k, shown),
        digest=_digest(facts, folded, k) if folded and k.digest else None,
        recent=[_round_view(facts, pos, k) for pos in range(len(folded), len(traj.rounds))],
        sheet_uri=sheet_uri,
    )


def _best_view(facts: _Facts, k: _Knobs, shown: list[Round]) -> BestRoundView | None:
    best = facts.best
    if best is None:
        return None
    # A recent round's prompt is already in the view; saying it twice wastes the budget.
    prompt = None if any(r is best for r in shown) else _clip(best.prompt, k.best_prompt_chars) or None
    return BestRoundView(
        index=best.index,
        passed=best.passed,
        total=len(facts.traj.checklist),
        image_id=best.best_candidate().image_id,
        prompt=prompt,
    )


def _digest(facts: _Facts, folded: list[Round], k: _Knobs) -> Digest:
    judged = [r for r in folded if r.judged]
    best = max(judged, key=lambda r: (r.passed, -r.index)) if judged else None
    listed = folded[-k.digest_prompts :] if k.digest_prompts else []
    span = f"{folded[0].index}-{folded[-1].index}" if len(folded) > 1 else str(folded[0].index)
    return Digest(
        rounds=span,
        best=f"round {best.index}: {best.passed}/{len(facts.traj.checklist)}" if best else None,
        prompts=[f"r{r.index} {r.mode}: {_clip(r.prompt, k.digest_prompt_chars)}" for r in listed],
        prompts_omitted=len(folded) - len(listed),
    )


def _round_view(facts: _Facts, pos: int, k: _Knobs) -> RoundView:
    rnd = facts.traj.rounds[pos]
    status, experience = facts.statuses[pos], facts.experiences[pos]
    return RoundView(
        index=rnd.index,
        mode=rnd.mode,
        strength=rnd.params.strength if rnd.mode == "edit" else None,
        prompt=_clip(rnd.prompt, k.prompt_chars),
        seeds=[c.seed for c in rnd.candidates] if k.ids else [],
        image_ids=[c.image_id for c in rnd.candidates] if k.ids else _best_image(rnd),
        passed=rnd.passed if rnd.judged else None,
        failed=[q for q, s in status.items() if s is False],
        experience=_clip(experience, k.experience_chars) if experience else None,
    )


def _best_image(rnd: Round) -> list[str]:
    return [rnd.best_candidate().image_id] if rnd.candidates else []
