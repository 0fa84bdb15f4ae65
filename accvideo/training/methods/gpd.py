"""GPD: guided progressive distillation with online targets and a frequency-domain loss.

Stages k = 1..K with student step counts N_1 > N_2 > ... (default 24, 12, 6 after a 48-step
teacher; each N divides the previous one). In stage k the frozen *guide* is the previous
stage's student (the teacher in stage 1) on its grid of N_{k-1} steps; the student, which
starts from the guide's weights, takes one step where the guide takes `span = N_{k-1} / N_k`.

Online targets (no stored dataset): for each sample, draw a prompt, a noise and a step index
i; roll the current student from noise on its own grid to step i (no gradient), giving x_i;
the guide takes its `span` small steps from x_i to sigma_{i+1}: that is the target; the
student's single step from x_i must land there:

    L = || x_hat_{i+1} - x_target ||^2 + lambda_f * L_freq(x_hat_{i+1}, x_target)

L_freq is the error of the 3D FFT over (time, height, width), weighted towards high
frequencies: weight 1 + (high_weight - 1) * [radius > cutoff], radius the normalised
frequency magnitude in [0, 1].

Our choices where the abstract is silent (config fields): the guidance scale is baked into
the student in stage 1 (the teacher's guided velocity is the stage-1 target; later stages
use one call per step); states come from rolling the student itself (on-policy); the FFT
weight is a step at `freq_cutoff`.

`variant="paper"` follows a secondary description of the paper (not the abstract, and not
checked against the authors' code): the prediction horizon grows by one teacher step per
stage (stage k jumps h = k + 1 teacher steps; the last jump of a grid is shorter when h does
not divide the teacher's steps); the target is the previous stage's student jumping h - 1
teacher steps and the teacher refining the last one (stage 1: the teacher takes both); the
teacher's guidance is annealed linearly over the stages from its own scale to `guidance_end`
(6.0 -> 1.5 at Wan scale); and the frequency loss is used in the last stage only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from accvideo.core.guidance import cfg as guided
from accvideo.core.schedules import sigma_schedule
from accvideo.models.families import family_of


@dataclass
class GPDConfig:
    teacher_steps: int = 48
    schedule: tuple[int, ...] = (24, 12, 6)  # student steps per stage; trainer.steps is per stage
    guidance_scale: float | None = None  # None: the teacher's own default
    shift: float | None = None  # None: the teacher's own default
    prompts: str = "train"  # a procedural split (train, heldout, all) or a text file, one prompt a line
    lambda_freq: float = 0.1
    freq_cutoff: float = 0.5
    freq_high_weight: float = 4.0
    freq_stages: tuple[int, ...] = ()  # stage indices (1-based) using L_freq; empty = all
    stage_steps: tuple[int, ...] = ()  # optimiser steps per stage; empty = trainer.steps for every stage
    # One step index per batch: the on-policy roll-out then costs index calls, not the batch's
    # largest index (about half the forward passes); per-sample indices are the other choice.
    shared_index: bool = True
    variant: str = "ours"  # "ours" (halving stages) or "paper" (horizon + 1 per stage; see the module doc)
    guidance_end: float = 1.0  # paper: the teacher's guidance in the last stage (annealed from its own)

    def stage_counts(self) -> tuple[int, ...]:
        """Student step counts per stage. ours: `schedule`; paper: ceil(teacher_steps / h) for the
        horizons h = 2, 3, ... until the count reaches `schedule[-1]` (48 -> 6: 24, 16, 12, 10, 8, 7, 6)."""
        if self.variant == "ours":
            return tuple(self.schedule)
        counts, h = [], 2
        while not counts or counts[-1] > self.schedule[-1]:
            counts.append(-(-self.teacher_steps // h))
            h += 1
        return tuple(counts)

    def horizon(self, stage: int) -> int:
        """Teacher steps per student step in `stage` (1-based)."""
        return stage + 1 if self.variant == "paper" else self.teacher_steps // self.stage_counts()[stage - 1]

    def teacher_guidance(self, stage: int, start: float) -> float:
        """paper: the teacher's guidance in `stage`, from `start` (stage 1) to `guidance_end` (last)."""
        count = len(self.stage_counts())
        return start if count == 1 else start + (self.guidance_end - start) * (stage - 1) / (count - 1)

    def validate(self) -> None:
        if self.variant not in ("ours", "paper"):
            raise ValueError(f"`method.variant` must be 'ours' or 'paper' but is {self.variant!r}.")
        if self.variant == "paper":
            if not self.schedule or not 1 <= self.schedule[-1] < self.teacher_steps:
                raise ValueError(f"`method.schedule` must end in a step count in [1, teacher_steps="
                                 f"{self.teacher_steps}) for the paper variant but is {list(self.schedule)}.")
            if self.stage_steps and len(self.stage_steps) != len(self.stage_counts()):
                raise ValueError(f"`method.stage_steps` must give one count per stage of the paper variant "
                                 f"{list(self.stage_counts())} but is {list(self.stage_steps)}.")
            if not 0 < self.guidance_end < 100 or self.guidance_end != self.guidance_end:
                raise ValueError(f"`method.guidance_end` must be in (0, 100) but is {self.guidance_end}.")
            return self._validate_loss()
        previous = self.teacher_steps
        if not self.schedule:
            raise ValueError("`method.schedule` must list at least one student step count but is empty.")
        for n in self.schedule:
            if n < 1 or n >= previous or previous % n != 0:
                raise ValueError(f"`method.schedule` must decrease, each count dividing the previous one "
                                 f"(starting from teacher_steps={self.teacher_steps}) but is {list(self.schedule)}.")
            previous = n
        if self.stage_steps and (len(self.stage_steps) != len(self.schedule) or min(self.stage_steps) < 1):
            raise ValueError(f"`method.stage_steps` must give one count >= 1 per stage of {list(self.schedule)} "
                             f"(or be empty) but is {list(self.stage_steps)}.")
        self._validate_loss()

    def _validate_loss(self) -> None:
        if self.stage_steps and min(self.stage_steps) < 1:
            raise ValueError(f"`method.stage_steps` must be counts >= 1 but is {list(self.stage_steps)}.")
        if not 0 < self.freq_cutoff < 1:
            raise ValueError(f"`method.freq_cutoff` must be in (0, 1) but is {self.freq_cutoff}.")
        if self.lambda_freq < 0:
            raise ValueError(f"`method.lambda_freq` must be >= 0 but is {self.lambda_freq}.")


def frequency_weights(shape: tuple[int, int, int], cutoff: float, high_weight: float) -> torch.Tensor:
    """Weights over the 3D FFT grid (T, H, W): 1 below `cutoff`, `high_weight` above it."""
    axes = [torch.fft.fftfreq(n).abs() * 2 for n in shape]  # each in [0, 1]
    t, h, w = torch.meshgrid(*axes, indexing="ij")
    radius = torch.sqrt((t**2 + h**2 + w**2) / 3)
    return 1 + (high_weight - 1) * (radius > cutoff).float()


def frequency_loss(x: torch.Tensor, target: torch.Tensor, cutoff: float, high_weight: float) -> torch.Tensor:
    """Weighted squared error of the 3D FFT of x - target; x, target: (B, C, T, H, W)."""
    spectrum = torch.fft.fftn((x - target).float(), dim=(-3, -2, -1), norm="ortho")
    weights = frequency_weights(tuple(x.shape[-3:]), cutoff, high_weight).to(x.device)
    return (weights * spectrum.abs() ** 2).mean()


def high_frequency_ratio(x: torch.Tensor, cutoff: float = 0.5) -> torch.Tensor:
    """Share of spectral energy above `cutoff` per sample; x: (B, C, T, H, W) -> (B,)."""
    power = torch.fft.fftn(x.float(), dim=(-3, -2, -1), norm="ortho").abs() ** 2
    mask = frequency_weights(tuple(x.shape[-3:]), cutoff, 2.0) > 1
    return (power * mask).sum(dim=(1, 2, 3, 4)) / power.sum(dim=(1, 2, 3, 4)).clamp_min(1e-12)


class GPDStage:
    """One GPD stage as a trainer method: roles student (trainable) and guide (frozen)."""

    name = "gpd"
    rng_stream = None
    all_phases = ["student"]

    def __init__(self, cfg: GPDConfig, stage: int, student_init: nn.Module, guide: nn.Module, guide_steps: int,
                 guide_guidance: float, cond: dict[str, torch.Tensor], uncond: dict[str, torch.Tensor] | None,
                 latent_shape: tuple[int, ...], shift: float, embedded_guidance_scale: float | None = None,
                 teacher: nn.Module | None = None, teacher_guidance: float = 1.0):
        """stage: 1-based. cond: the prompts' conditioning tensors, P rows each (for Wan
        encoder_hidden_states (P, L, D)); uncond: the empty prompt's, one row each, for
        classifier-free guidance (None when no guidance > 1). latent_shape: (C, T, H, W).
        embedded_guidance_scale: HunyuanVideo's guidance embedding, passed to every call (None for
        Wan). teacher, teacher_guidance: the paper variant's refining teacher and its annealed
        guidance for this stage."""
        if max(guide_guidance, teacher_guidance) > 1.0 and uncond is None:
            raise ValueError(f"`uncond` must be given for guidance > 1 but is None (guide {guide_guidance}, "
                             f"teacher {teacher_guidance}).")
        if cfg.variant == "paper" and teacher is None:
            raise ValueError("`teacher` must be given for the paper variant but is None.")
        self.cfg, self.stage = cfg, stage
        self.family = family_of(guide)
        self.embedded_guidance_scale = embedded_guidance_scale
        self.student_steps = cfg.stage_counts()[stage - 1]
        self.guide_steps = guide_steps
        self.span = guide_steps // self.student_steps
        fine = sigma_schedule(cfg.teacher_steps, shift).float()
        self.fine_sigmas = fine
        if cfg.variant == "paper":
            # every h-th teacher sigma, and the last one: the final jump is shorter when h does not divide
            h = cfg.horizon(stage)
            self.student_index = torch.tensor([*range(0, cfg.teacher_steps, h), cfg.teacher_steps])
            self.student_sigmas = fine[self.student_index]
            self.guide_sigmas = fine
        else:
            self.guide_sigmas = fine[:: cfg.teacher_steps // guide_steps]
            self.student_sigmas = fine[:: cfg.teacher_steps // self.student_steps]
        self.guide = guide.eval().requires_grad_(False)
        self.guide_guidance = guide_guidance
        self.teacher = None if teacher is None else teacher.eval().requires_grad_(False)
        self.teacher_guidance = teacher_guidance
        self.student = copy.deepcopy(student_init).train().requires_grad_(True)
        self.cond = {k: v.detach().clone() for k, v in cond.items()}
        self.uncond = None if uncond is None else {k: v[:1].detach().clone() for k, v in uncond.items()}
        self.num_prompts = len(next(iter(self.cond.values())))
        self.latent_shape = latent_shape
        last = len(cfg.stage_counts())
        stages = (last,) if cfg.variant == "paper" else cfg.freq_stages  # paper: the last stage only
        self.use_freq = cfg.lambda_freq > 0 and (not stages or stage in stages)

    def to(self, device: torch.device) -> GPDStage:
        """Move the models, schedules and the empty-prompt conditioning to `device` (the prompt
        conditioning stays on the CPU; the trainer moves each batch)."""
        self.guide.to(device)
        self.student.to(device)
        if self.teacher is not None:
            self.teacher.to(device)
        self.guide_sigmas, self.student_sigmas = self.guide_sigmas.to(device), self.student_sigmas.to(device)
        self.fine_sigmas = self.fine_sigmas.to(device)
        if self.cfg.variant == "paper":
            self.student_index = self.student_index.to(device)
        if self.uncond is not None:
            self.uncond = {k: v.to(device) for k, v in self.uncond.items()}
        return self

    def close(self) -> None:
        """Nothing to release: GPD hooks nothing."""

    def trainable(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def compile_targets(self) -> list[nn.Module]:
        """What `trainer.compile` compiles: the student and the models its targets come from."""
        return list({id(m): m for m in (self.student, self.guide, self.teacher) if m is not None}.values())

    def phases(self, step: int) -> list[str]:
        return ["student"]

    def phase_modules(self, phase: str) -> list[str]:
        return ["student"]

    def lr(self, phase: str, base_lr: float) -> float:
        return base_lr

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        count = 1 if self.cfg.shared_index else batch_size
        rows = torch.from_numpy(rng.integers(0, self.num_prompts, batch_size))
        return {"cond": {k: v[rows] for k, v in self.cond.items()},
                "noise": torch.randn((batch_size, *self.latent_shape), generator=g),
                "index": torch.from_numpy(rng.integers(0, self.student_steps, count)).expand(batch_size).clone()}

    def _velocity(self, model, x: torch.Tensor, sigma: torch.Tensor, cond: dict[str, torch.Tensor],
                  guidance: float = 1.0) -> torch.Tensor:
        """v at x (B, C, T, H, W), sigma (B,), cond (B rows); classifier-free guided when guidance > 1."""
        v = self.family.transformer_call(model, x, sigma, cond, self.embedded_guidance_scale)
        if guidance > 1.0:
            empty = {k: u.expand(len(x), *u.shape[1:]) for k, u in self.uncond.items()}
            v_uncond = self.family.transformer_call(model, x, sigma, empty, self.embedded_guidance_scale)
            v = guided(v, v_uncond, guidance)
        return v

    @torch.no_grad()
    def online_target(self, noise: torch.Tensor, cond: dict[str, torch.Tensor], index: torch.Tensor):
        """Roll the student from noise (B, C, T, H, W) to each sample's step `index` (B,) on the
        student grid, then let the guide take `span` steps. cond: B rows. Returns (x_i, target),
        both (B, C, T, H, W)."""
        x = noise.clone()
        s = self.student_sigmas
        steps = index.max().clone()
        if dist.is_initialized():
            # FSDP2 gathers parameters inside every forward: all ranks must make the same
            # number of student calls, so roll to the largest index of any rank (the extra
            # steps change nothing: `active` is False for every sample there)
            dist.all_reduce(steps, op=dist.ReduceOp.MAX)
        for i in range(int(steps)):
            active = (index > i).view(-1, 1, 1, 1, 1)
            v = self._velocity(self.student, x, s[i].expand(len(x)), cond)
            x = torch.where(active, x + (s[i + 1] - s[i]) * v, x)
        if self.cfg.variant == "paper":
            return x, self._paper_target(x, cond, index)
        target = x.clone()
        for k in range(self.span):
            fine = index * self.span + k
            sigma, sigma_next = self.guide_sigmas[fine], self.guide_sigmas[fine + 1]
            v = self._velocity(self.guide, target, sigma, cond, self.guide_guidance)
            target = target + (sigma_next - sigma).view(-1, 1, 1, 1, 1) * v
        return x, target

    def _paper_target(self, x: torch.Tensor, cond: dict[str, torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        """The paper variant's target from x (B, C, T, H, W) at student step `index` (B,): the guide
        (previous student; the teacher in stage 1) jumps to one teacher step short of the student's
        next sigma, and the teacher takes that last step."""
        start, end = self.student_index[index], self.student_index[index + 1]
        fine = self.fine_sigmas
        sigma, sigma_mid, sigma_end = fine[start], fine[end - 1], fine[end]
        # always called, also where the jump is empty (mid == start moves by zero): every rank
        # must make the same calls under FSDP2
        v = self._velocity(self.guide, x, sigma, cond, self.guide_guidance)
        mid = x + (sigma_mid - sigma).view(-1, 1, 1, 1, 1) * v
        v = self._velocity(self.teacher, mid, sigma_mid, cond, self.teacher_guidance)
        return mid + (sigma_end - sigma_mid).view(-1, 1, 1, 1, 1) * v

    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int):
        index, cond = batch["index"], batch["cond"]
        x, target = self.online_target(batch["noise"], cond, index)
        s, s_next = self.student_sigmas[index], self.student_sigmas[index + 1]
        v = self._velocity(wrapped["student"], x, s, cond)
        x_hat = x + (s_next - s).view(-1, 1, 1, 1, 1) * v
        mse = F.mse_loss(x_hat, target)
        extra = {"target": mse.item()}
        loss = mse
        if self.use_freq:
            freq = frequency_loss(x_hat, target, self.cfg.freq_cutoff, self.cfg.freq_high_weight)
            loss = mse + self.cfg.lambda_freq * freq
            extra["freq"] = freq.item()
        return loss, extra

    def export(self, pipe, modules: dict[str, nn.Module]) -> dict:
        pipe.transformer.load_state_dict(modules["student"].state_dict())
        return {"role": "student", "method": "gpd", "stage": self.stage, "num_steps": self.student_steps,
                "sigmas": [float(v) for v in self.student_sigmas], "guidance_scale": 1.0,
                "teacher_steps": self.cfg.teacher_steps, "schedule": list(self.cfg.stage_counts()),
                "variant": self.cfg.variant}
