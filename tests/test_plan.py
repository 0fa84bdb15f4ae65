"""The memory plan (`python -m accvideo plan`): the Wan2.1-1.3B presets fit 8 x 80 GB, AccVideo at
24 GB does not and the plan names what to change, and the estimate agrees with the measured
peak of a small CPU training run (the calibration is measured there too)."""

import copy
import json

import pytest
import torch

from accvideo.cli.main import main
from accvideo.training.calibrate import LiveBytes
from accvideo.training.plan import arch_of, estimate, plan_config

PRESETS = "configs/wan2.1-t2v-1.3b"


def test_live_bytes_counts_new_storages_not_views_of_old_ones():
    weight = torch.ones(256, 256)
    with LiveBytes() as live:
        view = weight.t()  # a view of a storage made before: no new memory
        assert live.current == 0
        x = torch.ones(1024, 256)  # 1 MiB
        y = x * 2
        del y
    assert live.peak == 2 * 1024 * 256 * 4 and live.current == 1024 * 256 * 4 and view.shape == (256, 256)


@pytest.mark.parametrize("name", ["synvid", "accvideo", "gpd"])
def test_the_presets_fit_8_gpus_of_80_gb(name, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    result = plan_config(f"{PRESETS}/{name}.yaml", 8, 80)
    assert result["fits"] and result["change"] is None and result["teacher"] == "wan2.1-t2v-1.3b"
    assert result["tokens"] == 21 * 30 * 52  # 81 x 480x832
    parts = result["parts_gb"]
    if name != "synvid":
        assert {"weights", "gradients", "optimizer", "teacher", "activations_with_checkpointing",
                "activations_without_checkpointing"} <= set(parts)
        assert parts["activations_with_checkpointing"] < parts["activations_without_checkpointing"] / 4
        assert parts["teacher"] == pytest.approx(1.42 * 4, rel=0.02)  # the fp32 teacher, 1.42 B parameters
    assert result["needed_gb"] == pytest.approx(result["peak_gb"] * 1.1 + 1.5, abs=0.01)


def test_accvideo_at_24_gb_does_not_fit_and_names_the_setting(monkeypatch, capsys):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    code = main(["plan", f"{PRESETS}/accvideo.yaml", "--gpus", "8", "--gpu-mem", "24", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 3 and result["fits"] is False and result["parts_gb"]["discriminator"] > 0
    assert result["change"]["settings"] and result["change"]["peak_gb"] < result["peak_gb"]
    # without checkpointing the first thing named is checkpointing
    bare = plan_config(f"{PRESETS}/accvideo.yaml", 8, 80, overrides=["trainer.gradient_checkpointing=false"])
    assert not bare["fits"] and bare["change"]["settings"][0] == "trainer.gradient_checkpointing=true"
    assert main(["plan", f"{PRESETS}/gpd.yaml", "--gpus", "8", "--gpu-mem", "80"]) == 0
    assert "fits" in capsys.readouterr().out


def test_bad_plan_arguments_are_named(monkeypatch, tmp_path):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with pytest.raises(ValueError, match="`--gpus` must be >= 1 but is 0"):
        plan_config(f"{PRESETS}/gpd.yaml", 0, 80)
    with pytest.raises(ValueError, match="`CONFIG` must be a YAML file but 'nope.yaml' is not one"):
        plan_config("nope.yaml", 8, 80)
    (tmp_path / "gpd.yaml").write_text("method:\n  teacher_steps: 48\n")
    with pytest.raises(ValueError, match="`--teacher` is required"):
        plan_config(str(tmp_path / "gpd.yaml"), 8, 80)


@pytest.mark.slow  # measures the tiny architecture (about 30 s) and one training run
def test_estimate_matches_the_measured_peak_of_a_small_cpu_run(tiny_pipeline_dir, tmp_path, monkeypatch):
    """Everything a one-process AccVideo run holds (teacher, student, heads, gradients, AdamW
    moments, activations of both phases), counted by `LiveBytes`, against the plan."""
    from accvideo.models.registry import load_model
    from accvideo.training.methods.accvideo import AccVideoConfig, AccVideoMethod
    from accvideo.training.recipes.accvideo import AccVideoDistillConfig
    from accvideo.training.trainer import TrainerConfig, run_training

    monkeypatch.setenv("ACCVIDEO_CACHE", str(tmp_path / "cache"))  # measure here, not the shipped table
    frames, height, width, m = 9, 64, 128, 2
    arch = arch_of(str(tiny_pipeline_dir))
    g = torch.Generator().manual_seed(0)
    data = {"latents": torch.randn(3, m + 1, 16, 5, 16, 32, generator=g),
            "cond": {"encoder_hidden_states": torch.randn(3, 8, 32, generator=g)},
            "sigmas": torch.linspace(1, 0, 5), "num_steps": 4}
    cfg = AccVideoDistillConfig(trainer=TrainerConfig(steps=2, batch_size=2, log_every=1, checkpoint_every=10,
                                                      warmup_steps=1, lr=1e-3),
                                method=AccVideoConfig(num_key_steps=m, adv_start=0, lambda_adv=0.5))
    planned = estimate("accvideo", arch, cfg, 1, frames=frames, height=height, width=width)
    assert planned["tokens"] == 5 * 8 * 16
    teacher = load_model(tiny_pipeline_dir).transformer
    with LiveBytes() as live:
        method = AccVideoMethod(cfg.method, copy.deepcopy(teacher), data)
        run_training(method, cfg.trainer, cfg, tmp_path / "run")
    measured = live.peak / 1e9
    # the issue asks for 30 %; measured here: 1.5 %. 10 % still catches a missing part (leaving out
    # the teacher's activations is 17 % low)
    assert planned["peak_gb"] == pytest.approx(measured, rel=0.10), (planned, measured)
