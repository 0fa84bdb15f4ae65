"""Per-video scores: temporal flicker (VBench), object consistency, PSNR agreement.

Videos are uint8 frames (T, H, W, 3).
"""

from __future__ import annotations

import numpy as np

from accvideo.eval.detectors import Detection, detect

PSNR_CAP = 100.0  # dB reported for identical videos, so tables and JSON stay finite


def flicker_score(video: np.ndarray) -> float:
    """VBench temporal flickering: `(255 - mean |frame_i - frame_{i+1}|) / 255`, in [0, 1].

    1 for a still video. Our objects move 1.25-2 px per frame, so a real clip scores about
    0.97-0.99; uniform noise scores about 2/3 (mean |u - v| of two uniform bytes is 255/3).
    """
    frames = np.asarray(video, dtype=np.float64)
    if frames.shape[0] < 2:
        return 1.0
    return float((255.0 - np.abs(np.diff(frames, axis=0)).mean()) / 255.0)


def object_consistency(video: np.ndarray | None = None, detection: Detection | None = None) -> float:
    """How much the object stays the same object across frames, in [0, 1].

    `agree` is the fraction of frames that show an object whose colour and shape are the
    video's voted colour and shape; `steady` is 1 - the coefficient of variation of its area
    (clipped at 0). The score is their product; 0 when the video has no object.
    """
    if detection is None:
        if video is None:
            raise ValueError("`video` or `detection` must be given but both are None.")
        detection = detect(video)
    if not detection.found:
        return 0.0
    frames = detection.frames
    agree = np.mean([f.found and f.color == detection.color and f.shape == detection.shape for f in frames])
    areas = np.array([f.area for f in frames if f.found])
    steady = max(0.0, 1.0 - float(areas.std() / areas.mean()))
    return float(agree * steady)


def psnr(video: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 videos of the same shape, capped at `PSNR_CAP`."""
    a, b = np.asarray(video, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"`reference` must have the video's shape {a.shape} but has shape {b.shape}.")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return float(min(PSNR_CAP, 10.0 * np.log10(255.0**2 / mse)))
