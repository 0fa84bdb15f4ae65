"""The collapse watchdog: a trainer hook that renders a small validation clip every N steps and
flags the collapses that distillation runs fall into (solid colour, noise, static, exploding).

Users of long runs used to find a collapse at the end; the watchdog writes each clip and its flags
into the run folder as it goes, so the Distil tab (and anyone reading the folder) sees them, and
with `stop` the job ends at the first flag instead of training on for hours.

What it leaves in the run folder (`out`):
    watchdog/<stage->step-NNNNNN.mp4   one clip per check
    watchdog.jsonl                     one record per check: step, stage, clip, flags, stats, seconds
    watchdog.json                      the latest record (what the app shows)

The clip is the student sampled on its own schedule: `method.export` (the one that writes the
final student) loads the current weights into a private copy of the teacher's pipeline. That copy
costs one more pipeline in memory, so the watchdog is off unless asked for (`--watchdog N`; the
app turns it on for its tiny jobs). Rank 0 renders; every rank learns its verdict, so a stop ends
all of them together (see `trainer._train`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from accvideo.generation import generate
from accvideo.media import write_mp4
from accvideo.models.registry import LoadedModel, load_model
from accvideo.training.collapse import detect_collapse
from accvideo.util.io import atomic_write_text

log = logging.getLogger("accvideo.watchdog")
RECORDS, LATEST, CLIPS = "watchdog.jsonl", "watchdog.json", "watchdog"


@dataclass
class WatchdogConfig:
    """every: optimiser steps between validation clips (0: off); stop: end the job at the first
    flagged clip; prompt and seed: the one validation clip (a prompt the model knows)."""

    every: int = 0
    stop: bool = False
    prompt: str = "a red circle moving right"
    seed: int = 0

    def validate(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 0:
            raise ValueError(f"`watchdog.every` must be an integer >= 0 (0: off) but is {self.every!r}.")
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError(f"`watchdog.prompt` must be a non-empty string but is {self.prompt!r}.")


class WatchdogStop(RuntimeError):
    """The watchdog flagged a clip and the run was asked to stop on a flag."""


def student_renderer(method, teacher: str | Path, prompt: str, seed: int
                     ) -> Callable[[dict[str, nn.Module]], tuple[np.ndarray, torch.Tensor]]:
    """A function of the trainables that samples `prompt` with the current student of `method`:
    (uint8 frames (T, H, W, 3), final latents). `teacher`: a name or folder (its pipeline is loaded
    once, as a private copy), or a callable returning that copy (GPD shares one over its stages)."""
    model = teacher() if callable(teacher) else load_model(teacher, cached=False)

    @torch.no_grad()
    def render(modules: dict[str, nn.Module]) -> tuple[np.ndarray, torch.Tensor]:
        sampling = method.export(model.pipe, modules)  # the current weights and the student's schedule
        student = LoadedModel(model.pipe, {**model.sampling, **sampling}, model.folder, model.memory)
        result = generate(student, prompt, seed=seed)
        return result.video, result.latents

    return render


def watchdog_hooks(cfg: WatchdogConfig, method, teacher, out: str | Path, is_main: bool,
                   stage: str | None = None) -> list:
    """[] when the watchdog is off, else one `Watchdog` for `method` (a renderer on rank 0 only:
    the other ranks never render, so they load no pipeline copy)."""
    cfg.validate()
    if not cfg.every:
        return []
    render = student_renderer(method, teacher, cfg.prompt, cfg.seed) if is_main else None
    return [Watchdog(cfg, render, out, stage=stage, is_main=is_main)]


class Watchdog:
    """Trainer hook (`hooks.Hook`, plus `due` and `check`, which the trainer calls after every full
    step). Stateless: nothing goes into the checkpoint, and a resumed run continues its records."""

    name = "watchdog"
    stateless = True

    def __init__(self, cfg: WatchdogConfig, render: Callable | None, out: str | Path, stage: str | None = None,
                 is_main: bool = True):
        cfg.validate()
        if cfg.every < 1:
            raise ValueError(f"`watchdog.every` must be >= 1 for a Watchdog hook but is {cfg.every} (0 means no "
                             "hook: leave it out).")
        self.cfg, self.render, self.out, self.stage, self.is_main = cfg, render, Path(out), stage, is_main

    def setup(self, modules: dict[str, nn.Module]) -> None:
        pass

    def after_step(self, trained: list[str], modules: dict[str, nn.Module]) -> None:
        pass

    def due(self, step: int) -> bool:
        """Whether step `step` (counted from 1, after its update) gets a clip."""
        return step % self.cfg.every == 0

    def check(self, step: int, modules: dict[str, nn.Module]) -> str | None:
        """Render, detect and record one clip (rank 0; other ranks return None). Returns why the run
        must stop (a flagged clip with `stop` set), else None."""
        if not self.is_main:
            return None
        t0 = time.perf_counter()
        video, latents = self.render(modules)
        report = detect_collapse(video, latents)
        prefix = f"{self.stage}-" if self.stage else ""
        clip = Path(CLIPS) / f"{prefix}step-{step:06d}.mp4"
        (self.out / CLIPS).mkdir(parents=True, exist_ok=True)
        # a flat or NaN clip still gets written: seeing the collapse is the point
        write_mp4(np.nan_to_num(video).astype(np.uint8), self.out / clip)
        record = {"step": step, "stage": self.stage, "clip": str(clip), "flags": report.flags,
                  "stats": report.stats, "seconds": round(time.perf_counter() - t0, 3)}
        with open(self.out / RECORDS, "a") as f:
            f.write(json.dumps(record) + "\n")
        atomic_write_text(self.out / LATEST, json.dumps(record, indent=2))
        if report.ok:
            return None
        log.warning("watchdog: step %d clip %s flagged %s %s", step, clip, report.flags, report.stats)
        return f"watchdog flagged {', '.join(report.flags)} at step {step} ({clip})" if self.cfg.stop else None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
