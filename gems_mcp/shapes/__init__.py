"""The shapes world: the embedded default model, its grammar, renderer, checklist and exact judge."""
