"""Helpers around `AutoencoderKLWan`: normalised latents and an unclamped decode for training."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify


def _stats(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, dtype=like.dtype, device=like.device).view(shape)
    std = torch.tensor(vae.config.latents_std, dtype=like.dtype, device=like.device).view(shape)
    return mean, std


def normalize_latents(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents (B, C, T', H', W') -> the unit-scale space the transformer works in."""
    mean, std = _stats(vae, z)
    return (z - mean) / std


def denormalize_latents(vae: AutoencoderKLWan, x: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_latents` (what `WanPipeline` does before decoding)."""
    mean, std = _stats(vae, x)
    return x * std + mean


@torch.no_grad()
def encode_videos(vae: AutoencoderKLWan, videos: torch.Tensor, sample: bool = False) -> torch.Tensor:
    """Videos (B, 3, T, H, W) in [-1, 1] -> normalised latents (B, z_dim, (T-1)/ft + 1, H/fs, W/fs)."""
    dist = vae.encode(videos.to(vae.dtype)).latent_dist
    return normalize_latents(vae, dist.sample() if sample else dist.mode())


def decode_unclamped(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """Decode raw latents (B, C, T', H', W') to video (B, 3, T, H, W) without the final clamp.

    `AutoencoderKLWan.decode` clamps to [-1, 1]; training through the clamp gives zero
    gradient on saturated pixels and a VAE trained so collapses towards black. This repeats
    diffusers' frame-by-frame causal decode (same cache mechanism) and skips the clamp.
    """
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    frames = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        frames.append(
            vae.decoder(x[:, :, i : i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=i == 0)
        )
    out = torch.cat(frames, dim=2)
    if vae.config.patch_size is not None:
        out = unpatchify(out, patch_size=vae.config.patch_size)
    vae.clear_cache()
    return out
