"""Video frames to files: nearest-neighbour upscaling and browser-playable mp4."""

from __future__ import annotations

import numpy as np


def upscale(video: np.ndarray, size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale of (T, H, W, 3) uint8 frames so the long side is about `size`."""
    factor = max(1, size // max(video.shape[1], video.shape[2]))
    return video.repeat(factor, axis=1).repeat(factor, axis=2)


def write_mp4(video: np.ndarray, path, fps: int = 8, size: int = 256) -> None:
    """Write (T, H, W, 3) uint8 frames as an H.264 mp4 that browsers play (yuv420p)."""
    import imageio.v2 as imageio

    frames = upscale(video, size)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                            macro_block_size=1, ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)
