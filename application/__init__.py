"""Use cases: one class each, talking only to the domain's ports."""
