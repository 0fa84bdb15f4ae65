"""Real-model paths on tiny random models of the real classes: the registry (local folder, HF
cache, missing-weights error), HunyuanVideo through our generate(), student conversion into a
pipeline folder, and the memory options. Nothing here touches the network."""

import dataclasses
import json
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from accvideo.generation import generate, initial_noise
from accvideo.models.families import PLAIN_PROMPT_TEMPLATE, family_of
from accvideo.models.real import REAL_MODELS, model_status, real_defaults, resolve_real
from accvideo.models.registry import SAMPLING_FILE, LoadedModel, load_model, resolve_model
from tests.helpers.tiny_hunyuan import SAMPLING, save_original_student, save_tiny_hunyuan

PROMPT = "a red circle moving left"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Every test here runs with empty model folders and a socket that refuses to connect."""
    monkeypatch.setenv("ACCVIDEO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def tiny_hunyuan_dir(tmp_path_factory):
    return save_tiny_hunyuan(tmp_path_factory.mktemp("hy") / "pipe")


def test_missing_model_names_the_download_command(tmp_path):
    with pytest.raises(ValueError) as err:
        resolve_model("wan2.1-t2v-1.3b")
    message = str(err.value)
    assert "`model` 'wan2.1-t2v-1.3b'" in message and "is not on this machine" in message
    assert f"hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers --local-dir {tmp_path / 'models' / 'wan2.1-t2v-1.3b'}" \
        in message


def test_missing_student_lists_every_step(tmp_path):
    with pytest.raises(ValueError) as err:
        resolve_model("accvideo-hunyuan-5step")
    lines = [line.strip() for line in str(err.value).splitlines()]
    models = tmp_path / "models"
    assert f"hf download hunyuanvideo-community/HunyuanVideo --local-dir {models / 'hunyuanvideo'}" in lines
    assert (f"hf download aejion/AccVideo accvideo-t2v-5-steps/diffusion_pytorch_model.pt --local-dir "
            f"{models / 'accvideo-hunyuan-5step-original'}") in lines
    assert "python -m accvideo convert --model accvideo-hunyuan-5step" in lines


def test_model_status_has_one_row_per_model():
    rows = model_status()
    assert [r["name"] for r in rows] == list(REAL_MODELS)
    assert not any(r["available"] for r in rows)
    assert all(r["download"] and r["download"][0].startswith("hf download ") for r in rows)
    assert {r["family"] for r in rows} == {"wan", "hunyuan"}


def test_unknown_name_lists_real_models():
    with pytest.raises(ValueError, match=r"known model name .*'hunyuanvideo'.* but is 'hunyuan-video'"):
        resolve_model("hunyuan-video")


def test_resolves_from_models_dir(tiny_pipeline_dir, tmp_path):
    shutil.copytree(tiny_pipeline_dir, tmp_path / "models" / "wan2.1-t2v-1.3b")
    (tmp_path / "models" / "wan2.1-t2v-1.3b" / SAMPLING_FILE).unlink()  # as `hf download` leaves it
    assert resolve_model("wan2.1-t2v-1.3b") == tmp_path / "models" / "wan2.1-t2v-1.3b"
    pipe = load_model("wan2.1-t2v-1.3b")
    # no accvideo_sampling.json: the registry's defaults apply
    assert pipe.sampling["num_steps"] == 50 and pipe.sampling["num_frames"] == 81
    assert model_status()[2]["available"] and model_status()[2]["path"].endswith("wan2.1-t2v-1.3b")


def test_resolves_from_hf_cache_offline(tiny_pipeline_dir, tmp_path):
    """The Hub cache layout (refs/main -> snapshots/<commit>), found with local_files_only."""
    repo = tmp_path / "hub" / "models--Wan-AI--Wan2.1-T2V-14B-Diffusers"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_pipeline_dir, repo / "snapshots" / commit)
    folder = resolve_real("wan2.1-t2v-14b")
    assert folder == repo / "snapshots" / commit
    assert real_defaults(folder)["height"] == 720
    assert real_defaults(tmp_path) == {}


def test_hunyuan_generate_matches_pipeline(tiny_hunyuan_dir):
    """Our generate() on a HunyuanVideoPipeline is the pipeline's own computation."""
    from diffusers import HunyuanVideoPipeline

    pipe = HunyuanVideoPipeline.from_pretrained(tiny_hunyuan_dir)
    pipe.set_progress_bar_config(disable=True)
    assert family_of(pipe).name == "hunyuan"
    for cfg in (1.0, 2.5):  # embedded guidance only; then real CFG on top (2 NFE per step)
        ours = generate(LoadedModel(pipe, SAMPLING), PROMPT, seed=3, num_steps=3, shift=7.0, guidance_scale=cfg,
                        embedded_guidance_scale=6.0, max_sequence_length=8)
        theirs = pipe(prompt=PROMPT, negative_prompt="", height=32, width=32, num_frames=9, num_inference_steps=3,
                      guidance_scale=6.0, true_cfg_scale=cfg, latents=initial_noise(pipe, 3, 9, 32, 32),
                      output_type="latent", prompt_template=PLAIN_PROMPT_TEMPLATE, max_sequence_length=8).frames
        assert torch.isfinite(ours.latents).all()
        assert torch.allclose(ours.latents, theirs, atol=1e-5), (ours.latents - theirs).abs().max()
        assert ours.nfe == (6 if cfg > 1 else 3)
    assert set(ours.timings) == {"text_encoder", "denoising", "vae_decode", "total"}
    assert ours.video.shape == (9, 32, 32, 3) and ours.embedded_guidance_scale == 6.0


def test_hunyuan_defaults_and_embedded_guidance(tiny_hunyuan_dir):
    pipe = load_model(tiny_hunyuan_dir)
    result = generate(pipe, PROMPT, seed=0)
    assert result.num_steps == 4 and result.embedded_guidance_scale == 6.0 and result.nfe == 4
    other = generate(pipe, PROMPT, seed=0, embedded_guidance_scale=1.0)
    assert not torch.equal(result.latents, other.latents)  # the embedding is really used


@pytest.mark.parametrize("kwargs, match", [
    ({"num_frames": 7}, r"`num_frames` must be 4k \+ 1 \(for example 9\) but is 7"),
    ({"height": 24}, "`height` must be a positive multiple of 16 for this model but is 24"),
    ({"width": 40}, "`width` must be a positive multiple of 16"),
    ({"embedded_guidance_scale": -1.0}, "`embedded_guidance_scale` must be a finite number >= 0 but is -1.0"),
])
def test_hunyuan_inputs_are_validated(tiny_hunyuan_dir, kwargs, match):
    pipe = load_model(tiny_hunyuan_dir)
    with pytest.raises(ValueError, match=match):
        generate(pipe, PROMPT, **({"num_steps": 1} | kwargs))


def test_wan_rejects_embedded_guidance(tiny_pipeline_dir):
    with pytest.raises(ValueError, match="`embedded_guidance_scale` must be None for a model without"):
        generate(load_model(tiny_pipeline_dir), PROMPT, num_steps=1, embedded_guidance_scale=6.0)


def test_hunyuan_template_that_crops_everything_is_named(tiny_hunyuan_dir):
    model = load_model(tiny_hunyuan_dir)
    without = dataclasses.replace(model, sampling={k: v for k, v in model.sampling.items() if k != "prompt_template"})
    with pytest.raises(ValueError, match="`prompt_template` .* leaves no prompt tokens"):
        generate(without, PROMPT, num_steps=1)


@pytest.mark.slow
def test_student_conversion_into_a_pipeline(tiny_hunyuan_dir, tmp_path):
    """The user's path for the released AccVideo student, on tiny models: the teacher in the
    models folder, the student's original-format .pt where `hf download` puts it, then
    `python -m accvideo convert --model accvideo-hunyuan-5step`, then load it by name."""
    models = tmp_path / "models"
    shutil.copytree(tiny_hunyuan_dir, models / "hunyuanvideo")
    student = save_original_student(models)  # "distilled" weights: different from the teacher's
    with pytest.raises(ValueError, match="python -m accvideo convert --model accvideo-hunyuan-5step"):
        resolve_model("accvideo-hunyuan-5step")
    run = subprocess.run([sys.executable, "-m", "accvideo", "convert", "--model", "accvideo-hunyuan-5step"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    pipe = load_model("accvideo-hunyuan-5step")
    assert (models / "accvideo-hunyuan-5step" / "vae").is_symlink()  # shared with the teacher, not copied
    defaults = pipe.sampling
    assert (defaults["num_steps"], defaults["shift"], defaults["embedded_guidance_scale"],
            defaults["guidance_scale"]) == (5, 7.0, 6.0, 1.0)
    assert defaults["prompt_template"] == PLAIN_PROMPT_TEMPLATE  # the teacher's encoders, the teacher's template
    ours = pipe.transformer.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in student.state_dict().items())
    result = generate(pipe, PROMPT, seed=0, num_frames=9, height=32, width=32, max_sequence_length=8)
    assert result.num_steps == 5 and result.nfe == 5 and np.isfinite(result.latents.numpy()).all()
    row = next(r for r in model_status() if r["name"] == "accvideo-hunyuan-5step")
    assert row["available"] and row["download"] == []


def test_memory_options_are_validated(tiny_pipeline_dir):
    with pytest.raises(ValueError, match="`dtype` must be one of .* but is 'int8'"):
        load_model(tiny_pipeline_dir, dtype="int8")
    with pytest.raises(ValueError, match="`offload` must be one of"):
        load_model(tiny_pipeline_dir, offload="disk")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="`offload` 'model' moves weights .* no CUDA GPU"):
            load_model(tiny_pipeline_dir, offload="model")
        with pytest.raises(ValueError, match="`device` is 'cuda' but this machine has no CUDA GPU"):
            load_model(tiny_pipeline_dir, device="cuda")


def test_bf16_and_vae_tiling_on_cpu(tiny_pipeline_dir, tiny_hunyuan_dir):
    """bf16 weights (the GPU setting) run the same code on CPU; outputs stay close to fp32."""
    for folder in (tiny_pipeline_dir, tiny_hunyuan_dir):
        full = generate(load_model(folder), PROMPT, seed=0, num_steps=2)
        pipe = load_model(folder, dtype="bf16", vae_tiling=True)
        assert pipe.transformer.dtype == torch.bfloat16 and pipe is not load_model(folder)
        half = generate(pipe, PROMPT, seed=0, num_steps=2)
        assert half.latents.dtype == torch.float32 and torch.isfinite(half.latents).all()
        assert (half.latents - full.latents).abs().max() < 0.1
        assert half.video.shape == full.video.shape


@pytest.mark.slow
def test_generate_cli_memory_flags(tiny_pipeline_dir):
    run = subprocess.run([sys.executable, "-m", "accvideo", "generate", "--model", str(tiny_pipeline_dir),
                          "--prompt", PROMPT, "--steps", "2", "--dtype", "bf16", "--json"], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["steps"] == 2
    if not torch.cuda.is_available():
        bad = subprocess.run([sys.executable, "-m", "accvideo", "generate", "--model", str(tiny_pipeline_dir),
                              "--prompt", PROMPT, "--offload", "model"], capture_output=True, text=True)
        assert bad.returncode == 2 and "`offload` 'model'" in bad.stderr


@pytest.mark.slow
def test_models_cli_json():
    run = subprocess.run([sys.executable, "-m", "accvideo", "models", "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert [r["name"] for r in json.loads(run.stdout)] == list(REAL_MODELS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 generation on the device)")
@pytest.mark.parametrize("offload", ["none", "model"])
def test_cuda_bf16_generation(tiny_pipeline_dir, tiny_hunyuan_dir, offload):
    for folder in (tiny_pipeline_dir, tiny_hunyuan_dir):
        device = "cuda" if offload == "none" else None
        pipe = load_model(folder, dtype="bf16", device=device, offload=offload)
        result = generate(pipe, PROMPT, seed=0, num_steps=4)
        assert torch.isfinite(result.latents).all() and result.video.shape[0] == 9
        cpu = generate(load_model(folder), PROMPT, seed=0, num_steps=4)
        assert (result.latents - cpu.latents).abs().max() < 0.2  # same noise on every device


def test_real_hunyuan_loads_with_vae_tiling_unless_told(tiny_hunyuan_dir, tmp_path):
    """A real HunyuanVideo folder decodes in tiles by default (as its authors' scripts); a caller's
    vae_tiling=False wins; a tiny or unknown folder keeps tiling off."""
    shutil.copytree(tiny_hunyuan_dir, tmp_path / "models" / "hunyuanvideo")
    real = load_model("hunyuanvideo", cached=False)
    assert real.memory.vae_tiling and real.vae.use_tiling
    untiled = load_model("hunyuanvideo", vae_tiling=False, cached=False)
    assert not untiled.memory.vae_tiling and not untiled.vae.use_tiling
    tiny = load_model(tiny_hunyuan_dir, cached=False)
    assert not tiny.memory.vae_tiling and not tiny.vae.use_tiling
    assert REAL_MODELS["accvideo-hunyuan-5step"].memory == {"vae_tiling": True}
    assert all(not m.memory for m in REAL_MODELS.values() if m.family == "wan")


def test_accvideo_wan_samples_with_unipc_by_default():
    assert REAL_MODELS["accvideo-wan-t2v-14b"].sampling["sampler"] == "unipc"
    assert all("sampler" not in m.sampling for n, m in REAL_MODELS.items() if n != "accvideo-wan-t2v-14b")


def test_unknown_real_folder_warns_once(tiny_pipeline_dir, tmp_path, caplog):
    """A pipeline folder with neither saved nor registry defaults falls back to the tiny settings: said once."""
    from accvideo.models import registry

    folder = tmp_path / "some-downloaded-wan"
    shutil.copytree(tiny_pipeline_dir, folder)
    (folder / SAMPLING_FILE).unlink()
    with caplog.at_level("WARNING", logger="accvideo.models.registry"):
        assert registry.read_sampling_defaults(folder) == {}
        assert registry.read_sampling_defaults(folder) == {}
    warnings = [r for r in caplog.records if "no registry" in r.getMessage() or "not a known real model" in
                r.getMessage()]
    assert len(warnings) == 1 and str(folder.resolve()) in warnings[0].getMessage()
    assert "32x32" in warnings[0].getMessage() and "no CFG" in warnings[0].getMessage()
    caplog.clear()
    (tmp_path / "models").mkdir()
    shutil.copytree(folder, tmp_path / "models" / "wan2.1-t2v-1.3b")  # a known real model: no warning
    with caplog.at_level("WARNING", logger="accvideo.models.registry"):
        assert registry.read_sampling_defaults(tmp_path / "models" / "wan2.1-t2v-1.3b")["num_steps"] == 50
    assert not caplog.records


def test_bin_shards_are_accepted_and_checked(tiny_pipeline_dir, tmp_path):
    """Folders saved with safe_serialization=False (pickled .bin weights) load; a truncated .bin is named."""
    from accvideo.models.tiny import TinyConfig, build_pipeline

    folder = tmp_path / "bin"
    build_pipeline(TinyConfig(), seed=0).save_pretrained(folder, safe_serialization=False)
    shutil.copy(tiny_pipeline_dir / SAMPLING_FILE, folder / SAMPLING_FILE)
    # diffusers writes .bin for the transformer and the VAE (transformers 5 always writes safetensors)
    for component in ("transformer", "vae"):
        assert not list((folder / component).glob("*.safetensors")) and list((folder / component).glob("*.bin"))
    model = load_model(folder, cached=False)
    reference = load_model(tiny_pipeline_dir, cached=False)
    ours, theirs = model.transformer.state_dict(), reference.transformer.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    shard = next((folder / "vae").glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"component 'vae': weights file {shard.name} is corrupt or truncated"):
        load_model(folder, cached=False)
