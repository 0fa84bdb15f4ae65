import numpy as np
import torch
import torch.nn.functional as F

from accvideo.eval.detail import bootstrap_ci, detail_stats, hf_share, small_blobs
from accvideo.eval.detectors import to_uint8
from accvideo.eval.world_probe import format_table
from accvideo.world import WORLDS, render, sample_spec


def _blur(video: torch.Tensor) -> torch.Tensor:
    """3x3 box blur per frame of a clip (3, T, H, W)."""
    c, t, h, w = video.shape
    frames = video.permute(1, 0, 2, 3).reshape(t * c, 1, h, w)
    out = F.conv2d(F.pad(frames, (1, 1, 1, 1), mode="replicate"), torch.ones(1, 1, 3, 3) / 9)
    return out.reshape(t, c, h, w).permute(1, 0, 2, 3)


def test_real_v2_clips_show_their_distractors_and_blur_loses_detail():
    world = WORLDS["v2"]
    rng = np.random.default_rng(0)
    specs = [sample_spec(rng, world) for _ in range(12)]
    clips = [render(s, world) for s in specs]
    real = [detail_stats(to_uint8(c)) for c in clips]
    truth = np.mean([len(s.distractors) for s in specs])
    # the detector reads back the truth on real clips (anti-aliased edges of near objects aside)
    assert abs(np.mean([r["blobs_drawn"] for r in real]) - truth) < 0.1
    assert np.mean([r["blob_peak"] for r in real]) > 0.85
    blurred = [detail_stats(to_uint8(_blur(_blur(c)))) for c in clips]
    assert np.mean([b["hf_share"] for b in blurred]) < 0.5 * np.mean([r["hf_share"] for r in real])
    assert np.mean([b["blob_peak"] for b in blurred]) < np.mean([r["blob_peak"] for r in real]) - 0.1
    dimmed = [detail_stats((to_uint8(c).astype(np.float64) * 0.3).astype(np.uint8)) for c in clips]
    assert np.mean([d["blobs_drawn"] for d in dimmed]) == 0.0  # nothing 96 levels above black


def test_v1_clip_has_no_small_blobs_and_flat_video_no_high_frequency():
    clip = to_uint8(render(sample_spec(np.random.default_rng(1))))
    assert all(small_blobs(frame, 32.0) == [] for frame in clip)
    assert hf_share(np.zeros((2, 8, 8, 3), dtype=np.uint8)) == 0.0
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert hf_share(np.repeat(checker[None, :, :, None], 3, axis=-1)) > 0.99


def test_bootstrap_ci_brackets_the_mean_and_format_table_prints_rows():
    lo, hi = bootstrap_ci(np.arange(100.0))
    assert lo < 49.5 < hi and hi - lo < 25
    assert np.isnan(bootstrap_ci([float("nan")])[0])
    result = {"model": "m", "split": "train", "num_videos": 2, "guidance_scale": 2.5, "truth_distractors": 2.5,
              "rows": [{"row": "real", "hf_share": 0.05, "hf_ratio": 1.0},
                       {"row": "5 steps", "total": 80.0, "total_ci": [78.0, 82.0], "detail": 0.5,
                        "psnr": 25.0, "psnr_ci": [24.0, 26.0], "blob_peak": float("nan")}]}
    table = format_table(result)
    assert "| 5 steps | 80.00 [78.00, 82.00] | 0.500 |  |  | 25.00 [24.00, 26.00] |" in table and "| real |" in table
