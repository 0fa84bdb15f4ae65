"""The memory plan before launch: `distill`, `synvid` and the app's launcher refuse a run whose plan
does not fit the GPU before any weights load, naming the setting to change; a run that fits goes
on; a CPU run without `--gpu-mem` is not checked; `--no-plan-check` skips it with a warning.

The real Wan2.1-1.3B presets are planned from the registry's architecture, so no weights are
needed: the models folder is empty, and a run that passes the check stops at loading its teacher
("is not on this machine"), which is how the tests see that the check let it through."""

import logging
from pathlib import Path

import pytest

from accvideo.app import jobs
from accvideo.app.jobs.plans import check_job_plan, plan_overrides
from accvideo.cli.main import main
from accvideo.training.preflight import PlanRefusal, budget, check_plan

ROOT = Path(__file__).resolve().parents[1]
GPD = ["distill", "gpd", "--teacher", "wan2.1-t2v-1.3b", "--config", "configs/wan2.1-t2v-1.3b/gpd.yaml"]
NO_CHECKPOINTING = ["--set", "trainer.gradient_checkpointing=false"]  # ~148 GB of activations per GPU
NOT_HERE = "is not on this machine"


@pytest.fixture(autouse=True)
def _repo_and_empty_models(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # the presets name their prompt files relative to the repository
    monkeypatch.setenv("ACCVIDEO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("WORLD_SIZE", raising=False)


def run(argv, tmp_path, capsys) -> tuple[int, str]:
    code = main([*argv, "--out", str(tmp_path / "out")])
    return code, capsys.readouterr().err


def test_distill_that_does_not_fit_is_refused_naming_the_setting(tmp_path, capsys):
    code, err = run([*GPD, *NO_CHECKPOINTING, "--gpu-mem", "80"], tmp_path, capsys)
    assert code == 2 and "error: the gpd run does not fit" in err, err
    assert "`--gpu-mem` is 80 GB" in err and "Change `--set trainer.gradient_checkpointing=true`" in err
    assert "--no-plan-check" in err
    assert NOT_HERE not in err and not (tmp_path / "out").exists()  # refused before the teacher loads


def test_distill_that_fits_passes_the_check(tmp_path, capsys):
    code, err = run([*GPD, "--gpu-mem", "80"], tmp_path, capsys)
    assert code == 2 and NOT_HERE in err and "does not fit" not in err  # went on to load the teacher


def test_cpu_run_without_budget_is_not_checked(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on CUDA the GPU's memory is the budget")
    code, err = run([*GPD, *NO_CHECKPOINTING], tmp_path, capsys)
    assert code == 2 and NOT_HERE in err and "does not fit" not in err


def test_no_plan_check_skips_with_a_warning(tmp_path, capsys, caplog):
    with caplog.at_level(logging.WARNING, logger="accvideo.training.preflight"):
        code, err = run([*GPD, *NO_CHECKPOINTING, "--gpu-mem", "80", "--no-plan-check"], tmp_path, capsys)
    assert code == 2 and NOT_HERE in err and "does not fit" not in err
    assert any("memory plan is skipped" in r.getMessage() for r in caplog.records)


def test_synvid_that_does_not_fit_is_refused_naming_the_flag(tmp_path, capsys):
    code, err = run(["synvid", "--config", "configs/wan2.1-t2v-1.3b/synvid.yaml", "--gpu-mem", "24"], tmp_path,
                    capsys)
    assert code == 2 and "error: the synvid run does not fit" in err, err
    assert "Change `--compute-dtype bf16`" in err and NOT_HERE not in err


def test_torchrun_world_size_shares_the_plan(tmp_path, capsys, monkeypatch):
    """Under FSDP2 eight ranks share the weights: the AccVideo preset fits 8 x 40 GB, not 1 x 40 GB."""
    from accvideo.training.plan import arch_of
    from accvideo.training.recipes.accvideo import AccVideoDistillConfig
    from accvideo.util.config import load_config

    cfg = load_config(AccVideoDistillConfig, "configs/wan2.1-t2v-1.3b/accvideo.yaml")
    assert check_plan("accvideo", "wan2.1-t2v-1.3b", cfg, 8, 40)["fits"]
    with pytest.raises(PlanRefusal, match=r"on 1 GPU\(s\), but `--gpu-mem` is 40 GB"):
        check_plan("accvideo", "wan2.1-t2v-1.3b", cfg, 1, 40)
    assert arch_of("wan2.1-t2v-1.3b").frames == 81


@pytest.mark.parametrize("value", [0, -1.0, "80", True])
def test_budget_is_validated(value):
    with pytest.raises(ValueError, match=r"`--gpu-mem` must be a number of GB > 0 but is"):
        budget("tiny-teacher", value)


def test_launcher_refuses_a_job_that_does_not_fit(tmp_path, monkeypatch):
    """The app's launcher: the tiny GPD job against a budget just under its plan is refused, naming
    the setting, before its folder is made; with room, or with the plan skipped, it starts."""
    runs = tmp_path / "runs"
    spec = jobs.make_spec("gpd", name="g1", schedule="8,4,2", steps=3, batch_size=2)
    spec.validate(runs)
    needed = check_job_plan(spec, runs, 100.0)["needed_gb"]
    started = []
    monkeypatch.setattr(jobs.JobManager, "_start", lambda self, state, run_dir: started.append(state.name))
    tight = jobs.JobManager(runs, gpu_mem=round(needed - 0.01, 3))
    with pytest.raises(ValueError, match=r"the gpd run does not fit: .* but `--gpu-mem` is .* GB\. Change "
                                         r"`--set trainer.gradient_checkpointing=true`"):
        tight.launch(jobs.make_spec("gpd", name="g1", schedule="8,4,2", steps=3, batch_size=2))
    assert not (runs / "g1").exists() and started == []
    jobs.JobManager(runs, gpu_mem=needed + 1).launch(jobs.make_spec("gpd", name="g2", schedule="8,4,2", steps=3))
    jobs.JobManager(runs, gpu_mem=0.5, plan_check=False).launch(jobs.make_spec("gpd", name="g3", schedule="8,4"))
    assert started == ["g2", "g3"]
    with pytest.raises(ValueError, match=r"`gpu_mem` must be a number of GB > 0 but is -2"):
        jobs.JobManager(runs, gpu_mem=-2)


def test_job_overrides_are_the_commands():
    argv = ["distill", "gpd", "--schedule", "48,24,12", "--steps", "5", "--set", "trainer.batch_size=2"]
    assert plan_overrides(argv) == ["method.teacher_steps=48", "method.schedule=[24,12]", "trainer.steps=5",
                                    "trainer.batch_size=2"]
