import pytest

from accvideo.training.recipes.teacher import TeacherTrainConfig
from accvideo.util.config import apply_overrides, load_config


def test_overrides_are_typed():
    cfg = apply_overrides(TeacherTrainConfig(), ["transformer.lr=1e-3", "vae.steps=7", "seed=3"])
    assert cfg.transformer.lr == 1e-3 and isinstance(cfg.transformer.lr, float)
    assert cfg.vae.steps == 7 and cfg.seed == 3


@pytest.mark.parametrize("override, match", [
    ("transformer.lrr=1", "unknown config key 'transformer.lrr'"),
    ("trainer.lr=1", "unknown config section 'trainer'"),
    ("vae.steps=1.5", "`vae.steps` must be an integer"),
    ("vae.steps=many", "`vae.steps` must be int"),
    ("seed", "must look like `section.key=value`"),
])
def test_bad_overrides_are_named(override, match):
    with pytest.raises(ValueError, match=match):
        apply_overrides(TeacherTrainConfig(), [override])


def test_yaml_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("transformer:\n  steps: 5\n  stepz: 6\n")
    with pytest.raises(ValueError, match="unknown config key 'transformer.stepz'"):
        load_config(TeacherTrainConfig, path)
    path.write_text("transformer:\n  steps: 5\n")
    assert load_config(TeacherTrainConfig, path).transformer.steps == 5
    with pytest.raises(ValueError, match="does not exist"):
        load_config(TeacherTrainConfig, tmp_path / "missing.yaml")
