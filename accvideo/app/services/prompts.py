"""Prompts in the app: the builder's choices from the procedural world's grammar, the examples, and
the warning for words a bundled tiny model cannot read.

The tiny models' tokenizer is word-level over the world's vocabulary ("a {colour} {shape} moving
{direction}"): any other word becomes <unk> and the video ignores it, so the app says which words
those are instead of returning blobs without a word. Real models (subword tokenizers) read free
text and get no warning (`models.tiny.check_prompt` is empty for them).
"""

from __future__ import annotations

from pathlib import Path

from accvideo.models.registry import load_model
from accvideo.models.tiny import PromptCheck, check_prompt
from accvideo.util.checks import check_choice

# lower layers (their paths change with the layout step; keep them in this one block)
from accvideo.world import COLORS, DIRECTIONS, SHAPES, prompt_for

GRAMMAR = "a {colour} {shape} moving {direction}"
BUILDER_CHOICES = {"color": list(COLORS), "shape": list(SHAPES), "direction": list(DIRECTIONS)}
# one example per colour; shapes cycle through all 3 and directions through all 4 (offset by one
# from the held-out split's pattern, so every example is a combination the models trained on)
EXAMPLE_COMBOS = [(color, SHAPES[i % len(SHAPES)], list(DIRECTIONS)[(i + 1) % len(DIRECTIONS)])
                  for i, color in enumerate(COLORS)]
EXAMPLE_PROMPTS = [prompt_for(*combo) for combo in EXAMPLE_COMBOS]


def build_prompt(color: str, shape: str, direction: str) -> str:
    """The grammar's prompt for the builder's three choices; ValueError naming a choice outside it."""
    for name, value in (("color", color), ("shape", shape), ("direction", direction)):
        check_choice(value, name, BUILDER_CHOICES[name])
    return prompt_for(color, shape, direction)


def prompt_warning(prompt: str, models: dict[str, str]) -> str:
    """Markdown warning naming the words of `prompt` that the models cannot read ('' when none).

    models: {label: name or folder} of the models that will run the prompt (loaded from the
    cache). Models with the same unreadable words share one sentence, so the teacher and its
    students (one tokenizer) are named together."""
    if not isinstance(prompt, str) or not prompt.strip():
        return ""
    found: dict[tuple, list[str]] = {}
    for label, ref in models.items():
        words = check_prompt(load_model(ref), prompt)
        if not words.ok:
            found.setdefault((words.unknown, words.dropped, words.max_words), []).append(label)
    if not found:
        return ""
    lines = []
    for (unknown, dropped, max_words), labels in found.items():  # the CLI's wording, one sentence per group
        lines.append(PromptCheck(unknown, dropped, max_words).message(", ".join(Path(str(x)).name for x in labels)))
    return ("⚠️ " + " ".join(lines) + f" The bundled tiny models read only the grammar *{GRAMMAR}*; "
            "build one with the dropdowns.")
