"""A scripted agent that knows only what the server says, and follows it.

It reads the server instructions, the tool list (descriptions and schemas) and the `gems_loop` prompt,
calls the skill the descriptions point it to, and plans from those words alone: the model's shapes,
colors and object limit, the number of candidates, the coordinate convention, the box sizes, which
mode fixes which failure. It imports nothing of the server's code; its own knowledge is English (number
words, what "left of" means) and rules. Every call and every result text goes to a transcript.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mcp import Client

NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "1": 1, "2": 2, "3": 3,
           "4": 4, "5": 5, "6": 6}
WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
RELATIONS = {"to the left of": "left", "left of": "left", "to the right of": "right", "right of": "right",
             "above": "above", "on top of": "above", "over": "above", "below": "below", "under": "below",
             "beneath": "below"}
PHRASE = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
FILLER = {"please", "draw", "make", "me", "show", "an", "image", "picture", "of", "with", "the", "now", "i", "want",
          "would", "like"}


class Refused(RuntimeError):
    """The server refused a call the agent made following its advice."""


@dataclass
class Briefing:
    """What the agent learned from the server before its first generate."""

    model: str
    shapes: list[str]
    colors: list[str]
    max_objects: int
    max_n: int
    n: int
    y_down: bool
    fixes: dict[str, str]
    schemas: dict[str, set[str]]
    skill: str | None = None
    synonyms: dict[str, str] = field(default_factory=dict)
    box: float = 0.25
    gap: float = 0.05


@dataclass
class Want:
    count: int
    color: str | None
    shape: str

    def one(self) -> str:
        return f"a {self.color} {self.shape}" if self.color else f"a {self.shape}"

    def describe(self) -> str:
        name = f"{self.color} {self.shape}" if self.color else self.shape
        return f"a {name}" if self.count == 1 else f"{WORDS[self.count]} {name}s"


@dataclass
class Found:
    color: str | None
    shape: str
    box: tuple[float, float, float, float]


@dataclass
class Reading:
    """One result text, read: the trajectory, its best image, verdict marks, what was found, the status."""

    trajectory_id: str = ""
    image: str = ""
    marks: dict[str, tuple[str, str]] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)
    done: bool = False
    answer: str = ""


def read_result(text: str) -> Reading:
    r = Reading()
    if m := re.search(r"trajectory (t-[0-9a-f]+)", text):
        r.trajectory_id = m.group(1)
    if m := re.search(r"^verdicts for (\S+):", text, re.MULTILINE):
        r.image = m.group(1)
    for mark, qid, rest in re.findall(r"^\s+([✓✗?]) (q\d+) (.*)$", text, re.MULTILINE):
        r.marks[qid] = (mark, rest)
    if m := re.search(r"^found \(boxes[^:]*: (.*)$", text, re.MULTILINE):
        for color, shape, box in re.findall(r"(?:(\w+) )?(\w+) at \[([^\]]+)\]", m.group(1)):
            r.found.append(Found(color or None, shape, tuple(float(v) for v in box.split(","))))  # type: ignore[arg-type]
    r.done = bool(re.search(r"^status: DONE", text, re.MULTILINE))
    if m := re.search(r"answer: image \S+ \(round \d+, \d+/\d+\)", text):
        r.answer = m.group(0)
    return r


def _between(text: str, pattern: str, default: str = "") -> str:
    m = re.search(pattern, text, re.DOTALL)
    return m.group(1) if m else default


class FollowingAgent:
    """Runs one request at a time through an MCP client; `transcript` holds every call and result."""

    def __init__(self, client: Client, seed: int | None = None) -> None:
        self.client = client
        self.seed = seed
        self.transcript: list[str] = []
        self.refusals: list[str] = []
        self.briefing: Briefing | None = None

    # -- talking -------------------------------------------------------------------------

    async def call(self, tool: str, args: dict[str, Any]) -> str:
        unknown = set(args) - self.briefing.schemas.get(tool, set(args)) if self.briefing else set()
        if unknown:
            raise Refused(f"{tool} takes no {sorted(unknown)} by its schema; the agent will not send them")
        result = await self.client.call_tool(tool, args)
        parts = []
        for c in result.content:
            if c.type == "text":
                parts.append(c.text)
            elif c.type == "image":
                parts.append(f"[image {c.mime_type}]")
            elif c.type == "resource_link":
                parts.append(f"[link {c.uri}: {c.name}]")
        text = "\n".join(parts)
        self.say(f"**call** `{tool}`\n```json\n{json.dumps(args, indent=1)}\n```\n**result**"
                 f"{' (error)' if result.is_error else ''}\n```text\n{text}\n```")
        if result.is_error:
            self.refusals.append(f"{tool}: {text}")
            raise Refused(text)
        return text

    def say(self, line: str) -> None:
        self.transcript.append(line)

    # -- what the server says, read once per request -----------------------------------------

    async def brief(self, request: str) -> tuple[Briefing, str]:
        instructions = self.client.instructions or ""
        tools = (await self.client.list_tools()).tools
        prompt = (await self.client.get_prompt("gems_loop", {"request": request})).messages[0].content.text  # type: ignore[union-attr]
        if self.briefing is None:
            self.say(f"**server instructions**\n```text\n{instructions}\n```\n**gems_loop prompt**\n```text\n{prompt}\n```")
        draws = re.search(r"It draws: (\d+)-(\d+) flat shapes \(([^)]*)\) in \w+ colors \(([^)]*)\)", instructions)
        if draws is None:
            raise Refused("the instructions name no shapes world; this scripted agent plans only for one")
        fixes = {}
        for failure, mode in re.findall(r"(?:Fixes: |; )([a-z ,]+?) -> (\w+):", _between(instructions, r"(Fixes: [^\n]*)")):
            for part in re.split(r", or |, ", failure):
                fixes[part.strip()] = mode
        generate = next(t for t in tools if t.name == "generate")
        b = Briefing(
            model=_between(instructions, r"Model: (\S+)"),
            shapes=[s.strip() for s in draws.group(3).split(",")], colors=[c.strip() for c in draws.group(4).split(",")],
            max_objects=int(draws.group(2)), max_n=int(_between(generate.description or "", r"n 1-(\d+)", "1")),
            n=int(_between(prompt, r"n=(\d+)\)", "1")), y_down="origin top-left" in instructions, fixes=fixes,
            schemas={t.name: set((t.input_schema or {}).get("properties", {})) for t in tools},
        )
        skills = [t for t in tools if t.name.startswith("skill_") and b.model in (t.description or "")]
        if skills:
            b.skill = skills[0].name.removeprefix("skill_")
            body = await self.call(skills[0].name, {"prompt": request})
            b.synonyms = dict(re.findall(r'"([^"]+)" -> "([^"]+)"', body))
            b.box = float(_between(body, r"Boxes about ([\d.]+) wide", "0.25"))
            b.gap = float(_between(body, r"at least ([\d.]+) apart", "0.05"))
        self.briefing = b
        return b, prompt

    # -- the loop, as the gems_loop prompt tells it ----------------------------------------------

    async def solve(self, request: str) -> dict[str, Any]:
        """One request from plan to answer; {'request', 'outcome', 'answer', 'rounds', 'levers'}."""
        self.say(f"## Task: {request}")
        b, _ = await self.brief(request)
        understood = self.understand(request)
        if isinstance(understood, str):
            self.say(f"**agent** {understood}; I tell the user so instead of generating a substitute.")
            return {"request": request, "outcome": "declined", "why": understood, "rounds": 0, "levers": []}
        wants, relation = understood
        lessons = await self.call("recall_memory", {"query": request})
        if size := re.search(r"layout: \d+ box(?:es)? about ([\d.]+) x", lessons):
            b.box = float(size.group(1))
            self.say(f"**agent** a lesson laid out boxes about {b.box} wide; I use that size.")
        prompt, questions = self.prompt_for(wants, relation), self.questions(wants, relation)
        args: dict[str, Any] = {"prompt": prompt, "requirements": questions, "intent": request, "n": min(b.n, b.max_n)}
        if b.skill:
            args["skill"] = b.skill
        lay = bool(relation) or len(wants) > 1 or any(w.count > 1 for w in wants)  # the instructions' rule
        planned = self.layout(wants, relation) if lay else []
        if planned:
            args["layout"] = planned
        if self.seed is not None:
            args["seed"] = self.seed
        reading = read_result(await self.call("generate", args))
        tid, levers, shift = reading.trajectory_id, ["generate" + (" with a layout" if lay else "")], 0
        tried: dict[str, int] = {}
        while True:
            reading = await self.answer_mine(tid, reading)
            if reading.done:
                break
            failure, edits = Repairs(b, wants, planned).plan(reading.found, relation)
            key = failure + json.dumps(sorted(e["prompt"] for e in edits))  # the same edit, wherever its box
            tried[key] = tried.get(key, 0) + 1
            if tried[key] > 2:
                failure = "the same edit failed twice"
            refine: dict[str, Any] = {"trajectory_id": tid, "prompt": prompt}
            if self.seed is not None:  # the user's seed, moved on each round: the run can be repeated
                refine["seed"] = self.seed + 1000 * len(levers)
            if b.fixes.get(failure, "regenerate") == "inpaint" and edits:
                refine |= {"mode": "inpaint", "edits": edits, "image_id": reading.image}
            else:
                shift += 1
                refine["mode"] = "regenerate"
                if lay:
                    refine["layout"] = planned = self.layout(wants, relation, shift)
            failed = [f"{q} {rest.split(' (')[0]}" for q, (mark, rest) in reading.marks.items() if mark == "✗"][:3]
            refine["experience"] = (f"Failed: {'; '.join(failed) or 'nothing judged'}. Diagnosis: {failure}. "
                                    f"Lever: {refine['mode']}" + (
                                        " of " + "; ".join(f"{e['prompt'] or 'erase'} {e['box']}" for e in edits) + "."
                                        if "edits" in refine else " with a new layout and seed."))
            levers.append(f"{refine['mode']} ({failure})")
            reading = read_result(await self.call("refine", refine))
        image = reading.answer.split()[2] if reading.answer else ""
        if image:
            shown = await self.client.read_resource(f"gems://images/{image}")
            self.say(f"**agent** {reading.answer}: I show the user gems://images/{image} "
                     f"({len(shown.contents[0].blob)} base64 characters of PNG).")  # type: ignore[union-attr]
        return {"request": request, "outcome": "done" if reading.done else "active", "answer": reading.answer,
                "rounds": len(levers), "levers": levers}

    async def answer_mine(self, tid: str, reading: Reading) -> Reading:
        """Answer the questions marked 'for you' from what was found, as the instructions ask."""
        mine = [(q, rest) for q, (mark, rest) in reading.marks.items() if mark == "?" and "for you" in rest]
        if not mine:
            return reading
        colors = self.briefing.colors if self.briefing else []
        verdicts = []
        for qid, rest in mine:
            question = rest.split(" (for you")[0]
            passed = own_answer(question, reading.found, colors)
            verdicts.append({"id": qid, "passed": passed, "note": "from the boxes in the found line"})
        text = await self.call("critique", {"trajectory_id": tid, "verdicts": verdicts, "image_id": reading.image})
        return read_result(text)

    # -- understanding a request in the model's words -------------------------------------------

    def understand(self, request: str) -> tuple[list[Want], str | None] | str:
        """(groups, relation) in the model's vocabulary, or why the model cannot draw the request."""
        b = self.briefing
        assert b is not None
        text = " " + re.sub(r"[^a-z0-9, ]", " ", request.lower()).replace(",", " , ") + " "
        for said, meant in sorted(b.synonyms.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(f" {said} ", f" {meant} ")
        relation, sides = None, [text]
        for phrase in sorted(RELATIONS, key=len, reverse=True):
            if f" {phrase} " in text:
                relation, sides = RELATIONS[phrase], text.split(f" {phrase} ", 1)
                break
        wants: list[Want] = []
        for side in sides:
            for part in re.split(r" and |,", side):
                words = [w for w in part.split() if w not in FILLER - {"an"} or w in NUMBERS]
                if not words:
                    continue
                count = NUMBERS.get(words[0], 0)
                words = words[1:] if count else words
                color = words.pop(0) if words and words[0] in b.colors else None
                shape = words[0].removesuffix("s") if words else ""
                if len(words) != 1 or shape not in b.shapes:
                    return f"the loaded model ({b.model}) draws only {', '.join(b.shapes)} in {', '.join(b.colors)}: it cannot draw '{part.strip()}'"
                wants.append(Want(count or 1, color, shape))
        if sum(w.count for w in wants) > b.max_objects:
            return f"the loaded model draws at most {b.max_objects} objects"
        return wants, relation

    def prompt_for(self, wants: list[Want], relation: str | None) -> str:
        if relation and all(w.count == 1 for w in wants):
            return f"{wants[0].describe()} {PHRASE[relation]} {wants[1].describe()}"
        names = [w.describe() for w in wants]  # the instructions: a relation between groups is a list plus a layout
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def questions(self, wants: list[Want], relation: str | None) -> list[str]:
        asked = [f"Are there exactly {w.describe()}?" if w.count > 1 else f"Is there {w.describe()}?" for w in wants]
        if relation:
            a, c = wants
            first = f"Are the {a.describe()}" if a.count > 1 else f"Is the {a.describe().split(' ', 1)[1]}"
            second = c.describe() if c.count > 1 else c.describe().split(" ", 1)[1]
            asked.append(f"{first} {PHRASE[relation]} the {second}?")
        if len(wants) > 1:
            asked += [f"Are the {w.describe()} about the same size?" for w in wants if w.count > 1]
        return asked

    def layout(self, wants: list[Want], relation: str | None, shift: int = 0) -> list[dict[str, Any]]:
        """One box per object: each side of a relation in its own column (or row), else a row (a 2x2 grid for 4)."""
        b = self.briefing
        assert b is not None
        if relation:
            size = self._size(max(w.count for w in wants))
            first_near = relation in ("left", "above") if (b.y_down or relation in ("left", "right")) else relation == "below"
            edges = (0.05 + 0.03 * shift, 0.95 - size) if first_near else (0.95 - size, 0.05 + 0.03 * shift)
            regions = []
            for want, edge in zip(wants, edges, strict=True):
                for along in self._spots(want.count, size):
                    x, y = (edge, along) if relation in ("left", "right") else (along, edge)
                    regions.append({"prompt": want.one(), "box": _box(x, y, size)})
            return regions
        items = [w for w in wants for _ in range(w.count)]
        if len(items) == 4:
            size = min(b.box, 0.35)
            spots = [(0.1, 0.1), (0.55, 0.1), (0.1, 0.55), (0.55, 0.55)]
        else:
            size = self._size(len(items))
            spots = [(x, 0.5 - size / 2) for x in self._spots(len(items), size)]
        spots = spots[shift % len(spots):] + spots[: shift % len(spots)]
        return [{"prompt": w.one(), "box": _box(x, y, size)} for w, (x, y) in zip(items, spots, strict=True)]

    def _size(self, k: int) -> float:
        b = self.briefing
        assert b is not None
        return round(min(b.box, (0.9 - (k - 1) * b.gap) / k), 3)

    def _spots(self, k: int, size: float) -> list[float]:
        """Where k boxes of this size start along a line, centred on the image."""
        gap = self.briefing.gap  # type: ignore[union-attr]
        start = 0.5 - (k * size + (k - 1) * gap) / 2
        return [round(start + i * (size + gap), 3) for i in range(k)]


def _box(x: float, y: float, size: float) -> list[float]:
    return [round(x, 3), round(y, 3), round(min(1.0, x + size), 3), round(min(1.0, y + size), 3)]


def _grow(box: tuple[float, float, float, float], by: float) -> list[float]:
    return [round(max(0.0, box[0] - by), 3), round(max(0.0, box[1] - by), 3),
            round(min(1.0, box[2] + by), 3), round(min(1.0, box[3] + by), 3)]


def _center(box: Any) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _holds(relation: str, a: Any, b: Any, y_down: bool = True) -> bool:
    (ax, ay), (bx, by) = _center(a), _center(b)
    dx, dy = bx - ax, (by - ay) if y_down else (ay - by)
    return {"left": dx > 0 and dx >= abs(dy), "right": -dx > 0 and -dx >= abs(dy),
            "above": dy > 0 and dy >= abs(dx), "below": -dy > 0 and -dy >= abs(dx)}[relation]


def own_answer(question: str, found: list[Found], colors: list[str]) -> bool:
    """The agent answers its own questions by looking at what was found (it cannot see pixels)."""
    def matching(name: str) -> list[Found]:
        words = name.split()
        color = words[0] if words[0] in colors else None
        shape = words[-1].removesuffix("s")
        return [f for f in found if f.shape == shape and (color is None or f.color == color)]

    q = question.lower().rstrip("?")
    if m := re.fullmatch(r"are the (?:\w+ )?(.+) about the same size", q):
        sides = [f.box[2] - f.box[0] for f in matching(m.group(1))]
        return len(sides) > 1 and max(sides) <= 1.5 * min(sides)
    if m := re.fullmatch(r"are there exactly (\w+) (.+)", q):
        return len(matching(m.group(2))) == NUMBERS.get(m.group(1), -1)
    if m := re.fullmatch(r"is there an? (.+)", q):
        return bool(matching(m.group(1)))
    for phrase, relation in PHRASE.items():
        if m := re.fullmatch(rf"(?:is|are) the (?:\w+ )?(.+) {relation} the (?:\w+ )?(.+)", q):
            a, b = matching(m.group(1)), matching(m.group(2))
            return bool(a and b) and all(_holds(phrase, x.box, y.box) for x in a for y in b)
    return False


class Repairs:
    """What is wrong with an image against the request, as region edits and the failure they fix."""

    def __init__(self, briefing: Briefing, wants: list[Want], planned: list[dict[str, Any]]) -> None:
        self.b = briefing
        self.wanted = [w for w in wants for _ in range(w.count)]
        self.planned = [tuple(r["box"]) for r in planned]

    def plan(self, found: list[Found], relation: str | None) -> tuple[str, list[dict[str, Any]]]:
        left = list(found)
        matched: dict[int, Found] = {}
        for i, want in enumerate(self.wanted):
            fits = [f for f in left if f.shape == want.shape and want.color in (None, f.color)]
            if fits:
                near = self.planned[i] if i < len(self.planned) else fits[0].box
                best = min(fits, key=lambda f: _distance(f.box, near))
                matched[i] = best
                left.remove(best)
        missing = [i for i in range(len(self.wanted)) if i not in matched]
        edits: list[dict[str, Any]] = []
        failures: list[str] = []
        for i in list(missing):
            want = self.wanted[i]
            other = next((f for f in left if f.shape == want.shape or f.color == want.color), None)
            if other is not None:
                edits.append({"prompt": want.one(), "box": _grow(other.box, self.b.gap / 2)})
                left.remove(other)
                missing.remove(i)
                failures.append("wrong color or shape")
        for i in missing:
            edits.append({"prompt": self.wanted[i].one(), "box": self._free(i, found)})
            failures.append("missing")
        for f in left:
            edits.append({"prompt": "", "box": _grow(f.box, self.b.gap / 2)})
            failures.append("extra")
        if not edits and relation and self.planned:
            for i, f in matched.items():  # the relation failed: move what strayed from its planned box
                if _distance(f.box, self.planned[i]) > self.b.box / 2:
                    edits += [{"prompt": "", "box": _grow(f.box, self.b.gap / 2)},
                              {"prompt": self.wanted[i].one(), "box": list(self.planned[i])}]
                    failures.append("wrong place")
        return (failures[0] if failures else "whole image off"), edits

    def _free(self, i: int, found: list[Found]) -> list[float]:
        if i < len(self.planned) and not any(_overlaps(self.planned[i], f.box) for f in found):
            return list(self.planned[i])
        size = self.b.box
        spots = [(x / 20, y / 20) for y in range(1, 19) for x in range(1, 19)]
        for x, y in spots:
            box = (x, y, x + size, y + size)
            if box[2] <= 0.98 and box[3] <= 0.98 and not any(_overlaps(box, f.box, self.b.gap) for f in found):
                return _box(x, y, size)
        return _box(0.05, 0.05, size)


def _distance(a: Any, b: Any) -> float:
    (ax, ay), (bx, by) = _center(a), _center(b)
    return float(((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5)


def _overlaps(a: Any, b: Any, gap: float = 0.0) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])
