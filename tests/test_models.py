import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import WanPipeline

from accvideo.core.schedules import sigma_schedule
from accvideo.generation import generate, initial_noise
from accvideo.media import write_mp4
from accvideo.models.registry import LoadedModel, load_model, resolve_model
from accvideo.models.tiny import TinyConfig, build_pipeline, build_tokenizer


def test_tokenizer_round_trips(tmp_path):
    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    for text in ["a red circle moving left", "A  Cyan TRIANGLE moving up", "a purple blob", ""]:
        assert tok(text).input_ids == again(text).input_ids
    ids = tok("a red circle moving left").input_ids
    assert ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
    assert tok("a purple circle").input_ids[1] == tok.unk_token_id


def test_save_load_bit_identical(tiny_pipeline_dir, tmp_path):
    pipe = WanPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.save_pretrained(tmp_path / "again")
    again = WanPipeline.from_pretrained(tmp_path / "again")
    for name in ("transformer", "vae", "text_encoder"):
        a, b = getattr(pipe, name).state_dict(), getattr(again, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    r1 = generate(LoadedModel(pipe), "a red circle moving left", seed=1, num_steps=3, guidance_scale=2.0)
    r2 = generate(LoadedModel(again), "a red circle moving left", seed=1, num_steps=3, guidance_scale=2.0)
    assert np.array_equal(r1.video, r2.video)


def test_generate_matches_wan_pipeline(tiny_pipeline_dir):
    """Our staged generate() is the diffusers WanPipeline computation, with our schedule."""
    pipe = WanPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    steps, shift, guidance = 4, TinyConfig().shift, 3.0
    ours = generate(LoadedModel(pipe), "a blue square moving up", seed=5, num_steps=steps, guidance_scale=guidance,
                    shift=shift, max_sequence_length=8)
    original = pipe.scheduler.set_timesteps
    pipe.scheduler.set_timesteps = lambda n, device=None: original(
        sigmas=np.linspace(1.0, 0.0, n + 1)[:-1], device=device)
    theirs = pipe(prompt="a blue square moving up", negative_prompt="", height=32, width=32, num_frames=9,
                  num_inference_steps=steps, guidance_scale=guidance, max_sequence_length=8,
                  latents=initial_noise(pipe, 5, 9, 32, 32), output_type="latent").frames
    assert torch.allclose(ours.latents, theirs, atol=1e-5)
    assert torch.allclose(ours.sigmas, sigma_schedule(steps, shift))
    assert ours.nfe == 2 * steps
    assert set(ours.timings) == {"text_encoder", "denoising", "vae_decode", "total"}


@pytest.mark.parametrize("steps, shift", [(4, 5.0), (1, 3.0)])
def test_unipc_generate_matches_wan_pipeline(tiny_pipeline_dir, steps, shift):
    """sampler="unipc" is WanPipeline.__call__ driving the flow UniPC scheduler of the Wan2.1 -Diffusers
    repos (same seed, steps, guidance, shift), with its own schedule and integer timesteps."""
    from diffusers import UniPCMultistepScheduler

    from accvideo.core.unipc import unipc_sigma_schedule

    pipe = WanPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    guidance = 3.0
    ours = generate(LoadedModel(pipe), "a blue square moving up", seed=5, num_steps=steps, guidance_scale=guidance,
                    shift=shift, max_sequence_length=8, sampler="unipc", decode_video=False)
    pipe.scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                             flow_shift=shift)
    theirs = pipe(prompt="a blue square moving up", negative_prompt="", height=32, width=32, num_frames=9,
                  num_inference_steps=steps, guidance_scale=guidance, max_sequence_length=8,
                  latents=initial_noise(pipe, 5, 9, 32, 32), output_type="latent").frames
    assert (ours.latents - theirs).abs().max() < 1e-5
    # the schedule is the scheduler's own (its 1e-6 nudge of sigma = 1 aside)
    expected = pipe.scheduler.sigmas.double()
    expected[0] = 1.0
    assert torch.allclose(ours.sigmas, expected, atol=1e-7)
    assert torch.equal(ours.sigmas, unipc_sigma_schedule(steps, shift))
    euler = generate(LoadedModel(pipe), "a blue square moving up", seed=5, num_steps=steps, guidance_scale=guidance,
                     shift=shift, max_sequence_length=8, decode_video=False)
    assert not torch.allclose(euler.latents, ours.latents, atol=1e-3)  # a different solver, really used
    assert ours.nfe == 2 * steps


def test_unipc_sampler_is_checked_and_saved_default(tiny_pipeline_dir):
    from accvideo.generation import resolve_sampling

    model = LoadedModel(WanPipeline.from_pretrained(tiny_pipeline_dir), sampling={"sampler": "unipc"})
    assert resolve_sampling(model).sampler == "unipc"
    assert resolve_sampling(model, sampler="euler").sampler == "euler"
    assert resolve_sampling(LoadedModel(model.pipe)).sampler == "euler"
    with pytest.raises(ValueError, match=r"`sampler` must be one of \['euler', 'unipc'\] but is 'ddim'"):
        resolve_sampling(model, sampler="ddim")


def test_generate_cli_sampler(tiny_pipeline_dir, capsys):
    from accvideo.cli.main import main

    assert main(["generate", "--model", str(tiny_pipeline_dir), "--prompt", "a red circle moving left", "--steps", "2",
                 "--sampler", "unipc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sampler"] == "unipc"


def test_generate_defaults_and_trajectory(tiny_pipeline_dir):
    pipe = load_model(tiny_pipeline_dir)
    assert load_model(tiny_pipeline_dir) is pipe  # loaded once, cached
    result = generate(pipe, "a green triangle moving down", seed=0, return_trajectory=True)
    assert result.num_steps == 4 and result.guidance_scale == 3.0  # from accvideo_sampling.json
    assert result.video.shape == (9, 32, 32, 3) and result.video.dtype == np.uint8
    assert result.trajectory.shape == (5, 1, 16, 5, 8, 8)
    assert torch.equal(result.trajectory[-1], result.latents)
    same = generate(pipe, "a green triangle moving down", seed=0)
    other = generate(pipe, "a green triangle moving down", seed=1)
    assert np.array_equal(result.video, same.video) and not np.array_equal(result.video, other.video)


def test_write_mp4_is_playable(tmp_path):
    import imageio.v3 as iio

    video = (np.random.default_rng(0).random((9, 32, 32, 3)) * 255).astype(np.uint8)
    write_mp4(video, tmp_path / "v.mp4")
    frames = iio.imread(tmp_path / "v.mp4")
    assert frames.shape == (9, 256, 256, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_frames": 8}, r"`num_frames` must be 2k \+ 1"),
    ({"num_frames": 0}, "num_frames"),
    ({"height": 36}, "`height` must be a positive multiple of 8"),
    ({"width": 20}, "`width` must be a positive multiple of 8"),
    ({"num_steps": 0}, r"`num_steps` must be an integer >= 1 but is 0"),
    ({"prompt": "   "}, "`prompt` must be a non-empty string"),
    ({"prompt": ""}, "`prompt` must be a non-empty string"),
    ({"seed": 1.5}, r"`seed` must be an integer in \[0, 9223372036854775807\] but is 1.5"),
    ({"seed": "7"}, "`seed` must be an integer"),
    ({"seed": 2**70}, r"`seed` must be an integer in \[0, 9223372036854775807\] but is 1180591620717411303424"),
    ({"seed": -3}, r"`seed` must be an integer in .* but is -3"),
    ({"num_frames": 2049}, r"`num_frames` must be at most 127 for this model \(its position embedding covers 64 "),
    ({"width": 4096}, "`width` must be at most 512 for this model"),
    ({"guidance_scale": float("nan")}, "`guidance_scale` must be a finite number >= 0 but is nan"),
    ({"guidance_scale": float("inf")}, "`guidance_scale` must be a finite number >= 0 but is inf"),
    ({"shift": 0.0}, "`shift` must be a finite number > 0 but is 0.0"),
    ({"guidance_scale": -1.0}, "guidance_scale"),
])
def test_bad_generation_input_is_named(tiny_pipeline_dir, kwargs, match):
    pipe = load_model(tiny_pipeline_dir)
    args = {"prompt": "a red circle moving left", "seed": 0, "num_steps": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        generate(pipe, **args)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="`model` must be a known model name .* but is 'no-such-model'"):
        resolve_model("no-such-model")


def test_folder_without_index(tmp_path):
    with pytest.raises(ValueError, match="not a pipeline folder"):
        resolve_model(tmp_path)


@pytest.mark.parametrize("damage, match", [
    (lambda d: shutil.rmtree(d / "vae"), "missing component 'vae'"),
    (lambda d: (d / "transformer" / "diffusion_pytorch_model.safetensors").unlink(),
     "has no weights: neither .safetensors nor .bin"),
    (lambda d: (d / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 40),
     "transformer.*corrupt"),
    (lambda d: (d / "vae" / "config.json").write_text("{not json"), "vae.*config.json is corrupt"),
    (lambda d: (d / "model_index.json").write_text("[["), "model_index.json is unreadable or corrupt"),
])
def test_damaged_model_folder_is_named(tiny_pipeline_dir, tmp_path, damage, match):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_pipeline_dir, folder)
    damage(folder)
    with pytest.raises(ValueError, match=match):
        load_model(folder)


def test_truncated_weights_are_named(tiny_pipeline_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_pipeline_dir, folder)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # our sentence, naming component and file: diffusers' own error on such a file also says "vae"
    with pytest.raises(ValueError, match=r"^model component 'vae': weights file diffusion_pytorch_model"
                                         r"\.safetensors is corrupt"):
        load_model(folder, cached=False)


def test_build_is_deterministic():
    a, b = build_pipeline(seed=3), build_pipeline(seed=3)
    sa, sb = a.transformer.state_dict(), b.transformer.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.dumps(a.vae.config["latents_std"]) == json.dumps([1.0] * 16)


def test_generate_cli_checks_the_output_path_before_any_work(tmp_path, capsys, monkeypatch):
    from accvideo.cli import main
    from accvideo.models import registry

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(registry, "load_model", no_loading)
    assert main(["generate", "--prompt", "a red circle moving left", "--out", str(tmp_path / "clip.txt")]) == 2
    assert "`--out` must be a path ending in .mp4 but is" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
