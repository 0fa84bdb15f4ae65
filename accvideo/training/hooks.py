"""Trainer hooks: state kept beside the trainables and updated after optimiser steps.

A hook is told after every optimiser step of a phase, and its state goes into the
checkpoint (`hooks[name]`), so a resumed run continues it exactly.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import nn


class Hook(Protocol):
    name: str

    def setup(self, modules: dict[str, nn.Module]) -> None:
        """Called once with the trainables (unwrapped, on the run's device), before any resume."""
        ...

    def after_step(self, trained: list[str], modules: dict[str, nn.Module]) -> None:
        """Called after every optimiser step; `trained` names the modules that step updated."""
        ...

    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class EMA:
    """Exponential moving average of one trainable's parameters (buffers are not averaged):
    after every step of a phase that trains it, `p_ema <- p_ema + (1 - decay) * (p - p_ema)`.
    The average starts as a copy of the module; `model` holds it (frozen, in eval mode)."""

    name = "ema"

    def __init__(self, module: str, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"`ema decay` must be in [0, 1) but is {decay}.")
        self.module, self.decay = module, decay
        self.model: nn.Module | None = None

    def setup(self, modules: dict[str, nn.Module]) -> None:
        if self.module not in modules:
            raise ValueError(f"`EMA.module` must name a trainable of the method {sorted(modules)} but is "
                             f"{self.module!r}.")
        self.model = copy.deepcopy(modules[self.module]).eval().requires_grad_(False)

    @torch.no_grad()
    def after_step(self, trained: list[str], modules: dict[str, nn.Module]) -> None:
        if self.module not in trained:
            return
        for p_ema, p in zip(self.model.parameters(), modules[self.module].parameters()):
            p_ema.lerp_(p, 1 - self.decay)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
