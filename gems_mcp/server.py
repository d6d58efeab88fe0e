"""The MCP surface: tools, resources and the loop prompt, all delegating to AgentLoop."""

from __future__ import annotations

import base64
import logging
import weakref
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
from mcp.server.lowlevel import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.subscriptions import ToolsListChanged
from mcp_types import CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from gems_mcp import __version__
from gems_mcp.config import Settings, load_settings
from gems_mcp.generation.base import GenerationError
from gems_mcp.images import UnknownImage, contact_sheet, encode_png, thumbnail
from gems_mcp.loop import AgentLoop, LoopError, Overrides, Recall, RoundResult, VerdictInput
from gems_mcp.memory.store import MemoryStoreError
from gems_mcp.types import Round, Trajectory

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
gems-mcp generates images with a local diffusion model and checks them against a fixed yes/no checklist.
Run the loop: (1) optionally call a skill_* tool whose description fits the prompt and rewrite the prompt \
with its instructions; (2) call recall_memory(query=<prompt>) for lessons from earlier tasks; \
(3) generate(prompt, requirements=[yes/no questions], skill=...) starts a trajectory; \
(4) read the verdicts (or call critique and answer the questions yourself when no server judge ran); \
(5) while questions fail and the result says the trajectory is active, call refine with a rewritten prompt \
and a short experience (< 100 words: what failed and what you will change); use mode='edit' when most \
questions already pass. The answer is the round with most passes; recall_memory(trajectory_id) shows \
the whole history compactly."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_CREATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
_RECORDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class CritiqueResult(BaseModel):
    """Structured result of critique."""

    trajectory_id: str
    round: int
    status: str
    checklist: list[dict[str, Any]] = Field(description="Questions with their answers for each image of the round.")
    images: list[str] = Field(description="Image ids of the round; read gems://images/{id} for the full PNG.")
    best_round: int | None
    message: str


class RecallResult(BaseModel):
    """Structured result of recall_memory."""

    view: dict[str, Any] | None = Field(default=None, description="The trajectory's compressed global view.")
    lessons: list[dict[str, Any]] | None = Field(default=None, description="Lessons from similar finished tasks.")
    recent: list[dict[str, Any]] | None = Field(default=None, description="Recent trajectories, newest first.")


class GemsServer(MCPServer[Any]):
    """MCPServer that remembers its connections so it can announce a changed tool list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # connection -> the latest session on it; a session's non-request notifications use the
        # connection's standalone channel, so any of them can carry tools/list_changed.
        self._sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        # The SDK advertises tools.listChanged only when told to; skills can change on disk.
        low = self._lowlevel_server
        make_options = low.create_initialization_options

        def with_list_changed(notification_options: NotificationOptions | None = None, *a: Any, **kw: Any) -> Any:
            return make_options(notification_options or NotificationOptions(tools_changed=True), *a, **kw)

        low.create_initialization_options = with_list_changed  # type: ignore[method-assign]

    async def _handle_list_tools(self, ctx: Any, params: Any) -> Any:
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None:
            self._sessions[connection] = ctx.session
        return await super()._handle_list_tools(ctx, params)

    async def announce_tools_changed(self) -> None:
        """tools/list_changed to every client: legacy sessions directly, newer ones through subscriptions."""
        await self._subscriptions.publish(ToolsListChanged())
        for session in list(self._sessions.values()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a closed connection must not stop the others
                log.debug("could not notify a connection", exc_info=True)


def create_server(settings: Settings | None = None, loop: AgentLoop | None = None) -> GemsServer:
    """Build the MCP server around an AgentLoop (made from settings when not given)."""
    settings = settings or load_settings()
    loop = loop or AgentLoop(settings)

    @asynccontextmanager
    async def lifespan(server: MCPServer[Any]) -> Any:
        async with anyio.create_task_group() as tg:
            if settings.preload:
                tg.start_soon(_preload, loop)
            tg.start_soon(_watch_skills, mcp, loop)
            yield {}
            tg.cancel_scope.cancel()

    mcp = GemsServer(
        name="gems-mcp",
        title="GEMS image generation loop",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    _add_tools(mcp, loop, settings)
    _add_resources(mcp, loop)
    _add_prompts(mcp)
    register_skill_tools(mcp, loop)
    return mcp


# -- tools ---------------------------------------------------------------------------------


def _add_tools(mcp: GemsServer, loop: AgentLoop, settings: Settings) -> None:
    @mcp.tool(annotations=_CREATES, structured_output=False)
    async def generate(
        prompt: Annotated[str, Field(description="What to draw: the prompt sent to the model (1-2000 characters).")],
        ctx: Context,
        requirements: Annotated[
            list[str] | None,
            Field(description="Yes/no questions the image must satisfy; fixed for the whole trajectory."),
        ] = None,
        intent: Annotated[
            str | None, Field(description="The user's original request, when prompt is already a rewrite.")
        ] = None,
        skill: Annotated[
            str | None, Field(description="Id of a skill (see the skill_* tools) whose checklist and defaults apply.")
        ] = None,
        n: Annotated[int, Field(description="Candidates in one batch, 1 to GEMS_MAX_CANDIDATES (default 8).")] = 1,
        seed: Annotated[int | None, Field(description="Seed of the first candidate (0 to 2^32-1); random when left out.")] = None,
        width: Annotated[int | None, Field(description="Image width in pixels; the model's default when left out.")] = None,
        height: Annotated[int | None, Field(description="Image height in pixels; the model's default when left out.")] = None,
        steps: Annotated[int | None, Field(description="Denoising steps; the model's default when left out.")] = None,
        guidance: Annotated[float | None, Field(description="Classifier-free guidance scale, 0 to 50.")] = None,
        negative_prompt: Annotated[str | None, Field(description="What the image must not show.")] = None,
    ) -> CallToolResult:
        """Start a trajectory: fix its checklist and run round 1 (n candidates in one batch)."""
        overrides = Overrides(width=width, height=height, steps=steps, guidance=guidance, negative_prompt=negative_prompt)
        result = await _call(
            loop.generate(prompt, requirements, intent, skill, n, seed, overrides, _progress(ctx))
        )
        return await anyio.to_thread.run_sync(_round_content, result, settings)

    @mcp.tool(annotations=_CREATES, structured_output=False)
    async def refine(
        trajectory_id: Annotated[str, Field(description="The trajectory to continue (from generate).")],
        prompt: Annotated[str, Field(description="The rewritten prompt for the next round.")],
        ctx: Context,
        experience: Annotated[
            str | None,
            Field(description="< 100 words: what the last round got wrong and what this prompt changes. "
                  "Left out, the server derives one from the verdicts."),
        ] = None,
        mode: Annotated[
            Literal["regenerate", "edit"],
            Field(description="regenerate: from noise with new seeds; edit: image-to-image from the best image so far."),
        ] = "regenerate",
        strength: Annotated[
            float | None, Field(description="edit only: how much to change, (0, 1]; default 0.6.")
        ] = None,
        n: Annotated[int | None, Field(description="Candidates; default: as many as the last round.")] = None,
        seed: Annotated[int | None, Field(description="Seed of the first candidate; random when left out.")] = None,
    ) -> CallToolResult:
        """Record the last round's experience and run the next round of a trajectory."""
        result = await _call(
            loop.refine(trajectory_id, prompt, experience, mode, strength, n, seed, _progress(ctx))
        )
        return await anyio.to_thread.run_sync(_round_content, result, settings)

    @mcp.tool(annotations=_RECORDS, structured_output=True)
    async def critique(
        trajectory_id: Annotated[str, Field(description="The trajectory to check.")],
        round: Annotated[int | None, Field(description="1-based round number; the latest when left out.")] = None,
        verdicts: Annotated[
            list[VerdictInput] | None,
            Field(description="Your own answers, one per question id, to record instead of the server judge's."),
        ] = None,
        image_id: Annotated[
            str | None, Field(description="With verdicts: which image of the round they are for (if several).")
        ] = None,
    ) -> Annotated[CallToolResult, CritiqueResult]:
        """Verify a round against the trajectory's checklist, or record your verdicts for it."""
        trajectory, rnd, notes = await _call(loop.critique(trajectory_id, round, verdicts, image_id))
        result = _critique_result(trajectory, rnd, notes)
        text = round_summary(trajectory, rnd, notes) + "\n" + result.message
        return _structured(text, result)

    @mcp.tool(annotations=_READ_ONLY, structured_output=True)
    async def recall_memory(
        trajectory_id: Annotated[str | None, Field(description="A trajectory whose global view you want.")] = None,
        query: Annotated[str | None, Field(description="A new prompt: returns lessons from similar finished tasks.")] = None,
        budget: Annotated[int | None, Field(description="Characters the view may take (default GEMS_MEMORY_BUDGET).")] = None,
    ) -> Annotated[CallToolResult, RecallResult]:
        """A trajectory's compressed history, lessons for a new prompt, or (with no arguments) recent trajectories."""
        recall = await _call_sync(loop.recall, trajectory_id, query, budget)
        result = RecallResult(
            view=recall.view.model_dump(mode="json") if recall.view else None,
            lessons=[h.model_dump(mode="json") for h in recall.lessons] if recall.lessons is not None else None,
            recent=recall.recent,
        )
        return _structured(recall_text(recall), result)

    @mcp.tool(annotations=_RECORDS, structured_output=False)
    async def close_trajectory(
        trajectory_id: Annotated[str, Field(description="The trajectory to end now.")],
    ) -> str:
        """End a trajectory before its budget is spent (e.g. you accept its best image); its lessons are kept."""
        trajectory = await _call(loop.close(trajectory_id))
        best = trajectory.best_round()
        answer = f" The answer is round {best.index}." if best else ""
        return f"Trajectory {trajectory.id} is done ({trajectory.done_reason}).{answer}"


# Errors whose message tells the agent (or the user configuring GEMS_MODEL or GEMS_HOME) what to change.
CORRECTABLE = (LoopError, UnknownImage, GenerationError, MemoryStoreError)


async def _call(awaitable: Any) -> Any:
    """Await a loop operation, turning its correctable errors into isError tool results."""
    try:
        return await awaitable
    except CORRECTABLE as exc:
        raise ToolError(str(exc)) from exc


async def _call_sync(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except CORRECTABLE as exc:
        raise ToolError(str(exc)) from exc


def _progress(ctx: Context) -> Any:
    async def report(progress: float, total: float | None, message: str) -> None:
        try:
            await ctx.report_progress(progress, total, message)
        except Exception:  # progress is best-effort; the client may have gone
            log.debug("progress notification failed", exc_info=True)

    return report


# -- results -------------------------------------------------------------------------------


def _round_content(result: RoundResult, settings: Settings) -> CallToolResult:
    """Summary text, a thumbnail (or contact sheet) and a link to each full-size image."""
    content: list[Any] = [TextContent(type="text", text=round_summary(result.trajectory, result.round, result.notes))]
    if len(result.images) == 1:
        preview = result.images[0]
    else:
        preview = contact_sheet(result.images, candidate_labels(result.trajectory, result.round))
    data, mime = thumbnail(preview, settings.thumbnail_size)
    content.append(ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime))
    for i, candidate in enumerate(result.round.candidates, start=1):
        content.append(
            ResourceLink(
                type="resource_link",
                uri=f"gems://images/{candidate.image_id}",
                name=f"round {result.round.index} image {i} (seed {candidate.seed})",
                mime_type="image/png",
            )
        )
    return CallToolResult(content=content)


def round_summary(trajectory: Trajectory, rnd: Round, notes: list[str] | None = None) -> str:
    """The short text every image result starts with."""
    total = len(trajectory.checklist)
    lines = [
        f"trajectory {trajectory.id} · round {rnd.index}/{trajectory.max_rounds} · mode {rnd.mode} · model {trajectory.model}",
        f"prompt: {rnd.prompt}",
    ]
    for i, c in enumerate(rnd.candidates, start=1):
        score = f" · {_score(trajectory, c)}" if c.verdicts is not None else ""
        lines.append(f"image {i}: {c.image_id} (seed {c.seed}){score}")
    best = rnd.best_candidate() if rnd.judged else None
    answers = {v.requirement_id: v for v in best.verdicts or []} if best else {}
    if best:
        lines.append(f"verdicts for {best.image_id}:")
    elif total:
        lines.append("checklist (not verified yet: call critique, and answer it yourself if no judge runs):")
    for req in trajectory.checklist:
        v = answers.get(req.id)
        mark = "?" if v is None else ("✓" if v.passed else "✗")
        note = f" ({v.note})" if v is not None and v.note else ""
        lines.append(f"  {mark} {req.id} {req.question}{note}")
    p = rnd.params
    extras = [f"guidance {p.guidance:g}" if p.guidance is not None else "", f"strength {p.strength:g}" if p.strength else ""]
    lines.append(f"params: {p.width}x{p.height}, {p.steps} steps" + "".join(f", {e}" for e in extras if e))
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in rnd.timings.items())
    lines.append(f"timings: {timings}")
    lines.append(_status_line(trajectory))
    lines.extend(f"note: {n}" for n in notes or [])
    return "\n".join(lines)


def candidate_labels(trajectory: Trajectory, rnd: Round) -> list[str]:
    """Contact-sheet labels: the candidate's number, and its score once it has verdicts."""
    return [
        f"{i}: {_score(trajectory, c)}" if c.verdicts is not None else str(i)
        for i, c in enumerate(rnd.candidates, start=1)
    ]


def _score(trajectory: Trajectory, candidate: Any) -> str:
    return f"{candidate.passed}/{len(trajectory.checklist)} passed"


def _status_line(trajectory: Trajectory) -> str:
    best = trajectory.best_round()
    total = len(trajectory.checklist)
    best_text = f"best round {best.index} ({best.passed}/{total})" if best else "no judged round yet"
    if trajectory.status == "done":
        why = {"all_passed": "every question passes", "budget_spent": "round budget spent", "closed": "closed"}[
            trajectory.done_reason or "closed"
        ]
        return f"status: DONE ({why}); answer: {best_text}."
    left = trajectory.max_rounds - len(trajectory.rounds)
    return f"status: active, {left} round(s) left; {best_text}. Call refine to try again."


def _structured(text: str, result: BaseModel) -> CallToolResult:
    """Readable text for the model plus the same facts as structured content for programs."""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=result.model_dump(mode="json"))


def _critique_result(trajectory: Trajectory, rnd: Round, notes: list[str]) -> CritiqueResult:
    rows = []
    for req in trajectory.checklist:
        answers = {}
        for c in rnd.candidates:
            v = next((v for v in c.verdicts or [] if v.requirement_id == req.id), None)
            answers[c.image_id] = None if v is None else {"passed": v.passed, "note": v.note, "judge": v.judge}
        rows.append({"id": req.id, "question": req.question, "kind": req.kind, "answers": answers})
    best = trajectory.best_round()
    if not rnd.judged:
        message = (
            "No server judge checks this model: look at the images (read gems://images/<id>) and call "
            f"critique('{trajectory.id}', verdicts=[{{id, passed, note}}, ...]) with one answer per question."
        )
    else:
        message = _status_line(trajectory)
    if notes:
        message = "; ".join(notes) + ". " + message
    return CritiqueResult(
        trajectory_id=trajectory.id,
        round=rnd.index,
        status=trajectory.status if trajectory.status == "active" else f"done ({trajectory.done_reason})",
        checklist=rows,
        images=[c.image_id for c in rnd.candidates],
        best_round=best.index if best else None,
        message=message,
    )


def recall_text(recall: Recall) -> str:
    """recall_memory as text: the view, the lessons with their scores, or the recent trajectories."""
    parts: list[str] = []
    if recall.view is not None:
        parts.append(recall.view.to_text())
    if recall.lessons is not None:
        if not recall.lessons:
            parts.append("No lessons from earlier tasks resemble this prompt.")
        for hit in recall.lessons:
            lesson = hit.lesson
            parts.append(f"Lesson ({lesson.kind}, score {hit.score:.2f}) from '{lesson.intent[:80]}': {lesson.text}")
    if recall.recent is not None:
        if not recall.recent:
            parts.append("No trajectories yet; call generate to start one.")
        for row in recall.recent:
            parts.append(f"{row['id']} · {row['status']} · {row['rounds']} round(s) · best {row['best']} · {row['intent']}")
    return "\n".join(parts)


# -- resources and prompts -----------------------------------------------------------------


def _add_resources(mcp: GemsServer, loop: AgentLoop) -> None:
    @mcp.resource("gems://images/{image_id}", name="image", mime_type="image/png", description="A full-size generated PNG.")
    def image(image_id: str) -> bytes:
        try:
            return loop.images.png_bytes(image_id)
        except UnknownImage as exc:
            raise ResourceNotFoundError(str(exc)) from exc

    @mcp.resource(
        "gems://trajectories/{trajectory_id}", name="trajectory", mime_type="application/json",
        description="A trajectory: intent, checklist and every round, as JSON.",
    )
    def trajectory(trajectory_id: str) -> str:
        return _trajectory(loop, trajectory_id).model_dump_json(indent=1)

    @mcp.resource(
        "gems://trajectories/{trajectory_id}/sheet.png", name="trajectory sheet", mime_type="image/png",
        description="Contact sheet: each round's best image labelled with its round and score.",
    )
    def sheet(trajectory_id: str) -> bytes:
        try:
            return encode_png(loop.sheet(_trajectory(loop, trajectory_id)))
        except (LoopError, UnknownImage) as exc:  # no rounds yet, or an image file deleted by hand
            raise ResourceError(str(exc)) from exc


    @mcp.resource("skill://{skill_id}", name="skill", mime_type="text/markdown", description="A skill's full instructions.")
    def skill(skill_id: str) -> str:
        try:
            return skill_text(skill_id, "(your prompt)", loop.skills.body(skill_id))
        except LookupError as exc:
            raise ResourceNotFoundError(str(exc)) from exc

    @mcp.resource("skill://{skill_id}/{+file}", name="skill reference", mime_type="text/markdown",
                  description="A reference file of a skill (see its references list).")
    def skill_reference(skill_id: str, file: str) -> str:
        try:
            return loop.skills.reference(skill_id, file)
        except (LookupError, ValueError) as exc:
            raise ResourceNotFoundError(str(exc)) from exc


def _trajectory(loop: AgentLoop, trajectory_id: str) -> Trajectory:
    try:
        return loop.trajectory(trajectory_id)
    except LoopError as exc:
        raise ResourceNotFoundError(str(exc)) from exc


def _add_prompts(mcp: GemsServer) -> None:
    @mcp.prompt(name="gems_loop", description="Teaches an agent to run the GEMS generate-verify-refine loop.")
    def gems_loop(request: str) -> str:
        return (
            f"Make an image for this request: {request}\n\n"
            "Work in the GEMS loop with the gems-mcp tools:\n"
            "1. Plan: if a skill_* tool fits the request, call it and rewrite the prompt with its instructions.\n"
            "2. Decompose: write 3-8 yes/no questions that together mean 'the image matches the request'.\n"
            "3. Remember: call recall_memory(query=<request>) and apply any lesson it returns.\n"
            "4. Generate: generate(prompt, requirements=<questions>, intent=<request>, skill=<id>, n=2).\n"
            "5. Verify: read the verdicts; if none ran, call critique and answer each question honestly.\n"
            "6. Refine: while the result says 'active' and questions fail, call refine with a new prompt that "
            "fixes the failed questions and an experience under 100 words; prefer mode='edit' when most pass.\n"
            "7. Stop when the status says DONE and show the best round's image (gems://images/<id>)."
        )


# -- skills --------------------------------------------------------------------------------


def register_skill_tools(mcp: GemsServer, loop: AgentLoop) -> set[str]:
    """One tool per skill, described by the skill's description; the body loads only when called."""
    wanted = {f"skill_{sid}": info for sid, info in loop.skills.skills().items()}
    present = {t.name for t in mcp._tool_manager.list_tools() if t.name.startswith("skill_")}
    for name in present - set(wanted):
        mcp.remove_tool(name)
    for name, info in wanted.items():
        if name in present:
            mcp.remove_tool(name)
        mcp.add_tool(_skill_tool(loop, info.id), name=name, description=info.description, annotations=_READ_ONLY,
                     structured_output=False)
    for error in loop.skills.errors:
        log.warning("skill skipped: %s", error)
    return set(wanted)


def _skill_tool(loop: AgentLoop, skill_id: str) -> Any:
    async def call_skill(
        prompt: Annotated[str, Field(description="The user's prompt, to rewrite with this skill's instructions.")],
    ) -> str:
        try:
            body = loop.skills.body(skill_id)
        except LookupError as exc:
            raise ToolError(str(exc)) from exc
        return skill_text(skill_id, prompt, body)

    return call_skill


def skill_text(skill_id: str, prompt: str, body: Any) -> str:
    """What a skill tool returns: instructions, extra checklist questions and defaults."""
    import json

    parts = [
        f"# Skill {skill_id}",
        f"Prompt to rewrite: {prompt}",
        "## Instructions",
        body.instructions.strip(),
    ]
    if body.checklist:
        parts += ["## Checklist questions this skill adds", *[f"- {q}" for q in body.checklist]]
    defaults = body.defaults.model_dump(exclude_none=True)
    if defaults:
        parts += ["## Generation defaults", json.dumps(defaults)]
    if body.references:
        parts += ["## References (read skill://" + skill_id + "/<file>)", *[f"- {r}" for r in body.references]]
    parts.append(f"Next: generate(prompt=<your rewrite>, skill='{skill_id}', requirements=[...]).")
    return "\n".join(parts)


async def _watch_skills(mcp: GemsServer, loop: AgentLoop) -> None:
    from gems_mcp.skills import watch

    async def changed() -> None:
        names = register_skill_tools(mcp, loop)
        log.info("skills changed on disk; %d skill tools now", len(names))
        await mcp.announce_tools_changed()

    await watch(loop.skills, changed)


async def _preload(loop: AgentLoop) -> None:
    try:
        await anyio.to_thread.run_sync(lambda: loop.generator.defaults())
    except Exception as exc:
        # Keep serving: generate then reports the same failure, and the user can fix GEMS_MODEL.
        log.error("preload failed: %s", exc, exc_info=not isinstance(exc, GenerationError))
        return
    log.info("model %s preloaded", loop.generator.name)
