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
    The average starts as a copy of the module; `model` holds it (frozen, in eval mode).

    With `warmup`, update n (from 0) uses `min(decay, (1 + n) / (10 + n))`: otherwise, after N
    updates the average still holds decay**N of the initial weights (33% after 1,100 steps at
    0.999), and a short run's EMA shows mostly its random init (docs/WORLD.md)."""

    name = "ema"
    UPDATES = "__ema_updates__"  # the warm-up's counter, kept in the state beside the weights

    def __init__(self, module: str, decay: float, warmup: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"`ema decay` must be in [0, 1) but is {decay}.")
        self.module, self.decay, self.warmup = module, decay, warmup
        self.updates = 0
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
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        for p_ema, p in zip(self.model.parameters(), modules[self.module].parameters()):
            p_ema.lerp_(p, 1 - decay)
        self.updates += 1

    def state_dict(self) -> dict:
        state = self.model.state_dict()
        # without warm-up the state stays the bare weights, as checkpoints before the option hold
        return {**state, self.UPDATES: torch.tensor(self.updates)} if self.warmup else state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        updates = state.pop(self.UPDATES, None)
        self.model.load_state_dict(state)
        if self.warmup:
            if updates is None:
                raise ValueError("`ema` state has no update count: this checkpoint was trained without the EMA "
                                 "warm-up; resume with `transformer.ema_warmup=false` or start a new run.")
            self.updates = int(updates)
