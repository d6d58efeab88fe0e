"""AgentLoop: the GEMS loop's server side (generate, refine, critique, recall, close), independent of MCP.

It keeps the story; the parts live in their own rooms: parameters (params.ParamResolver), the
checklist (checklist.build_checklist), one round on the device (rounds.RoundRunner), the stop rule
and best round (types.Trajectory), memory (memory/), formatting (results).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import anyio
import anyio.to_thread
from PIL import Image

from gems_mcp import inputs, uris
from gems_mcp.backends import Models
from gems_mcp.checklist import build_checklist
from gems_mcp.config import Settings
from gems_mcp.errors import InvalidRequest, TrajectoryFinished
from gems_mcp.generation.base import Capabilities, Generator
from gems_mcp.generation.devices import devices_of
from gems_mcp.generation.queue import DeviceQueue, ProgressFn
from gems_mcp.images import ImageStore
from gems_mcp.memory.lessons import LessonHit, clip_hit, extract_lessons, recall_lessons
from gems_mcp.memory.retention import apply_retention
from gems_mcp.memory.store import MemoryStore
from gems_mcp.memory.views import MemoryView, build_view, derive_experience
from gems_mcp.params import ParamResolver
from gems_mcp.results import recall_text
from gems_mcp.rounds import PlanRequest, RoundPlan, RoundRunner, check_layout, next_plan
from gems_mcp.types import DoneReason, ImageParams, RefineMode, Region, Round, Trajectory
from gems_mcp.verdicts import VerdictInput, agent_verdicts, candidate, check_open

if TYPE_CHECKING:
    from gems_mcp.critique.base import Judge
    from gems_mcp.skills import SkillLibrary

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    recent: list[Trajectory] | None = None
    notice: str | None = None
    """Said once, on the first recall after start-up: what start-up found (a corrupt database moved aside)."""


class AgentLoop:
    """Owns the model, judging, memory and the stop rule; the agent plays planner and refiner."""

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
        self.models = Models(settings, generator, judge)
        self.store = store or MemoryStore(settings.home, settings.max_lessons, int(settings.max_lessons_mb * 1e6))
        self.images = images or ImageStore(settings.home / "images")
        apply_retention(self.store, self.images, settings.retention_days)
        self._skills = skills
        self.queue = DeviceQueue(lambda: devices_of(self.models.generator))  # one slot per device
        self.runner = RoundRunner(lambda: self.models.generator, lambda: self.models.judge, self.images, self.queue)
        # Weak values: a lock lives while a call holds it, so ids a client makes up are not kept forever.
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

    # -- collaborators -------------------------------------------------------------------

    @property
    def generator(self) -> Generator:
        return self.models.generator

    @property
    def judge(self) -> Judge | None:
        return self.models.judge

    @property
    def capabilities(self) -> Capabilities:
        return self.models.capabilities

    @property
    def skills(self) -> SkillLibrary:
        if self._skills is None:
            from gems_mcp.skills import SkillLibrary, default_builtin_dir

            self._skills = SkillLibrary(self.settings.skill_dirs, default_builtin_dir())
        return self._skills

    # -- generate -----------------------------------------------------------------------

    async def generate(
        self,
        prompt: str,
        requirements: list[str] | None = None,
        intent: str | None = None,
        skill: str | None = None,
        n: int = 1,
        seed: int | None = None,
        params: ImageParams | None = None,
        progress: ProgressFn | None = None,
        *,
        layout: list[Region] | None = None,
        background: str | None = None,
    ) -> RoundResult:
        """Start a trajectory: fix its checklist and run round 1."""
        prompt = inputs.prompt(prompt)
        intent = inputs.prompt(intent, "intent") if intent is not None else prompt
        await _check_writable(self)
        inputs.candidates(n, self.settings.max_candidates)
        inputs.seed(seed)
        body = self.skills.body(skill) if skill is not None else None
        caps = await self.models.ready()
        caps.check_batch(n)
        await _off_loop(_check_prompt, self.generator, prompt)  # a remote backend asks its replica
        resolved, notes = ParamResolver(caps).first_round(params or ImageParams(), body.defaults if body else None, skill)
        check_layout(caps, layout, background)
        # Read from the prompt: intent is the user's words, stored as given and never parsed.
        checklist, more_notes = await _off_loop(build_checklist, self.generator, prompt, requirements, body,
                                                self.models.derives_checklist, layout)
        trajectory = Trajectory(
            intent=intent, checklist=checklist, skill=skill, model=self.generator.name, max_rounds=self.settings.max_rounds
        )
        plan = RoundPlan(prompt, "generate", resolved, inputs.seeds(seed, n), layout=layout or [], background=background)
        rnd, images = await self.runner.run(plan, 1, checklist, progress)
        trajectory.rounds.append(rnd)
        finished = self._settle(trajectory)
        # Stored only with its first round: a failed or cancelled round 1 leaves no empty trajectory.
        await _off_loop(self.store.save_trajectory, trajectory)
        await self._keep_lessons(trajectory, bool(finished))
        return RoundResult(trajectory, rnd, images, notes + more_notes + plan.notes)

    # -- refine -------------------------------------------------------------------------

    async def refine(
        self,
        trajectory_id: str,
        prompt: str,
        experience: str | None = None,
        mode: RefineMode = "regenerate",
        strength: float | None = None,
        n: int | None = None,
        seed: int | None = None,
        progress: ProgressFn | None = None,
        *,
        edits: list[Region] | None = None,
        image_id: str | None = None,
        layout: list[Region] | None = None,
        background: str | None = None,
    ) -> RoundResult:
        """Record what the last round taught, then run the next round."""
        prompt = inputs.prompt(prompt)
        experience = inputs.experience(experience)
        await _check_writable(self)
        inputs.seed(seed)
        ask = _plan_request(prompt, mode, strength, edits, image_id, layout, background)
        async with self._lock(trajectory_id):
            trajectory = await _off_loop(self.store.get_trajectory, trajectory_id)
            trajectory.check_can_continue()
            caps = await self.models.ready()
            last = trajectory.rounds[-1]
            n = len(last.candidates) if n is None else n
            inputs.candidates(n, self.settings.max_candidates)
            caps.check_batch(n)
            await _off_loop(_check_prompt, self.generator, prompt)
            plan = await _off_loop(next_plan, caps, trajectory, self.images, ask)  # an edit loads its source PNG
            plan.seeds = inputs.seeds(seed, n)
            lesson = _lesson(experience, trajectory, last.index)
            rnd, images = await self.runner.run(plan, len(trajectory.rounds) + 1, trajectory.checklist, progress)
            finished: list[DoneReason] = []

            def commit(current: Trajectory) -> Trajectory:
                # Another server on the same GEMS_HOME may have added rounds meanwhile: number ours after them.
                if current.status == "done":
                    current.check_can_continue()
                led_on = current.round(last.index)
                if led_on.experience is None:
                    led_on.experience, led_on.experience_source = lesson
                current.rounds.append(rnd.model_copy(update={"index": len(current.rounds) + 1}))
                finished.extend(filter(None, [self._settle(current)]))
                return current

            trajectory = await _off_loop(self.store.update_trajectory, trajectory_id, commit)
            await self._keep_lessons(trajectory, bool(finished))
            return RoundResult(trajectory, trajectory.rounds[-1], images, plan.notes)

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
            trajectory = await _off_loop(self.store.get_trajectory, trajectory_id)
            index = trajectory.round(round_index).index
            notes: list[str] = []
            update: Callable[[Round], None]
            if verdicts is not None:
                check_open(trajectory)
                chosen = candidate(trajectory.round(index), image_id)
                counted, given, said = agent_verdicts(trajectory.checklist, verdicts, chosen)
                notes.extend(said)

                def update(rnd: Round) -> None:
                    target = candidate(rnd, chosen.image_id)
                    target.verdicts, target.agent_verdicts = counted, given

            elif await anyio.to_thread.run_sync(lambda: self.judge) is not None:
                judged = trajectory.round(index).model_copy(deep=True)
                await self.runner.judge(trajectory.checklist, judged)

                def update(rnd: Round) -> None:
                    rnd.candidates = judged.candidates

            else:

                def update(rnd: Round) -> None:
                    pass

            finished: list[DoneReason] = []

            def commit(current: Trajectory) -> Trajectory:
                if verdicts is not None:
                    check_open(current)  # another process may have closed it meanwhile
                update(current.round(index))
                finished.extend(filter(None, [self._settle(current)]))
                return current

            trajectory = await _off_loop(self.store.update_trajectory, trajectory_id, commit)
            await self._keep_lessons(trajectory, bool(finished))
            return trajectory, trajectory.round(index), notes

    # -- close and recall ---------------------------------------------------------------

    async def close(self, trajectory_id: str) -> Trajectory:
        """End a trajectory by the agent's choice; its lessons are kept."""
        async with self._lock(trajectory_id):
            finished: list[bool] = []

            def commit(current: Trajectory) -> Trajectory:
                if current.status != "done":
                    _finish(current, "closed")
                    finished.append(True)
                return current

            trajectory = await _off_loop(self.store.update_trajectory, trajectory_id, commit)
            await self._keep_lessons(trajectory, bool(finished))
            return trajectory

    def recall(self, trajectory_id: str | None = None, query: str | None = None, budget: int | None = None) -> Recall:
        """The global view of a trajectory, lessons for a new prompt, or the recent trajectories."""
        budget = inputs.budget(budget, self.settings.memory_budget)
        recall = Recall(notice=self.store.take_notice())
        if trajectory_id is not None:
            trajectory = self.store.get_trajectory(trajectory_id)
            recall.view = build_view(trajectory, budget, self.settings.memory_recent, uris.sheet(trajectory.id))
        if query is not None:
            recall.lessons = recall_lessons(self.store.lessons(), inputs.prompt(query, "query"))
        if trajectory_id is None and query is None:
            recall.recent = self.store.list_trajectories(limit=10)
        return _fit_and_count(self.store, recall, budget)

    def trajectory(self, trajectory_id: str) -> Trajectory:
        return self.store.get_trajectory(trajectory_id)

    # -- the stop rule's side effects ---------------------------------------------------

    def _settle(self, trajectory: Trajectory) -> DoneReason | None:
        """Apply the stop rule; the reason when this call ended the trajectory."""
        if trajectory.status == "done":
            return None
        reason = trajectory.stop_reason()
        if reason is not None:
            _finish(trajectory, reason)
        return reason

    async def _keep_lessons(self, trajectory: Trajectory, finished: bool) -> None:
        if not finished:
            return
        lessons = extract_lessons(trajectory)
        if lessons:
            await _off_loop(self.store.add_lessons, lessons)
        log.info("trajectory %s done (%s), %d lessons kept", trajectory.id, trajectory.done_reason, len(lessons))

    def _lock(self, trajectory_id: str) -> anyio.Lock:
        """The lock that keeps one trajectory's calls in order within this process."""
        lock = self._locks.get(trajectory_id)
        if lock is None:
            lock = self._locks[trajectory_id] = anyio.Lock()
        return lock


# -- module helpers ----------------------------------------------------------------------


def _check_prompt(generator: Generator, prompt: str) -> None:
    """The model's refusal of a prompt, naming the argument it is about."""
    try:
        generator.validate_prompt(prompt)
    except InvalidRequest as exc:
        raise type(exc)(f"prompt: {exc}") from exc


async def _check_writable(loop: AgentLoop) -> None:
    """Before any device work: a round that cannot be stored is not worth generating."""

    def check() -> None:
        loop.store.check_writable()
        loop.images.check_writable()

    await _off_loop(check)


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a call that may wait on disk, the store's file lock or a remote model in a worker thread, so the
    event loop keeps answering every other request meanwhile."""
    return await anyio.to_thread.run_sync(fn, *args)


def _fit_and_count(store: MemoryStore, recall: Recall, budget: int) -> Recall:
    """The recall held to its budget; the lessons it returns counted (the lessons cap keeps the most recalled)."""
    recall = fit_recall(recall, budget)
    store.note_recalled([hit.lesson.id for hit in recall.lessons or []])
    return recall


def fit_recall(recall: Recall, budget: int) -> Recall:
    """Lessons clipped, then dropped from the end (then recent rows), until recall_memory's text fits the budget."""
    recall.lessons = [clip_hit(h) for h in recall.lessons] if recall.lessons is not None else None
    while len(recall_text(recall.view, recall.lessons, recall.recent)) > budget:
        if recall.lessons:
            recall.lessons.pop()
        elif recall.recent:
            recall.recent.pop()
        else:
            break
    return recall


def _finish(trajectory: Trajectory, reason: DoneReason) -> None:
    trajectory.status, trajectory.done_reason = "done", reason
    last = trajectory.rounds[-1] if trajectory.rounds else None
    if last is not None and last.experience is None:
        last.experience, last.experience_source = derive_experience(trajectory, last.index), "derived"


def _lesson(experience: str | None, trajectory: Trajectory, index: int) -> tuple[str, Literal["agent", "derived"]]:
    """What round ``index`` taught: the agent's words, else a sentence derived from its verdicts."""
    return (experience, "agent") if experience else (derive_experience(trajectory, index), "derived")


def _plan_request(
    prompt: str, mode: str, strength: float | None, edits: list[Region] | None, image_id: str | None,
    layout: list[Region] | None, background: str | None,
) -> PlanRequest:
    """refine's arguments as one PlanRequest, once they fit the mode."""
    if mode not in ("regenerate", "edit", "inpaint"):
        raise InvalidRequest(f"mode must be 'regenerate', 'edit' or 'inpaint', not '{mode}'")
    ask = PlanRequest(prompt=prompt, mode=cast(RefineMode, mode), strength=strength, edits=edits, image_id=image_id, layout=layout,
                      background=background)
    _check_mode_arguments(ask)
    return ask


def _check_mode_arguments(ask: PlanRequest) -> None:
    mode = ask.mode
    given = {"strength": ask.strength, "edits": ask.edits, "image_id": ask.image_id, "layout": ask.layout,
             "background": ask.background}
    allowed = {"regenerate": {"layout", "background"}, "edit": {"strength", "image_id"},
               "inpaint": {"edits", "image_id", "strength"}}[mode]
    wrong = [name for name, value in given.items() if value is not None and name not in allowed]
    if wrong:
        verb = "does" if len(wrong) == 1 else "do"
        raise InvalidRequest(f"{' and '.join(wrong)} {verb} not apply to mode='{mode}', which takes {', '.join(sorted(allowed))}")
    if mode == "inpaint" and not ask.edits:
        raise InvalidRequest("mode='inpaint' needs edits: [{box: [x0, y0, x1, y1], prompt: ...}, ...]")


__all__ = ["AgentLoop", "Recall", "RefineMode", "RoundResult", "TrajectoryFinished", "VerdictInput"]
