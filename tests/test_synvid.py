"""SynVid: stored trajectories are the teacher's own, runs resume exactly, corruption is named,
a 2-process torchrun run writes the same bytes as a 1-process run,
and a HunyuanVideo teacher works too (its whole text conditioning stored)."""

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import accvideo.synvid as synvid
from accvideo.cli import main
from accvideo.generation import generate
from accvideo.models.registry import load_model
from accvideo.synvid import SynVidConfig, SynVidCorruptError, generate_synvid, open_synvid
from tests.helpers.killed_run import killed
from tests.helpers.ports import free_port

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ["a red circle moving left", "a blue square moving up", "a green triangle moving down"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny batch-1 models run faster on one thread, and the 2-core test machine is shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("\n" + "\n\n".join(PROMPTS) + "\n   \n")  # blank lines are ignored
    return path


def config(teacher, prompts, **overrides):
    base = dict(teacher=str(teacher), prompts=str(prompts), num_steps=4, samples_per_prompt=2, shard_size=2,
                store="all")
    return SynVidConfig(**{**base, **overrides})


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.suffix in (".safetensors", ".csv") or p.name == "config.json"}


@pytest.fixture(scope="module")
def straight(tiny_pipeline_dir, prompt_file, tmp_path_factory):
    """An uninterrupted run: 3 prompts x 2 seeds = 6 samples in 3 shards, all 5 states."""
    out = tmp_path_factory.mktemp("straight")
    summary = generate_synvid(config(tiny_pipeline_dir, prompt_file), out, progress=False)
    return out, summary


def test_stored_trajectory_is_reproduced_by_the_teacher(straight, tiny_pipeline_dir):
    out, summary = straight
    assert summary.complete and summary.generated == 6 and summary.num_stored == 5
    data = open_synvid(out)
    assert len(data) == 6 and data.complete and data.stored_steps == [0, 1, 2, 3, 4]
    pipe = load_model(tiny_pipeline_dir)
    assert torch.equal(data.sigmas, generate(pipe, PROMPTS[0], 0, num_steps=4, decode_video=False).sigmas)
    samples = list(data)
    assert [s["index"] for s in samples] == list(range(6))
    assert [s["seed"] for s in samples] == list(range(6))
    assert [s["prompt"] for s in samples] == [p for p in PROMPTS for _ in range(2)]
    for sample in (samples[0], samples[3], samples[5]):
        # re-run the teacher through the public generate() from the stored seed and prompt
        result = generate(pipe, sample["prompt"], sample["seed"], num_steps=4, return_trajectory=True,
                          decode_video=False)
        assert sample["latents"].shape == result.trajectory[:, 0].shape == (5, 16, 5, 8, 8)
        # same process, same threads, same kernels: bit-exact (a tolerance would hide e.g. a text
        # encoder run outside inference mode, which picks other attention kernels: ~4e-6 off)
        torch.testing.assert_close(sample["latents"], result.trajectory[:, 0], rtol=0, atol=0)
        with torch.inference_mode():  # as generate() runs it
            text = pipe.pipe.encode_prompt(sample["prompt"], do_classifier_free_guidance=False,
                                      max_sequence_length=pipe.sampling["max_sequence_length"])[0]
        assert set(sample["cond"]) == {"encoder_hidden_states"}  # Wan's whole conditioning
        torch.testing.assert_close(sample["cond"]["encoder_hidden_states"], text[0], rtol=0, atol=0)
        assert sample["text_embeds"] is sample["cond"]["encoder_hidden_states"]
    # random access and the all-in-memory view agree with streaming
    assert data[4]["seed"] == 4 and torch.equal(data[4]["latents"], samples[4]["latents"])
    assert torch.equal(data.to_tensors()["latents"][1], samples[1]["latents"])
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch["latents"].shape == (4, 5, 16, 5, 8, 8) and batch["prompt"][2] == PROMPTS[1]
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "shard,file,first_sample,num_samples,sha256,bytes" and len(manifest) == 4


def test_key_steps_store_the_same_states(straight, tiny_pipeline_dir, prompt_file, tmp_path, monkeypatch):
    out, _ = straight
    shared = load_model(tiny_pipeline_dir)  # the cached teacher the writer reads too: it must not move it

    def moved(*args, **kwargs):
        raise AssertionError("generate_synvid moved the shared cached pipeline")

    monkeypatch.setattr(shared.pipe, "to", moved)
    summary = generate_synvid(config(tiny_pipeline_dir, prompt_file, store="key:2"), tmp_path, progress=False)
    key, full = open_synvid(tmp_path), open_synvid(out)
    assert key.stored_steps == [0, 2, 4]
    torch.testing.assert_close(key.stored_sigmas, full.sigmas[[0, 2, 4]])
    for a, b in zip(key, full):
        assert torch.equal(a["latents"], b["latents"][[0, 2, 4]])
    assert summary.bytes_per_trajectory < 0.7 * open_synvid(out).shards[0].bytes / 2


def test_batched_seeds_match_one_at_a_time(straight, tiny_pipeline_dir, prompt_file, tmp_path):
    """batch_size > 1 runs a prompt's seeds together: the same trajectories to float rounding,
    batches never cross a prompt or a shard, and the batch size is part of the dataset's config."""
    out, _ = straight
    # 3 samples per prompt in shards of 4: batches [0,1,2] [3] | [4,5] [6,7] | [8]
    cfg = config(tiny_pipeline_dir, prompt_file, batch_size=3, samples_per_prompt=3, shard_size=4)
    plan = synvid.ShardPlan(PROMPTS, 3, 0, 4)
    assert [[list(b) for b in plan.batches(k, 3)] for k in range(3)] == [[[0, 1, 2], [3]], [[4, 5], [6, 7]], [[8]]]
    assert [list(b) for b in plan.batches(0, 2)] == [[0, 1], [2], [3]]
    generate_synvid(cfg, tmp_path, progress=False)
    batched = open_synvid(tmp_path)
    single = generate_synvid(config(tiny_pipeline_dir, prompt_file, samples_per_prompt=3, shard_size=4),
                             tmp_path / "single", progress=False)
    assert single.complete
    for a, b in zip(batched, open_synvid(tmp_path / "single"), strict=True):
        assert (a["prompt"], a["seed"]) == (b["prompt"], b["seed"])
        torch.testing.assert_close(a["latents"], b["latents"], rtol=1e-4, atol=1e-5)
        assert torch.equal(a["cond"]["encoder_hidden_states"], b["cond"]["encoder_hidden_states"])
    with pytest.raises(ValueError, match="`batch_size` is 3 there but 1 now"):
        generate_synvid(config(tiny_pipeline_dir, prompt_file, samples_per_prompt=3, shard_size=4), tmp_path,
                        progress=False)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1 but is 0"):
        generate_synvid(config(tiny_pipeline_dir, prompt_file, batch_size=0), tmp_path / "bad", progress=False)


@pytest.mark.slow  # a subprocess: about 10 s
def test_killed_run_resumes_to_the_same_dataset(straight, tiny_pipeline_dir, prompt_file, tmp_path):
    cfg = config(tiny_pipeline_dir, prompt_file)
    # a deliberately limited run: shard 0 only
    first = generate_synvid(cfg, tmp_path, limit_shards=1, progress=False)
    assert first.generated == 2 and first.complete_samples == 2 and not first.complete
    assert len(open_synvid(tmp_path)) == 2

    # then a real kill -9, half-way through writing shard 2 (after shard 1 was written): its temp
    # file stays behind, as after a power cut
    done = killed({"kind": "synvid", "out": str(tmp_path), "config": dataclasses.asdict(cfg), "kill": {"shard": 2}},
                  REPO)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (tmp_path / "shard-00001.json").exists() and not (tmp_path / "shard-00002.safetensors").exists()
    assert len(list(tmp_path.glob(".shard-00002.safetensors.*.tmp"))) == 1

    # the rerun finishes only what is missing, and removes the killed run's temp file
    last = generate_synvid(cfg, tmp_path, progress=False)
    assert last.generated == 2 and last.skipped_shards == 2 and last.complete
    assert not list(tmp_path.glob(".*.tmp"))
    indices = [s["index"] for s in open_synvid(tmp_path)]
    assert sorted(indices) == indices == list(range(6))  # each sample exactly once
    assert digests(tmp_path) == digests(straight[0])


def test_a_rerun_regenerates_flipped_and_truncated_shards(straight, tiny_pipeline_dir, prompt_file, tmp_path,
                                                          caplog, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(straight[0], out)
    shard1, shard2 = out / "shard-00001.safetensors", out / "shard-00002.safetensors"
    size = shard1.stat().st_size
    data = bytearray(shard1.read_bytes())
    data[-7] ^= 0xFF  # the size stays: only the sha256 tells
    shard1.write_bytes(bytes(data))
    assert shard1.stat().st_size == size
    shard2.write_bytes(shard2.read_bytes()[:1000])  # the size check finds this one
    assert main(["verify", str(out)]) == 2
    err = capsys.readouterr().err
    assert "shard-00001.safetensors is corrupt" in err and "shard-00002.safetensors is truncated" in err
    with caplog.at_level("WARNING", logger="accvideo.synvid.writer"):
        rerun = generate_synvid(config(tiny_pipeline_dir, prompt_file), out, progress=False)
    assert rerun.generated == 4 and rerun.skipped_shards == 1 and rerun.complete
    assert f"{shard1} does not match its sidecar" in caplog.text and f"{shard2} does not match" in caplog.text
    assert digests(out) == digests(straight[0])
    assert open_synvid(out).check() == []
    assert main(["verify", str(out)]) == 0


def test_corrupt_and_truncated_shards_are_named(straight, tmp_path, caplog):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(straight[0], out)
    shard1 = out / "shard-00001.safetensors"
    data = bytearray(shard1.read_bytes())
    data[-7] ^= 0xFF  # one flipped bit pattern in the tensor data
    shard1.write_bytes(bytes(data))
    shard2 = out / "shard-00002.safetensors"
    shard2.write_bytes(shard2.read_bytes()[:1000])

    with pytest.raises(SynVidCorruptError, match="shard-00001.safetensors is corrupt"):
        list(open_synvid(out))
    with pytest.raises(SynVidCorruptError, match="shard-00002.safetensors is truncated"):
        open_synvid(out)[5]
    data = open_synvid(out, skip_corrupt=True)
    assert [s["index"] for s in data] == [0, 1]  # the rest stays readable
    assert data.skipped == ["shard-00001.safetensors", "shard-00002.safetensors"]
    problems = open_synvid(out).check()
    assert len(problems) == 2 and "shard-00001" in problems[0] and "shard-00002" in problems[1]


def test_older_format_version_is_refused_by_name(straight, tiny_pipeline_dir, prompt_file, tmp_path):
    """Version 1 stored Wan's `text_embeds` alone; reading or extending one is refused, saying so."""
    import shutil

    out = tmp_path / "v1"
    shutil.copytree(straight[0], out)
    config_path = out / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "format_version": 1}))
    message = r"`format_version` must be 2 for this reader and writer but is 1 .* regenerate"
    with pytest.raises(ValueError, match=message):
        open_synvid(out)
    with pytest.raises(ValueError, match=message):
        generate_synvid(config(tiny_pipeline_dir, prompt_file), out, progress=False)


def test_rerun_with_another_config_is_refused(straight, tiny_pipeline_dir, prompt_file):
    out, _ = straight
    with pytest.raises(ValueError, match="`num_steps` is 4 there but 6 now"):
        generate_synvid(config(tiny_pipeline_dir, prompt_file, num_steps=6), out, progress=False)
    with pytest.raises(ValueError, match="`dtype` is 'float32' there but 'float16' now"):
        generate_synvid(config(tiny_pipeline_dir, prompt_file, dtype="float16"), out, progress=False)


def test_bad_inputs_name_argument_rule_and_value(tiny_pipeline_dir, prompt_file, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n")
    cases = [
        (dict(prompts=str(blank)), "`prompts` file .*blank.txt.* must hold at least one non-blank line"),
        (dict(prompts="nonsense"), r"`prompts` must be a preset \['train', 'heldout', 'all'\] .* 'nonsense'"),
        (dict(num_steps=0), "`num_steps` must be an integer >= 1 but is 0"),
        (dict(store="key:9"), "`store` must be 'all', 'key:M' .* but is 'key:9'"),
        (dict(store="0,3,2"), "`store` must be .* but is '0,3,2'"),
        (dict(store="everything"), "`store` must be .* but is 'everything'"),
        (dict(dtype="int8"), "`dtype` must be one of"),
        (dict(compute_dtype="fp8"), r"`compute_dtype` must be one of \['fp32', 'bf16'\] but is 'fp8'"),
        (dict(shard_size=0), "`shard_size` must be an integer >= 1 but is 0"),
        (dict(teacher="no-such-model"), "`model` must be a known model name .* 'no-such-model'"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            args = {"teacher": tiny_pipeline_dir, "prompts": prompt_file, **overrides}
            generate_synvid(config(**args), tmp_path / "x", progress=False)
    assert len(synvid.load_prompts("train")) == 66 and len(synvid.load_prompts("heldout")) == 6


def test_videos_and_reduced_precision(tiny_pipeline_dir, prompt_file, tmp_path):
    cfg = config(tiny_pipeline_dir, prompt_file, samples_per_prompt=1, shard_size=3, dtype="bfloat16",
                 store="0,4", videos=True)
    generate_synvid(cfg, tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [f"sample-00000{i}.mp4" for i in range(3)]
    sample = open_synvid(tmp_path)[2]
    assert sample["latents"].dtype == torch.bfloat16 and sample["latents"].shape == (2, 16, 5, 8, 8)
    assert sample["prompt"] == PROMPTS[2] and sample["cond"]["encoder_hidden_states"].dtype == torch.bfloat16


def test_bf16_teacher_is_a_recorded_other_dataset(tiny_pipeline_dir, prompt_file, tmp_path):
    """`compute_dtype=bf16` runs the teacher in bf16: its trajectories are close to fp32's but not equal,
    so the config records it, and adding states to an fp32 dataset with it is refused."""
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    common = dict(samples_per_prompt=1, shard_size=3, store="0,4")
    generate_synvid(config(tiny_pipeline_dir, prompt_file, **common), fp32, progress=False)
    generate_synvid(config(tiny_pipeline_dir, prompt_file, compute_dtype="bf16", **common), bf16, progress=False)
    a, b = open_synvid(fp32)[0]["latents"], open_synvid(bf16)[0]["latents"]
    assert torch.equal(a[0], b[0])  # the same noise
    assert not torch.equal(a[1], b[1]) and torch.allclose(a[1], b[1], atol=0.25)  # bf16 arithmetic, same result
    assert json.loads((bf16 / "config.json").read_text())["compute_dtype"] == "bf16"
    assert "compute_dtype" not in json.loads((fp32 / "config.json").read_text())  # older fp32 datasets still match
    with pytest.raises(ValueError, match="`compute_dtype` is None there but 'bf16' now"):
        generate_synvid(config(tiny_pipeline_dir, prompt_file, compute_dtype="bf16", **common), fp32, progress=False)


@pytest.fixture(scope="module")
def tiny_hunyuan_dir(tmp_path_factory):
    """The tiny random-init HunyuanVideo pipeline saved with its sampling defaults (embedded guidance 6)."""
    from tests.helpers.tiny_hunyuan import save_tiny_hunyuan

    return save_tiny_hunyuan(tmp_path_factory.mktemp("hy") / "pipe")


def test_hunyuan_synvid_stores_its_trajectories_and_whole_conditioning(tiny_hunyuan_dir, tmp_path):
    """A HunyuanVideo teacher: the stored trajectory is generate()'s bit for bit, and `cond` holds what its
    transformer is called with (token states, attention mask, pooled CLIP vector), as do the key states."""
    from accvideo.generation import encode, resolve_sampling
    from accvideo.training.data import load_key_states

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS[:2]) + "\n")
    cfg = SynVidConfig(teacher=str(tiny_hunyuan_dir), prompts=str(prompts), num_steps=4, shard_size=2, store="all")
    assert generate_synvid(cfg, tmp_path / "hy", progress=False).complete
    data = open_synvid(tmp_path / "hy")
    assert data.family == "hunyuan" and data.embedded_guidance_scale == 6.0 and len(data) == 2
    model = load_model(tiny_hunyuan_dir)
    spec = resolve_sampling(model, num_steps=4)
    for sample in data:
        result = generate(model, sample["prompt"], sample["seed"], num_steps=4, return_trajectory=True,
                          decode_video=False)
        assert sample["latents"].shape == result.trajectory[:, 0].shape == (5, 4, 3, 4, 4)
        torch.testing.assert_close(sample["latents"], result.trajectory[:, 0], rtol=0, atol=0)
        with torch.inference_mode():  # as generate() runs it
            cond = encode(model, sample["prompt"], spec).cond
        assert set(sample["cond"]) == {"encoder_hidden_states", "encoder_attention_mask", "pooled_projections"}
        for name, value in cond.items():
            torch.testing.assert_close(sample["cond"][name], value[0], rtol=0, atol=0)
        mask = sample["cond"]["encoder_attention_mask"]
        assert mask.shape == (8,) and sample["cond"]["pooled_projections"].shape == (8,)
        assert set(mask.tolist()) <= {0.0, 1.0} and mask.sum() >= 1
    keys = load_key_states(tmp_path / "hy", 2)
    assert keys["latents"].shape == (2, 3, 4, 3, 4, 4) and keys["embedded_guidance_scale"] == 6.0
    assert {k: tuple(v.shape) for k, v in keys["cond"].items()} == {
        "encoder_hidden_states": (2, 8, 16), "encoder_attention_mask": (2, 8), "pooled_projections": (2, 8)}
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2)))  # the default collate nests `cond`
    assert batch["cond"]["encoder_attention_mask"].shape == (2, 8)


def _torchrun(args, nproc, port):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={port}",
           "-m", "accvideo", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_process_torchrun_equals_one_process(tiny_pipeline_dir, prompt_file, tmp_path, capsys):
    from accvideo.cli import main

    args = ["synvid", "--teacher", str(tiny_pipeline_dir), "--prompts", str(prompt_file), "--num-steps", "4",
            "--samples-per-prompt", "2", "--shard-size", "2", "--store", "key:2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0  # the CLI, in this process
    out = capsys.readouterr().out
    assert "6 trajectories generated" in out and "MB per trajectory" in out and "on 1 process(es)" in out
    two = _torchrun([*args, "--out", str(tmp_path / "two")], 2, free_port())
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("synvid:") == 1 and "on 2 process(es)" in two.stdout  # rank 0 reports
    assert digests(tmp_path / "one") == digests(tmp_path / "two")  # byte-identical shards, manifest, config
    assert len(digests(tmp_path / "two")) == 3 + 2
    assert json.loads((tmp_path / "two" / "config.json").read_text())["stored_steps"] == [0, 2, 4]

    assert main(["synvid-check", str(tmp_path / "two")]) == 0
    assert "6 samples, complete, 0 bad shard(s)" in capsys.readouterr().out
    (tmp_path / "two" / "shard-00001.safetensors").write_bytes(b"junk")
    assert main(["synvid-check", str(tmp_path / "two")]) == 1
    assert "shard-00001.safetensors is truncated" in capsys.readouterr().out


def test_real_wan_teacher_takes_wan_shift_and_negative_prompt(tiny_pipeline_dir, prompt_file, tmp_path, monkeypatch):
    """A real Wan teacher (a folder as `hf download` leaves it, no accvideo_sampling.json) samples
    SynVid at Wan's shift 5.0 with Wan's own negative prompt under CFG; the tiny teacher is unchanged."""
    import shutil

    from accvideo.generation import resolve_sampling
    from accvideo.models.real import WAN_NEGATIVE_PROMPT
    from accvideo.models.registry import SAMPLING_FILE
    from accvideo.synvid import resolve_config
    from accvideo.synvid.format import sampling_spec

    monkeypatch.setenv("ACCVIDEO_MODELS_DIR", str(tmp_path / "models"))
    folder = tmp_path / "models" / "wan2.1-t2v-1.3b"
    shutil.copytree(tiny_pipeline_dir, folder)
    (folder / SAMPLING_FILE).unlink()
    teacher = load_model("wan2.1-t2v-1.3b", cached=False)
    assert teacher.pipe.scheduler.config.get("shift", teacher.pipe.scheduler.config.get("flow_shift")) != 5.0
    small = dict(num_frames=9, height=32, width=32)
    resolved = resolve_config(SynVidConfig(teacher="wan2.1-t2v-1.3b", prompts=str(prompt_file), num_steps=4, **small),
                              teacher)
    assert resolved["shift"] == 5.0 and resolved["guidance_scale"] == 5.0
    assert resolved["negative_prompt"] == WAN_NEGATIVE_PROMPT and WAN_NEGATIVE_PROMPT.endswith("倒着走")
    assert sampling_spec(resolved).negative_prompt == WAN_NEGATIVE_PROMPT
    assert "sampler" not in resolved  # Euler, as every dataset before
    # the caller's own negative prompt, the empty one included, wins
    assert resolve_sampling(teacher, negative_prompt="", **small).negative_prompt == ""
    tiny = resolve_config(SynVidConfig(teacher=str(tiny_pipeline_dir), prompts=str(prompt_file), num_steps=4),
                          load_model(tiny_pipeline_dir))
    assert tiny["negative_prompt"] == "" and tiny["shift"] != 5.0
