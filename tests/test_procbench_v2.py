"""ProcBench v2: each new dimension separates real v2 clips from clips degraded on purpose
(blurred: detail; slowed: motion fidelity; collapsed onto one clip per direction: diversity),
and every score carries a bootstrap 95% interval."""

import numpy as np
import pytest

from accvideo.eval import benchmark_prompts, score_videos, to_uint8, total_score
from accvideo.eval.detail import binomial_blur
from accvideo.eval.dimensions import WEIGHTS_V1, WEIGHTS_V2
from accvideo.world import WORLDS, parse_prompt, render, sample_spec

NUM_VIDEOS = 24
V2 = WORLDS["v2"]


@pytest.fixture(scope="module")
def clips():
    """Real v2 clips of the first benchmark prompts (a stream apart from the scorer's references)."""
    pairs = benchmark_prompts("train", NUM_VIDEOS)
    videos = [to_uint8(render(sample_spec(np.random.default_rng([77, seed]), V2, combo=parse_prompt(p)), V2))
              for p, seed in pairs]
    return videos, [p for p, _ in pairs], [s for _, s in pairs]


@pytest.fixture(scope="module")
def real_scores(clips):
    return score_videos(*clips, world=V2, num_resamples=200)


def _scores(videos, clips):
    return score_videos(videos, clips[1], clips[2], world=V2, num_resamples=0)[0]


def test_real_clips_score_high_on_every_dimension_with_intervals(real_scores):
    scores, table = real_scores
    for name in ("semantic", "temporal", "fidelity", "detail", "motion_fidelity", "diversity"):
        assert scores[name] >= 0.8, (name, scores[name])
        lo, hi = scores[f"{name}_ci"]
        assert lo <= scores[name] <= hi, name
    lo, hi = scores["total_ci"]
    assert scores["total"] >= 90 and lo <= scores["total"] <= hi and hi - lo > 0.1
    assert scores["total"] == pytest.approx(total_score(scores, has_distractors=True))
    assert {"blobs", "peak", "speed", "x", "y", "area", "dynamic"} <= set(table.columns)


def test_blur_lowers_detail(clips, real_scores):
    blurred = [np.round(binomial_blur(v, passes=4)).astype(np.uint8) for v in clips[0]]
    scores = _scores(blurred, clips)
    assert scores["detail"] < real_scores[0]["detail_ci"][0]
    assert scores["blob_contrast"] < 0.9 * real_scores[0]["blob_contrast"]


def test_slowed_motion_lowers_motion_fidelity(clips, real_scores):
    slowed = [v[np.arange(len(v)) // 2] for v in clips[0]]  # every frame twice: half the speed
    scores = _scores(slowed, clips)
    assert scores["speed_ratio"] == pytest.approx(0.5 * real_scores[0]["speed_ratio"], rel=0.15)
    assert scores["motion_fidelity"] < 0.6 < real_scores[0]["motion_fidelity_ci"][0]
    frozen = _scores([np.repeat(v[:1], len(v), axis=0) for v in clips[0]], clips)
    assert frozen["motion_fidelity"] == pytest.approx(0.0, abs=1e-6) and frozen["dynamic"] == 0.0


def test_collapse_lowers_diversity(clips, real_scores):
    first = {}
    direction = [parse_prompt(p)[2] for p in clips[1]]
    collapsed = [first.setdefault(d, v) for d, v in zip(direction, clips[0])]  # one clip per direction
    scores = _scores(collapsed, clips)
    assert scores["diversity"] < 0.05 < real_scores[0]["diversity_ci"][0]
    assert scores["total"] < real_scores[0]["total_ci"][0] - 10


def test_reference_gives_motion_ratio(clips):
    videos = clips[0][:6]
    slowed = [v[np.arange(len(v)) // 2] for v in videos]
    scores, _ = score_videos(slowed, clips[1][:6], clips[2][:6], reference_videos=videos, world=V2, num_resamples=0)
    assert 0.35 < scores["motion_ratio"] < 0.65
    assert score_videos(videos, clips[1][:6], clips[2][:6], reference_videos=videos, world=V2,
                        num_resamples=0)[0]["motion_ratio"] == 1.0


def test_v1_world_keeps_the_v1_total(clips):
    v1 = WORLDS["v1"]
    videos = [to_uint8(render(sample_spec(np.random.default_rng([5, s]), v1, combo=parse_prompt(p)), v1))
              for p, s in zip(clips[1][:8], clips[2][:8])]
    scores, _ = score_videos(videos, clips[1][:8], clips[2][:8], num_resamples=0)
    assert "detail" not in scores
    v1_total = 100 * (0.5 * scores["semantic"] + 0.25 * scores["temporal"] + 0.25 * scores["fidelity"])
    assert scores["total"] == pytest.approx(v1_total)
    assert sum(WEIGHTS_V1.values()) == pytest.approx(1.0) and sum(WEIGHTS_V2.values()) == pytest.approx(1.0)


def test_paired_difference_separates_what_overlapping_intervals_cannot(clips):
    """Real clips against the same clips blurred twice: the two totals' own intervals overlap at 24
    videos, but video i is paired with video i, so the interval of the difference excludes 0."""
    from accvideo.eval.dimensions import paired_difference, with_cis
    from accvideo.eval.procbench import read_videos

    real, _ = read_videos(*clips, world=V2)
    blurred = [np.round(binomial_blur(v, passes=2)).astype(np.uint8) for v in clips[0]]
    soft, _ = read_videos(blurred, clips[1], clips[2], world=V2)
    a, b = with_cis(real, 200), with_cis(soft, 200)
    assert a["total_ci"][0] < b["total_ci"][1]  # the separate intervals overlap
    diff = paired_difference(real, soft, 200)
    assert diff["total"] == pytest.approx(a["total"] - b["total"])
    assert 0 < diff["total_ci"][0] < diff["total"] < diff["total_ci"][1]
    same = paired_difference(real, real, 50)
    assert same["total"] == 0 and same["total_ci"] == [0, 0]
    other_seeds, _ = read_videos(clips[0], clips[1], [s + 1000 for s in clips[2]], world=V2)
    with pytest.raises(ValueError, match="same prompts and seeds"):
        paired_difference(real, other_seeds, 50)
    with pytest.raises(ValueError, match="same 24 videos"):
        paired_difference(real, read_videos(clips[0][:5], clips[1][:5], clips[2][:5], world=V2)[0])


def test_saved_reads_pair_up_as_the_originals_do(clips, tmp_path):
    """`Scorer` keeps each row's reads on disk so the report pairs rows without generating videos
    again: the reads loaded back give the same scores and paired difference, and a file that is
    not reads is an error naming it."""
    from accvideo.eval.dimensions import load_reads, paired_difference, save_reads, with_cis
    from accvideo.eval.procbench import read_videos

    real, _ = read_videos(*clips, world=V2)
    blurred = [np.round(binomial_blur(v, passes=2)).astype(np.uint8) for v in clips[0]]
    soft, _ = read_videos(blurred, clips[1], clips[2], reference_videos=clips[0], world=V2)
    save_reads(real, tmp_path / "real.npz")
    save_reads(soft, tmp_path / "soft.npz")
    real2, soft2 = load_reads(tmp_path / "real.npz"), load_reads(tmp_path / "soft.npz")
    assert soft2.psnr is not None and real2.psnr is None and soft2.has_distractors
    assert with_cis(soft2, 50) == with_cis(soft, 50)
    assert paired_difference(real2, soft2, 50) == paired_difference(real, soft, 50)
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="bad.npz.*must be ProcBench reads"):
        load_reads(tmp_path / "bad.npz")
