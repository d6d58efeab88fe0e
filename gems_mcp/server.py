"""The MCP surface: tools, resources and the loop prompt, all delegating to AgentLoop."""

from __future__ import annotations

import base64
import json
import logging
import weakref
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.lowlevel import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from gems_mcp import __version__, arguments, gallery, guide, http, inputs, results, uris
from gems_mcp.advice import call, resource_errors, tool_errors
from gems_mcp.config import Settings, load_settings
from gems_mcp.errors import GemsError
from gems_mcp.images import contact_sheet, encode_png, thumbnail
from gems_mcp.loop import AgentLoop, RefineMode, RoundResult, VerdictInput
from gems_mcp.results import CritiqueResult, RecallResult
from gems_mcp.types import ImageParams, Region

log = logging.getLogger(__name__)

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_CREATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
_RECORDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class GemsServer(MCPServer[Any]):
    """MCPServer that remembers its connections so it can announce a changed tool list.

    Private parts of the SDK it uses (pinned to mcp 2.3.x; tests/test_sdk_private.py fails with what broke when
    the SDK changes one): `_lowlevel_server.create_initialization_options`, `_tool_manager`, `_prompt_manager`,
    `_handle_list_tools`, a session's `_connection`, and a tool's `fn_metadata` (arguments.py).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Our own bus, handed to the SDK (a public argument), so tools/list_changed is published through it.
        self.events = InMemorySubscriptionBus()
        super().__init__(*args, subscriptions=self.events, **kwargs)
        # connection -> the latest session on it; a session's non-request notifications use the
        # connection's standalone channel, so any of them can carry tools/list_changed.
        self._sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        # The SDK advertises tools.listChanged only when told to; skills can change on disk.
        low = self._lowlevel_server
        make_options = low.create_initialization_options

        def with_list_changed(notification_options: NotificationOptions | None = None, *a: Any, **kw: Any) -> Any:
            return make_options(notification_options or NotificationOptions(tools_changed=True), *a, **kw)

        low.create_initialization_options = with_list_changed  # type: ignore[method-assign]

    def add_tool(self, fn: Any, name: str | None = None, *args: Any, **kwargs: Any) -> None:
        """Every tool, however added, refuses unknown argument names and coercion (see arguments.strict)."""
        super().add_tool(fn, name, *args, **kwargs)
        arguments.strict(self._tool_manager.get_tool(name or fn.__name__))

    async def call_tool(self, name: str, args: dict[str, Any], context: Any = None) -> Any:
        """Arguments are checked at the boundary; refusals come back as one sentence per field."""
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            raise ToolError(f"there is no tool {inputs.quoted(name)}; tools/list names the tools.")
        arguments.check(tool, args)
        try:
            return await super().call_tool(name, args, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(arguments.describe(name, exc.__cause__)) from exc.__cause__
            raise

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        """A resource URI is bounded like any argument: a huge or unprintable one is refused, not echoed."""
        if problem := arguments.uri_problem(str(uri)):
            raise MCPError(INVALID_PARAMS, problem)
        return await super().read_resource(uri, context)

    async def get_prompt(self, name: str, args: dict[str, Any] | None = None, context: Any = None) -> Any:
        """A missing or unknown prompt argument is the caller's error (invalid params), not the server's."""
        problem = arguments.prompt_problem(self._prompt_manager.get_prompt(name), name, args or {})
        if problem:
            raise MCPError(INVALID_PARAMS, problem)
        return await super().get_prompt(name, args, context)

    async def _handle_list_tools(self, ctx: Any, params: Any) -> Any:
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None:
            self._sessions[connection] = ctx.session
        return await super()._handle_list_tools(ctx, params)

    async def announce_tools_changed(self) -> None:
        """tools/list_changed to every client: legacy sessions directly, newer ones through subscriptions."""
        await self.events.publish(ToolsListChanged())
        for session in list(self._sessions.values()):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a closed connection must not stop the others
                log.debug("could not notify a connection", exc_info=True)


def create_server(settings: Settings | None = None, loop: AgentLoop | None = None) -> GemsServer:
    """Build the MCP server around an AgentLoop (made from settings when not given)."""
    settings = settings or load_settings()
    loop = loop or AgentLoop(settings)
    model = guide.facts(settings, *loop.models.described())  # what the agent reads before its first call

    @asynccontextmanager
    async def lifespan(server: MCPServer[Any]) -> Any:
        async with anyio.create_task_group() as tg:
            if settings.preload:
                tg.start_soon(_preload, loop)
            stop = anyio.Event()  # ends the skill watcher's thread at once, where a cancel waits for it
            tg.start_soon(_watch_skills, mcp, loop, stop)
            yield {}
            stop.set()
            tg.cancel_scope.cancel()

    mcp = GemsServer(
        name="gems-mcp",
        title="GEMS image generation loop",
        instructions=guide.instructions(model),
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
        **http.auth_options(settings),
        extensions=[gallery.trajectory_app()],
    )
    _add_tools(mcp, loop, settings, model)
    _add_resources(mcp, loop)
    _add_prompts(mcp, model)
    gallery.register_routes(mcp, loop.store, loop.images)
    register_skill_tools(mcp, loop)
    return mcp


# -- tools ---------------------------------------------------------------------------------


REGION_DOC = (
    "Regions {prompt, box}: box [x0, y0, x1, y1] as fractions 0..1 of the image width and height, origin "
    "top-left; prompt names one object ('a red circle')."
)


def _add_tools(mcp: GemsServer, loop: AgentLoop, settings: Settings, model: guide.ModelFacts) -> None:
    @mcp.tool(annotations=_CREATES, structured_output=False, meta=gallery.TOOL_META,
              description=guide.generate_description(model))
    async def generate(
        prompt: Annotated[str, Field(description="What to draw: the prompt sent to the model (1-2000 characters).")],
        ctx: Context,
        requirements: Annotated[
            list[str] | None,
            Field(description="Yes/no questions the image must satisfy, each saying what it tests; fixed for the "
                  "trajectory and always kept: the judge answers those it reads, you answer the rest."),
        ] = None,
        intent: Annotated[
            str | None, Field(description="The user's request in their own words, stored as given for memory and "
                              "lessons; never parsed (questions come from prompt, requirements and layout).")
        ] = None,
        skill: Annotated[
            str | None, Field(description="Id of a skill (see the skill_* tools) whose checklist and defaults apply.")
        ] = None,
        layout: Annotated[
            list[Region] | None,
            Field(description="Where each object goes: up to 8 regions, each object drawn inside its box. "
                  + REGION_DOC + " Use it when the prompt sets positions, counts or which object has which color."),
        ] = None,
        background: Annotated[
            str | None, Field(description="With layout: what fills the image outside the boxes.")
        ] = None,
        n: Annotated[int, Field(description="Candidates in one batch, up to the limit this tool's description states.")] = 1,
        seed: Annotated[int | None, Field(description="Seed of the first candidate (0 to 2^32-1); random when left out.")] = None,
        width: Annotated[int | None, Field(description="Image width in pixels; the model's default when left out.")] = None,
        height: Annotated[int | None, Field(description="Image height in pixels; the model's default when left out.")] = None,
        steps: Annotated[int | None, Field(description="Denoising steps; the model's default when left out.")] = None,
        guidance: Annotated[float | None, Field(description="Classifier-free guidance scale; the model's default when left out.")] = None,
        negative_prompt: Annotated[str | None, Field(description="What the image must not show.")] = None,
    ) -> CallToolResult:
        """Start a trajectory: fix its checklist and run round 1 (n candidates in one batch), optionally from a layout."""
        params = ImageParams(width=width, height=height, steps=steps, guidance=guidance, negative_prompt=negative_prompt)
        result = await call(
            loop.generate(prompt, requirements, intent, skill, n, seed, params, _progress(ctx),
                          layout=layout, background=background)
        )
        return await anyio.to_thread.run_sync(_round_content, result, settings)

    @mcp.tool(annotations=_CREATES, structured_output=False, meta=gallery.TOOL_META,
              description=guide.refine_description(model))
    async def refine(
        trajectory_id: Annotated[str, Field(description="The trajectory to continue (from generate).")],
        prompt: Annotated[str, Field(description="The prompt for the next round (rewritten, or the same for edits).")],
        ctx: Context,
        experience: Annotated[
            str | None,
            Field(description="< 100 words: what the last round got wrong and what this round changes. "
                  "Left out, the server derives one from the verdicts."),
        ] = None,
        mode: Annotated[
            RefineMode,
            Field(description="regenerate: from noise with new seeds (and the last layout, or a new one); "
                  "edit: image-to-image from the best image so far; inpaint: repaint only the boxes in edits, "
                  "every other pixel kept."),
        ] = "regenerate",
        edits: Annotated[
            list[Region] | None,
            Field(description="inpaint only: the boxes to repaint and what to draw in each (prompt '' erases to "
                  "background; a move is an erase plus an add). " + REGION_DOC),
        ] = None,
        image_id: Annotated[
            str | None, Field(description="edit/inpaint: the image to start from; default the best image so far.")
        ] = None,
        layout: Annotated[
            list[Region] | None,
            Field(description="regenerate only: a new layout (default: the last round's; [] drops it). " + REGION_DOC),
        ] = None,
        background: Annotated[str | None, Field(description="regenerate with layout: the background prompt.")] = None,
        strength: Annotated[
            float | None, Field(description="edit/inpaint: how much to change, (0, 1]; edit default 0.6.")
        ] = None,
        n: Annotated[int | None, Field(description="Candidates; default: as many as the last round.")] = None,
        seed: Annotated[int | None, Field(description="Seed of the first candidate; random when left out.")] = None,
    ) -> CallToolResult:
        """Record the last round's experience and run the next round: regenerate, edit, or repaint regions."""
        result = await call(
            loop.refine(trajectory_id, prompt, experience, mode, strength, n, seed, _progress(ctx),
                        edits=edits, image_id=image_id, layout=layout, background=background)
        )
        return await anyio.to_thread.run_sync(_round_content, result, settings)

    @mcp.tool(annotations=_RECORDS, structured_output=True)
    async def critique(
        trajectory_id: Annotated[str, Field(description="The trajectory to check.")],
        round: Annotated[int | None, Field(description="1-based round number; the latest when left out.")] = None,
        verdicts: Annotated[
            list[VerdictInput] | None,
            Field(description="Your answers, one per question id: they count for the questions marked 'for you' "
                  "(no server judge reads them); where a server judge answered, its verdict counts and yours is "
                  "kept beside it."),
        ] = None,
        image_id: Annotated[
            str | None, Field(description="With verdicts: which image of the round they are for (if several).")
        ] = None,
    ) -> Annotated[CallToolResult, CritiqueResult]:
        """Verify a round against the checklist (with where each object was found), or record your verdicts."""
        trajectory, rnd, notes = await call(loop.critique(trajectory_id, round, verdicts, image_id))
        result = results.critique_result(trajectory, rnd, notes)
        return _structured(results.critique_text(trajectory, rnd, result, notes), result)

    @mcp.tool(annotations=_READ_ONLY, structured_output=True, description=(
        "A trajectory's compressed history, lessons for a new prompt, or (with no arguments) recent trajectories; "
        f"at most {settings.memory_budget} characters unless budget says otherwise."))
    async def recall_memory(
        trajectory_id: Annotated[str | None, Field(description="A trajectory whose global view you want.")] = None,
        query: Annotated[str | None, Field(description="A new prompt: returns lessons from similar finished tasks.")] = None,
        budget: Annotated[int | None, Field(description="Characters the view may take; the description states the default.")] = None,
    ) -> Annotated[CallToolResult, RecallResult]:
        """A trajectory's compressed history, lessons for a new prompt, or (with no arguments) recent trajectories."""
        # A worker thread: recall counts what it recalls (a locked write) and ranks lessons (bm25s, scipy).
        recall = await call(anyio.to_thread.run_sync(loop.recall, trajectory_id, query, budget))
        parts = (recall.view, recall.lessons, recall.recent)
        notice = f"{recall.notice}\n\n" if recall.notice else ""
        return _structured(notice + results.recall_text(*parts), results.recall_result(*parts))

    @mcp.tool(annotations=_RECORDS, structured_output=False)
    async def close_trajectory(
        trajectory_id: Annotated[str, Field(description="The trajectory to end now.")],
    ) -> str:
        """End a trajectory before its budget is spent (e.g. you accept its best image); its lessons are kept."""
        return results.close_text(await call(loop.close(trajectory_id)))


def _progress(ctx: Context) -> Any:
    async def report(progress: float, total: float | None, message: str) -> None:
        try:
            await ctx.report_progress(progress, total, message)
        except Exception:  # progress is best-effort; the client may have gone
            log.debug("progress notification failed", exc_info=True)

    return report


def _round_content(result: RoundResult, settings: Settings) -> CallToolResult:
    """Summary text, a thumbnail (or contact sheet), a link to each full-size image and to the trajectory."""
    trajectory, rnd = result.trajectory, result.round
    content: list[Any] = [TextContent(type="text", text=results.round_summary(trajectory, rnd, result.notes))]
    if len(result.images) == 1:
        preview = result.images[0]
    else:
        preview = contact_sheet(result.images, results.candidate_labels(trajectory, rnd))
    data, mime = thumbnail(preview, settings.thumbnail_size)
    content.append(ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime))
    for i, candidate in enumerate(rnd.candidates, start=1):
        content.append(ResourceLink(
            type="resource_link", uri=uris.image(candidate.image_id),
            name=f"round {rnd.index} image {i} (seed {candidate.seed})", mime_type="image/png",
        ))
    content.append(ResourceLink(
        type="resource_link", uri=uris.trajectory(trajectory.id), name=f"trajectory {trajectory.id}",
        mime_type="application/json",
    ))
    if page := gallery.gallery_url(settings.home, trajectory.id):
        content.append(TextContent(type="text", text=f"gallery: {page}"))
    return CallToolResult(content=content)


def _structured(text: str, result: BaseModel) -> CallToolResult:
    """Readable text for the model plus the same facts as structured content for programs."""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=result.model_dump(mode="json"))


# -- resources and prompts -----------------------------------------------------------------


def _add_resources(mcp: GemsServer, loop: AgentLoop) -> None:
    @mcp.resource(uris.IMAGE, name="image", mime_type="image/png", description="A full-size generated PNG.")
    def image(image_id: str) -> bytes:
        with resource_errors():
            return loop.images.png_bytes(image_id)

    @mcp.resource(
        uris.TRAJECTORY, name="trajectory", mime_type="application/json",
        description="A trajectory: intent, checklist and every round (with layouts, edits and detections), as JSON.",
    )
    def trajectory(trajectory_id: str) -> str:
        with resource_errors():
            found = loop.trajectory(trajectory_id)
        return json.dumps({"answer": results.answer_text(found), **found.model_dump(mode="json")}, indent=1)

    @mcp.resource(
        uris.SHEET, name="trajectory sheet", mime_type="image/png",
        description="Contact sheet: each round's best image labelled with its round and score.",
    )
    def sheet(trajectory_id: str) -> bytes:
        with resource_errors():
            return encode_png(results.trajectory_sheet(loop.trajectory(trajectory_id), loop.images))

    @mcp.resource(uris.SKILL, name="skill", mime_type="text/markdown", description="A skill's full instructions.")
    def skill(skill_id: str) -> str:
        with resource_errors():
            return results.skill_text(skill_id, "(your prompt)", loop.skills.body(skill_id))

    @mcp.resource(uris.SKILL_FILE, name="skill reference", mime_type="text/markdown",
                  description="A reference file of a skill (see its references list).")
    def skill_reference(skill_id: str, file: str) -> str:
        with resource_errors():
            return loop.skills.reference(skill_id, file)


def _add_prompts(mcp: GemsServer, model: guide.ModelFacts) -> None:
    @mcp.prompt(name="gems_loop", description="Teaches an agent to run the GEMS generate-verify-refine loop.")
    def gems_loop(request: str) -> str:
        return guide.loop_prompt(request, model)


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
        with tool_errors():
            body = loop.skills.body(skill_id)
        return results.skill_text(skill_id, prompt, body)

    return call_skill


async def _watch_skills(mcp: GemsServer, loop: AgentLoop, stop: anyio.Event) -> None:
    from gems_mcp.skills import watch

    async def changed() -> None:
        names = register_skill_tools(mcp, loop)
        log.info("skills changed on disk; %d skill tools now", len(names))
        await mcp.announce_tools_changed()

    await watch(loop.skills, changed, stop=stop)


async def _preload(loop: AgentLoop) -> None:
    try:
        await anyio.to_thread.run_sync(lambda: loop.capabilities)
    except Exception as exc:
        # Keep serving: generate then reports the same failure, and the user can fix GEMS_MODEL.
        log.error("preload failed: %s", exc, exc_info=not isinstance(exc, GemsError))
        return
    log.info("model %s preloaded", loop.generator.name)
