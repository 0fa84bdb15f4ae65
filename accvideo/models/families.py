"""What differs between model families, behind one small interface used by `inference.generate`.

Wan (`WanPipeline`): one T5 text encoder, classifier-free guidance by two transformer calls,
latents normalised by per-channel mean/std. HunyuanVideo (`HunyuanVideoPipeline`): a Llama
encoder (token states + attention mask) and a CLIP encoder (pooled vector), guidance
*embedded* in the transformer (one call per step; real CFG optional on top), latents scaled
by one `scaling_factor`. Everything else (schedule, Euler loop, timing) is shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from accvideo.models.memory import execution_device
from accvideo.models.vae import denormalize_latents

# For tiny test models whose tokenizer has no chat template; the real HunyuanVideo uses
# diffusers' default Llama template (crop_start sized for it).
PLAIN_PROMPT_TEMPLATE = {"template": "{}", "crop_start": 0}


@dataclass
class Conditioning:
    """Transformer keyword arguments for the prompt (`cond`) and, with real CFG, the negative
    prompt (`uncond`). Wan: encoder_hidden_states (1, L, D). HunyuanVideo: also
    encoder_attention_mask (1, L) and pooled_projections (1, D_pool)."""

    cond: dict[str, torch.Tensor]
    uncond: dict[str, torch.Tensor] | None = None


class Family:
    name = ""

    def scale_factors(self, pipe) -> tuple[int, int]:
        """(temporal, spatial) compression of the VAE."""
        raise NotImplementedError

    def patch_size(self, pipe) -> int:
        """Spatial patch size of the transformer (sizes must divide by spatial factor x patch)."""
        raise NotImplementedError

    def encode(self, pipe, prompt: str, negative_prompt: str | None, max_sequence_length: int,
               defaults: dict) -> Conditioning:
        raise NotImplementedError

    def velocity(self, pipe, conditioning: Conditioning, guidance_scale: float,
                 embedded_guidance_scale: float | None) -> Callable[[torch.Tensor, float], torch.Tensor]:
        raise NotImplementedError

    def decode(self, pipe, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (1, C, T', H', W') -> video (1, 3, T, H, W) in about [-1, 1]."""
        raise NotImplementedError

    def guided_velocity(self, call, conditioning: Conditioning, guidance_scale: float):
        """Classifier-free guidance around `call(x, t, **kwargs)`: 2 NFE per step when on."""

        def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
            t = torch.full((x.shape[0],), sigma * 1000.0, dtype=torch.float32, device=x.device)
            v = call(x, t, conditioning.cond)
            if conditioning.uncond is not None:
                v_uncond = call(x, t, conditioning.uncond)
                v = v_uncond + guidance_scale * (v - v_uncond)
            return v

        return velocity


class WanFamily(Family):
    name = "wan"

    def scale_factors(self, pipe):
        return pipe.vae.config.scale_factor_temporal, pipe.vae.config.scale_factor_spatial

    def patch_size(self, pipe):
        return pipe.transformer.config.patch_size[1]

    def encode(self, pipe, prompt, negative_prompt, max_sequence_length, defaults):
        use_cfg = negative_prompt is not None
        device = execution_device(pipe)
        text, negative = pipe.encode_prompt(prompt, negative_prompt, do_classifier_free_guidance=use_cfg,
                                            max_sequence_length=max_sequence_length, device=device)
        dtype = pipe.transformer.dtype
        return Conditioning({"encoder_hidden_states": text.to(dtype)},
                            {"encoder_hidden_states": negative.to(dtype)} if use_cfg else None)

    def velocity(self, pipe, conditioning, guidance_scale, embedded_guidance_scale):
        transformer = pipe.transformer

        def call(x, t, kwargs):
            return transformer(x.to(transformer.dtype), timestep=t.to(x.dtype), return_dict=False, **kwargs)[0]

        return self.guided_velocity(call, conditioning, guidance_scale)

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

        def one(text: str) -> dict[str, torch.Tensor]:
            embeds, pooled, mask = pipe.encode_prompt(prompt=text, prompt_template=template, device=device,
                                                      max_sequence_length=max_sequence_length)
            if not bool(mask.any()):
                raise ValueError(f"`prompt_template` {template!r} leaves no prompt tokens after cropping "
                                 f"{template.get('crop_start')} tokens; a model without Llama's chat template "
                                 f"needs {PLAIN_PROMPT_TEMPLATE!r} in its sampling defaults.")
            return {"encoder_hidden_states": embeds.to(dtype), "encoder_attention_mask": mask.to(dtype),
                    "pooled_projections": pooled.to(dtype)}

        return Conditioning(one(prompt), one(negative_prompt) if negative_prompt is not None else None)

    def velocity(self, pipe, conditioning, guidance_scale, embedded_guidance_scale):
        transformer = pipe.transformer
        if transformer.config.guidance_embeds and embedded_guidance_scale is None:
            raise ValueError("`embedded_guidance_scale` must be a number for this guidance-embedded HunyuanVideo "
                             "transformer but is None.")

        def call(x, t, kwargs):
            extra = {}
            if transformer.config.guidance_embeds:
                # the pipeline's convention: the embedded scale is multiplied by 1000 like t
                extra["guidance"] = torch.full((x.shape[0],), embedded_guidance_scale * 1000.0,
                                               dtype=transformer.dtype, device=x.device)
            return transformer(hidden_states=x.to(transformer.dtype), timestep=t.to(x.dtype), return_dict=False,
                               **kwargs, **extra)[0]

        return self.guided_velocity(call, conditioning, guidance_scale)

    def decode(self, pipe, latents):
        z = latents.to(pipe.vae.dtype) / pipe.vae.config.scaling_factor
        return pipe.vae.decode(z, return_dict=False)[0]


FAMILIES: dict[str, Family] = {"wan": WanFamily(), "hunyuan": HunyuanFamily()}
_BY_TRANSFORMER = {"WanTransformer3DModel": "wan", "HunyuanVideoTransformer3DModel": "hunyuan"}


def family_of(pipe) -> Family:
    """The family of a loaded pipeline, from its transformer class."""
    name = type(getattr(pipe, "transformer", None)).__name__
    if name not in _BY_TRANSFORMER:
        raise ValueError(f"`pipe` must hold a transformer of {sorted(_BY_TRANSFORMER)} but holds {name!r}.")
    return FAMILIES[_BY_TRANSFORMER[name]]
