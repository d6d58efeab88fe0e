"""Reference agent: a scripted planner, refiner and compressor for the shapes world, talking MCP only.

It plays the roles an LLM agent plays against gems-mcp, with fixed rules, so the loop can be
measured: `single` (one image), `best-of-B` (B seeds in one batch; GEMS' "Search" baseline),
`layout` (one image drawn from the planner's layout), `loop` (rewrite the prompt from the last
round's failures only), `repair` (no layout; region edits aimed at what the judge found, as SLD
corrects an image it did not lay out), `gems` (skill, planner layout, region edits, memory view,
experiences) and `gems+lessons` (gems after earlier tasks filled the lesson store).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from mcp import Client

from gems_mcp import uris
from gems_mcp.bench.repair import plan_repair
from gems_mcp.checks import Detection
from gems_mcp.errors import AgentError, InvalidRequest
from gems_mcp.shapes import world
from gems_mcp.shapes.layout import plan_layout

Condition = Literal["single", "best-of-B", "layout", "loop", "repair", "gems", "gems+lessons"]
CONDITIONS: tuple[Condition, ...] = ("single", "best-of-B", "layout", "loop", "repair", "gems", "gems+lessons")
SKILL = "shapes-world"
_LEVER_TAG = re.compile(r"\[lever: ([a-z+]+)\]")
_TRAJECTORY_URI = uris.trajectory("")


@dataclass
class Outcome:
    """How one prompt went under one condition."""

    prompt: str
    category: str
    condition: str
    passed: bool
    question_fraction: float
    images: int
    rounds: int
    curve: list[float] = field(default_factory=list)
    trajectory_id: str = ""
    best_image_id: str = ""
    seconds: float = 0.0


@dataclass
class _State:
    trajectory_id: str
    checklist: list[dict[str, Any]]
    best_fraction: float = -1.0
    best_image: str = ""
    curve: list[float] = field(default_factory=list)
    done: bool = False
    last_failed: list[dict[str, Any]] = field(default_factory=list)
    found: list[Detection] = field(default_factory=list)
    planned: list[tuple[float, float, float, float]] | None = None


class ReferenceAgent:
    """Solves one prompt at a time through an MCP client, under one condition and image budget."""

    def __init__(
        self, client: Client, condition: Condition, budget: int = 5, log: IO[str] | None = None, n: int = 1
    ) -> None:
        if condition not in CONDITIONS:
            raise InvalidRequest(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
        self.client = client
        self.condition = condition
        self.budget = budget
        self.log = log
        self.n = n  # candidates per round in the loop conditions; refine keeps the first round's n

    async def solve(self, prompt: str, category: str = "", seed: int | None = None) -> Outcome:
        started = time.perf_counter()
        if self.condition == "single":
            state = await self._generate(prompt, n=1, seed=seed)
        elif self.condition == "layout":
            state = await self._generate(_canonical(prompt), n=1, seed=seed, intent=prompt, layout=_layout(prompt, seed))
        elif self.condition == "best-of-B":
            state = await self._generate(prompt, n=self.budget, seed=seed)
        else:
            state = await self._iterate(prompt, seed)
        images = 1 if self.condition in ("single", "layout") else self.budget
        used = len(state.curve) * self.n if self.condition in ("loop", "repair", "gems", "gems+lessons") else images
        curve = state.curve + [state.curve[-1]] * (self.budget - len(state.curve)) if state.curve else []
        return Outcome(
            prompt=prompt,
            category=category,
            condition=self.condition,
            passed=state.best_fraction >= 1.0,
            question_fraction=max(state.best_fraction, 0.0),
            images=used,
            rounds=len(state.curve),
            curve=curve,
            trajectory_id=state.trajectory_id,
            best_image_id=state.best_image,
            seconds=round(time.perf_counter() - started, 3),
        )

    # -- the loop conditions -----------------------------------------------------------------

    async def _iterate(self, prompt: str, seed: int | None) -> _State:
        if self.condition == "loop":
            return await self._rewrite_loop(prompt, seed)
        preferred = await self._lessons(prompt) if self.condition == "gems+lessons" else []
        await self._call("skill_" + SKILL, {"prompt": prompt})
        canonical = _canonical(prompt)
        layout = _layout(prompt, seed) if self.condition != "repair" else None
        state = await self._generate(canonical, n=self.n, seed=seed, intent=prompt, skill=SKILL, layout=layout)
        state.planned = [tuple(r["box"]) for r in layout] if layout else None
        relayouts, tried = 0, dict[str, int]()
        while not state.done:
            spec = _spec(prompt)
            repair = plan_repair(spec, state.found, state.planned) if spec else None
            args: dict[str, Any] = {"trajectory_id": state.trajectory_id, "prompt": canonical}
            signature = repr(repair.edits) if repair else ""
            tried[signature] = tried.get(signature, 0) + 1
            if repair and repair.edits and tried[signature] <= 2 and "relayout" not in preferred[:1]:
                lever = "+".join(repair.levers)
                args |= {"mode": "inpaint", "edits": repair.edits, "image_id": state.best_image}
            else:
                relayouts += 1
                lever = "relayout" if layout else "reseed"
                if layout:
                    args["layout"] = _layout(prompt, (seed or 0) + 7919 * relayouts)
                    state.planned = [tuple(r["box"]) for r in args["layout"]]
            args["experience"] = _experience(state, lever)
            await self._observe(state, await self._call("refine", args))
        return state

    async def _rewrite_loop(self, prompt: str, seed: int | None) -> _State:
        """The refiner without memory, layouts or region edits: it rewrites the prompt from the last round."""
        state = await self._generate(prompt, n=self.n, seed=seed)
        current = prompt
        while not state.done:
            current, mode = _choose(prompt, current, state)
            args: dict[str, Any] = {"trajectory_id": state.trajectory_id, "prompt": current, "mode": mode}
            if mode == "edit":
                args["strength"] = 0.55
            await self._observe(state, await self._call("refine", args))
        return state

    # -- talking to the server ---------------------------------------------------------------

    async def _generate(
        self, prompt: str, n: int, seed: int | None, intent: str | None = None, skill: str | None = None,
        layout: list[dict[str, Any]] | None = None,
    ) -> _State:
        args: dict[str, Any] = {"prompt": prompt, "n": n}
        if layout:
            args["layout"] = layout
        if seed is not None:
            args["seed"] = seed
        if intent and intent != prompt:
            args["intent"] = intent
        if skill:
            args["skill"] = skill
        result = await self._call("generate", args)
        links = [c.uri for c in result.content if c.type == "resource_link" and str(c.uri).startswith(_TRAJECTORY_URI)]
        if not links:
            raise AgentError("generate did not link its trajectory")
        state = _State(trajectory_id=str(links[-1]).removeprefix(_TRAJECTORY_URI), checklist=[])
        await self._observe(state, result)
        return state

    async def _observe(self, state: _State, result: Any) -> None:
        """Read the round's verdicts (critique's structured output) and the stop rule."""
        critique = await self._call("critique", {"trajectory_id": state.trajectory_id})
        data = critique.structured_content or {}
        rows = data.get("checklist", [])
        state.checklist = rows
        best_fraction, best_image, best_failed = -1.0, "", rows
        for image in data.get("images", []):
            answers = [row["answers"].get(image) for row in rows]
            passed = sum(1 for a in answers if a and a["passed"])
            fraction = passed / len(rows) if rows else 0.0
            if fraction > best_fraction:
                best_fraction, best_image = fraction, image
                best_failed = [row for row, a in zip(rows, answers, strict=True) if not (a and a["passed"])]
        state.curve.append(max(best_fraction, state.best_fraction, 0.0))
        if best_fraction > state.best_fraction:
            state.best_fraction, state.best_image = best_fraction, best_image
            found = (data.get("detections") or {}).get(best_image) or []
            state.found = [Detection.model_validate(d) for d in found]
            state.last_failed = best_failed
        if not state.curve[:-1]:
            state.last_failed = best_failed
        state.done = str(data.get("status", "")).startswith("done")
        if not state.done and "0 round(s) left" in str(data.get("message", "")):
            # Questions no server judge reads wait for an agent's verdicts; this agent gives none, so it ends here.
            await self._call("close_trajectory", {"trajectory_id": state.trajectory_id})
            state.done = True
        if self.log is not None:
            passing = len(rows) - len(best_failed)
            print(f"round {len(state.curve)}: {passing} of {len(rows)} questions pass", file=self.log)
            for row in best_failed:
                print(f"  ✗ {row['question']}", file=self.log)

    async def _lessons(self, prompt: str) -> list[str]:
        """Levers that earlier, similar tasks found useful, best first."""
        result = await self._call("recall_memory", {"query": prompt})
        hits = (result.structured_content or {}).get("lessons") or []
        levers: list[str] = []
        for hit in hits:
            levers += _LEVER_TAG.findall(hit.get("lesson", {}).get("text", ""))
        return list(dict.fromkeys(levers))

    async def _call(self, tool: str, args: dict[str, Any]) -> Any:
        result = await self.client.call_tool(tool, args)
        if result.is_error:
            raise AgentError(f"{tool} failed: {getattr(result.content[0], 'text', '')}")
        return result


# -- rewriting prompts in the shapes world -------------------------------------------------


def _spec(prompt: str) -> world.SceneSpec | None:
    try:
        return world.parse(prompt)
    except InvalidRequest:
        return None


def _layout(prompt: str, seed: int | None) -> list[dict[str, Any]] | None:
    """The planner's layout for prompts that place, count or color several objects; None for one object."""
    spec = _spec(prompt)
    if spec is None or (len(spec.groups) == 1 and spec.total == 1):
        return None
    return [r.model_dump(mode="json") for r in plan_layout(prompt, seed)]


def _canonical(prompt: str) -> str:
    spec = _spec(prompt)
    return spec.caption() if spec else prompt


def _apply(lever: str, spec: world.SceneSpec | None, current: str, intent: str) -> tuple[str, str]:
    """The (prompt, mode) a lever produces; levers that do not apply fall back to re-seeding."""
    if spec is None:
        return current, "regenerate"
    if lever == "edit":
        return current, "edit"
    if lever == "mirror" and spec.relation:
        mirrored = {"left": "right", "right": "left", "above": "below", "below": "above"}[spec.relation]
        a, b = spec.groups
        flipped = world.SceneSpec((b, a), mirrored).caption()
        return (spec.caption() if current == flipped else flipped), "regenerate"
    if lever == "reorder" and len(spec.groups) > 1 and not spec.relation:
        swapped = world.SceneSpec(tuple(reversed(spec.groups))).caption()
        return (spec.caption() if current == swapped else swapped), "regenerate"
    return current, "regenerate"


def _choose(intent: str, current: str, state: _State) -> tuple[str, str]:
    """The memoryless refiner of the loop condition: the lever the last round calls for, as (prompt, mode).
    It sees only the last round, so it cannot know what it tried before."""
    failed_kinds = {row["kind"] for row in state.last_failed}
    if "position" in failed_kinds:
        lever = "mirror"  # an edit keeps the layout, which is what is wrong: restate the relation instead
    elif len(state.last_failed) == 1 and state.best_fraction >= 0.5:
        lever = "edit"
    elif "attribute" in failed_kinds or "count" in failed_kinds:
        lever = "reorder"
    else:
        lever = "reseed"
    return _apply(lever, _spec(intent), current, intent)


def _experience(state: _State, lever: str) -> str:
    """The compressor: what failed and which lever comes next, well under 100 words."""
    failed = "; ".join(f"{r['id']} {r['question']}" for r in state.last_failed[:4]) or "nothing"
    return f"Round {len(state.curve)} failed: {failed}. Next change [lever: {lever}]."


# -- whole-prompt entry points --------------------------------------------------------------


async def run_prompt(prompt: str, out: Path, n: int = 2, rounds: int | None = None, seed: int | None = None) -> str:
    """`gems-mcp run`: the gems condition on one prompt, in-process; saves the best image and the sheet."""
    import anyio.to_thread

    from gems_mcp.config import load_settings
    from gems_mcp.gallery import gallery_url
    from gems_mcp.loop import AgentLoop
    from gems_mcp.server import create_server

    settings = load_settings(max_rounds=rounds) if rounds else load_settings()
    loop = AgentLoop(settings)
    if await anyio.to_thread.run_sync(lambda: loop.judge) is None:
        # Without verdicts the scripted agent could not tell a good round from a bad one.
        raise InvalidRequest(
            f"{settings.model or 'this model'} has no server judge (GEMS_JUDGE={settings.judge}), so gems-mcp run "
            "cannot check its images; unset GEMS_MODEL to run the embedded model, or use gems-mcp serve with an "
            "agent that answers the checklist itself."
        )
    server = create_server(settings, loop)
    out.mkdir(parents=True, exist_ok=True)
    error = None
    async with Client(server) as client:
        print(f"gems-mcp run: {prompt!r} (model: {settings.model or 'embedded shapes world'})", file=sys.stderr)
        agent = ReferenceAgent(client, "gems", budget=settings.max_rounds, log=sys.stderr, n=n)
        try:
            outcome = await agent.solve(prompt, seed=seed)
        except AgentError as exc:
            # Raised outside the client's task group, so the caller sees the sentence, not an ExceptionGroup.
            error = re.sub(r"^.*?Error executing tool \w+: ", "", str(exc))
        else:
            image = await client.read_resource(f"gems://images/{outcome.best_image_id}")
            sheet = await client.read_resource(f"gems://trajectories/{outcome.trajectory_id}/sheet.png")
    if error is not None:
        raise InvalidRequest(error)  # the server refused the prompt: a request that cannot work
    import base64

    best_path = out / f"{outcome.trajectory_id}-best.png"
    sheet_path = out / f"{outcome.trajectory_id}-rounds.png"
    best_path.write_bytes(base64.b64decode(getattr(image.contents[0], "blob", "")))
    sheet_path.write_bytes(base64.b64decode(getattr(sheet.contents[0], "blob", "")))
    verdict = "all questions pass" if outcome.passed else f"{outcome.question_fraction:.0%} of questions pass"
    return (
        f"{verdict} after {outcome.rounds} round(s) ({outcome.seconds:.1f} s)\n"
        f"best image: {best_path}\ncontact sheet of all rounds: {sheet_path}\n"
        f"trajectory: {outcome.trajectory_id} (gems-mcp memory show {outcome.trajectory_id})"
        + (f"\ngallery: {page}" if (page := gallery_url(settings.home, outcome.trajectory_id)) else "")
    )


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    return asdict(outcome)
