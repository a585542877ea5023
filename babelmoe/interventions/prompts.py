"""Prompts of the steering experiments that belong to no language (light: the CLI's help reads
them as a default)."""

NEUTRAL_PROMPTS: tuple[str, ...] = ("1.", "* ")
"""Language-neutral prompts: a list item and a bullet, continued in whatever language."""
