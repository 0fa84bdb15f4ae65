"""Input checks at the edges (the app, job specs): each returns the normalised value or raises `ValueError` naming
the argument, the rule and the value received (the layout shows that sentence as `gr.Error`).

Values come from Gradio components and from `gradio_client` callers, so numbers may arrive as
floats (`3.0` is the integer 3, `3.5` is an error) or as strings (`"3"`); booleans are refused
although Python counts them as integers.
"""

from __future__ import annotations

import math
import random
import re

RUN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SEED = 2**32 - 1


def _as_number(value) -> float:
    """`value` as a float, or NaN when it is not a number (NaN fails every range check below)."""
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def check_int(value, argument: str, low: int, high: int) -> int:
    """An integer in [low, high]."""
    number = _as_number(value)
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(f"`{argument}` must be an integer in [{low}, {high}] but is {value!r}.")
    return int(number)


def check_number(value, argument: str, low: float, high: float) -> float:
    """A finite number in [low, high]."""
    number = _as_number(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"`{argument}` must be a number in [{low:g}, {high:g}] but is {value!r}.")
    return number


def check_choice(value, argument: str, choices) -> str:
    """One of `choices`, compared exactly (no stripping or case folding: a name reaches argv as is)."""
    if value not in choices:
        raise ValueError(f"`{argument}` must be one of {list(choices)} but is {value!r}.")
    return value


def check_run_name(name, argument: str = "name") -> str:
    """A run name is 1-64 characters from [A-Za-z0-9_-]: no '/', '..', spaces or shell syntax."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise ValueError(f"`{argument}` must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-' but is {name!r}.")
    return name


def check_seed(seed) -> int:
    """An integer in [0, 2**32 - 1], or -1 for a random one (the drawn seed is returned)."""
    number = _as_number(seed)
    if not math.isfinite(number) or number != int(number) or not -1 <= number <= MAX_SEED:
        raise ValueError(f"`seed` must be an integer in [0, {MAX_SEED}] (or -1 for a random one) but is {seed!r}.")
    return random.randint(0, 2**31 - 1) if int(number) == -1 else int(number)


def check_prompt(prompt) -> str:
    """A non-empty string, stripped."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"`prompt` must be a non-empty string but is {prompt!r}.")
    return prompt.strip()
