"""ProcBench and the speed benchmark. The evaluator is tested against the procedural world's
ground truth: real clips score >= 95% on every semantic dimension, noise and wrong prompts
score near chance."""

import json
import math

import numpy as np
import pytest

from accvideo.cli import main
from accvideo.eval import (
    CHANCE,
    benchmark_prompts,
    detect,
    flicker_score,
    frechet_distance,
    object_consistency,
    parse_model_spec,
    psnr,
    real_videos,
    run_procbench,
    run_speed_bench,
    score_videos,
    to_uint8,
    vae_roundtrip,
    video_features,
)
from accvideo.eval.detail import binomial_blur
from accvideo.eval.metrics import PSNR_CAP
from accvideo.models.registry import load_model
from accvideo.world import (
    ALL_COMBOS,
    COLORS,
    DIRECTIONS,
    HELDOUT_COMBOS,
    SHAPES,
    TRAIN_COMBOS,
    parse_prompt,
    prompt_for,
    render,
    sample_spec,
)

NUM_CLIPS = 120
# Accuracy of n = 120 independent guesses at chance p has std sqrt(p (1 - p) / n) <= 0.046;
# "near chance" allows 3 std (p = 1/3 gives the widest: 0.13). The data are seeded, so the
# test is deterministic, but a detector biased towards the right answer would exceed it.
MARGIN = 3 * math.sqrt(CHANCE["shape"] * (1 - CHANCE["shape"]) / NUM_CLIPS)


def _blur(video: np.ndarray, passes: int = 2) -> np.ndarray:
    return binomial_blur(video, passes)


def _degrade(video: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What an imperfect generator makes: blurred, desaturated, dimmer, on grey, with pixel noise."""
    frames = _blur(video)
    grey = frames.mean(axis=-1, keepdims=True)
    frames = 20 + 0.8 * (grey + 0.6 * (frames - grey)) + rng.normal(0, 6, frames.shape)
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real_clips():
    """120 real clips cycling through all 72 combinations, with their (colour, shape, direction)."""
    combos = [ALL_COMBOS[i % len(ALL_COMBOS)] for i in range(NUM_CLIPS)]
    videos = [to_uint8(render(sample_spec(np.random.default_rng(1000 + i), combo=c))) for i, c in enumerate(combos)]
    return videos, combos


@pytest.fixture(scope="module")
def real_reads(real_clips):
    return [detect(v) for v in real_clips[0]]


def _accuracy(videos, combos, reads=None) -> dict[str, float]:
    reads = reads if reads is not None else [detect(v) for v in videos]
    return {dim: float(np.mean([r.found and getattr(r, attr) == c[k] for r, c in zip(reads, combos)]))
            for k, (dim, attr) in enumerate((("color", "color"), ("shape", "shape"), ("motion", "direction")))}


# --- the evaluator against ground truth --------------------------------------------------------


def test_real_clips_score_above_95_percent(real_clips, real_reads):
    accuracy = _accuracy(*real_clips, reads=real_reads)
    assert all(a >= 0.95 for a in accuracy.values()), accuracy


def test_degraded_clips_still_read_correctly(real_clips):
    rng = np.random.default_rng(0)
    videos, combos = real_clips
    accuracy = _accuracy([_degrade(v, rng) for v in videos], combos)
    assert all(a >= 0.9 for a in accuracy.values()), accuracy


def test_wrong_prompts_score_near_chance(real_clips, real_reads):
    videos, combos = real_clips
    colors, directions = list(COLORS), list(DIRECTIONS)
    # each attribute shifted to the next value: always wrong, so a faithful reader scores ~0
    shifted = [(colors[(colors.index(c) + 1) % 6], SHAPES[(SHAPES.index(s) + 1) % 3],
                directions[(directions.index(d) + 1) % 4]) for c, s, d in combos]
    accuracy = _accuracy(videos, shifted, real_reads)
    assert all(a <= 0.05 for a in accuracy.values()), accuracy
    # prompts drawn independently of the videos: chance, within the binomial margin
    rng = np.random.default_rng(7)
    random_prompts = [ALL_COMBOS[i] for i in rng.integers(len(ALL_COMBOS), size=len(videos))]
    accuracy = _accuracy(videos, random_prompts, real_reads)
    assert all(abs(accuracy[d] - CHANCE[d]) <= MARGIN for d in CHANCE), (accuracy, MARGIN)


@pytest.mark.parametrize("kind", ["uniform", "smooth"])
def test_noise_scores_near_chance(real_clips, kind):
    _, combos = real_clips
    rng = np.random.default_rng(3)
    shape = (len(combos), 9, 32, 32, 3)
    if kind == "uniform":
        noise = rng.integers(0, 256, shape, dtype=np.uint8)
    else:  # blobs of a few pixels: object-like structure, no object
        noise = np.clip(128 + 200 * _blur(rng.normal(size=shape).reshape(-1, 32, 32, 3), 3), 0, 255)
        noise = noise.astype(np.uint8).reshape(shape)
    accuracy = _accuracy(list(noise), combos)
    assert all(accuracy[d] <= CHANCE[d] + MARGIN for d in CHANCE), (accuracy, MARGIN)


def test_no_object_is_wrong_everywhere():
    black = np.zeros((9, 32, 32, 3), dtype=np.uint8)
    read = detect(black)
    assert not read.found and read.color is None and read.shape is None and read.direction is None
    scores, rows = score_videos([black, black], ["a red circle moving left"] * 2)
    assert scores["color"] == scores["shape"] == scores["motion"] == scores["consistency"] == 0.0
    assert not rows.found.any()
    with pytest.raises(ValueError, match="video"):
        detect(black[0])


# --- metrics with exact answers ----------------------------------------------------------------


def test_flicker_is_the_vbench_formula():
    still = np.full((9, 32, 32, 3), 77, dtype=np.uint8)
    assert flicker_score(still) == 1.0
    alternating = np.zeros((5, 4, 4, 3), dtype=np.uint8)
    alternating[1::2] = 51  # every consecutive pair differs by 51 everywhere
    assert flicker_score(alternating) == pytest.approx((255 - 51) / 255)


def test_psnr_exact():
    a = np.zeros((9, 8, 8, 3), dtype=np.uint8)
    b = a.copy()
    assert psnr(a, b) == PSNR_CAP
    b[...] = 10  # MSE = 100
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    with pytest.raises(ValueError, match="reference"):
        psnr(a, b[:3])


def test_frechet_distance_exact_in_one_dimension():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 1))
    other = 3.0 + 2.0 * real  # standardised by real's stats: mean 3 / s, std 2
    s = real.std()
    mean_shift = (other.mean() - real.mean()) / s
    expected = mean_shift**2 + (other.std(ddof=1) / s - real.std(ddof=1) / s) ** 2
    assert frechet_distance(other, real) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="features"):
        frechet_distance(real[:1], real)


def test_frechet_distance_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)) @ rng.normal(size=(5, 5)), rng.normal(size=(40, 5))
    scale = np.maximum(y.std(axis=0), 0.05)
    xs, ys = (x - y.mean(axis=0)) / scale, (y - y.mean(axis=0)) / scale
    cx, cy = np.cov(xs, rowvar=False), np.cov(ys, rowvar=False)
    expected = ((xs.mean(0) - ys.mean(0)) ** 2).sum() + np.trace(cx + cy - 2 * linalg.sqrtm(cx @ cy).real)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)


def test_features_order_real_degraded_noise(real_clips):
    videos, combos = real_clips
    rng = np.random.default_rng(0)
    prompts = [prompt_for(*c) for c in combos[:24]]
    reference = np.stack([video_features(v) for p, i in zip(prompts, range(24)) for v in real_videos(p, i, 2)])
    real = np.stack([video_features(v) for v in videos[:24]])
    degraded = np.stack([video_features(_degrade(v, rng)) for v in videos[:24]])
    noise = np.stack([video_features(rng.integers(0, 256, v.shape, dtype=np.uint8)) for v in videos[:24]])
    fd_real, fd_degraded, fd_noise = (frechet_distance(f, reference) for f in (real, degraded, noise))
    assert fd_real < 5 < fd_degraded < fd_noise
    assert object_consistency(videos[0]) > 0.9


def test_score_videos_real_vs_noise(real_clips):
    videos, combos = real_clips
    prompts, seeds = [prompt_for(*c) for c in combos[:12]], list(range(12))
    scores, rows = score_videos(videos[:12], prompts, seeds, reference_videos=videos[:12])
    assert scores["color"] == scores["shape"] == scores["motion"] == 1.0
    assert scores["fidelity"] > 0.9 and scores["flicker"] > 0.95 and scores["consistency"] > 0.9
    assert scores["total"] > 95 and scores["psnr"] == PSNR_CAP
    assert len(rows) == 12 and {"prompt", "seed", "color_ok", "flicker", "psnr"} <= set(rows.columns)
    noise = list(np.random.default_rng(0).integers(0, 256, (12, 9, 32, 32, 3), dtype=np.uint8))
    noisy, _ = score_videos(noise, prompts, seeds)
    assert noisy["fidelity"] < 0.01 and noisy["total"] < 40


# --- the benchmark protocol --------------------------------------------------------------------


def test_benchmark_prompts_fixed_and_balanced():
    pairs = benchmark_prompts("train", 12, base_seed=5)
    assert pairs == benchmark_prompts("train", 12, base_seed=5)
    assert [s for _, s in pairs] == list(range(5, 17))
    combos = [parse_prompt(p) for p, _ in pairs]
    assert all(c in TRAIN_COMBOS for c in combos) and len(set(combos)) == 12
    assert len({c[0] for c in combos}) == 6 and len({c[1] for c in combos}) == 3 and len({c[2] for c in combos}) == 4
    heldout = benchmark_prompts("heldout", 8)
    assert [parse_prompt(p) for p, _ in heldout[:6]] and {parse_prompt(p) for p, _ in heldout} == set(HELDOUT_COMBOS)
    assert heldout[6][0] == heldout[0][0]  # cycles
    with pytest.raises(ValueError, match="`split`.*'test'"):
        benchmark_prompts("test", 4)
    with pytest.raises(ValueError, match="`num_videos`.*>= 1.*0"):
        benchmark_prompts("train", 0)


def test_run_procbench_end_to_end(tiny_pipeline_dir):
    result = run_procbench(tiny_pipeline_dir, num_steps=2, split="heldout", num_videos=2,
                           reference=tiny_pipeline_dir, reference_steps=3)
    assert result.num_steps == 2 and result.nfe == 4 and result.num_videos == 2 and result.split == "heldout"
    assert list(result.videos.seed) == [0, 1] and len(result.videos) == 2
    for key in ("color", "shape", "motion", "flicker", "consistency", "fidelity"):
        assert 0.0 <= result.scores[key] <= 1.0
    assert 0.0 <= result.total <= 100.0 and result.scores["psnr"] > 0
    assert set(result.timings) == {"text_encoder", "denoising", "vae_decode", "total"}
    assert json.loads(json.dumps(result.to_dict()))["total"] == result.total
    with pytest.raises(ValueError, match="`steps`.*>= 1.*0"):
        run_procbench(tiny_pipeline_dir, num_steps=0, num_videos=1)
    scores, rows = vae_roundtrip(load_model(tiny_pipeline_dir).vae, "train", 2)
    assert len(rows) == 2 and 0 <= scores["total"] <= 100 and "psnr" in scores
    with pytest.raises(ValueError, match="`model`.*'no-such-model'"):
        run_procbench("no-such-model", num_videos=1)


def test_generate_videos_batched_matches_one_at_a_time(tiny_pipeline_dir):
    """Batches keep each pair's own prompt and seed: the same latents as `generate` alone, up to rounding."""
    from accvideo.eval.procbench import generate_videos
    from accvideo.generation import generate

    model = load_model(tiny_pipeline_dir)
    pairs = [("a red circle moving left", 3), ("a blue square moving up", 8), ("a green triangle moving down", 5)]
    videos, results = generate_videos(model, pairs, num_steps=3, batch_size=2)  # a batch of 2, then one alone
    assert [(r.prompt, r.seed) for r in results] == pairs and len(videos) == 3
    for (prompt, seed), result in zip(pairs, results):
        alone = generate(model, prompt, seed=seed, num_steps=3)
        assert result.nfe == alone.nfe and result.video.shape == alone.video.shape
        assert (result.latents - alone.latents).abs().max() < 1e-4
        assert np.abs(result.video.astype(int) - alone.video.astype(int)).max() <= 1
    assert (results[0].latents - results[1].latents).abs().max() > 0.1  # distinct pairs, distinct videos
    assert set(results[0].timings) == {"text_encoder", "denoising", "vae_decode", "total"}
    with pytest.raises(ValueError, match="`batch_size`.*positive.*0"):
        generate_videos(model, pairs, batch_size=0)


def test_scorer_reference_kept_on_disk_and_agreement_off(tiny_pipeline_dir, tmp_path, monkeypatch):
    """A second scorer on the same cache (another process, in `reproduce --jobs 2`) reuses the saved
    reference videos; `agreement=False` never samples the reference; a damaged file is made again."""
    import accvideo.eval.scorer as scorer_module
    from accvideo.eval.scorer import Scorer

    calls = []
    real_generate = scorer_module.generate_videos
    def counted(model, pairs, steps, **kw):
        calls.append(steps)
        return real_generate(model, pairs, steps, **kw)

    monkeypatch.setattr(scorer_module, "generate_videos", counted)
    teacher = str(tiny_pipeline_dir)
    first = Scorer(teacher, tmp_path / "scores", "train", 2).score("one step", teacher, 1)
    assert calls == [1, 4] and (tmp_path / "scores" / "reference-train-n2.npz").exists()  # the row, the reference
    second = Scorer(teacher, tmp_path / "scores", "train", 2).score("two steps", teacher, 2)
    assert calls == [1, 4, 2] and "psnr" in first and "psnr" in second  # the reference came from disk
    totals = Scorer(teacher, tmp_path / "wide", "train", 2, agreement=False).score("one step", teacher, 1)
    assert calls == [1, 4, 2, 1] and "psnr" not in totals and totals["total"] == first["total"]
    (tmp_path / "scores" / "reference-train-n2.npz").write_bytes(b"damaged")
    assert "psnr" in Scorer(teacher, tmp_path / "scores", "train", 2).score("three steps", teacher, 3)
    assert calls == [1, 4, 2, 1, 3, 4]


def test_real_clip_reads_are_kept_per_process(monkeypatch):
    """Every row of a benchmark reads the same real clips: a second read of the same prompts and
    seeds renders none and gives the same reads; another world is another key."""
    import dataclasses

    import accvideo.eval.procbench as procbench
    from accvideo.eval.dimensions import with_cis
    from accvideo.eval.procbench import read_videos

    pairs = benchmark_prompts("train", 3)
    prompts, seeds = [p for p, _ in pairs], [s for _, s in pairs]
    videos = [real_videos(p, s + 100, 1)[0] for p, s in pairs]
    rendered = []
    real = procbench.real_clips
    monkeypatch.setattr(procbench, "real_clips", lambda *a: rendered.append(a[:2]) or real(*a))
    monkeypatch.setattr(procbench, "_REAL_READS", {})
    first, _ = read_videos(videos, prompts, seeds)
    assert len(rendered) == 3
    again, _ = read_videos(videos, prompts, seeds)
    assert len(rendered) == 3 and with_cis(again, 50) == with_cis(first, 50)
    read_videos(videos, prompts, seeds, world=dataclasses.replace(procbench.WorldConfig(), num_distractors=(1, 1)))
    assert len(rendered) == 6


def test_eval_cli_json_csv_plot(tiny_pipeline_dir, tmp_path, capsys):
    csv, plot = tmp_path / "e.csv", tmp_path / "e.png"
    code = main(["eval", "--model", str(tiny_pipeline_dir), "--steps", "1", "--split", "train", "--num-videos", "2",
                 "--json", "--csv", str(csv), "--plot", str(plot)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["total"] <= 100 and out["num_steps"] == 1 and out["split"] == "train"
    assert {"color", "shape", "motion", "flicker", "consistency", "fidelity", "total"} <= set(out["scores"])
    assert csv.read_text().count("\n") == 3 and plot.stat().st_size > 1000
    assert main(["eval", "--model", str(tiny_pipeline_dir), "--split", "validation", "--num-videos", "1"]) == 2
    assert "`split`" in capsys.readouterr().err
    assert main(["eval", "--model", str(tiny_pipeline_dir), "--num-videos", "0"]) == 2
    assert "`--num-videos`" in capsys.readouterr().err


def test_eval_cli_versus_prints_the_paired_difference(tiny_pipeline_dir, capsys):
    model = str(tiny_pipeline_dir)
    args = ["eval", "--model", model, "--steps", "1", "--num-videos", "3"]
    assert main([*args, "--versus", f"{model}@2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["versus"]["num_steps"] == 2 and out["num_steps"] == 1
    assert out["difference"]["total"] == pytest.approx(out["total"] - out["versus"]["total"])
    lo, hi = out["difference"]["total_ci"]
    assert lo <= out["difference"]["total"] <= hi
    assert main([*args, "--versus", f"{model}@2"]) == 0
    assert "paired bootstrap 95% CI" in capsys.readouterr().out
    assert main([*args, "--versus", f"{model}@0"]) == 2
    assert "STEPS an integer >= 1" in capsys.readouterr().err


def test_bench_structure(tiny_pipeline_dir, tmp_path, capsys):
    teacher = str(tiny_pipeline_dir)
    csv, plot = tmp_path / "b.csv", tmp_path / "b.html"
    code = main(["bench", "--models", f"{teacher},{teacher}@2", "--repeats", "2", "--warmup", "1", "--json",
                 "--csv", str(csv), "--plot", str(plot)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["models"]
    assert [r["model"] for r in rows] == [teacher, f"{teacher}@2"] and out["baseline"] == teacher
    for row in rows:
        assert {"steps", "nfe", "text_encoder_s", "denoising_s", "vae_decode_s", "total_s", "speedup"} <= set(row)
        assert row["total_s"] > 0 and row["speedup"] > 0
    assert rows[0]["speedup"] == 1.0 and rows[0]["steps"] == 4 and rows[1]["steps"] == 2
    assert rows[1]["nfe"] < rows[0]["nfe"]
    assert csv.read_text().count("\n") == 3 and "plotly" in plot.read_text()
    result = run_speed_bench([f"{teacher}@1"], repeats=2, warmup=0)
    assert len(result.samples) == 2 and list(result.samples.repeat) == [0, 1]  # every timed run kept


def test_bench_validation_and_defaults(tiny_pipeline_dir, tmp_path, monkeypatch):
    assert parse_model_spec("tiny-teacher@5") == ("tiny-teacher", 5)
    assert parse_model_spec("runs/x/pipeline") == ("runs/x/pipeline", None)
    for bad in ("tiny-teacher@0", "tiny-teacher@five", "@3", ""):
        with pytest.raises(ValueError, match="`models`"):
            parse_model_spec(bad)
    with pytest.raises(ValueError, match="`repeats`.*>= 1.*0"):
        run_speed_bench([str(tiny_pipeline_dir)], repeats=0)
    with pytest.raises(ValueError, match="repeat an entry"):
        run_speed_bench([str(tiny_pipeline_dir)] * 2)
    # defaults: the teacher plus bundled students that exist; missing ones are skipped
    from accvideo.eval import default_models
    from accvideo.models import registry

    (tmp_path / "tiny-teacher").symlink_to(tiny_pipeline_dir)
    monkeypatch.setattr(registry, "ASSETS", tmp_path)
    monkeypatch.setattr(registry, "BUNDLED", {"tiny-teacher": "tiny-teacher", "tiny-gpd": "tiny-gpd"})
    assert default_models() == ["tiny-teacher"]
    monkeypatch.setattr(registry, "BUNDLED", {"tiny-gpd": "tiny-gpd"})
    with pytest.raises(ValueError, match="`models`"):
        default_models()
