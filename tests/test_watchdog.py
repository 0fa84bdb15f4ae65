"""The collapse watchdog: its detectors separate real tiny clips from solid, noise, static and
exploding ones; a tiny GPD job with `--watchdog 1` writes its clips and records; a job made to
collapse is flagged, and with `stop` it ends at the first flag (exit 3 from the CLI)."""

import json

import numpy as np
import pytest
import torch

import accvideo.training.methods.gpd as gpd
from accvideo.cli.main import main
from accvideo.generation import generate
from accvideo.models.registry import load_model
from accvideo.training.collapse import detect_collapse
from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
from accvideo.training.watchdog import WatchdogConfig, WatchdogStop
from accvideo.util.config import apply_overrides


@pytest.fixture(scope="module")
def real_clips():
    """Clips of the bundled models as users see them: the teacher at 50 and 2 steps, both students."""
    clips = []
    for name, steps, prompt in (("tiny-teacher", 50, "a red circle moving left"),
                                ("tiny-teacher", 2, "a cyan triangle moving up"),
                                ("tiny-accvideo", None, "a green square moving down"),
                                ("tiny-gpd", None, "a yellow triangle moving right")):
        result = generate(load_model(name), prompt, seed=3, **({"num_steps": steps} if steps else {}))
        clips.append((result.video, result.latents))
    return clips


def test_real_clips_pass(real_clips):
    for video, latents in real_clips:
        report = detect_collapse(video, latents)
        assert report.ok, report.stats


def test_clips_made_to_fail_are_flagged(real_clips):
    video, latents = real_clips[0]
    rng = np.random.default_rng(0)
    solid = np.zeros_like(video)
    solid[..., 1] = 200  # the green frames runs collapse into
    assert detect_collapse(solid).flags == ["solid"]
    noise = rng.integers(0, 256, size=video.shape, dtype=np.uint8)
    assert detect_collapse(noise).flags == ["noise"]
    static = np.repeat(video[:1], len(video), axis=0)  # a real frame that never moves
    assert detect_collapse(static).flags == ["static"]
    nan = latents.clone()
    nan[0, 0, 0, 0, 0] = float("nan")
    assert detect_collapse(video, nan).flags == ["exploding"]
    assert detect_collapse(video, latents * 1e6).flags == ["exploding"]
    with pytest.raises(ValueError, match=r"`video` must be uint8 frames \(T >= 2, H, W, 3\) but has shape"):
        detect_collapse(video[0])


FAST = ["trainer.steps=2", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=1",
        "trainer.warmup_steps=1", "trainer.lr=1e-6", "method.teacher_steps=4", "method.schedule=[2,1]"]


def test_tiny_job_writes_watchdog_clips(tmp_path):
    cfg = apply_overrides(GPDDistillConfig(), FAST + ["watchdog.every=1"])
    run_gpd("tiny-teacher", tmp_path, cfg)
    records = [json.loads(x) for x in (tmp_path / "watchdog.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in records] == [("stage-1", 1), ("stage-1", 2), ("stage-2", 1),
                                                          ("stage-2", 2)]
    assert all(r["flags"] == [] for r in records), records  # the bundled teacher, barely moved, is healthy
    assert all((tmp_path / r["clip"]).stat().st_size > 0 for r in records)
    assert json.loads((tmp_path / "watchdog.json").read_text()) == records[-1]
    assert (tmp_path / "pipeline" / "model_index.json").exists()  # watching changed nothing else


def _collapsing(monkeypatch):
    """Make every exported student non-finite: the job 'collapses' at its first clip."""
    original = gpd.GPDStage.export

    def export(self, pipe, modules):
        sampling = original(self, pipe, modules)
        with torch.no_grad():
            pipe.transformer.proj_out.weight.fill_(float("nan"))
        return sampling

    monkeypatch.setattr(gpd.GPDStage, "export", export)


def test_collapse_is_flagged_and_stop_ends_the_job(tmp_path, monkeypatch):
    _collapsing(monkeypatch)
    cfg = apply_overrides(GPDDistillConfig(), FAST + ["watchdog.every=1", "method.schedule=[2]"])
    run_gpd("tiny-teacher", tmp_path / "flag", cfg)  # without stop: flagged, and training goes on
    records = [json.loads(x) for x in (tmp_path / "flag" / "watchdog.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all("exploding" in r["flags"] for r in records)
    cfg.watchdog.stop = True
    with pytest.raises(WatchdogStop, match="watchdog flagged exploding.* at step 1"):
        run_gpd("tiny-teacher", tmp_path / "stop", cfg)
    assert len((tmp_path / "stop" / "watchdog.jsonl").read_text().splitlines()) == 1
    assert main(["distill", "gpd", "--schedule", "4,2", "--steps", "2", "--set", "trainer.batch_size=2",
                 "--out", str(tmp_path / "cli"), "--watchdog", "1", "--watchdog-stop"]) == 3


def test_watchdog_config_errors_name_the_value():
    with pytest.raises(ValueError, match=r"`watchdog.every` must be an integer >= 0 \(0: off\) but is -1"):
        WatchdogConfig(every=-1).validate()
    assert main(["distill", "gpd", "--out", "/tmp/never", "--watchdog", "-2", "--dry-run"]) == 2
