import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    """A random-init tiny WanPipeline saved to a local folder, with sampling defaults."""
    from accvideo.models.registry import SAMPLING_FILE
    from accvideo.models.tiny import TinyConfig, build_pipeline

    folder = tmp_path_factory.mktemp("tiny") / "pipe"
    cfg = TinyConfig()
    build_pipeline(cfg, seed=0).save_pretrained(folder)
    (folder / SAMPLING_FILE).write_text(json.dumps({
        "role": "teacher", "num_steps": 4, "guidance_scale": 3.0, "shift": cfg.shift, "height": 32, "width": 32,
        "num_frames": 9, "max_sequence_length": cfg.max_sequence_length,
    }))
    return folder


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
