"""The fixed cost (issue 20): the lightweight decoder, the training-free caches, both speedups and
the text-embedding cache, on random-init tiny Wan and HunyuanVideo models."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from accvideo.eval.bench import parse_model_spec, run_speed_bench
from accvideo.generation import generate
from accvideo.models.cache import CachedWanTransformer, calibration_path
from accvideo.models.registry import load_model
from accvideo.models.text_cache import TextEmbeddingCache
from accvideo.models.tiny_decoder import (
    MODEL_SUBFOLDER,
    TinyVideoDecoder,
    find_decoder,
    has_tiny_decoder,
    load_decoder,
)
from accvideo.models.variants import CacheSpec, split_variant
from accvideo.training.recipes.decoder import DecoderDistillConfig, run_decoder_distill
from accvideo.util.config import apply_overrides
from tests.helpers.tiny_hunyuan import save_tiny_hunyuan

PROMPT = "a red circle moving left"
SMALL = ["trainer.steps=3", "trainer.batch_size=2", "trainer.log_every=1", "method.num_videos=6", "method.heldout=2",
         "method.channels=8", "method.data_batch=3"]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCVIDEO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def hunyuan_dir(tmp_path_factory):
    return save_tiny_hunyuan(tmp_path_factory.mktemp("hy") / "pipe")


@pytest.mark.parametrize("ft,fs,p", [(2, 4, 2), (4, 8, 2), (4, 8, 8)])
def test_decoder_shapes_and_causality(ft, fs, p):
    decoder = TinyVideoDecoder(latent_channels=4, scale_factor_temporal=ft, scale_factor_spatial=fs, channels=8,
                               num_blocks=1, pixel_shuffle=p).eval()
    z = torch.randn(2, 4, 3, 2, 3)
    with torch.no_grad():
        out = decoder(z)
        assert out.shape == (2, 3, ft * 2 + 1, 2 * fs, 3 * fs)
        z2 = z.clone()
        z2[:, :, 2] += 1.0  # the last latent frame: frames before its ft frames must not change
        assert torch.equal(decoder(z2)[:, :, : ft + 1], out[:, :, : ft + 1])
    with pytest.raises(ValueError, match="power of two"):
        TinyVideoDecoder(scale_factor_spatial=8, pixel_shuffle=3)


def _distill(teacher, out, extra=()):
    cfg = apply_overrides(DecoderDistillConfig(), [*SMALL, *extra])
    return run_decoder_distill(str(teacher), out, cfg)


def test_decoder_distill_save_find_and_generate(tiny_pipeline_dir, tmp_path):
    summary = _distill(tiny_pipeline_dir, tmp_path / "run")
    folder = tmp_path / "run" / "decoder"
    assert {"config.json", "diffusion_pytorch_model.safetensors", "sha256.json", "decoder_info.json"} <= \
        {p.name for p in folder.iterdir()}
    assert summary["source"] == "world" and summary["family"] == "wan" and summary["heldout_psnr_db"] > 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["kind"] == "decoder"
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_pipeline_dir, model_dir)
    with pytest.raises(ValueError, match="no decoder distilled from the VAE"):
        load_model(f"{model_dir}+tinydecoder")
    assert not has_tiny_decoder(model_dir)
    full = load_model(model_dir)
    explicit = load_model(model_dir, decoder=str(folder))
    shutil.copytree(folder, model_dir / MODEL_SUBFOLDER)
    tiny = load_model(f"{model_dir}+tinydecoder")
    assert find_decoder(model_dir, "tiny") == model_dir / MODEL_SUBFOLDER and tiny.pipe is full.pipe
    assert has_tiny_decoder(model_dir)
    assert tiny.label.endswith("+tinydecoder") and explicit.decoder is not None
    a = generate(full, PROMPT, seed=1, num_steps=2)
    b = generate(tiny, PROMPT, seed=1, num_steps=2)
    assert b.decoder == "tiny" and a.decoder == "full" and b.video.shape == a.video.shape
    assert torch.equal(a.latents, b.latents)  # only the decode differs
    with pytest.raises(ValueError, match="'full' but the model name asks for '\\+tinydecoder'"):
        load_model(f"{model_dir}+tinydecoder", decoder="full")


def test_decoder_refuses_another_vae_and_corrupt_weights(tiny_pipeline_dir, tmp_path):
    _distill(tiny_pipeline_dir, tmp_path / "run")
    folder = tmp_path / "run" / "decoder"
    other = tmp_path / "other"
    shutil.copytree(tiny_pipeline_dir, other)
    (other / "sha256.json").write_text(json.dumps({"vae/diffusion_pytorch_model.safetensors": "0" * 64}))
    with pytest.raises(ValueError, match="distilled from another VAE"):
        find_decoder(other, folder)
    weights = folder / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its recorded sha256"):
        load_decoder(folder)


def test_decoder_distill_on_hunyuan(hunyuan_dir, tmp_path):
    summary = _distill(hunyuan_dir, tmp_path / "run")
    assert summary["family"] == "hunyuan"
    model = load_model(hunyuan_dir, decoder=str(tmp_path / "run" / "decoder"))
    z = torch.randn(1, 4, 3, 4, 4)
    from accvideo.models.families import family_of

    with torch.no_grad():
        assert model.decoder(z).shape == family_of(model.pipe).decode(model.pipe, z).shape  # (1, 3, 9, 32, 32)


def test_variant_names():
    assert split_variant("tiny-teacher") == ("tiny-teacher", split_variant("x")[1])
    base, v = split_variant("tiny-teacher+fbcache@0.1+tinydecoder")
    assert base == "tiny-teacher" and v.cache == CacheSpec("fbcache", 0.1) and v.decoder == "tiny"
    assert split_variant("t+magcache")[1].cache.threshold == 0.06
    for bad, match in (("t+fbcache", "modifier 'fbcache'"), ("t+fbcache@0", "number > 0"),
                       ("t+fbcache@0.1+magcache", "one cache at most"), ("t+warp", "modifier 'warp'"),
                       ("+tinydecoder", "must start with")):
        with pytest.raises(ValueError, match=match):
            split_variant(bad)
    assert parse_model_spec("tiny-teacher@5+fbcache@0.1") == ("tiny-teacher+fbcache@0.1", 5)
    assert parse_model_spec("tiny-teacher+fbcache@0.1") == ("tiny-teacher+fbcache@0.1", None)
    with pytest.raises(ValueError, match="modifiers"):
        parse_model_spec("tiny-teacher@x+magcache")


def test_fbcache_exact_when_never_skipping_and_skips_when_loose(tiny_pipeline_dir):
    base = generate(load_model(tiny_pipeline_dir), PROMPT, seed=0, num_steps=6)
    exact = generate(load_model(f"{tiny_pipeline_dir}+fbcache@1e-9"), PROMPT, seed=0, num_steps=6)
    assert torch.equal(exact.latents, base.latents) and exact.cache_stats == {"computed": 12, "skipped": 0}
    loose = generate(load_model(f"{tiny_pipeline_dir}+fbcache@10"), PROMPT, seed=0, num_steps=6)
    # the first step of each branch computes, every later one reuses
    assert loose.cache_stats == {"computed": 2, "skipped": 10} and loose.cache == "fbcache@10"


def test_magcache_calibrates_once_and_skips(tiny_pipeline_dir):
    model = load_model(f"{tiny_pipeline_dir}+magcache@10")
    path = calibration_path(tiny_pipeline_dir)
    assert not path.exists()
    result = generate(model, PROMPT, seed=0, num_steps=10)
    entry = next(iter(json.loads(path.read_text()).values()))
    assert len(entry["cond"]) == 10 and len(entry["uncond"]) == 10 and entry["cond"][0] == 1.0
    # retention: 2 of 10 steps computed per branch, then at most 3 skipped in a row
    assert result.cache_stats["skipped"] > 0 and result.cache_stats["computed"] >= 2 * (2 + 2)
    mtime = path.stat().st_mtime
    generate(model, PROMPT, seed=1, num_steps=10)
    assert path.stat().st_mtime == mtime  # calibrated once
    never = generate(load_model(f"{tiny_pipeline_dir}+magcache@1e-12"), PROMPT, seed=0, num_steps=10)
    assert torch.equal(never.latents, generate(load_model(tiny_pipeline_dir), PROMPT, seed=0, num_steps=10).latents)


def test_cache_refuses_hunyuan(hunyuan_dir):
    with pytest.raises(ValueError, match="WanTransformer3DModel only.*HunyuanVideoTransformer3DModel"):
        generate(load_model(f"{hunyuan_dir}+fbcache@0.1"), PROMPT, seed=0)
    with pytest.raises(ValueError, match="one MagCache ratio per step"):
        CachedWanTransformer(load_model("tiny-teacher").transformer, CacheSpec("magcache", 0.1), 4, [1.0])


def test_text_cache_hit_is_visible_and_changes_nothing(tiny_pipeline_dir):
    model, cache = load_model(tiny_pipeline_dir), TextEmbeddingCache(max_entries=1)
    first = generate(model, PROMPT, seed=0, num_steps=2, text_cache=cache)
    second = generate(model, PROMPT, seed=0, num_steps=2, text_cache=cache)
    assert not first.text_cached and second.text_cached and cache.hits == 1
    assert second.timings["text_encoder"] < first.timings["text_encoder"]
    assert (second.video == first.video).all()
    generate(model, "a blue square moving up", seed=0, num_steps=2, text_cache=cache)
    assert len(cache) == 1 and not generate(model, PROMPT, seed=0, num_steps=2, text_cache=cache).text_cached
    # without guidance the conditioning has no negative rows: another entry, not a hit
    assert not generate(model, PROMPT, seed=0, num_steps=2, guidance_scale=1.0, text_cache=cache).text_cached
    with pytest.raises(ValueError, match="`max_entries`"):
        TextEmbeddingCache(0)


def test_bench_reports_both_speedups(tiny_pipeline_dir):
    result = run_speed_bench([f"{tiny_pipeline_dir}@4", f"{tiny_pipeline_dir}@2+fbcache@10"], repeats=1, warmup=0)
    rows = result.rows
    assert {"speedup", "denoise_speedup", "decoder", "cache", "skipped"} <= set(rows.columns)
    assert rows.denoise_speedup.iloc[0] == 1.0 and rows.cache.iloc[1] == "fbcache@10" and rows.skipped.iloc[1] > 0
    assert rows.denoise_speedup.iloc[1] == rows.denoising_s.iloc[0] / rows.denoising_s.iloc[1]
    assert rows.speedup.iloc[1] == rows.total_s.iloc[0] / rows.total_s.iloc[1]
    markdown = result.to_markdown()
    assert "| end to end | denoise only |" in markdown and markdown.count("\n") == 4


def test_bundled_decoder_serves_the_bundled_students():
    """assets/tiny-decoder was distilled from the bundled VAE: every bundled model finds it, and it
    agrees with the VAE above issue 20's 30 dB on a student's samples."""
    from accvideo.eval.decoder import check_decoder
    from accvideo.models.registry import ASSETS

    for name in ("tiny-teacher", "tiny-accvideo", "tiny-gpd"):
        assert find_decoder(ASSETS / name, "tiny") == ASSETS / "tiny-decoder"
    report = check_decoder("tiny-accvideo", num_videos=2, repeats=1)
    assert report["psnr_db"] >= 30 and report["steps"] == 5


def test_distill_decoder_cli_and_bundle(tiny_pipeline_dir, tmp_path, capsys):
    from accvideo.cli.main import main

    args = ["distill", "decoder", "--teacher", str(tiny_pipeline_dir), "--out", str(tmp_path / "run"),
            "--check-videos", "1", *(x for o in SMALL for x in ("--set", o))]
    assert main(args) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["check"]["num_videos"] == 1 and summary["check"]["decode_speedup"] > 0
    from accvideo.experiments.bundle import bundle_decoder

    dest = bundle_decoder(tmp_path / "run", "python -m accvideo distill decoder ...", dest_root=tmp_path / "assets")
    provenance = json.loads((dest / "provenance.json").read_text())
    assert provenance["check"] == summary["check"] and provenance["vae_sha256"] == summary["vae_sha256"]
    assert dest.name == "tiny-decoder" and load_decoder(dest) is not None
    assert main(["distill", "decoder", "--teacher", str(tiny_pipeline_dir), "--out", str(tmp_path / "run"),
                 "--set", "method.channels=16"]) == 2  # another config into the same run: refused
    assert "another config" in capsys.readouterr().err
