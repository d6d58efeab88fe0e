"""The shapes world: scene specs, the procedural renderer, the caption grammar and its parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gems_mcp.boxes import relation_holds as _relation_holds
from gems_mcp.errors import Unsupported

SIZE = 32
"""Native side of every image in the world, in pixels."""

MAX_OBJECTS = 4
SHAPES = ("circle", "square", "triangle")
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 90, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 210),
    "white": (235, 235, 235),
}
COLORS = tuple(PALETTE)
BACKGROUND = (16, 18, 24)
RELATIONS = ("left", "right", "above", "below")
RELATION_PHRASES = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
}
NUMBER_WORDS = ("one", "two", "three", "four")

HELP = (
    "The embedded model draws 1-4 flat shapes (circle, square, triangle) in six colors "
    f"({', '.join(COLORS)}) on a dark background. It understands prompts such as "
    "'a red circle', 'a red circle and a blue square', 'three green triangles', "
    "'a yellow square to the left of a purple circle' (also right of, above, below) and "
    "'two red circles and a blue square'. Set GEMS_MODEL to a diffusers model for anything else."
)


@dataclass(frozen=True)
class Group:
    """`count` objects of one shape; color None means any color."""

    shape: str
    color: str | None
    count: int = 1

    def describe(self, article: bool = True) -> str:
        """'a red circle', 'three squares', or 'red circle' without the article."""
        color = f"{self.color} " if self.color else ""
        if self.count == 1:
            if not article:
                return f"{color}{self.shape}"
            return f"{'an' if color.startswith(('a', 'e', 'i', 'o', 'u')) else 'a'} {color}{self.shape}"
        return f"{NUMBER_WORDS[self.count - 1]} {color}{self.shape}s"


@dataclass(frozen=True)
class SceneSpec:
    """What a prompt asks for: groups of objects, and optionally groups[0] `relation` groups[1]."""

    groups: tuple[Group, ...]
    relation: str | None = None

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)

    def caption(self) -> str:
        """The canonical English caption of this spec."""
        if self.relation:
            a, b = self.groups
            return f"{a.describe()} {RELATION_PHRASES[self.relation]} {b.describe()}"
        parts = [g.describe() for g in self.groups]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@dataclass(frozen=True)
class Placed:
    """One drawn object: its shape, color and bounding box (x0, y0, side) in native pixels."""

    shape: str
    color: str
    x0: int
    y0: int
    side: int

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + (self.side - 1) / 2, self.y0 + (self.side - 1) / 2)


# ---------------------------------------------------------------- rendering


def shape_mask(shape: str, side: int) -> np.ndarray:
    """A boolean side x side mask of a shape filling its box."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    c = (side - 1) / 2
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "circle":
        circle: np.ndarray = (xx - c) ** 2 + (yy - c) ** 2 <= (side / 2) ** 2
        return circle
    if shape == "triangle":
        # apex up: the half-width grows linearly from the top row to the bottom row
        triangle: np.ndarray = np.abs(xx - c) <= (yy + 1) / 2
        return triangle
    raise ValueError(f"unknown shape {shape!r}")


def render(objects: list[Placed]) -> np.ndarray:
    """The scene as a (SIZE, SIZE, 3) uint8 array."""
    image = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for obj in objects:
        mask = shape_mask(obj.shape, obj.side)
        window = image[obj.y0 : obj.y0 + obj.side, obj.x0 : obj.x0 + obj.side]
        window[mask] = PALETTE[obj.color]
    return image


def native_pixels(image: Image.Image) -> np.ndarray:
    """Any image as (SIZE, SIZE, 3) uint8 RGB; box-averaging exactly undoes a nearest-neighbour upscale."""
    rgb = image.convert("RGB")
    if rgb.size != (SIZE, SIZE):
        rgb = rgb.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(rgb, dtype=np.uint8)


def relation_holds(relation: str, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether centre a (native pixels) is `relation` of centre b, with a 2-pixel margin."""
    return _relation_holds(relation, a, b, margin=2.0)


def _apart(a: Placed, b: Placed, gap: int = 2) -> bool:
    return (
        a.x0 + a.side + gap <= b.x0
        or b.x0 + b.side + gap <= a.x0
        or a.y0 + a.side + gap <= b.y0
        or b.y0 + b.side + gap <= a.y0
    )


def _random_box(rng: np.random.Generator, shape: str, color: str) -> Placed:
    side = int(rng.integers(7, 11))
    x0, y0 = (int(v) for v in rng.integers(1, SIZE - side, size=2))
    return Placed(shape, color, x0, y0, side)


def place(spec: SceneSpec, rng: np.random.Generator, tries: int = 200) -> list[Placed]:
    """Concrete non-overlapping objects for a spec; unspecified colors are drawn at random."""
    wanted = [(g.shape, g.color) for g in spec.groups for _ in range(g.count)]
    for _ in range(tries):
        objects: list[Placed] = []
        for shape, color in wanted:
            obj = _fit(objects, shape, color or COLORS[int(rng.integers(len(COLORS)))], rng)
            if obj is None:
                break
            objects.append(obj)
        if len(objects) == len(wanted) and _relation_ok(spec, objects):
            return objects
    raise RuntimeError(f"could not place {spec.caption()!r}")  # pragma: no cover


def _fit(objects: list[Placed], shape: str, color: str, rng: np.random.Generator) -> Placed | None:
    for _ in range(50):
        obj = _random_box(rng, shape, color)
        if all(_apart(obj, other) for other in objects):
            return obj
    return None


def _relation_ok(spec: SceneSpec, objects: list[Placed]) -> bool:
    if spec.relation is None:
        return True
    # a clear margin in training data so the relation is unambiguous to the judge
    a, b = objects[0].center, objects[1].center
    dx, dy = abs(b[0] - a[0]), abs(b[1] - a[1])
    main, cross = (dx, dy) if spec.relation in ("left", "right") else (dy, dx)
    return relation_holds(spec.relation, a, b) and main >= 8 and cross <= main / 2


# ---------------------------------------------------------------- parsing

_LEADS = re.compile(
    r"^(?:(?:a|an)\s+)?(?:photo|image|picture|drawing|render|rendering)\s+(?:of|with)\s+"
)
_RELATION_RE = re.compile(
    r"\s+(?:(?:is|are)\s+)?(?:(?:to|on)\s+the\s+)?(left|right)(?:\s+side)?\s+of\s+"
    r"|\s+(?:(?:is|are)\s+)?(above|below|under|beneath|over)\s+"
)
_RELATION_ALIAS = {"under": "below", "beneath": "below", "over": "above"}
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_SHAPE_WORDS = {s: s for s in SHAPES} | {s + "s": s for s in SHAPES}
_COUNT_ONLY = {"five", "six", "seven", "eight", "nine", "ten", "many", "several"}


def _normalize(prompt: str) -> str:
    text = re.sub(r"[^a-z0-9\s]", " ", prompt.lower().replace(",", " and "))
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\band( and)+\b", "and", text)
    text = _LEADS.sub("", text)
    return re.sub(r"^(?:there (?:is|are)|draw|show|make) ", "", text)


def _fail(prompt: str, why: str) -> Unsupported:
    return Unsupported(f"The embedded model cannot draw {prompt!r}: {why}. {HELP}")


def _parse_group(text: str, prompt: str) -> Group:
    words = text.split()
    count = 1
    if words and words[0] in _COUNTS:
        count = _COUNTS[words.pop(0)]
    elif words and (words[0] in _COUNT_ONLY or words[0].isdigit()):
        raise _fail(prompt, f"it draws at most {MAX_OBJECTS} objects")
    color = words.pop(0) if len(words) == 2 and words[0] in PALETTE else None
    if len(words) != 1 or words[0] not in _SHAPE_WORDS:
        raise _fail(prompt, f"{text!r} is not a shape it knows")
    return Group(_SHAPE_WORDS[words[0]], color, count)


def parse(prompt: str) -> SceneSpec:
    """The scene a prompt asks for; Unsupported (with examples) when it is outside the world."""
    text = _normalize(prompt)
    if not text:
        raise _fail(prompt, "the prompt is empty")
    match = _RELATION_RE.search(text)
    if match:
        spec = _parse_relation(text, match, prompt)
    else:
        parts = [p for p in re.split(r"\s+and\s+|\s+with\s+", text) if p]
        spec = SceneSpec(tuple(_parse_group(p, prompt) for p in parts))
    _check_spec(spec, prompt)
    return spec


def _parse_relation(text: str, match: re.Match[str], prompt: str) -> SceneSpec:
    relation = match.group(1) or match.group(2)
    relation = _RELATION_ALIAS.get(relation, relation)
    first, second = text[: match.start()], text[match.end() :]
    groups = (_parse_group(first, prompt), _parse_group(second, prompt))
    if any(g.count != 1 for g in groups):
        raise _fail(prompt, "a relation must join two single objects ('a red circle above a blue square')")
    return SceneSpec(groups, relation)


def _check_spec(spec: SceneSpec, prompt: str) -> None:
    if spec.total > MAX_OBJECTS:
        raise _fail(prompt, f"it asks for {spec.total} objects and the world holds at most {MAX_OBJECTS}")
    by_shape: dict[str, list[Group]] = {}
    for group in spec.groups:
        by_shape.setdefault(group.shape, []).append(group)
    for shape, groups in by_shape.items():
        colors = [g.color for g in groups]
        if len(groups) > 1 and (None in colors or len(set(colors)) < len(colors)):
            raise _fail(prompt, f"it names {shape}s more than once; give each group its own color")


# ---------------------------------------------------------------- sampling

CATEGORIES = ("single", "colors", "two_objects", "counting", "position", "color_attr")
TRAIN_MIX = {"single": 0.06, "colors": 0.12, "two_objects": 0.14, "counting": 0.16,
             "position": 0.34, "color_attr": 0.10, "groups": 0.08}
"""Training caption mix: position and two-object scenes oversampled (position was the hard part)."""


def _color(rng: np.random.Generator) -> str:
    return COLORS[int(rng.integers(len(COLORS)))]


def _shape(rng: np.random.Generator) -> str:
    return SHAPES[int(rng.integers(len(SHAPES)))]


def _two_shapes(rng: np.random.Generator) -> tuple[str, str]:
    a, b = rng.choice(len(SHAPES), size=2, replace=False)
    return SHAPES[int(a)], SHAPES[int(b)]


def _two_colors(rng: np.random.Generator) -> tuple[str, str]:
    a, b = rng.choice(len(COLORS), size=2, replace=False)
    return COLORS[int(a)], COLORS[int(b)]


def sample_spec(category: str, rng: np.random.Generator, colorless: float = 0.0) -> SceneSpec:
    """A random spec of a category; `colorless` is the chance each group's color is left open."""
    spec = _SAMPLERS[category](rng)
    if colorless and category not in ("single", "two_objects", "colors", "color_attr"):
        groups = tuple(Group(g.shape, None if rng.random() < colorless else g.color, g.count) for g in spec.groups)
        shapes = [g.shape for g in groups]
        # an open color next to another group of the same shape would make counts ambiguous
        if len(set(shapes)) == len(shapes) or all(g.color for g in groups):
            spec = SceneSpec(groups, spec.relation)
    return spec


def _sample_pair(rng: np.random.Generator) -> tuple[Group, Group]:
    (s1, s2), (c1, c2) = (_shape(rng), _shape(rng)), (_color(rng), _color(rng))
    if s1 == s2 and c1 == c2:
        c1, c2 = _two_colors(rng)
    return Group(s1, c1), Group(s2, c2)


def _sample_groups(rng: np.random.Generator) -> SceneSpec:
    n1 = int(rng.integers(2, 4))
    first, second = _sample_pair(rng)
    return SceneSpec((Group(first.shape, first.color, n1), second))


_SAMPLERS = {
    "single": lambda rng: SceneSpec((Group(_shape(rng), None),)),
    "colors": lambda rng: SceneSpec((Group(_shape(rng), _color(rng)),)),
    "two_objects": lambda rng: SceneSpec(tuple(Group(s, None) for s in _two_shapes(rng))),
    "counting": lambda rng: SceneSpec((Group(_shape(rng), _color(rng), int(rng.integers(2, 5))),)),
    "position": lambda rng: SceneSpec(_sample_pair(rng), RELATIONS[int(rng.integers(4))]),
    "color_attr": lambda rng: SceneSpec(
        tuple(Group(s, c) for s, c in zip(_two_shapes(rng), _two_colors(rng)))
    ),
    "groups": _sample_groups,
}


def sample_training_scene(rng: np.random.Generator) -> tuple[SceneSpec, list[Placed]]:
    """One training example: a spec from the training mix and a scene that satisfies it."""
    names = list(TRAIN_MIX)
    category = names[int(rng.choice(len(names), p=np.array(list(TRAIN_MIX.values()))))]
    spec = sample_spec(category, rng, colorless=0.15)
    return spec, place(spec, rng)


HELD_OUT_SEED = 0x5EED_E7A1
"""RNG stream of the evaluation prompts; training uses (seed, step) streams, never this one."""


def held_out_prompts(per_category: int = 40) -> list[tuple[str, str]]:
    """A fixed list of (category, prompt) for evaluation, GenEval-like categories."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    prompts: list[tuple[str, str]] = []
    for category in CATEGORIES:
        for _ in range(per_category):
            prompts.append((category, sample_spec(category, rng).caption()))
    return prompts
