"""Compare on real checkpoints, at toy size: a tiny random-init HunyuanVideo saved in the real
layout (`$ACCVIDEO_MODELS_DIR/hunyuanvideo`) and its AccVideo student converted from the
released format, found by the registry, listed by the app and compared at one size. Nothing
here touches the network."""

import json
import socket

import pytest

from accvideo.app import jobs
from accvideo.app.services import compare, models
from accvideo.app.services.models import RealModelOptions
from accvideo.models.real import prepare_student
from accvideo.models.registry import SAMPLING_FILE
from tests.helpers.tiny_hunyuan import save_original_student, save_tiny_hunyuan

PROMPT = "a red circle moving left"
STUDENT = "accvideo-hunyuan-5step"
SIZE = {"num_frames": 5, "height": 48, "width": 32}  # the student's; the teacher's own is 9 x 32x32


@pytest.fixture
def real_models(monkeypatch, tmp_path):
    """The models folder holding the tiny HunyuanVideo teacher and its converted 5-step student."""
    models_dir = tmp_path / "models"
    monkeypatch.setenv("ACCVIDEO_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    save_tiny_hunyuan(models_dir / "hunyuanvideo")
    save_original_student(models_dir)
    student = prepare_student(STUDENT)
    # the released student samples 93 x 544x960: at toy size here, and unlike the teacher's 9 x 32x32
    saved = json.loads((student / SAMPLING_FILE).read_text())
    (student / SAMPLING_FILE).write_text(json.dumps({**saved, **SIZE}))
    return models_dir


def test_compare_real_teacher_and_converted_student(real_models, tmp_path, monkeypatch):
    """Listed (the teacher among the teachers, the student among the students; the tiny ones too),
    then compared: the teacher, the naive teacher and the student all at the student's size, the
    real models loaded with the app's options (bf16 here), timed in REAL_REPEATS rounds."""
    manager = jobs.JobManager(tmp_path / "runs")
    students = models.available_students(manager)
    assert students[STUDENT] == STUDENT and "tiny-accvideo" in students
    teachers = models.available_teachers("tiny-teacher")
    assert list(teachers)[0] == "tiny-teacher" and teachers["hunyuanvideo"] == "hunyuanvideo"
    assert "wan2.1-t2v-1.3b" not in teachers  # not on disk: listed in the Models tab only
    assert models.is_real("hunyuanvideo") and not models.is_real("tiny-teacher")
    assert models.startup_models("hunyuanvideo")[:1] == ["hunyuanvideo"] and STUDENT in models.startup_models(
        "hunyuanvideo") and STUDENT not in models.startup_models("tiny-teacher")

    loads, specs = [], []
    load, generate = compare.load_model, compare.generate
    monkeypatch.setattr(compare, "load_model", lambda ref, **kw: loads.append((ref, kw)) or load(ref, **kw))
    monkeypatch.setattr(compare, "generate", lambda model, *a, **k: specs.append(k["spec"]) or generate(model, *a, **k))
    options = RealModelOptions(dtype="bf16")
    result = compare.compare_models(PROMPT, 0, 3, [STUDENT], naive_steps=1, teacher="hunyuanvideo",
                                    manager=manager, options=options)

    assert {(ref, kw["dtype"]) for ref, kw in loads} == {("hunyuanvideo", "bf16"), (STUDENT, "bf16")}
    assert {(s.num_frames, s.height, s.width) for s in specs} == {(5, 48, 32)}  # one size for all
    assert [s.num_steps for s in specs] == [3, 1, 5] * (1 + compare.REAL_REPEATS)
    assert result.size == SIZE and "5 frames of 48x32" in compare.size_note(result)
    assert result.table["model"].tolist() == ["hunyuanvideo (teacher)", "hunyuanvideo at 1 steps (no distillation)",
                                              STUDENT]
    assert result.table["steps"].tolist() == [3, 1, 5] and result.table["nfe"].tolist() == [3, 1, 5]
    assert "One timed run after a warm-up" in compare.speedup_note(result.table)
    assert len(result.videos) == 3 and all(path.endswith(".mp4") for _, path in result.videos)
    # the ZeroGPU slot of the same call: its calls (2 rounds, 3 + 1 teacher steps at 2 calls each under
    # CFG's bound, 5 student steps) at the student's frames and pixels, scaled by HunyuanVideo's 12.82 B
    per_call = 5 / 81 * (48 * 32) / (480 * 832) * 12.82 / 1.42
    for steps in (3, 150):
        expected = compare.GPU_BASE_SECONDS + round((1 + compare.REAL_REPEATS) * (2 * (steps + 1) + 5) * per_call)
        assert compare.gpu_duration(PROMPT, 0, steps, [STUDENT], 1, teacher="hunyuanvideo",
                                    manager=manager) == expected

def test_tiny_models_ignore_the_real_options():
    options = RealModelOptions(dtype="bf16", vae_tiling=True)
    assert options.load_kwargs("tiny-teacher") == {}
    assert options.load_kwargs("hunyuanvideo") == {"dtype": "bf16", "device": None, "offload": "none",
                                                   "vae_tiling": True}


@pytest.mark.parametrize("kwargs, match", [
    ({"device": "cuda"}, r"`--device` is 'cuda' but this machine has no CUDA GPU"),
    ({"device": "gpu0"}, r"`--device` must be 'cpu', 'cuda' or 'cuda:N' but is 'gpu0'"),
    ({"dtype": "int8"}, r"`--dtype` must be one of .* but is 'int8'"),
    ({"offload": "disk"}, r"`--offload` must be one of .* but is 'disk'"),
])
def test_real_options_name_the_flag(kwargs, match):
    import torch

    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ValueError, match=match):
        RealModelOptions(**kwargs).validate()
