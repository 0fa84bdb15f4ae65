"""GPD: frequency loss, online targets, one real step, stage hand-over, resume mid-stage."""

import json

import numpy as np
import pytest
import torch

import accvideo.training.methods.gpd as gpd
import accvideo.training.recipes.gpd as gpd_recipe
import accvideo.training.trainer as trainer
from accvideo.generation import generate
from accvideo.models.registry import load_model
from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
from accvideo.util.config import apply_overrides


def test_frequency_weights_and_loss():
    w = gpd.frequency_weights((5, 8, 8), cutoff=0.5, high_weight=4.0)
    assert w.shape == (5, 8, 8) and w[0, 0, 0] == 1.0 and w.max() == 4.0
    x = torch.zeros(1, 1, 5, 8, 8)
    assert gpd.frequency_loss(x, x, 0.5, 4.0) == 0
    # the same error energy costs more at high frequency than as a constant offset
    low = torch.full_like(x, 0.1)
    checker = 0.1 * (-1.0) ** torch.arange(8).view(1, 1, 1, 1, 8) * (-1.0) ** torch.arange(8).view(1, 1, 1, 8, 1)
    high = checker * (-1.0) ** torch.arange(5).view(1, 1, 5, 1, 1)
    assert torch.allclose(low.pow(2).sum(), high.pow(2).sum())
    assert gpd.frequency_loss(high, x, 0.5, 4.0) == pytest.approx(4 * gpd.frequency_loss(low, x, 0.5, 4.0).item())
    assert gpd.high_frequency_ratio(high).item() == pytest.approx(1.0)
    assert gpd.high_frequency_ratio(low + 1).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("schedule, teacher_steps", [((24, 10), 48), ((48,), 48), ((), 48), ((12, 24), 48)])
def test_bad_schedules_are_named(schedule, teacher_steps):
    with pytest.raises(ValueError, match="method.schedule"):
        gpd.GPDConfig(teacher_steps=teacher_steps, schedule=schedule).validate()


def make_stage(pipe, stage=1, guide_steps=4, schedule=(2, 1), lambda_freq=0.5):
    cfg = gpd.GPDConfig(teacher_steps=4, schedule=schedule, lambda_freq=lambda_freq)
    text, _ = pipe.pipe.encode_prompt(["a red circle moving left", "a blue square moving up"],
                                 do_classifier_free_guidance=False, max_sequence_length=8)
    empty = pipe.pipe.encode_prompt("", do_classifier_free_guidance=False, max_sequence_length=8)[0][0]
    return gpd.GPDStage(cfg, stage, pipe.transformer, pipe.transformer, guide_steps, 3.0,
                        {"encoder_hidden_states": text.detach()}, {"encoder_hidden_states": empty[None].detach()},
                        (16, 5, 8, 8), 3.0)


def test_online_target_is_the_guides_small_steps(tiny_pipeline_dir):
    pipe = load_model(tiny_pipeline_dir)
    stage = make_stage(pipe)
    assert stage.span == 2 and len(stage.student_sigmas) == 3 and len(stage.guide_sigmas) == 5
    batch = stage.batch(np.random.default_rng(0), 2)
    batch["index"] = torch.tensor([0, 1])
    x, target = stage.online_target(batch["noise"], batch["cond"], batch["index"])
    assert torch.equal(x[0], batch["noise"][0])  # index 0: no rolling
    assert not torch.equal(x[1], batch["noise"][1])  # index 1: one student step from the noise
    # the target of sample 0 is two guided guide steps from the noise, computed by hand
    s = stage.guide_sigmas
    y = batch["noise"][:1]
    for k in range(2):
        v = stage._velocity(stage.guide, y, s[k].expand(1), {n: c[:1] for n, c in batch["cond"].items()}, 3.0)
        y = y + (s[k + 1] - s[k]) * v
    assert torch.allclose(target[:1], y, atol=1e-5)


def test_one_real_step_changes_parameters(tiny_pipeline_dir):
    stage = make_stage(load_model(tiny_pipeline_dir))
    before = {k: v.clone() for k, v in stage.student.state_dict().items()}
    guide_before = {k: v.clone() for k, v in stage.guide.state_dict().items()}
    loss, extra = stage.loss("student", stage.batch(np.random.default_rng(1), 2), stage.trainable(), step=0)
    assert torch.isfinite(loss) and {"target", "freq"} <= set(extra)
    opt = torch.optim.SGD(stage.student.parameters(), lr=0.1)
    loss.backward()
    opt.step()
    assert any(not torch.equal(before[k], v) for k, v in stage.student.state_dict().items())
    assert all(torch.equal(guide_before[k], v) for k, v in stage.guide.state_dict().items())


FAST = ["trainer.steps=2", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=1",
        "trainer.warmup_steps=1", "trainer.lr=1e-3", "method.teacher_steps=4", "method.schedule=[2,1]"]


def test_stage_handover_and_final_pipeline(tiny_pipeline_dir, tmp_path, monkeypatch):
    inits = {}
    original = gpd.GPDStage

    class Recording(original):
        def __init__(self, cfg, stage, student_init, *args, **kwargs):
            inits[stage] = {k: v.clone() for k, v in student_init.state_dict().items()}
            super().__init__(cfg, stage, student_init, *args, **kwargs)

    monkeypatch.setattr(gpd_recipe, "GPDStage", Recording)
    cfg = apply_overrides(GPDDistillConfig(), FAST)
    summary = run_gpd(str(tiny_pipeline_dir), tmp_path, cfg)
    assert [s["student_steps"] for s in summary["stage_runs"]] == [2, 1]
    stage1 = load_model(tmp_path / "stages" / "stage-1" / "pipeline").transformer.state_dict()
    assert all(torch.equal(inits[2][k], stage1[k]) for k in stage1)  # stage 2 starts from stage 1
    teacher = load_model(tiny_pipeline_dir).transformer.state_dict()
    assert all(torch.equal(inits[1][k], teacher[k]) for k in teacher)  # stage 1 starts from the teacher
    sampling = json.loads((tmp_path / "pipeline" / "accvideo_sampling.json").read_text())
    assert sampling["num_steps"] == 1 and sampling["method"] == "gpd" and len(sampling["sigmas"]) == 2
    result = generate(load_model(tmp_path / "pipeline"), "a red circle moving left", seed=0)
    assert result.nfe == 1


def test_resume_in_the_middle_of_a_stage(tiny_pipeline_dir, tmp_path, monkeypatch):
    cfg = apply_overrides(GPDDistillConfig(), FAST + ["trainer.steps=3"])
    original = trainer._step_rng

    def crash(seed, step, micro, rank, stream=None):
        if seed == cfg.trainer.seed + 2 and step == 2:  # stage 2, third step
            raise KeyboardInterrupt("simulated kill")
        return original(seed, step, micro, rank, stream)

    monkeypatch.setattr(trainer, "_step_rng", crash)
    with pytest.raises(KeyboardInterrupt):
        run_gpd(str(tiny_pipeline_dir), tmp_path, cfg)
    assert (tmp_path / "stages" / "stage-1" / "pipeline" / "model_index.json").exists()
    assert not (tmp_path / "pipeline").exists()
    monkeypatch.setattr(trainer, "_step_rng", original)
    summary = run_gpd(str(tiny_pipeline_dir), tmp_path, cfg)
    runs = summary["stage_runs"]
    assert runs[0].get("loaded") is True  # stage 1 is not trained again
    assert runs[1]["resumed_from"] == 2 and runs[1]["steps"] == 3
    log = [json.loads(x) for x in (tmp_path / "stages" / "stage-2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]  # continuous, nothing logged twice


@pytest.mark.slow  # a subprocess and two tiny runs: about 15 s
def test_killed_while_saving_resumes_to_the_same_bytes(tiny_pipeline_dir, tmp_path, one_thread):
    """kill -9 inside a checkpoint save of stage 2 (its temp file complete, not yet renamed): the
    resume cleans the temp file, continues from the checkpoint before, and ends byte-identical."""
    from pathlib import Path

    from tests.helpers.killed_run import killed

    overrides = FAST + ["trainer.steps=3"]
    cfg = apply_overrides(GPDDistillConfig(), overrides)
    run_gpd(str(tiny_pipeline_dir), tmp_path / "straight", cfg)
    # saves 1-3 are stage 1's; the 5th is stage 2's after its second step
    done = killed({"kind": "gpd", "out": str(tmp_path / "killed"), "teacher": str(tiny_pipeline_dir),
                   "overrides": overrides, "kill": {"when": "saving", "step": 5}}, Path(__file__).parents[1])
    assert done.returncode == -9, done.stderr[-2000:]
    checkpoints = tmp_path / "killed" / "stages" / "stage-2" / "checkpoints"
    assert len(list(checkpoints.glob(".last.pt.*.tmp"))) == 1  # what the kill left
    summary = run_gpd(str(tiny_pipeline_dir), tmp_path / "killed", cfg)
    assert summary["stage_runs"][0].get("loaded") is True and summary["stage_runs"][1]["resumed_from"] == 1
    assert not list(checkpoints.glob(".*.tmp"))
    weights = "pipeline/transformer/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "killed" / weights).read_bytes() == (tmp_path / "straight" / weights).read_bytes()


@pytest.mark.slow
def test_gpd_ablation_rows_and_high_frequency_ratio(tiny_pipeline_dir, tmp_path):
    from accvideo.experiments.ablation import run_gpd_ablation

    table = run_gpd_ablation(str(tiny_pipeline_dir), tmp_path, schedule=(4, 2, 1), stage_steps=(1, 1),
                             num_videos=2, overrides=["trainer.batch_size=2", "trainer.log_every=1"])
    assert list(table.row) == ["teacher@4", "teacher@1", "GPD: progressive + frequency loss",
                               "GPD without the frequency loss", "GPD one jump 4 -> 1",
                               "GPD paper variant (secondary source)"]
    assert table.hf_vs_teacher.iloc[0] == 1.0 and table.hf_energy.between(0, 1).all()
    # every other row against the full student, paired on the same videos; blank for the full row
    paired = table.set_index("row")["minus_full_paired"].fillna("")
    assert paired["GPD: progressive + frequency loss"] == ""
    for row in ("teacher@4", "GPD one jump 4 -> 1"):
        point = float(paired[row].split(" [")[0])
        full = table.set_index("row").total
        assert point == pytest.approx(full[row] - full["GPD: progressive + frequency loss"], abs=0.011)
    one_jump = json.loads((tmp_path / "one-jump" / "pipeline" / "accvideo_sampling.json").read_text())
    assert one_jump["num_steps"] == 1 and one_jump["schedule"] == [1]
    import yaml

    no_freq = yaml.safe_load((tmp_path / "no-freq" / "stages" / "stage-1" / "config.yaml").read_text())
    assert no_freq["method"]["lambda_freq"] == 0
    paper = json.loads((tmp_path / "paper" / "pipeline" / "accvideo_sampling.json").read_text())
    assert paper["variant"] == "paper" and paper["schedule"] == [2, 2, 1]
    assert (tmp_path / "gpd_ablation.md").read_text().count("\n") == 8


def test_paper_variant_grids_guidance_and_frequency_stage():
    cfg = gpd.GPDConfig(teacher_steps=48, schedule=(6,), variant="paper", guidance_end=1.0)
    cfg.validate()
    assert cfg.stage_counts() == (24, 16, 12, 10, 8, 7, 6)  # the horizon grows by one teacher step per stage
    assert [cfg.horizon(k) for k in (1, 7)] == [2, 8]
    assert cfg.teacher_guidance(1, 2.5) == 2.5 and cfg.teacher_guidance(7, 2.5) == pytest.approx(1.0)
    assert cfg.teacher_guidance(4, 2.5) == pytest.approx(1.75)
    with pytest.raises(ValueError, match=r"`method.stage_steps` must give one count per stage of the paper variant"):
        gpd.GPDConfig(teacher_steps=48, schedule=(6,), variant="paper", stage_steps=(1, 1)).validate()
    with pytest.raises(ValueError, match=r"`method.variant` must be 'ours' or 'paper' but is 'papr'"):
        gpd.GPDConfig(variant="papr").validate()


def test_paper_target_is_guide_jump_then_one_teacher_step(tiny_pipeline_dir):
    pipe = load_model(tiny_pipeline_dir)
    cfg = gpd.GPDConfig(teacher_steps=5, schedule=(2,), variant="paper", lambda_freq=0.5)
    assert cfg.stage_counts() == (3, 2)
    text, _ = pipe.pipe.encode_prompt(["a red circle moving left"], do_classifier_free_guidance=False,
                                      max_sequence_length=8)
    empty = pipe.pipe.encode_prompt("", do_classifier_free_guidance=False, max_sequence_length=8)[0][0]
    cond, uncond = {"encoder_hidden_states": text.detach()}, {"encoder_hidden_states": empty[None].detach()}
    stage = gpd.GPDStage(cfg, 2, pipe.transformer, pipe.transformer, 3, 1.0, cond, uncond, (16, 5, 8, 8), 3.0,
                         teacher=pipe.transformer, teacher_guidance=2.0)
    assert stage.student_index.tolist() == [0, 3, 5] and stage.use_freq  # last jump shorter; freq in the last stage
    noise = torch.randn(1, 16, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    _, target = stage.online_target(noise, cond, torch.tensor([1]))
    s = stage.fine_sigmas
    x = noise + (s[3] - s[0]) * stage._velocity(stage.student, noise, s[0].expand(1), cond)  # the student's roll-out
    y = x + (s[4] - s[3]) * stage._velocity(stage.guide, x, s[3].expand(1), cond, 1.0)  # guide: 1 of the 2 steps
    y = y + (s[5] - s[4]) * stage._velocity(stage.teacher, y, s[4].expand(1), cond, 2.0)  # teacher: the last one
    assert torch.allclose(target, y, atol=1e-5)
    first = gpd.GPDStage(cfg, 1, pipe.transformer, pipe.transformer, 5, 1.0, cond, uncond, (16, 5, 8, 8), 3.0,
                         teacher=pipe.transformer, teacher_guidance=2.0)
    assert not first.use_freq


def test_paper_variant_trains_end_to_end(tiny_pipeline_dir, tmp_path):
    cfg = apply_overrides(GPDDistillConfig(), FAST[:-2] + ["method.teacher_steps=6", "method.schedule=[2]",
                                                           "method.variant=paper"])
    summary = run_gpd(str(tiny_pipeline_dir), tmp_path, cfg)
    assert [s["student_steps"] for s in summary["stage_runs"]] == [3, 2]
    assert [s["horizon"] for s in summary["stages"]] == [2, 3]
    sampling = json.loads((tmp_path / "pipeline" / "accvideo_sampling.json").read_text())
    assert sampling["num_steps"] == 2 and sampling["variant"] == "paper" and len(sampling["sigmas"]) == 3
    assert generate(load_model(tmp_path / "pipeline"), "a red circle moving left", seed=0).nfe == 2
