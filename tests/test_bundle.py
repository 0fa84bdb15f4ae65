import json

from PIL import Image

from accvideo.eval.grid import GRID_PROMPTS
from accvideo.experiments.bundle import bundle_run
from accvideo.models.registry import load_model
from accvideo.util.hashes import verify_hashes


def test_bundle_copies_pipeline_with_provenance_and_grid(tiny_pipeline_dir, tmp_path):
    run = tmp_path / "run"
    (run / "pipeline").mkdir(parents=True)
    import shutil

    shutil.copytree(tiny_pipeline_dir, run / "pipeline", dirs_exist_ok=True)
    (run / "summary.json").write_text(json.dumps({
        "config": {"seed": 0}, "wall_s": 12.5, "world_size": 1, "num_params": {"transformer": 1},
        "transformer": {"final": {"loss": 0.5}},
    }))
    dest = bundle_run(run, "tiny-x", "python -m accvideo train-teacher --out run", dest_root=tmp_path / "assets")
    provenance = json.loads((dest / "provenance.json").read_text())
    assert provenance["command"].startswith("python -m accvideo train-teacher")
    assert provenance["wall_s"] == 12.5 and provenance["final_losses"] == {"transformer": 0.5}
    grid = Image.open(dest / "samples.png")
    assert grid.height >= len(GRID_PROMPTS) * 32 * 4
    pipe = load_model(dest)
    assert pipe.sampling["num_steps"] == 4
    assert json.loads((dest / "training_summary.json").read_text())["wall_s"] == 12.5
    assert verify_hashes(dest) == 3  # transformer, VAE and text encoder weights, recorded at bundling


def test_grid_cli_puts_models_side_by_side(tiny_pipeline_dir, tmp_path):
    from accvideo.cli import main

    out = tmp_path / "grid.png"
    assert main(["grid", "--models", f"{tiny_pipeline_dir}@2,{tiny_pipeline_dir}@1", "--out", str(out)]) == 0
    grid = Image.open(out)
    frames = 5  # every other frame of 9
    assert grid.width >= 190 + 2 * (8 + frames * (32 * 3 + 2))
    assert grid.height == 18 + len(GRID_PROMPTS) * (32 * 3 + 2)
    assert main(["grid", "--models", " , ", "--out", str(out)]) == 2
