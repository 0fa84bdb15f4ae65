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
    threads = torch.get_num_threads()
    yield
    # recipes set torch's thread count from trainer.threads; one test's setting must not leak into the next
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """Run this test's in-process torch work on one thread, as `tests.helpers.killed_run` does.

    Float sums split across threads differ in their last bits, so a resume that is to end
    byte-identical to a straight run must run on as many threads as the run it continues."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
