"""The GPU presets under configs/ parse into the config dataclasses and pass their checks.

A dry run needs the real weights (not here), so this checks what can be checked without
them: every key known, every value of the right type, the method and trainer validators,
and that SynVid's `--config` flag reads its preset (with command-line flags winning)."""

from pathlib import Path

import pytest

from accvideo.models.real import REAL_MODELS
from accvideo.synvid import SynVidConfig
from accvideo.training.recipes.accvideo import AccVideoDistillConfig
from accvideo.training.recipes.gpd import GPDDistillConfig
from accvideo.util.config import load_config

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "wan2.1-t2v-1.3b"


def test_every_preset_file_is_tested():
    assert sorted(p.name for p in PRESETS.glob("*.yaml")) == ["accvideo.yaml", "gpd.yaml", "synvid.yaml"]


def test_accvideo_preset():
    cfg = load_config(AccVideoDistillConfig, PRESETS / "accvideo.yaml")
    cfg.trainer.validate()
    assert cfg.trainer.parallel == "fsdp2" and cfg.trainer.mixed_precision == "bf16"
    assert cfg.method.num_key_steps == 5 and cfg.trainer.lr == 1e-5


def test_gpd_preset(monkeypatch):
    monkeypatch.chdir(PRESETS.parents[1])  # the prompt path is relative to the repository root
    cfg = load_config(GPDDistillConfig, PRESETS / "gpd.yaml")
    cfg.trainer.validate()
    cfg.method.validate()
    assert cfg.method.schedule == (24, 12, 6) and cfg.method.guidance_scale is None
    from accvideo.synvid import load_prompts

    assert len(load_prompts(cfg.method.prompts)) == 10


def test_synvid_preset(monkeypatch):
    monkeypatch.chdir(PRESETS.parents[1])
    cfg = load_config(SynVidConfig, PRESETS / "synvid.yaml")
    cfg.check()
    assert cfg.teacher in REAL_MODELS and cfg.store == "key:5" and cfg.dtype == "bfloat16"


def test_synvid_cli_reads_the_preset(monkeypatch):
    """`synvid --config` builds the preset's config; an explicit flag overrides it."""
    import accvideo.synvid as synvid
    from accvideo.cli import main

    monkeypatch.chdir(PRESETS.parents[1])
    seen = {}

    def fake_generate(cfg, out, **kwargs):
        seen["cfg"] = cfg
        raise ValueError("stop here")

    monkeypatch.setattr(synvid, "generate_synvid", fake_generate)
    assert main(["synvid", "--config", str(PRESETS / "synvid.yaml"), "--out", "x", "--shard-size", "4"]) == 2
    assert seen["cfg"].teacher == "wan2.1-t2v-1.3b" and seen["cfg"].store == "key:5"
    assert seen["cfg"].shard_size == 4  # the flag wins


def test_unknown_preset_key_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((PRESETS / "gpd.yaml").read_text().replace("lambda_freq", "lambda_frequency"))
    with pytest.raises(ValueError, match="unknown config key 'method.lambda_frequency'"):
        load_config(GPDDistillConfig, bad)
