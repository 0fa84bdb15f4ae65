"""A fixed, hand-crafted feature map of procedural videos and the Frechet distance between sets.

This is "FVD-like on our features", not FVD: FVD embeds clips with an I3D network we cannot
download, and an I3D trained on human action would see little in 32 x 32 clips anyway. Our
features read what this world is made of (see `FEATURE_NAMES`): background and object
levels, object size, shape statistics, motion speed and straightness, colour (chroma
direction and saturation), edge sharpness, and frame-to-frame change. Every feature is on a
roughly unit scale and deterministic; nothing is learned.

The distance standardises both sets by the real set's mean and standard deviation (with a
floor, since some features are constant on real clips), so it is unitless:
`FD = |mu_g - mu_r|^2 + Tr(S_g + S_r - 2 (S_r^1/2 S_g S_r^1/2)^1/2)`.
"""

from __future__ import annotations

import numpy as np

from accvideo.eval.detectors import Detection, detect

FEATURE_NAMES = (
    "background",  # median brightness / 255
    "contrast",  # object brightness above background / 255
    "found_fraction",  # fraction of frames with an object
    "area",  # object area / frame area, mean over frames (x 10: real clips ~0.3-1.1)
    "area_variation",  # coefficient of variation of the area over frames
    "fill",  # soft bounding-box fill, mean over frames
    "asymmetry",  # bottom-vs-top width asymmetry, mean over frames
    "speed",  # centroid speed / 4 px per frame
    "wobble",  # RMS distance of centroids from their fitted line / 4 px
    "chroma_r",  # unit chroma direction of the object colour (RGB minus grey)
    "chroma_g",
    "chroma_b",
    "saturation",  # chroma magnitude / brightest channel of the object colour
    "sharpness",  # mean gradient magnitude inside the object's box / contrast
    "change",  # mean |frame_i - frame_{i+1}| / 255 (x 10)
)
STD_FLOOR = 0.05  # standardisation floor: features constant on real clips must not blow up


def video_features(video: np.ndarray, detection: Detection | None = None) -> np.ndarray:
    """Feature vector (len(FEATURE_NAMES),) of a uint8 video (T, H, W, 3)."""
    video = np.asarray(video)
    detection = detection if detection is not None else detect(video)
    frames = video.astype(np.float64)
    num_frames, height, width = frames.shape[:3]
    found = [f for f in detection.frames if f.found]
    brightness = frames.max(axis=-1)
    feats = dict.fromkeys(FEATURE_NAMES, 0.0)
    feats["background"] = float(np.median(brightness)) / 255.0
    feats["change"] = 10.0 * float(np.abs(np.diff(frames, axis=0)).mean()) / 255.0 if num_frames > 1 else 0.0
    feats["found_fraction"] = len(found) / max(num_frames, 1)
    if found:
        areas = np.array([f.area for f in found])
        feats["contrast"] = float(np.mean([f.contrast for f in found])) / 255.0
        feats["area"] = 10.0 * float(areas.mean()) / (height * width)
        feats["area_variation"] = float(areas.std() / areas.mean())
        feats["fill"] = float(np.mean([f.fill for f in found]))
        feats["asymmetry"] = float(np.mean([f.asymmetry for f in found]))
        rgb = np.mean([f.rgb for f in found], axis=0)
        chroma = rgb - rgb.mean()
        norm = float(np.linalg.norm(chroma))
        if norm > 1e-6:
            feats["chroma_r"], feats["chroma_g"], feats["chroma_b"] = (chroma / norm).tolist()
        feats["saturation"] = norm / max(float(rgb.max()), 1.0)
        sharp = []
        for t, f in enumerate(detection.frames):
            if f.found:
                gy, gx = np.gradient(brightness[t])
                sharp.append(float(np.hypot(gx, gy)[f.mask].mean()) / max(f.contrast, 1.0))
        feats["sharpness"] = float(np.mean(sharp))
    if detection.found:
        feats["speed"] = float(np.hypot(*detection.velocity)) / 4.0
        t = np.array([i for i, f in enumerate(detection.frames) if f.found], dtype=np.float64)
        xy = np.array([f.centroid for f in detection.frames if f.found])
        fit = _line_fit(t, xy)
        feats["wobble"] = float(np.sqrt(((xy - fit) ** 2).sum(axis=1).mean())) / 4.0
    return np.array([feats[name] for name in FEATURE_NAMES], dtype=np.float64)


def _line_fit(t: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Least-squares line through points xy (n, 2) at times t (n,); returns fitted (n, 2)."""
    slope, intercept = np.polyfit(t, xy, 1)
    return intercept[None, :] + t[:, None] * slope[None, :]


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features: np.ndarray, real_features: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n, d) and (m, d).

    Both sets are first standardised by the real set's mean and std (floored at `STD_FLOOR`).
    `Tr((S_g S_r)^1/2)` is computed as `Tr((S_r^1/2 S_g S_r^1/2)^1/2)`, a symmetric PSD
    matrix, so only eigen-decompositions are needed (no scipy).
    """
    x, y = np.asarray(features, dtype=np.float64), np.asarray(real_features, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"`features` and `real_features` must be (n >= 2, d) arrays with the same d "
                         f"but have shapes {x.shape} and {y.shape}.")
    center, scale = y.mean(axis=0), np.maximum(y.std(axis=0), STD_FLOOR)
    x, y = (x - center) / scale, (y - center) / scale
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cov_x, cov_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root_y = _sqrt_psd(cov_y)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_y @ cov_x @ root_y), 0.0, None)).sum()
    distance = float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y) - 2.0 * cross)
    return max(distance, 0.0)
