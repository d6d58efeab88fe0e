"""Property-based fuzzing of every tool's arguments through the in-memory client.

Each example is a session of calls mixing well-formed arguments (so trajectories, rounds and
verdicts really happen) with hostile ones (wrong types, unknown names, huge or control-laden
strings, out-of-range numbers). Every call must come back as a result or an isError sentence
within a time limit, no call may crash the server (the SDK's bare "Error executing tool X"), and
the server must answer the next call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from gems_mcp.critique.base import Judgement
from gems_mcp.types import Verdict
from tests.hardening._client import make

pytestmark = pytest.mark.slow

EXAMPLES, CALLS_PER_EXAMPLE = 60, 45
CALL_TIMEOUT_S = 15.0


class AlternatingJudge:
    """Passes every other question, so rounds are judged, refined and sometimes finished."""

    name = "alternating"

    def covers(self, requirement: Any) -> bool:
        return requirement.id != "q3"  # one question left to the agent's verdicts

    def verify(self, images: list[Any], checklist: list[Any]) -> list[Judgement]:
        return [Judgement([Verdict(requirement_id=r.id, passed=(i + k) % 2 == 0, judge=self.name)
                           for k, r in enumerate(checklist)]) for i in range(len(images))]


# -- strategies ---------------------------------------------------------------------------------

SCALAR = (st.none() | st.booleans() | st.integers(-(2**40), 2**40)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4), max_leaves=6)
NASTY_TEXT = st.sampled_from(["", " ", "a\x00b", "x" * 3000, "\u2028", "é" * 10, "-rf /", "../../etc/passwd",
                              "t-" + "a" * 200, "{\"a\": 1}", "[1, 2]", "5"])
PROMPTS = st.sampled_from(["a red circle", "two blue squares left of a green triangle", "forbidden thing"])
TEXT = PROMPTS | NASTY_TEXT | st.text(max_size=40)
BOX = st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=3, max_size=5) | st.just([0.1, 0.1, 0.5, 0.5])
REGION = st.fixed_dictionaries({"prompt": TEXT, "box": BOX}) | JSON
VERDICT = st.fixed_dictionaries({"id": st.sampled_from(["q1", "q2", "q3", "q9", "$Q"]), "passed": st.booleans()},
                                optional={"note": TEXT}) | JSON

FIELDS: dict[str, Any] = {
    "prompt": PROMPTS | PROMPTS | TEXT, "intent": TEXT, "query": PROMPTS | TEXT, "experience": TEXT,
    "background": TEXT, "negative_prompt": TEXT,
    "requirements": st.lists(st.sampled_from(["Is there a red circle?", "Is it blue?", "Is it left?", ""]) | TEXT,
                             max_size=4) | JSON,
    "trajectory_id": st.just("$TID") | st.just("$TID") | TEXT, "image_id": st.just("$IMG") | TEXT,
    "skill": st.sampled_from(["shapes-world", "nope", "../x"]) | TEXT,
    "n": st.sampled_from([1, 1, 2, 3, 0, -1, 100]) | SCALAR, "round": st.sampled_from([1, 2, 0, -3, 99]) | SCALAR,
    "seed": st.sampled_from([0, 7, 2**32 - 1, 2**32, -1]) | SCALAR,
    "width": st.sampled_from([32, 64, 7, 0, 10**6]) | SCALAR, "height": st.sampled_from([32, 64, -8]) | SCALAR,
    "steps": st.sampled_from([1, 2, 0, 10**6]) | SCALAR, "guidance": st.sampled_from([1.5, -1.0, 1e9]) | SCALAR,
    "strength": st.sampled_from([0.5, 1.0, 0.0, 2.0]) | SCALAR, "budget": st.sampled_from([500, 4000, 0, 499]) | SCALAR,
    "mode": st.sampled_from(["regenerate", "edit", "inpaint", "EDIT", ""]) | SCALAR,
    "layout": st.lists(REGION, max_size=3) | JSON, "edits": st.lists(REGION, max_size=3) | JSON,
    "verdicts": st.lists(VERDICT, max_size=4) | JSON,
}


def arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = list(schema.get("properties", {}))
    required = set(schema.get("required", []))
    value = {name: FIELDS.get(name, JSON) for name in props}
    shaped = st.fixed_dictionaries({n: value[n] for n in props if n in required},
                                   optional={n: value[n] for n in props if n not in required})
    with_unknown = st.tuples(shaped, st.text(min_size=1, max_size=12), JSON).map(lambda t: {**t[0], t[1]: t[2]})
    return st.one_of(shaped, shaped, shaped, with_unknown, st.dictionaries(st.text(max_size=12), JSON, max_size=4))


# -- the run ------------------------------------------------------------------------------------


def _substitute(value: Any, state: dict[str, str]) -> Any:
    if isinstance(value, str) and value in state:
        return state[value]
    if isinstance(value, list):
        return [_substitute(v, state) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, state) for k, v in value.items()}
    return value


def _remember(result: Any, state: dict[str, str]) -> None:
    for block in result.content:
        uri = str(getattr(block, "uri", "") or "")
        if uri.startswith("gems://trajectories/"):
            state["$TID"] = uri.rsplit("/", 1)[-1]
        elif uri.startswith("gems://images/"):
            state["$IMG"] = uri.rsplit("/", 1)[-1]


def _home(tmp_path: Any) -> Any:
    """A RAM-backed home where there is one: the database fsyncs every write, and only speed matters here."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="gems-fuzz-", dir=shm))
    return tmp_path


def test_every_tool_survives_thousands_of_generated_calls(tmp_path):
    home = _home(tmp_path)
    server, loop = make(judge=AlternatingJudge(), thumbnail_size=64, max_candidates=4, home=home)
    # Kept sync: the @given examples below block on a portal, which cannot be called from an event loop's thread.
    tools = anyio.run(_list_tools, server)
    names = _schedule(sorted(tools))
    calls_of = st.tuples(*(arguments(tools[name]).map(lambda a, n=name: (n, a)) for name in names))
    stats: Counter[str] = Counter()
    crashes: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(calls_of)
    def session_of_calls(calls: tuple[tuple[str, dict[str, Any]], ...]) -> None:
        loop.store.remove_stale(0)  # an empty memory per session: the whole-file database stays small
        portal.call(_calls, client, list(calls), stats, crashes)

    started = time.perf_counter()
    # One connection for every example: connecting runs the server's lifespan, which costs more than the calls.
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(server)) as client:
        try:
            session_of_calls()
        finally:
            if home != tmp_path:
                shutil.rmtree(home, ignore_errors=True)
    elapsed = time.perf_counter() - started

    print(f"\nfuzz: {stats['calls']} calls in {elapsed:.1f} s; {stats['ok']} results, {stats['error']} isError; "
          f"per tool: {dict(sorted((k[5:], v) for k, v in stats.items() if k.startswith('tool:')))}")
    assert crashes == []
    assert stats["calls"] >= 2000
    assert stats["ok"] > 100 and stats["error"] > 100  # both paths were exercised
    assert all(stats[f"tool:{name}"] > 0 for name in tools)


def _schedule(tools: list[str]) -> list[str]:
    """CALLS_PER_EXAMPLE tool names: the loop's tools in the order an agent calls them, skills in between."""
    loop = ["generate", "critique", "recall_memory", "refine", "close_trajectory", "critique"]
    extra = [t for t in tools if t not in loop] or loop
    names: list[str] = []
    for i in range(CALLS_PER_EXAMPLE):
        names += loop + [extra[(3 * i + k) % len(extra)] for k in range(3)]
    return names[:CALLS_PER_EXAMPLE]


@pytest.mark.anyio
async def test_the_fuzz_check_notices_a_crash():
    server, loop = make()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    loop.recall = broken
    crashes: list[str] = []
    await _session(server, [("recall_memory", {})], Counter(), crashes)
    assert len(crashes) == 2  # the call, and the call after the session


async def _list_tools(server: Any) -> dict[str, dict[str, Any]]:
    async with Client(server) as client:
        return {t.name: t.input_schema for t in (await client.list_tools()).tools}


async def _session(server: Any, calls: list[tuple[str, dict[str, Any]]], stats: Counter[str],
                   crashes: list[str]) -> None:
    async with Client(server) as client:
        await _calls(client, calls, stats, crashes)


async def _calls(client: Any, calls: list[tuple[str, dict[str, Any]]], stats: Counter[str], crashes: list[str]) -> None:
    """Run the calls in order; every answer is checked, and the server must answer one more call after them."""
    state: dict[str, str] = {"$Q": "q1"}
    for name, raw in calls:
        args = _substitute(raw, state)
        with anyio.fail_after(CALL_TIMEOUT_S):  # a hang fails the test
            result = await client.call_tool(name, args)
        stats["calls"] += 1
        stats[f"tool:{name}"] += 1
        text = " ".join(getattr(b, "text", "") for b in result.content)
        if result.is_error:
            stats["error"] += 1
            if text.strip() in ("", f"Error executing tool {name}") or "Traceback" in text or len(text) > 2000:
                crashes.append(f"{name}({str(args)[:200]}) -> {text[:200]!r}")
        else:
            stats["ok"] += 1
            _remember(result, state)
    with anyio.fail_after(CALL_TIMEOUT_S):
        after = await client.call_tool("recall_memory", {})
    if after.is_error:
        crashes.append(f"the server did not answer after the session: {after.content}")
