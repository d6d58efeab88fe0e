"""Which lever a round pulled -- a layout (with its box sizes), a region edit, an image edit, a new seed or
a rewording -- in the words an experience and a lesson keep."""

from __future__ import annotations

from gems_mcp.boxes import fmt
from gems_mcp.types import Region, Round

MAX_BOXES_NAMED = 4


def layout_words(layout: list[Region]) -> str:
    """'3 boxes about 0.30 x 0.30 of the image: a green triangle [..]; ...'."""
    widths = [r.box[2] - r.box[0] for r in layout]
    heights = [r.box[3] - r.box[1] for r in layout]
    named = "; ".join(f"{r.prompt} {fmt(r.box)}" for r in layout[:MAX_BOXES_NAMED])
    more = f"; +{len(layout) - MAX_BOXES_NAMED} more" if len(layout) > MAX_BOXES_NAMED else ""
    size = f"{sum(widths) / len(widths):.2f} x {sum(heights) / len(heights):.2f}"
    return f"{len(layout)} box{'es' if len(layout) > 1 else ''} about {size} of the image: {named}{more}"


def lever(prev: Round | None, rnd: Round) -> str:
    """What this round changed from the one before (or, for round 1, what it was drawn from)."""
    if rnd.mode == "inpaint":
        edits = "; ".join(f"{r.prompt or 'erase'} {fmt(r.box)}" for r in rnd.edits or [])
        return f"region edit (inpaint) of {rnd.params.source_image_id or 'the best image'}: {edits}"
    if rnd.mode == "edit":
        strength = f" at strength {rnd.params.strength:g}" if rnd.params.strength is not None else ""
        return f"image edit of {rnd.params.source_image_id or 'the best image'}{strength}"
    seeds = ", ".join(str(c.seed) for c in rnd.candidates[:4])
    parts = []
    if rnd.layout and (prev is None or rnd.layout != prev.layout):
        parts.append(("layout: " if prev is None else "new layout: ") + layout_words(rnd.layout))
    elif prev is not None and prev.layout and not rnd.layout:
        parts.append("layout dropped")
    if prev is None or rnd.prompt.strip() != prev.prompt.strip():
        parts.append(f"prompt '{rnd.prompt}'" if prev is None else f"rewording to '{rnd.prompt}'")
    parts.append(f"seed {seeds}" if prev is None or parts else f"new seed {seeds}, nothing else changed")
    return "; ".join(parts)
