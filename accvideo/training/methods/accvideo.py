"""AccVideo: trajectory-based few-step guidance + adversarial training on SynVid.

Inputs come only from stored teacher trajectories (never forward diffusion). With key
indices `0 = k_0 < ... < k_m = n` and key sigmas `s_{k_j}`, the student takes one Euler step
per segment,

    x_hat_{j+1} = x_{k_j} + (s_{k_{j+1}} - s_{k_j}) * v_phi(x_{k_j}, s_{k_j}, c),

and learns `L_traj = mean_j || x_hat_{j+1} - x_{k_{j+1}} ||^2`. The discriminator is the
frozen teacher transformer used as a noise-aware feature extractor (hidden states of chosen
blocks, run at the target's key timestep s_{k_{j+1}}) plus one small projection head per key
timestep; it tells stored latents x_{k_{j+1}} (real) from student predictions x_hat_{j+1}
(fake). Student loss: `L_traj + lambda_adv * L_G`.

Our choices where the paper is silent (all config fields): feature blocks = the middle
blocks, hinge loss, lambda_adv = 0.1, adversarial phase from step `adv_start` on, heads of
LayerNorm -> Linear -> SiLU -> Linear averaged over tokens.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accvideo.core.schedules import key_steps
from accvideo.models.families import family_of
from accvideo.training.parallel import transformer_blocks


@dataclass
class AccVideoConfig:
    num_key_steps: int = 5  # m: the student's step count
    lambda_adv: float = 0.1
    adv_start: int = 200  # trajectory loss alone before this step: the student must be close first
    gan_loss: str = "hinge"  # or "non_saturating"
    feature_blocks: tuple[int, ...] = ()  # empty: the middle block(s) of the teacher
    disc_lr_scale: float = 1.0  # discriminator lr = trainer lr * this
    head_hidden: int = 64
    # "all": every sample's m segments go through the student in each micro-batch (L_traj exact);
    # "one": one segment per sample, drawn uniformly, an unbiased estimate of L_traj with 1/m of
    # the student's activations (docs/DISTILL.md). The tiny presets keep "all".
    segments: str = "all"

    def validate(self, num_blocks: int, num_steps: int) -> None:
        if self.segments not in ("all", "one"):
            raise ValueError(f"`method.segments` must be 'all' or 'one' but is {self.segments!r}.")
        if not 1 <= self.num_key_steps <= num_steps:
            raise ValueError(f"`method.num_key_steps` must be in [1, {num_steps}] but is {self.num_key_steps}.")
        if self.gan_loss not in ("hinge", "non_saturating"):
            raise ValueError(f"`method.gan_loss` must be 'hinge' or 'non_saturating' but is {self.gan_loss!r}.")
        if self.lambda_adv < 0:
            raise ValueError(f"`method.lambda_adv` must be >= 0 but is {self.lambda_adv}.")
        for b in self.feature_blocks:
            if not 0 <= b < num_blocks:
                raise ValueError(f"`method.feature_blocks` entries must be in [0, {num_blocks}) but has {b}.")


class KeyStepHeads(nn.Module):
    """m timestep-aware heads; head j scores latents at key timestep s_{k_{j+1}}.

    Input: a list (one per feature block) of token features (B, N, D) and head indices (B,).
    Output: one logit per sample (B,).
    """

    def __init__(self, num_heads: int, num_layers: int, dim: int, hidden: int):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
                          for _ in range(num_layers))
            for _ in range(num_heads)
        )

    def forward(self, features: list[torch.Tensor], head_index: torch.Tensor) -> torch.Tensor:
        # every head on every sample, then pick each sample's own: simple and DDP-friendly
        # (all parameters get gradients every step); the heads are tiny.
        scores = torch.stack([
            sum(layer(f).mean(dim=(1, 2)) for layer, f in zip(head, features)) for head in self.heads
        ], dim=1)  # (B, m)
        return scores.gather(1, head_index.view(-1, 1)).squeeze(1)


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Temporarily stop gradients into `module`'s parameters (inputs still get gradients).

    Under FSDP2 the registered parameters swap between the sharded ones (between passes) and
    the unsharded ones (an FSDP root keeps these after its forward); FSDP copies `requires_grad`
    from the sharded ones at every unshard. So the module is resharded first and the flags are
    restored on the very objects that were frozen: restoring on `module.parameters()` after the
    forward would reach the unsharded ones and leave the sharded ones frozen for good."""
    if hasattr(module, "reshard"):  # an FSDPModule
        module.reshard()
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class TeacherFeatures:
    """Hidden states of chosen blocks of a frozen transformer (any family), via forward hooks.

    Blocks are counted in the order they run (`transformer_blocks`). The hooks stay on the
    teacher until `close()`; the teacher is the trainer's own uncached copy, and the hooks
    record only during our own calls anyway."""

    def __init__(self, teacher: nn.Module, blocks: tuple[int, ...], embedded_guidance_scale: float | None = None):
        self.teacher, self.blocks, self._store, self._active = teacher, blocks, {}, False
        self.family, self.embedded_guidance_scale = family_of(teacher), embedded_guidance_scale
        all_blocks = transformer_blocks(teacher)
        self._handles = [all_blocks[i].register_forward_hook(self._hook(i)) for i in blocks]

    def _hook(self, i: int):
        def hook(module, args, output):
            if self._active:
                self._store[i] = output[0] if isinstance(output, tuple) else output
        return hook

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """x: (B, C, T, H, W); sigma: (B,); cond: conditioning tensors with B rows.
        Returns one token-feature tensor (B, N, D) per chosen block."""
        self._store.clear()
        self._active = True
        try:
            self.family.transformer_call(self.teacher, x, sigma, cond, self.embedded_guidance_scale)
        finally:
            self._active = False
        features = [self._store[i] for i in self.blocks]
        self._store.clear()
        return features

    def close(self) -> None:
        """Remove the forward hooks (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


class AccVideoMethod:
    """Roles: student (trainable, starts as the teacher), discriminator heads (trainable),
    teacher (frozen feature extractor)."""

    name = "accvideo"
    rng_stream = None
    all_phases = ["discriminator", "student"]

    def __init__(self, cfg: AccVideoConfig, teacher_transformer: nn.Module, data: dict):
        """`data` (as `load_key_states` returns it): {"latents": (N, m + 1, C, T, H, W) key-step
        states, "cond": {name: (N, ...)} the text conditioning of each sample (for Wan
        encoder_hidden_states (N, L, D)), "sigmas": (n + 1,) the teacher's schedule,
        "num_steps": n, optionally "embedded_guidance_scale" (HunyuanVideo)}."""
        num_blocks = len(transformer_blocks(teacher_transformer))
        cfg.validate(num_blocks, data["num_steps"])
        self.cfg = cfg
        self.family = family_of(teacher_transformer)
        self.embedded_guidance_scale = data.get("embedded_guidance_scale")
        self.keys = key_steps(data["num_steps"], cfg.num_key_steps)
        self.key_sigmas = torch.as_tensor(data["sigmas"])[self.keys].float()
        # plain tensors with no autograd history (they may come from inference mode)
        self.latents = data["latents"].detach().clone()
        self.cond = {k: v.detach().clone() for k, v in conditioning_of(data).items()}
        if any(len(v) != len(self.latents) for v in self.cond.values()):
            raise ValueError(f"`data['cond']` tensors must have one row per key-state sample ({len(self.latents)}) "
                             f"but have { {k: len(v) for k, v in self.cond.items()} } rows.")
        if self.latents.shape[1] != cfg.num_key_steps + 1:
            raise ValueError(f"SynVid key states have {self.latents.shape[1]} steps per sample but "
                             f"`method.num_key_steps` + 1 = {cfg.num_key_steps + 1}.")
        self.teacher = teacher_transformer.eval().requires_grad_(False)
        self.student = copy.deepcopy(teacher_transformer).train().requires_grad_(True)
        blocks = cfg.feature_blocks or tuple(sorted({(num_blocks - 1) // 2, num_blocks // 2}))
        # after the deep copy: the student must not carry the teacher's hooks
        self.features = TeacherFeatures(self.teacher, blocks, self.embedded_guidance_scale)
        dim = teacher_transformer.config.num_attention_heads * teacher_transformer.config.attention_head_dim
        self.heads = KeyStepHeads(cfg.num_key_steps, len(blocks), dim, cfg.head_hidden)

    def to(self, device: torch.device) -> AccVideoMethod:
        """Move the models and the schedule to `device` (the trainer calls this; the SynVid
        tensors stay on the CPU and each batch is moved)."""
        for module in (self.teacher, self.student, self.heads):
            module.to(device)
        self.key_sigmas = self.key_sigmas.to(device)
        return self

    def close(self) -> None:
        """Remove the feature hooks from the teacher (the trainer calls this at the end)."""
        self.features.close()

    def trainable(self) -> dict[str, nn.Module]:
        return {"student": self.student, "heads": self.heads}

    def grad_frozen(self) -> dict[str, nn.Module]:
        """Frozen models run with grad: the student phase backpropagates through the teacher's
        features into x_hat, so its blocks are checkpointed too under gradient checkpointing."""
        return {"teacher": self.teacher}

    def compile_targets(self) -> list[nn.Module]:
        """What `trainer.compile` compiles: the student (the teacher's feature hooks record from
        Python during its calls, which a compiled graph would not replay)."""
        return [self.student]

    def phases(self, step: int) -> list[str]:
        if self.cfg.lambda_adv > 0 and step >= self.cfg.adv_start:
            return ["discriminator", "student"]
        return ["student"]

    def phase_modules(self, phase: str) -> list[str]:
        return {"discriminator": ["heads"], "student": ["student"]}[phase]

    def lr(self, phase: str, base_lr: float) -> float:
        return base_lr * (self.cfg.disc_lr_scale if phase == "discriminator" else 1.0)

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        idx = torch.from_numpy(rng.integers(0, len(self.latents), batch_size))
        segment = torch.from_numpy(rng.integers(0, self.cfg.num_key_steps, batch_size))
        return {"states": self.latents[idx], "cond": {k: v[idx] for k, v in self.cond.items()}, "segment": segment}

    def _student_step(self, student, states: torch.Tensor, cond: dict[str, torch.Tensor]):
        """One Euler step on every segment. states: (B, m + 1, C, T, H, W); cond: B rows.
        Returns predictions x_hat (B, m, ...) and targets x_{k_{j+1}} (B, m, ...)."""
        b, m = states.shape[0], self.cfg.num_key_steps
        x = states[:, :m].flatten(0, 1)
        s = self.key_sigmas[:m].repeat(b)
        ds = (self.key_sigmas[1:] - self.key_sigmas[:m]).repeat(b).view(-1, 1, 1, 1, 1)
        rows = {k: v.repeat_interleave(m, 0) for k, v in cond.items()}  # sample-major, like x
        v = self.family.transformer_call(student, x, s, rows, self.embedded_guidance_scale)
        x_hat = (x + ds * v).view(b, m, *x.shape[1:])
        return x_hat, states[:, 1:]

    def _one_segment(self, student, states: torch.Tensor, cond: dict[str, torch.Tensor], segment: torch.Tensor):
        """One Euler step on each sample's own segment j = segment[b]. states: (B, m + 1, C, T, H, W);
        segment: (B,). Returns the prediction x_hat_{j+1} and the target x_{k_{j+1}}, both (B, C, T, H, W)."""
        rows = torch.arange(len(segment), device=states.device)
        x = states[rows, segment]
        ds = (self.key_sigmas[segment + 1] - self.key_sigmas[segment]).view(-1, 1, 1, 1, 1)
        v = self.family.transformer_call(student, x, self.key_sigmas[segment], cond, self.embedded_guidance_scale)
        return x + ds * v, states[rows, segment + 1]

    def _predict(self, student, states, cond, segment):
        """(x_hat, target) for L_traj: all segments (B, m, ...) or each sample's own (B, ...) by
        `cfg.segments`; and the prediction for each sample's drawn segment (B, ...), the one the
        discriminator sees."""
        if self.cfg.segments == "one":
            x_hat, target = self._one_segment(student, states, cond, segment)
            return x_hat, target, x_hat
        x_hat, target = self._student_step(student, states, cond)
        return x_hat, target, x_hat[torch.arange(len(segment)), segment]

    def _d_logits(self, heads, x: torch.Tensor, segment: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        sigma = self.key_sigmas[segment + 1]  # the target's own key timestep
        return heads(self.features(x, sigma, cond), segment)

    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int):
        states, cond, segment = batch["states"], batch["cond"], batch["segment"]
        rows = torch.arange(len(segment))
        if phase == "discriminator":
            with torch.no_grad():  # "all" still steps every segment here: bit for bit the runs it made before
                fake = self._predict(self.student, states, cond, segment)[2]
            real = states[rows, segment + 1]
            d_real = self._d_logits(wrapped["heads"], real, segment, cond)
            d_fake = self._d_logits(wrapped["heads"], fake, segment, cond)
            if self.cfg.gan_loss == "hinge":
                loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            else:
                loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            return loss, {"d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
        # with segments "one", E_j[mse_j] over a uniform j is the mean over the m segments, which is
        # exactly the "all" loss (a mean, not a sum, over segments): no rescaling is needed
        x_hat, target, drawn = self._predict(wrapped["student"], states, cond, segment)
        traj = F.mse_loss(x_hat, target)
        extra = {"traj": traj.item()}
        loss = traj
        if "discriminator" in self.phases(step):
            with frozen(self.heads):
                d_fake = self._d_logits(self.heads, drawn, segment, cond)
            g = -d_fake.mean() if self.cfg.gan_loss == "hinge" else F.softplus(-d_fake).mean()
            loss = traj + self.cfg.lambda_adv * g
            extra["g"] = g.item()
        return loss, extra

    def export(self, pipe, modules: dict[str, nn.Module]) -> dict:
        pipe.transformer.load_state_dict(modules["student"].state_dict())
        return {"role": "student", "method": self.name, "num_steps": self.cfg.num_key_steps,
                "sigmas": [float(s) for s in self.key_sigmas], "key_steps": self.keys, "guidance_scale": 1.0}


def conditioning_of(data: dict) -> dict[str, torch.Tensor]:
    """The text conditioning of key-state data: `data["cond"]`, {name: (N, ...)}."""
    if "cond" not in data:
        raise ValueError(f"key-state data must hold 'cond' (the transformer's text keyword tensors) but has keys "
                         f"{sorted(data)}.")
    return dict(data["cond"])
