"""A lightweight video decoder distilled from a model's VAE, and where to find the one for a model.

`TinyVideoDecoder` maps the transformer's *normalised* latents (B, C, T', H', W') straight to
frames (B, 3, T, H, W) in about [-1, 1], T = ft (T' - 1) + 1, H = fs H', W = fs W' for the VAE's
temporal and spatial factors (ft, fs). It is TAEHV-shaped: causal 3x3x3 convolutions at the
latent resolution, `log2(fs / pixel_shuffle)` nearest-neighbour 2x upsamplings with a
convolution each, then one convolution to `3 ft p^2` channels unshuffled into ft frames of
p x p pixels per latent pixel (p = `pixel_shuffle`). Latent frame i makes frames
ft i - ft + 1 .. ft i; the ft - 1 frames before frame 0 are dropped, matching the causal VAEs
of Wan2.1 and HunyuanVideo (latent frame 0 is one frame). Working on normalised latents means
no family's latent statistics are needed to decode.

A decoder folder is diffusers-style (`config.json`, `diffusion_pytorch_model.safetensors`,
written by `save_pretrained`) plus `sha256.json` (weights hashes, checked on load) and
`decoder_info.json` ({"vae_sha256", "family", "teacher", ...}). `vae_sha256` is the content
hash of the VAE it was distilled from: a model's "tiny" decoder is the first folder among
`decoder_candidates(model)` whose `vae_sha256` equals the model's own, so a decoder is never
paired with a VAE it did not learn (a student sharing its teacher's VAE shares the decoder).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from accvideo.models.fingerprint import component_sha256
from accvideo.util.hashes import verify_hashes, write_hashes
from accvideo.util.io import atomic_write_text

INFO_FILE = "decoder_info.json"
MODEL_SUBFOLDER = "tiny_decoder"  # a model folder may carry its own decoder here
ASSET_NAME = "tiny-decoder"  # the bundled one, for the tiny family's VAE


class CausalConv3d(nn.Conv3d):
    """3x3x3 convolution that sees only the current and earlier frames: two copies of the first
    frame pad the front in time (a causal VAE's first latent frame has no past), zeros pad space."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=3, padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, :, :1], x[:, :, :1], x], dim=2)
        return super().forward(x)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.conv2 = CausalConv3d(channels, channels), CausalConv3d(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class TinyVideoDecoder(ModelMixin, ConfigMixin):
    """Normalised latents (B, latent_channels, T', H', W') -> frames (B, 3, ft (T'-1) + 1, fs H', fs W')."""

    @register_to_config
    def __init__(self, latent_channels: int = 16, scale_factor_temporal: int = 4, scale_factor_spatial: int = 8,
                 channels: int = 64, num_blocks: int = 2, pixel_shuffle: int = 2, out_channels: int = 3):
        super().__init__()
        ups = scale_factor_spatial // pixel_shuffle
        if scale_factor_spatial % pixel_shuffle or ups & (ups - 1):
            raise ValueError(f"`scale_factor_spatial` / `pixel_shuffle` must be a power of two but is "
                             f"{scale_factor_spatial} / {pixel_shuffle}.")
        self.stem = CausalConv3d(latent_channels, channels)
        self.blocks = nn.Sequential(*[ResBlock(channels) for _ in range(num_blocks)])
        # each 2x upsampling halves the width (not below 16): the pixel count grows 4x per stage
        widths = [max(16, channels // 2 ** (i + 1)) for i in range(int(math.log2(ups)))]
        stages, width = [], channels
        for w in widths:
            # per-frame 3x3: time is mixed at the latent resolution, where it is 4x cheaper per stage
            stages += [nn.Upsample(scale_factor=(1, 2, 2), mode="nearest"),
                       nn.Conv3d(width, w, kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.ReLU()]
            width = w
        self.up = nn.Sequential(*stages)
        self.head = nn.Conv3d(width, out_channels * scale_factor_temporal * pixel_shuffle ** 2, kernel_size=(1, 3, 3),
                              padding=(0, 1, 1))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        ft, p, c = self.config.scale_factor_temporal, self.config.pixel_shuffle, self.config.out_channels
        h = F.relu(self.stem(latents))
        h = self.up(self.blocks(h))
        h = self.head(h)  # (B, c ft p p, T', H'', W'')
        b, _, t, hh, ww = h.shape
        h = h.view(b, c, ft, p, p, t, hh, ww).permute(0, 1, 5, 2, 6, 3, 7, 4)
        frames = h.reshape(b, c, t * ft, hh * p, ww * p)
        return frames[:, :, ft - 1:]  # latent frame 0 decodes to one frame


def vae_sha256(model_folder: str | Path) -> str:
    """The content hash of a model folder's VAE weights (see `fingerprint.component_sha256`)."""
    return component_sha256(model_folder, "vae")


def save_decoder(decoder: TinyVideoDecoder, folder: str | Path, info: dict) -> Path:
    """Write `decoder` as a diffusers-style folder with `decoder_info.json` (`info`, which must hold
    `vae_sha256`) and `sha256.json`. Returns the folder."""
    if not info.get("vae_sha256"):
        raise ValueError(f"`info` must hold the distilled VAE's `vae_sha256` but holds {sorted(info)}.")
    folder = Path(folder)
    decoder.save_pretrained(folder)
    atomic_write_text(folder / INFO_FILE, json.dumps(info, indent=2, default=str) + "\n")
    write_hashes(folder)
    return folder


def read_info(folder: str | Path) -> dict:
    path = Path(folder) / INFO_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"decoder folder {str(folder)!r}: {INFO_FILE} is missing or corrupt ({err}); make the "
                         "decoder with `python -m accvideo distill decoder`.") from err


def load_decoder(folder: str | Path) -> TinyVideoDecoder:
    """Load a decoder folder after checking its weights hashes; frozen, in eval mode."""
    folder = Path(folder)
    read_info(folder)
    verify_hashes(folder)
    try:
        decoder = TinyVideoDecoder.from_pretrained(str(folder))
    except Exception as err:
        raise ValueError(f"decoder folder {str(folder)!r} could not be loaded: {err}") from err
    return decoder.eval().requires_grad_(False)


def decoder_candidates(model_folder: Path | None) -> list[Path]:
    """Where a model's "tiny" decoder is looked for, in order: MODEL/tiny_decoder, the bundled
    assets/tiny-decoder, then every folder under $ACCVIDEO_DECODERS_DIR."""
    from accvideo.models.registry import ASSETS

    found = [Path(model_folder) / MODEL_SUBFOLDER] if model_folder is not None else []
    found.append(ASSETS / ASSET_NAME)
    extra = os.environ.get("ACCVIDEO_DECODERS_DIR")
    if extra and Path(extra).is_dir():
        found += sorted(p for p in Path(extra).iterdir() if p.is_dir())
    return [p for p in found if (p / INFO_FILE).exists()]


def find_decoder(model_folder: Path | None, choice: str | Path) -> Path:
    """The decoder folder for `choice`: "tiny" (the matching one among `decoder_candidates`) or a
    decoder folder, whose `vae_sha256` must match the model's VAE. ValueError otherwise."""
    if model_folder is None:
        raise ValueError("`decoder` needs a model loaded from a folder (its VAE's hash picks the decoder) but the "
                         "model was built in memory.")
    want = vae_sha256(model_folder)
    if str(choice) != "tiny":
        folder = Path(choice)
        if not (folder / INFO_FILE).exists():
            raise ValueError(f"`decoder` must be 'tiny', 'full' or a decoder folder (with {INFO_FILE}) but is "
                             f"{str(choice)!r}.")
        got = read_info(folder).get("vae_sha256")
        if got != want:
            raise ValueError(f"`decoder` folder {str(folder)!r} was distilled from another VAE (sha256 "
                             f"{str(got)[:12]}...) than model {str(model_folder)!r}'s ({want[:12]}...).")
        return folder
    candidates = decoder_candidates(model_folder)
    for folder in candidates:
        if read_info(folder).get("vae_sha256") == want:
            return folder
    raise ValueError(f"`decoder` 'tiny': no decoder distilled from the VAE of {str(model_folder)!r} (sha256 "
                     f"{want[:12]}...) among {[str(c) for c in candidates] or 'none found'}; train one with "
                     f"`python -m accvideo distill decoder --teacher {model_folder} --out RUN` and put RUN/decoder "
                     f"in the model folder as {MODEL_SUBFOLDER}/ or under $ACCVIDEO_DECODERS_DIR.")


def has_tiny_decoder(model_folder: str | Path | None) -> bool:
    """Whether `+tinydecoder` / `decoder="tiny"` would find a decoder for this model (for the app's
    choices: offer the option only where it works)."""
    try:
        find_decoder(None if model_folder is None else Path(model_folder), "tiny")
    except ValueError:
        return False
    return True
