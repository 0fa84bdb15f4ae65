"""The bundled models still load and still work: a quality floor on a handful of fixed prompts,
and the students faster than the teacher in the same run (a ratio, never an absolute time).

Fast enough for every CI run. The floors sit below the measured figures (docs/RESULTS.md) so
they catch a broken asset or a regression in the code path, not noise.
"""

import pytest

from accvideo.eval.bench import run_speed_bench
from accvideo.eval.procbench import benchmark_prompts, generate_videos, score_videos
from accvideo.models.registry import BUNDLED, load_model

STUDENTS = [name for name in ("tiny-accvideo", "tiny-gpd") if name in BUNDLED]


@pytest.fixture(scope="module")
def teacher():
    return load_model("tiny-teacher")


def test_bundled_teacher_defaults(teacher):
    defaults = teacher.sampling
    assert defaults["num_steps"] == 50 and defaults["guidance_scale"] > 1
    assert (defaults["height"], defaults["width"], defaults["num_frames"]) == (32, 32, 9)


def _floor(pipe, expected_nfe: int):
    pairs = benchmark_prompts("train", num_videos=6)
    videos, results = generate_videos(pipe, pairs)
    scores, table = score_videos(videos, [p for p, _ in pairs], [s for _, s in pairs])
    assert results[0].nfe == expected_nfe
    assert scores["color"] >= 5 / 6 and scores["motion"] >= 5 / 6, table.to_string()
    assert scores["total"] >= 75, scores


@pytest.mark.slow
def test_bundled_teacher_quality_floor(teacher):
    _floor(teacher, 100)


@pytest.mark.parametrize("name", STUDENTS)
def test_bundled_student_quality_floor(name):
    student = load_model(name)
    defaults = student.sampling
    assert defaults["role"] == "student" and defaults["guidance_scale"] == 1.0
    _floor(student, defaults["num_steps"])  # one call per step: guidance is distilled in


@pytest.mark.slow
def test_bundled_students_faster_than_teacher_in_one_run():
    result = run_speed_bench(["tiny-teacher", *STUDENTS], repeats=2, warmup=1)
    speedup = dict(zip(result.rows.model, result.rows.speedup))
    for name in STUDENTS:
        assert speedup[name] > 3, result.rows.to_string()  # measured ~10x; 3x leaves room for a busy CI box


@pytest.mark.slow
def test_bundled_videos_are_unchanged():
    """The bundled models give the same videos for the same prompts and seeds as recorded in
    tests/data/bundled_video_hashes.json (recorded at 3239a10, before the layout-v2 refactor).
    Retraining the bundle rewrites that file: `python scripts/bundled_video_hashes.py --write`."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bundled_video_hashes.py"
    spec = importlib.util.spec_from_file_location("bundled_video_hashes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    golden = json.loads(module.GOLDEN.read_text())
    assert module.fingerprints() == golden
