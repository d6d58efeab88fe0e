"""AgentLoop: generate, critique, refine and recall, independent of MCP."""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread
from PIL import Image
from pydantic import BaseModel, Field

from gems_mcp.config import Settings
from gems_mcp.generation.base import GenerationError, GenerationRequest, Generator
from gems_mcp.generation.queue import DeviceQueue, ProgressFn
from gems_mcp.images import ImageStore, UnknownImage, contact_sheet
from gems_mcp.memory.lessons import LessonHit, classify_kind, extract_lessons, recall_lessons
from gems_mcp.memory.store import MemoryStore, UnknownTrajectory
from gems_mcp.memory.views import MemoryView, build_view, derive_experience
from gems_mcp.types import (
    Candidate,
    GenerationParams,
    Requirement,
    Round,
    RoundMode,
    Trajectory,
    Verdict,
)

if TYPE_CHECKING:
    from gems_mcp.critique.base import Judge
    from gems_mcp.skills import SkillBody, SkillLibrary

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_QUESTIONS = 30
MAX_EXPERIENCE_WORDS = 100
MAX_SEED = 2**32 - 1


class LoopError(ValueError):
    """A request the agent can correct; the message is one sentence saying what is allowed."""


class VerdictInput(BaseModel):
    """The agent's answer to one checklist question."""

    id: str = Field(description="Question id from the checklist, e.g. 'q1'.")
    passed: bool = Field(description="true when the image satisfies the question (yes), false otherwise.")
    note: str | None = Field(default=None, max_length=500, description="Optional: what is wrong or right.")


@dataclass
class RoundResult:
    """What generate and refine hand back: the trajectory after the round, and its images."""

    trajectory: Trajectory
    round: Round
    images: list[Image.Image]
    notes: list[str]


@dataclass
class Recall:
    """What recall_memory found: a trajectory's view, lessons for a query, or recent trajectories."""

    view: MemoryView | None = None
    lessons: list[LessonHit] | None = None
    recent: list[dict[str, Any]] | None = None


class Overrides(BaseModel):
    """Generation parameters a caller may set; None means 'use the default'."""

    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None


class AgentLoop:
    """The GEMS loop's server side: owns the model, judging, memory and stop rule."""

    def __init__(
        self,
        settings: Settings,
        generator: Generator | None = None,
        judge: Judge | None | Literal["auto"] = "auto",
        store: MemoryStore | None = None,
        images: ImageStore | None = None,
        skills: SkillLibrary | None = None,
    ) -> None:
        self.settings = settings
        self._generator = generator
        self._judge = judge
        self.store = store or MemoryStore(settings.home)
        self.images = images or ImageStore(settings.home / "images")
        self._skills = skills
        self.queue = DeviceQueue()
        # Weak values: a lock lives while a call holds it, so ids a client makes up are not kept forever.
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()
        self._generator_lock = threading.Lock()

    # -- collaborators, resolved lazily so tools/list never waits for torch -------------

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            # A preload thread and a first call may race here; a second generator would load a second model.
            with self._generator_lock:
                if self._generator is None:
                    from gems_mcp.backends import load_generator

                    self._generator = load_generator(self.settings)
        return self._generator

    @property
    def judge(self) -> Judge | None:
        if self._judge == "auto":
            self._judge = None if self.settings.judge == "none" else self.generator.judge()
            if self.settings.judge == "exact" and self._judge is None:
                raise LoopError("GEMS_JUDGE=exact, but this model has no exact judge; use auto or none.")
        return self._judge

    @property
    def skills(self) -> SkillLibrary:
        if self._skills is None:
            from gems_mcp.skills import SkillLibrary, default_builtin_dir

            self._skills = SkillLibrary(self.settings.skill_dirs, default_builtin_dir())
        return self._skills

    async def _ready(self, edit: bool = False) -> None:
        """Load the model (and its image-to-image pipeline) and resolve the judge in a worker thread.

        Loading a real model takes minutes; on the event loop it would stop the server answering
        anything else, progress and cancellation included.
        """

        def load() -> None:
            self.generator.defaults()
            if edit:
                self.generator.supports("edit")
            _ = self.judge

        try:
            # A cancelled call returns at once; the load goes on and the next call finds the model ready.
            await anyio.to_thread.run_sync(load, abandon_on_cancel=True)
        except GenerationError as exc:
            raise LoopError(str(exc)) from exc

    # -- generate -----------------------------------------------------------------------

    async def generate(
        self,
        prompt: str,
        requirements: list[str] | None = None,
        intent: str | None = None,
        skill: str | None = None,
        n: int = 1,
        seed: int | None = None,
        overrides: Overrides | None = None,
        progress: ProgressFn | None = None,
    ) -> RoundResult:
        """Start a trajectory and run its first round."""
        prompt = _check_prompt(prompt, "prompt")
        intent = _check_prompt(intent, "intent") if intent is not None else prompt
        self._check_n(n)
        _check_seed(seed)
        body = self._skill_body(skill)
        await self._ready()
        defaults, unfit = self._skill_defaults(body)
        overrides = _with_skill_defaults(overrides or Overrides(), defaults)
        self._validate_prompt(prompt)
        params = self._params(overrides)
        checklist, notes = self._checklist(intent, requirements, body)
        if unfit:
            notes.append(f"skill {skill}'s defaults for {', '.join(unfit)} do not fit {self.generator.name}; "
                         "the model's own were used")
        trajectory = Trajectory(
            intent=intent,
            checklist=checklist,
            skill=skill,
            model=self.generator.name,
            max_rounds=self.settings.max_rounds,
        )
        # Stored only with its first round: a failed or cancelled round 1 leaves no empty trajectory.
        async with self._lock(trajectory.id):
            return await self._run_round(trajectory, prompt, "generate", params, _seeds(seed, n), None, progress, notes)

    # -- refine -------------------------------------------------------------------------

    async def refine(
        self,
        trajectory_id: str,
        prompt: str,
        experience: str | None = None,
        mode: Literal["regenerate", "edit"] = "regenerate",
        strength: float | None = None,
        n: int | None = None,
        seed: int | None = None,
        progress: ProgressFn | None = None,
    ) -> RoundResult:
        """Record what the last round taught, then run the next round."""
        prompt = _check_prompt(prompt, "prompt")
        experience = _check_experience(experience)
        _check_seed(seed)
        if mode not in ("regenerate", "edit"):
            raise LoopError(f"mode must be 'regenerate' or 'edit', not '{mode}'.")
        if strength is not None and mode != "edit":
            raise LoopError("strength applies only to mode='edit'; leave it out for regenerate.")
        if strength is not None and not 0 < strength <= 1:
            raise LoopError(f"strength must be in (0, 1], got {strength}.")
        async with self._lock(trajectory_id):
            trajectory = self._get(trajectory_id)
            _check_can_continue(trajectory)
            await self._ready(edit=mode == "edit")
            last = trajectory.rounds[-1]
            n = len(last.candidates) if n is None else n
            self._check_n(n)
            self._validate_prompt(prompt)
            last.experience, last.experience_source = (
                (experience, "agent") if experience else (derive_experience(trajectory, last.index), "derived")
            )
            params = last.params.model_copy(update={"strength": None, "source_image_id": None})
            init_image = None
            if mode == "edit":
                if not self.generator.supports("edit"):
                    raise LoopError(f"{self.generator.name} cannot edit images; use mode='regenerate'.")
                best = trajectory.best_round() or last
                source = best.best_candidate().image_id
                init_image = self.images.load(source)
                params = params.model_copy(update={"strength": strength or 0.6, "source_image_id": source})
            return await self._run_round(trajectory, prompt, mode, params, _seeds(seed, n), init_image, progress, [])

    # -- critique -----------------------------------------------------------------------

    async def critique(
        self,
        trajectory_id: str,
        round_index: int | None = None,
        verdicts: list[VerdictInput] | None = None,
        image_id: str | None = None,
    ) -> tuple[Trajectory, Round, list[str]]:
        """Judge a round with the server judge, or record the agent's verdicts for one of its images."""
        async with self._lock(trajectory_id):
            trajectory = self._get(trajectory_id)
            try:
                rnd = trajectory.round(round_index)
            except LookupError as exc:
                raise LoopError(str(exc)) from exc
            notes: list[str] = []
            if verdicts is not None:
                candidate = _candidate(rnd, image_id)
                candidate.verdicts = _agent_verdicts(trajectory.checklist, verdicts, candidate.verdicts)
                notes.append(f"recorded your verdicts for image {candidate.image_id}")
            elif await anyio.to_thread.run_sync(lambda: self.judge) is not None:
                await self._judge_round(trajectory.checklist, rnd)
            self._update_status(trajectory)
            self.store.save_trajectory(trajectory)
            return trajectory, rnd, notes

    # -- close and recall ---------------------------------------------------------------

    async def close(self, trajectory_id: str) -> Trajectory:
        """End a trajectory by the agent's choice; its lessons are kept."""
        async with self._lock(trajectory_id):
            trajectory = self._get(trajectory_id)
            if trajectory.status != "done":
                self._finish(trajectory, "closed")
                self.store.save_trajectory(trajectory)
            return trajectory

    def recall(self, trajectory_id: str | None = None, query: str | None = None, budget: int | None = None) -> Recall:
        """The global view of a trajectory, lessons for a new prompt, or the recent trajectories."""
        budget = budget or self.settings.memory_budget
        if budget < 500:
            raise LoopError(f"budget must be at least 500 characters, got {budget}.")
        recall = Recall()
        if trajectory_id is not None:
            trajectory = self._get(trajectory_id)
            recall.view = build_view(trajectory, budget, self.settings.memory_recent, sheet_uri(trajectory.id))
        if query is not None:
            recall.lessons = recall_lessons(self.store.lessons(), _check_prompt(query, "query"))
        if trajectory_id is None and query is None:
            recall.recent = [_summary_row(t) for t in self.store.list_trajectories(limit=10)]
        return recall

    def trajectory(self, trajectory_id: str) -> Trajectory:
        return self._get(trajectory_id)

    def sheet(self, trajectory: Trajectory) -> Image.Image:
        """A contact sheet of every round's best image, labelled with round and score."""
        if not trajectory.rounds:
            raise LoopError(f"trajectory {trajectory.id} has no rounds yet.")
        total = len(trajectory.checklist)
        tiles, labels = [], []
        for rnd in trajectory.rounds:
            tiles.append(self.images.load(rnd.best_candidate().image_id))
            score = f"{rnd.passed}/{total}" if rnd.judged else "unjudged"
            labels.append(f"round {rnd.index}  {score}")
        return contact_sheet(tiles, labels)

    # -- one round ----------------------------------------------------------------------

    async def _run_round(
        self,
        trajectory: Trajectory,
        prompt: str,
        mode: RoundMode,
        params: GenerationParams,
        seeds: list[int],
        init_image: Image.Image | None,
        progress: ProgressFn | None,
        notes: list[str],
    ) -> RoundResult:
        request = GenerationRequest(
            prompt=prompt,
            seeds=seeds,
            width=params.width,
            height=params.height,
            steps=params.steps,
            guidance=params.guidance,
            negative_prompt=params.negative_prompt,
            init_image=init_image,
            strength=params.strength,
        )
        queued = time.perf_counter()
        started: list[float] = []

        def work(on_step: Any, should_stop: Any) -> list[Image.Image]:
            started.append(time.perf_counter())
            return self.generator.generate(request, on_step, should_stop)

        try:
            images = await self.queue.run(work, progress)
        except GenerationError as exc:
            raise LoopError(str(exc)) from exc
        done = time.perf_counter()
        record = {**params.model_dump(exclude_none=True), "prompt": prompt, "model": self.generator.name}

        def save_all() -> list[Candidate]:
            pairs = zip(images, seeds, strict=True)
            return [Candidate(image_id=self.images.save(im, {**record, "seed": s}), seed=s) for im, s in pairs]

        # PNG encoding of a batch of large images takes seconds: not on the event loop.
        candidates = await anyio.to_thread.run_sync(save_all)
        rnd = Round(
            index=len(trajectory.rounds) + 1,
            prompt=prompt,
            mode=mode,
            params=params,
            candidates=candidates,
            timings={"queue_s": round((started[0] if started else done) - queued, 3), "generate_s": round(done - (started[0] if started else queued), 3)},
        )
        trajectory.rounds.append(rnd)
        if self.judge is not None:
            t0 = time.perf_counter()
            await self._judge_round(trajectory.checklist, rnd)
            rnd.timings["judge_s"] = round(time.perf_counter() - t0, 3)
        self._update_status(trajectory)
        self.store.save_trajectory(trajectory)
        return RoundResult(trajectory, rnd, images, notes)

    async def _judge_round(self, checklist: list[Requirement], rnd: Round) -> None:
        judge = self.judge
        assert judge is not None
        covered = [r for r in checklist if _judge_covers(judge, r)]
        if not covered:
            return

        def verify_all() -> list[list[Verdict]]:
            return [judge.verify(self.images.load(c.image_id), covered) for c in rnd.candidates]

        results = await anyio.to_thread.run_sync(verify_all)
        for candidate, verdicts in zip(rnd.candidates, results, strict=True):
            # Keep agent answers for the questions this judge cannot check.
            kept = [v for v in candidate.verdicts or [] if v.judge == "agent" and v.requirement_id not in {r.id for r in covered}]
            candidate.verdicts = _in_order(checklist, verdicts + kept)

    def _update_status(self, trajectory: Trajectory) -> None:
        if trajectory.status == "done" or not trajectory.rounds:
            return
        last = trajectory.rounds[-1]
        total = len(trajectory.checklist)
        if total and any(r.judged and r.passed == total for r in trajectory.rounds):
            self._finish(trajectory, "all_passed")
        elif len(trajectory.rounds) >= trajectory.max_rounds and (last.judged or not total):
            self._finish(trajectory, "budget_spent")
        trajectory.updated_at = time.time()

    def _finish(self, trajectory: Trajectory, reason: Literal["all_passed", "budget_spent", "closed"]) -> None:
        trajectory.status = "done"
        trajectory.done_reason = reason
        last = trajectory.rounds[-1] if trajectory.rounds else None
        if last is not None and last.experience is None:
            last.experience, last.experience_source = derive_experience(trajectory, last.index), "derived"
        lessons = extract_lessons(trajectory)
        if lessons:
            self.store.add_lessons(lessons)
        log.info("trajectory %s done (%s), %d lessons kept", trajectory.id, reason, len(lessons))

    # -- helpers ------------------------------------------------------------------------

    def _lock(self, trajectory_id: str) -> anyio.Lock:
        """The lock that keeps one trajectory's calls in order."""
        lock = self._locks.get(trajectory_id)
        if lock is None:
            lock = self._locks[trajectory_id] = anyio.Lock()
        return lock

    def _get(self, trajectory_id: str) -> Trajectory:
        try:
            return self.store.get_trajectory(trajectory_id)
        except UnknownTrajectory as exc:
            raise LoopError(str(exc)) from exc

    def _check_n(self, n: int) -> None:
        if not 1 <= n <= self.settings.max_candidates:
            raise LoopError(f"n must be between 1 and {self.settings.max_candidates} (GEMS_MAX_CANDIDATES), got {n}.")

    def _validate_prompt(self, prompt: str) -> None:
        try:
            self.generator.validate_prompt(prompt)
        except GenerationError as exc:
            raise LoopError(str(exc)) from exc

    def _skill_body(self, skill: str | None) -> SkillBody | None:
        if skill is None:
            return None
        try:
            return self.skills.body(skill)
        except LookupError as exc:
            raise LoopError(str(exc).strip("'\"")) from exc

    def _skill_defaults(self, body: SkillBody | None) -> tuple[dict[str, Any], list[str]]:
        """The skill's defaults this model can take, and the names of those it cannot.

        A skill is written for any model; its negative prompt or 1024-px size must not turn into an
        error about arguments the agent never passed.
        """
        if body is None:
            return {}, []
        limits = self.generator.defaults()
        fits = {
            "width": lambda v: 16 <= v <= limits.max_side,
            "height": lambda v: 16 <= v <= limits.max_side,
            "steps": lambda v: 1 <= v <= limits.max_steps,
            "guidance": lambda v: self.generator.supports("guidance"),
            "negative_prompt": lambda v: self.generator.supports("negative_prompt"),
        }
        usable, unfit = {}, []
        for name, value in body.defaults.model_dump(exclude_none=True).items():
            if fits.get(name, lambda v: True)(value):
                usable[name] = value
            else:
                unfit.append(name)
        return usable, unfit

    def _params(self, overrides: Overrides) -> GenerationParams:
        defaults = self.generator.defaults()
        width = defaults.width if overrides.width is None else overrides.width
        height = defaults.height if overrides.height is None else overrides.height
        steps = defaults.steps if overrides.steps is None else overrides.steps
        for name, value in (("width", width), ("height", height)):
            if not 16 <= value <= defaults.max_side:
                raise LoopError(f"{name} must be between 16 and {defaults.max_side} pixels, got {value}.")
        if not 1 <= steps <= defaults.max_steps:
            raise LoopError(f"steps must be between 1 and {defaults.max_steps}, got {steps}.")
        guidance = overrides.guidance if overrides.guidance is not None else defaults.guidance
        if guidance is not None and not 0 <= guidance <= 50:
            raise LoopError(f"guidance must be between 0 and 50, got {guidance}.")
        if overrides.guidance is not None and not self.generator.supports("guidance"):
            raise LoopError(f"{self.generator.name} takes no guidance scale; leave guidance out.")
        negative = overrides.negative_prompt or None
        if negative is not None:
            _check_prompt(negative, "negative_prompt")
            if not self.generator.supports("negative_prompt"):
                raise LoopError(f"{self.generator.name} takes no negative prompt; leave negative_prompt out.")
        return GenerationParams(width=width, height=height, steps=steps, guidance=guidance, negative_prompt=negative)

    def _checklist(
        self, intent: str, requirements: list[str] | None, body: SkillBody | None
    ) -> tuple[list[Requirement], list[str]]:
        """The fixed checklist: the backend's own questions when it knows its world, else the agent's."""
        notes: list[str] = []
        questions: list[Requirement] = []
        try:
            world = self.generator.checklist(intent)
        except GenerationError as exc:
            raise LoopError(str(exc)) from exc
        if world:
            # The backend's questions are exact and checked by its judge; questions in other words
            # would stay unanswerable, so they are left out and the agent is told.
            questions.extend(world)
            left_out = [name for name, given in (("requirements", requirements), ("skill questions", body and body.checklist)) if given]
            if left_out:
                notes.append(f"{self.generator.name} derives its checklist from the prompt; your {' and '.join(left_out)} were not added")
        else:
            for text in requirements or []:
                questions.append(Requirement(id="", question=_check_question(text), source="agent"))
            for text in body.checklist if body else []:
                questions.append(Requirement(id="", question=text, source="skill"))
        if not questions:
            notes.append(
                "no checklist: pass requirements (yes/no questions) to generate so rounds can be verified"
            )
        if len(questions) > MAX_QUESTIONS:
            raise LoopError(f"a checklist holds at most {MAX_QUESTIONS} questions, got {len(questions)}.")
        for i, req in enumerate(questions, start=1):
            req.id = f"q{i}"
            if req.kind == "other":
                req.kind = classify_kind(req.question)
        return questions, notes


# -- module helpers ----------------------------------------------------------------------


def sheet_uri(trajectory_id: str) -> str:
    return f"gems://trajectories/{trajectory_id}/sheet.png"


def _check_prompt(text: str | None, name: str) -> str:
    if text is None or not text.strip():
        raise LoopError(f"{name} is empty; describe the image in words.")
    if len(text) > MAX_PROMPT_CHARS:
        raise LoopError(f"{name} is {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed.")
    return text.strip()


def _check_question(text: str) -> str:
    text = (text or "").strip()
    if not text or len(text) > 300:
        raise LoopError("each requirement must be a yes/no question of 1 to 300 characters.")
    return text


def _check_experience(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    words = len(text.split())
    if words >= MAX_EXPERIENCE_WORDS:
        raise LoopError(f"experience has {words} words; keep it under {MAX_EXPERIENCE_WORDS}.")
    return text.strip()


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise LoopError(f"seed must be between 0 and {MAX_SEED}, got {seed}.")


def _seeds(seed: int | None, n: int) -> list[int]:
    start = random.SystemRandom().randrange(0, MAX_SEED - 64) if seed is None else seed
    return [(start + i) % (MAX_SEED + 1) for i in range(n)]


def _with_skill_defaults(overrides: Overrides, defaults: dict[str, Any]) -> Overrides:
    """Skill defaults fill only what the caller left unset."""
    given = overrides.model_dump(exclude_none=True)
    return Overrides(**{**defaults, **given})


def _check_can_continue(trajectory: Trajectory) -> None:
    if trajectory.status == "done":
        why = {
            "all_passed": "every question already passes",
            "budget_spent": f"its {trajectory.max_rounds}-round budget is spent",
            "closed": "it was closed",
        }[trajectory.done_reason or "closed"]
        best = trajectory.best_round()
        pick = f"; the answer is round {best.index}" if best else ""
        raise LoopError(f"trajectory {trajectory.id} is done: {why}{pick}. Call generate to start a new one.")
    if not trajectory.rounds:
        raise LoopError(f"trajectory {trajectory.id} has no rounds to refine; call generate to start a new one.")
    if len(trajectory.rounds) >= trajectory.max_rounds:
        raise LoopError(
            f"trajectory {trajectory.id} has used its {trajectory.max_rounds}-round budget; "
            "call critique to record the last verdicts, or generate to start a new one."
        )
    last = trajectory.rounds[-1]
    if not last.judged and trajectory.checklist:
        raise LoopError(
            f"round {last.index} has no verdicts yet; call critique('{trajectory.id}') first "
            "(with verdicts=[...] if you judge the image yourself)."
        )


def _candidate(rnd: Round, image_id: str | None) -> Candidate:
    if image_id is None:
        if len(rnd.candidates) == 1 or rnd.judged:
            return rnd.best_candidate()
        ids = ", ".join(c.image_id for c in rnd.candidates)
        raise LoopError(f"round {rnd.index} has {len(rnd.candidates)} images; name one with image_id ({ids}).")
    for c in rnd.candidates:
        if c.image_id == image_id:
            return c
    raise LoopError(f"image {image_id} is not in round {rnd.index}; its images are {', '.join(c.image_id for c in rnd.candidates)}.")


def _agent_verdicts(
    checklist: list[Requirement], answers: list[VerdictInput], existing: list[Verdict] | None
) -> list[Verdict]:
    """The agent's answers, one per question, merged over what a judge said before."""
    ids = [r.id for r in checklist]
    if not ids and answers:
        raise LoopError("this trajectory has no checklist, so there is nothing to answer; pass verdicts=[].")
    seen: set[str] = set()
    for a in answers:
        if a.id not in ids:
            raise LoopError(f"'{a.id}' is not a question of this checklist; ids are {', '.join(ids)}.")
        if a.id in seen:
            raise LoopError(f"question {a.id} is answered twice; give one verdict per question.")
        seen.add(a.id)
    answered = {a.id: Verdict(requirement_id=a.id, passed=a.passed, note=a.note, judge="agent") for a in answers}
    previous = {v.requirement_id: v for v in existing or []}
    missing = [i for i in ids if i not in answered and i not in previous]
    if missing:
        raise LoopError(f"give one verdict per question; missing: {', '.join(missing)}.")
    return _in_order(checklist, list({**previous, **answered}.values()))


def _in_order(checklist: list[Requirement], verdicts: list[Verdict]) -> list[Verdict]:
    by_id = {v.requirement_id: v for v in verdicts}
    return [by_id[r.id] for r in checklist if r.id in by_id]


def _judge_covers(judge: Judge, requirement: Requirement) -> bool:
    covers = getattr(judge, "covers", None)
    return True if covers is None else bool(covers(requirement))


def _summary_row(trajectory: Trajectory) -> dict[str, Any]:
    best = trajectory.best_round()
    return {
        "id": trajectory.id,
        "intent": trajectory.intent[:120],
        "rounds": len(trajectory.rounds),
        "best": f"round {best.index}: {best.passed}/{len(trajectory.checklist)}" if best else None,
        "status": trajectory.status if trajectory.status == "active" else f"done ({trajectory.done_reason})",
    }


__all__ = ["AgentLoop", "LoopError", "Overrides", "Recall", "RoundResult", "VerdictInput", "UnknownImage", "sheet_uri"]
