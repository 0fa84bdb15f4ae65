"""What differs between model families, behind one small interface used by generation, SynVid
and every trainer.

Wan (`WanPipeline`): one T5 text encoder, classifier-free guidance by two transformer calls,
latents normalised by per-channel mean/std. HunyuanVideo (`HunyuanVideoPipeline`): a Llama
encoder (token states + attention mask) and a CLIP encoder (pooled vector), guidance
*embedded* in the transformer (one call per step; real CFG optional on top), latents scaled
by one `scaling_factor`. Everything else (schedule, Euler loop, timing) is shared.

`Family.transformer_call(model, x, sigma, cond)` is the one place a transformer is called:
inference, SynVid, the teacher trainer and the distillation methods all go through it, so
the timestep convention (`accvideo.core.path.timestep`) and each family's keyword names are
written once, and training works for every family that inference does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from accvideo.core.guidance import cfg
from accvideo.core.path import timestep
from accvideo.models.memory import execution_device
from accvideo.models.vae import denormalize_latents

# For tiny test models whose tokenizer has no chat template; the real HunyuanVideo uses
# diffusers' default Llama template (crop_start sized for it).
PLAIN_PROMPT_TEMPLATE = {"template": "{}", "crop_start": 0}


@dataclass
class Conditioning:
    """Transformer keyword arguments for the prompt (`cond`) and, with real CFG, the negative
    prompt (`uncond`). Wan: encoder_hidden_states (B, L, D). HunyuanVideo: also
    encoder_attention_mask (B, L) and pooled_projections (B, D_pool). B is the number of
    prompts encoded; `select` picks rows, so a trainer can encode its prompts once."""

    cond: dict[str, torch.Tensor]
    uncond: dict[str, torch.Tensor] | None = None

    def select(self, index: torch.Tensor | slice) -> Conditioning:
        rows = {k: v[index] for k, v in self.cond.items()}
        return Conditioning(rows, None if self.uncond is None else {k: v[index] for k, v in self.uncond.items()})

    def to(self, device: torch.device | str) -> Conditioning:
        cond = {k: v.to(device) for k, v in self.cond.items()}
        return Conditioning(cond, None if self.uncond is None else {k: v.to(device) for k, v in self.uncond.items()})


class Family:
    name = ""

    def scale_factors(self, pipe) -> tuple[int, int]:
        """(temporal, spatial) compression of the VAE."""
        raise NotImplementedError

    def patch_size(self, pipe) -> int:
        """Spatial patch size of the transformer (sizes must divide by spatial factor x patch)."""
        raise NotImplementedError

    def max_latent_size(self, pipe) -> int | None:
        """The most latent positions per axis (frames, height, width, after patching) the transformer's
        position embedding covers; None when it has no such limit."""
        return None

    def encode(self, pipe, prompt: str | list[str], negative_prompt: str | None, max_sequence_length: int,
               defaults: dict) -> Conditioning:
        """Text conditioning of one prompt or a list of prompts (B rows); with `negative_prompt`
        (one string, used for every row) also the unconditional rows for real CFG."""
        raise NotImplementedError

    def transformer_call(self, model, x: torch.Tensor, sigma: float | torch.Tensor, cond: dict[str, torch.Tensor],
                         embedded_guidance_scale: float | None = None) -> torch.Tensor:
        """The model's velocity v at `x` (B, C, T', H', W') and noise level `sigma` (a float, or one
        per sample, shape (B,)), conditioned by `cond` (the keyword tensors of a `Conditioning`,
        B rows). `model` is the bare transformer or one wrapped by DDP / FSDP; `x` is passed in
        its own dtype. Returns v of the shape of x, in the model's dtype."""
        raise NotImplementedError

    def velocity(self, pipe, conditioning: Conditioning, guidance_scale: float,
                 embedded_guidance_scale: float | None, transformers: tuple | None = None
                 ) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The sampling velocity `v(x, sigma)` of `pipe`'s transformer: `transformer_call`, with
        classifier-free guidance (2 NFE per step) when `conditioning.uncond` is set. `transformers`:
        (cond, uncond) callables used instead of the transformer (the per-branch caches of
        `models/cache.py`, which keep state across steps)."""
        transformer = pipe.transformer
        cond_model, uncond_model = transformers or (transformer, transformer)

        def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
            x = x.to(transformer.dtype)
            v = self.transformer_call(cond_model, x, sigma, conditioning.cond, embedded_guidance_scale)
            if conditioning.uncond is not None:
                v_uncond = self.transformer_call(uncond_model, x, sigma, conditioning.uncond, embedded_guidance_scale)
                v = cfg(v, v_uncond, guidance_scale)
            return v

        return velocity

    def decode(self, pipe, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (1, C, T', H', W') -> video (1, 3, T, H, W) in about [-1, 1]."""
        raise NotImplementedError


class WanFamily(Family):
    name = "wan"

    def scale_factors(self, pipe):
        return pipe.vae.config.scale_factor_temporal, pipe.vae.config.scale_factor_spatial

    def patch_size(self, pipe):
        return pipe.transformer.config.patch_size[1]

    def max_latent_size(self, pipe):
        # Wan's rotary table has rope_max_seq_len rows per axis; beyond it the slices come up short
        # and the transformer fails deep inside with a shape error
        return pipe.transformer.config.rope_max_seq_len

    def encode(self, pipe, prompt, negative_prompt, max_sequence_length, defaults):
        use_cfg = negative_prompt is not None
        device = execution_device(pipe)
        text, negative = pipe.encode_prompt(prompt, negative_prompt, do_classifier_free_guidance=use_cfg,
                                            max_sequence_length=max_sequence_length, device=device)
        dtype = pipe.transformer.dtype
        return Conditioning({"encoder_hidden_states": text.to(dtype)},
                            {"encoder_hidden_states": negative.to(dtype)} if use_cfg else None)

    def transformer_call(self, model, x, sigma, cond, embedded_guidance_scale=None):
        return model(x, timestep=timestep(sigma, x.shape[0], x.device), return_dict=False, **cond)[0]

    def decode(self, pipe, latents):
        z = denormalize_latents(pipe.vae, latents.to(pipe.vae.dtype))
        return pipe.vae.decode(z, return_dict=False)[0]


class HunyuanFamily(Family):
    name = "hunyuan"

    def scale_factors(self, pipe):
        return pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial

    def patch_size(self, pipe):
        return pipe.transformer.config.patch_size

    def encode(self, pipe, prompt, negative_prompt, max_sequence_length, defaults):
        from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE

        template = defaults.get("prompt_template") or DEFAULT_PROMPT_TEMPLATE
        device, dtype = execution_device(pipe), pipe.transformer.dtype

        def one(text: str | list[str]) -> dict[str, torch.Tensor]:
            embeds, pooled, mask = pipe.encode_prompt(prompt=text, prompt_template=template, device=device,
                                                      max_sequence_length=max_sequence_length)
            if not bool(mask.any(dim=-1).all()):
                raise ValueError(f"`prompt_template` {template!r} leaves no prompt tokens after cropping "
                                 f"{template.get('crop_start')} tokens; a model without Llama's chat template "
                                 f"needs {PLAIN_PROMPT_TEMPLATE!r} in its sampling defaults.")
            return {"encoder_hidden_states": embeds.to(dtype), "encoder_attention_mask": mask.to(dtype),
                    "pooled_projections": pooled.to(dtype)}

        if negative_prompt is not None and isinstance(prompt, list):
            negative_prompt = [negative_prompt] * len(prompt)
        return Conditioning(one(prompt), one(negative_prompt) if negative_prompt is not None else None)

    def transformer_call(self, model, x, sigma, cond, embedded_guidance_scale=None):
        extra = {}
        if _config(model).guidance_embeds:
            if embedded_guidance_scale is None:
                raise ValueError("`embedded_guidance_scale` must be a number for this guidance-embedded HunyuanVideo "
                                 "transformer but is None.")
            # the pipeline's convention: the embedded scale is multiplied by 1000 like t
            extra["guidance"] = torch.full((x.shape[0],), embedded_guidance_scale * 1000.0, dtype=x.dtype,
                                           device=x.device)
        return model(hidden_states=x, timestep=timestep(sigma, x.shape[0], x.device), return_dict=False,
                     **cond, **extra)[0]

    def decode(self, pipe, latents):
        z = latents.to(pipe.vae.dtype) / pipe.vae.config.scaling_factor
        return pipe.vae.decode(z, return_dict=False)[0]


def _config(model):
    """The diffusers config of a transformer, also through a DDP wrapper (FSDP2 keeps the class)."""
    return getattr(model, "module", model).config


FAMILIES: dict[str, Family] = {"wan": WanFamily(), "hunyuan": HunyuanFamily()}
_BY_TRANSFORMER = {"WanTransformer3DModel": "wan", "HunyuanVideoTransformer3DModel": "hunyuan"}


def family_of(pipe) -> Family:
    """The family of a pipeline (or of a bare transformer), from the transformer's class."""
    transformer = getattr(pipe, "transformer", pipe)
    name = type(getattr(transformer, "module", transformer)).__name__
    if name not in _BY_TRANSFORMER:
        raise ValueError(f"`pipe` must hold a transformer of {sorted(_BY_TRANSFORMER)} but holds {name!r}.")
    return FAMILIES[_BY_TRANSFORMER[name]]
