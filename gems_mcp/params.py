"""ParamResolver: a round's generation parameters from the call, the skill and the model, resolved once."""

from __future__ import annotations

from gems_mcp.generation.base import Capabilities
from gems_mcp.types import GenerationParams, ImageParams


class ParamResolver:
    """Call values win over a skill's defaults, which win over the model's; the model's limits decide."""

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities

    def first_round(
        self, call: ImageParams, skill_defaults: ImageParams | None = None, skill_id: str | None = None
    ) -> tuple[GenerationParams, list[str]]:
        """Parameters for generate, and a note naming skill defaults this model cannot take.

        A skill is written for any model; its negative prompt or 1024-px size must not turn into an
        error about arguments the agent never passed, so unfit defaults are left out with a note. So are
        defaults the model does not take from skills (the embedded model's steps and guidance are tuned).
        """
        notes: list[str] = []
        merged: dict[str, object] = {}
        if skill_defaults is not None:
            own = [k for k in skill_defaults.model_dump(exclude_none=True) if k not in self.capabilities.skill_params]
            unfit = own + [k for k in self.capabilities.unfit(skill_defaults) if k not in own]
            merged = {k: v for k, v in skill_defaults.model_dump(exclude_none=True).items() if k not in unfit}
            if unfit:
                notes.append(
                    f"skill {skill_id}'s defaults for {', '.join(unfit)} do not fit {self.capabilities.name}; "
                    "the model's own were used"
                )
        merged.update(call.model_dump(exclude_none=True))
        return self.capabilities.resolve(ImageParams.model_validate(merged)), notes

    def next_round(
        self, last: GenerationParams, strength: float | None = None, source_image_id: str | None = None
    ) -> GenerationParams:
        """The last round's size, steps and guidance; strength and source only for this round."""
        kept = ImageParams(**last.model_dump(include=set(ImageParams.model_fields), exclude_none=True))
        params = self.capabilities.resolve(kept, strength)
        return params.model_copy(update={"source_image_id": source_image_id})
