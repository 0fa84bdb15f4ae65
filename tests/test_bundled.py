"""The bundled models still load and still work: a quality floor on a handful of fixed prompts.

Fast enough for every CI run (6 videos at 50 steps). The floor sits below the measured figures
(docs/EVAL.md) so it catches a broken asset or a regression in the code path, not noise.
"""

import pytest

from accvideo.eval.procbench import benchmark_prompts, generate_videos, score_videos
from accvideo.models.registry import load_pipeline


@pytest.fixture(scope="module")
def teacher():
    return load_pipeline("tiny-teacher")


def test_bundled_teacher_defaults(teacher):
    defaults = teacher.accvideo_sampling
    assert defaults["num_steps"] == 50 and defaults["guidance_scale"] > 1
    assert (defaults["height"], defaults["width"], defaults["num_frames"]) == (32, 32, 9)


def test_bundled_teacher_quality_floor(teacher):
    pairs = benchmark_prompts("train", num_videos=6)
    videos, results = generate_videos(teacher, pairs)
    scores, table = score_videos(videos, [p for p, _ in pairs], [s for _, s in pairs])
    assert results[0].nfe == 100
    assert scores["color"] >= 5 / 6 and scores["motion"] >= 5 / 6, table.to_string()
    assert scores["total"] >= 75, scores
