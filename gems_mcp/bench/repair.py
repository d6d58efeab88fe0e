"""The reference corrector's spatial levers: from what the judge found to region edits (as in SLD).

Given what the prompt asks for (a shapes-world spec) and the objects the judge found with their
boxes, `plan_repair` returns the edits that make the image match: a wrong-colored or wrong-shaped
object is repainted in its own box, a missing object is added in a free box (one that keeps the
prompt's relation), an extra object is erased, and an object on the wrong side is erased and added
where the relation holds. An LLM agent does the same from the critique text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gems_mcp.boxes import center, overlap, relation_holds
from gems_mcp.checks import Detection
from gems_mcp.shapes.world import SIZE, Group, SceneSpec

PIXEL = 1 / SIZE
SIDE = 9 * PIXEL
"""Added objects get a box of 9 native pixels, the middle of the world's 7-10."""

Box = tuple[float, float, float, float]


@dataclass
class Repair:
    """The edits for one inpaint round and the levers they pull (for the experience and lessons)."""

    edits: list[dict[str, object]] = field(default_factory=list)
    levers: list[str] = field(default_factory=list)

    def drop(self, box: Box) -> None:
        """Forget the edits of a box (a recolored object that then has to move)."""
        self.edits = [e for e in self.edits if e["box"] != [round(v, 4) for v in box]]

    def add(self, lever: str, box: Box, prompt: str) -> None:
        self.edits.append({"box": [round(v, 4) for v in box], "prompt": prompt})
        if lever not in self.levers:
            self.levers.append(lever)


def _grow(box: Box, by: float = PIXEL) -> Box:
    return (max(0.0, box[0] - by), max(0.0, box[1] - by), min(1.0, box[2] + by), min(1.0, box[3] + by))


def _matches(group: Group, found: Detection) -> bool:
    return found.object == group.shape and group.color in (None, found.color)


def _wanted(spec: SceneSpec) -> list[Group]:
    return [Group(g.shape, g.color) for g in spec.groups for _ in range(g.count)]


def _assign(wanted: list[Group], found: list[Detection], planned: list[Box] | None) -> dict[int, Detection]:
    """Each wanted object's detection: exact matches first, the one nearest its planned box."""
    taken: dict[int, Detection] = {}
    free = list(found)
    for i, group in enumerate(wanted):
        options = [d for d in free if _matches(group, d)]
        if not options:
            continue
        if planned and i < len(planned):
            target = center(planned[i])
            options.sort(key=lambda d: (center(d.box)[0] - target[0]) ** 2 + (center(d.box)[1] - target[1]) ** 2)
        taken[i] = options[0]
        free.remove(options[0])
    return taken


def _fits(box: Box, occupied: list[Box]) -> bool:
    inside = box[0] >= PIXEL and box[1] >= PIXEL and box[2] <= 1 - PIXEL and box[3] <= 1 - PIXEL
    return inside and all(overlap(_grow(box), other) == 0 for other in occupied)  # a pixel apart


def _candidates() -> list[Box]:
    steps = range(1, SIZE - 9)
    return [(x * PIXEL, y * PIXEL, x * PIXEL + SIDE, y * PIXEL + SIDE) for y in steps for x in steps]


def place(occupied: list[Box], relation: str | None = None, anchor: Box | None = None, first: bool = True,
          preferred: Box | None = None) -> Box | None:
    """A free box for a new object; with a relation, one that stands `relation` of the anchor
    (or the anchor of it, when first is False) by a clear margin. The preferred box when it is free."""

    def ok(box: Box) -> bool:
        if not _fits(box, occupied):
            return False
        if relation is None or anchor is None:
            return True
        a, b = (center(box), center(anchor)) if first else (center(anchor), center(box))
        return relation_holds(relation, a, b, margin=6 * PIXEL)

    if preferred is not None and ok(preferred):
        return preferred
    options = [box for box in _candidates() if ok(box)]
    if not options:
        return None
    # the tightest clear margin keeps the object near where it was meant to be
    target = center(preferred) if preferred is not None else (center(anchor) if anchor is not None else (0.5, 0.5))
    return min(options, key=lambda b: (center(b)[0] - target[0]) ** 2 + (center(b)[1] - target[1]) ** 2)


def plan_repair(spec: SceneSpec, found: list[Detection], planned: list[Box] | None = None) -> Repair:
    """The region edits that turn the found objects into the spec (empty when nothing can be done)."""
    wanted = _wanted(spec)
    assigned = _assign(wanted, found, planned)
    spare = [d for d in found if all(d is not a for a in assigned.values())]
    repair = Repair()
    # A spare object of the right shape or color where a wanted one is missing: repaint it in place.
    for i, group in enumerate(wanted):
        if i in assigned:
            continue
        near = [d for d in spare if d.object == group.shape or (group.color and d.color == group.color)]
        if near:
            chosen = near[0]
            spare.remove(chosen)
            assigned[i] = chosen.model_copy(update={"object": group.shape, "color": group.color or chosen.color})
            repair.add("recolor", _grow(chosen.box), group.describe())
    for extra in spare:
        repair.add("erase", _grow(extra.box), "")
    occupied = [d.box for d in assigned.values()]
    _fix_relation(spec, assigned, occupied, planned, repair)
    for i, group in enumerate(wanted):
        if i in assigned:
            continue
        relation, anchor, first = _relation_role(spec, i, assigned)
        box = place(occupied, relation, anchor, first, planned[i] if planned and i < len(planned) else None)
        if box is not None:
            occupied.append(box)
            repair.add("add", box, group.describe())
    return repair


def _relation_role(spec: SceneSpec, i: int, assigned: dict[int, Detection]) -> tuple[str | None, Box | None, bool]:
    """For object i of a relation prompt: the relation, the other object's box, and whether i comes first."""
    if not spec.relation or i > 1:
        return None, None, True
    other = assigned.get(1 - i)
    return spec.relation, (other.box if other else None), i == 0


def _fix_relation(
    spec: SceneSpec, assigned: dict[int, Detection], occupied: list[Box], planned: list[Box] | None, repair: Repair
) -> None:
    """Both objects there but on the wrong sides: erase one and add it where the relation holds."""
    if not spec.relation or 0 not in assigned or 1 not in assigned:
        return
    a, b = assigned[0], assigned[1]
    if relation_holds(spec.relation, center(a.box), center(b.box)):
        return
    for moving, still, first in ((0, b, True), (1, a, False)):
        mover = assigned[moving]
        others = [box for box in occupied if box != mover.box]
        preferred = planned[moving] if planned and moving < len(planned) else None
        box = place(others, spec.relation, still.box, first, preferred)
        if box is None:
            continue
        occupied.remove(mover.box)
        occupied.append(box)
        repair.drop(_grow(mover.box))
        repair.add("move", _grow(mover.box), "")
        repair.add("move", box, Group(mover.object, mover.color).describe())
        assigned[moving] = mover.model_copy(update={"box": box})
        return
    # Neither fits on its own (they sit at the two edges): lay both out again.
    others = [box for box in occupied if box not in (a.box, b.box)]
    pair = _pair(spec.relation, others, planned)
    if pair is None:
        return
    for det, box in zip((a, b), pair, strict=True):
        occupied.remove(det.box)
        occupied.append(box)
        repair.drop(_grow(det.box))
        repair.add("move", _grow(det.box), "")
    for det, box in zip((a, b), pair, strict=True):
        repair.add("move", box, Group(det.object, det.color).describe())


def _pair(relation: str, occupied: list[Box], planned: list[Box] | None) -> tuple[Box, Box] | None:
    """Two free boxes, the first `relation` of the second: the planned ones when free, else the first found."""
    if planned and len(planned) >= 2:
        second = place(occupied + [planned[0]], relation, planned[0], first=False, preferred=planned[1])
        if _fits(planned[0], occupied) and second is not None:
            return planned[0], second
    for first in _candidates()[::3]:
        if not _fits(first, occupied):
            continue
        second = place(occupied + [first], relation, first, first=False)
        if second is not None:
            return first, second
    return None
