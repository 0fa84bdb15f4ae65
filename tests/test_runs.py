"""Run folders know their kind and config: a command refuses to write into a run of another kind,
or into a run made with another config, before it writes anything (the refused folder is left
byte-identical)."""

from __future__ import annotations

import json

import pytest

from accvideo.cli import main
from accvideo.util.runs import RUN_FILE, claim_run

ACCVIDEO = ["trainer.steps=2", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=1",
            "trainer.warmup_steps=1", "method.num_key_steps=2", "method.adv_start=1"]
GPD = ["trainer.steps=1", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=1",
       "trainer.warmup_steps=1", "method.teacher_steps=4", "method.schedule=[2,1]"]


def _sets(items):
    return [x for item in items for x in ("--set", item)]


def snapshot(folder):
    """Every file's bytes under `folder`, by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_claim_records_then_checks_kind_and_config(tmp_path):
    out = tmp_path / "run"
    claim_run(out, "accvideo", {"method": {"num_key_steps": 5}, "trainer": {"threads": 1}})
    assert json.loads((out / RUN_FILE).read_text())["kind"] == "accvideo"
    # speed only, or training the same run longer: fine
    claim_run(out, "accvideo", {"method": {"num_key_steps": 5}, "trainer": {"threads": 2, "steps": 9}})
    with pytest.raises(ValueError, match=r"holds a accvideo run made with another config: `method.num_key_steps` "
                                         r"is 5 there but 3 now"):
        claim_run(out, "accvideo", {"method": {"num_key_steps": 3}, "trainer": {"threads": 1}})
    with pytest.raises(ValueError, match="holds a accvideo run, and this command writes a gpd run"):
        claim_run(out, "gpd", {})
    (out / RUN_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"{RUN_FILE} is unreadable or corrupt"):
        claim_run(out, "accvideo", {})
    with pytest.raises(ValueError, match="`kind` must be one of"):
        claim_run(tmp_path / "other", "vae", {})


def test_folders_from_before_run_json_are_recognised(tmp_path):
    gpd = tmp_path / "gpd"
    (gpd / "stages" / "stage-1").mkdir(parents=True)
    (gpd / "summary.json").write_text(json.dumps({"method": "gpd"}))
    with pytest.raises(ValueError, match="holds a gpd run, and this command writes a accvideo run"):
        claim_run(gpd, "accvideo", {})
    synvid = tmp_path / "synvid"
    synvid.mkdir()
    (synvid / "shard-00000.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="holds a synvid run, and this command writes a teacher run"):
        claim_run(synvid, "teacher", {})


@pytest.mark.slow
def test_distill_into_a_finished_run_of_the_other_method_changes_nothing(tiny_pipeline_dir, tmp_path, capsys):
    from accvideo.synvid import SynVidConfig, generate_synvid

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\na blue square moving up\n")
    generate_synvid(SynVidConfig(teacher=str(tiny_pipeline_dir), prompts=str(prompts), num_steps=4,
                                 samples_per_prompt=1, shard_size=2), tmp_path / "synvid", progress=False)
    teacher = ["--teacher", str(tiny_pipeline_dir)]
    acc, gpd = tmp_path / "acc", tmp_path / "gpd"
    accvideo = ["distill", "accvideo", *teacher, "--synvid", str(tmp_path / "synvid")]
    assert main([*accvideo, "--out", str(acc), *_sets(ACCVIDEO)]) == 0
    assert main(["distill", "gpd", *teacher, "--out", str(gpd), *_sets(GPD)]) == 0
    capsys.readouterr()
    before_acc, before_gpd = snapshot(acc), snapshot(gpd)

    assert main(["distill", "gpd", *teacher, "--out", str(acc), *_sets(GPD)]) == 2
    assert "holds a accvideo run, and this command writes a gpd run" in capsys.readouterr().err
    assert main([*accvideo, "--out", str(gpd), *_sets(ACCVIDEO)]) == 2
    assert "holds a gpd run, and this command writes a accvideo run" in capsys.readouterr().err
    # a changed setting on resume is refused before config.yaml is rewritten
    changed = [s if s != "method.num_key_steps=2" else "method.num_key_steps=4" for s in ACCVIDEO]
    assert main([*accvideo, "--out", str(acc), *_sets(changed)]) == 2
    assert "`method.num_key_steps` is 2 there but 4 now" in capsys.readouterr().err
    assert snapshot(acc) == before_acc and snapshot(gpd) == before_gpd


def test_synvid_shards_without_their_config_are_refused(tiny_pipeline_dir, tmp_path):
    from accvideo.synvid import SynVidConfig, generate_synvid

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\n")
    out = tmp_path / "synvid"
    out.mkdir()
    (out / "shard-00000.safetensors").write_bytes(b"\0" * 64)
    cfg = SynVidConfig(teacher=str(tiny_pipeline_dir), prompts=str(prompts), num_steps=2)
    with pytest.raises(ValueError, match="holds SynVid shards .* but no config.json"):
        generate_synvid(cfg, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["shard-00000.safetensors"]
