"""Bad inputs and damaged files, one table: the CLI, the Python API, the app's endpoints (through
gradio_client) and corrupted files. Each case asserts that the message names the argument, the
rule and the value received, and that nothing was written or lost (the folder it touches is the
same, byte for byte, afterwards).

`CASES` is also the source of docs/RELIABILITY.md (`python scripts/reliability_doc.py`;
`test_reliability_doc_is_up_to_date` fails when the two differ). In a case, `{tmp}` stands for
the case's own temporary folder, `{runs}` for the app's runs folder.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROMPT = "a red circle moving left"


@dataclass(frozen=True)
class Case:
    """One bad input: where it enters (`surface`), what is given (`given`), and the three parts its
    message must hold. `call` is the CLI's argv, an API call's name in API_CALLS, an endpoint with its
    keywords, or a damage in DAMAGES."""

    surface: str  # "cli" | "api" | "app" | "file"
    id: str
    given: str
    argument: str
    rule: str
    value: str
    call: object = field(default=None, compare=False)


def cli(id, argv, argument, rule, value, given=None):
    return Case("cli", id, given or "python -m accvideo " + " ".join(argv), argument, rule, value, argv)


def api(id, given, argument, rule, value):
    return Case("api", id, given, argument, rule, value, id)


def app(id, endpoint, changes, argument, rule, value):
    given = endpoint + " " + ", ".join(f"{k}={v!r}" for k, v in changes.items())
    return Case("app", id, given, argument, rule, value, (endpoint, changes))


def damaged(id, given, argument, rule, value):
    return Case("file", id, given, argument, rule, value, id)


GEN = ["generate", "--prompt", PROMPT, "--steps", "1"]
SYN = ["synvid", "--num-steps", "2", "--out", "{tmp}/synvid"]
GPD = ["distill", "gpd", "--out", "{tmp}/gpd"]
INTO = ["--steps", "1", "--set", "method.teacher_steps=4", "--set", "method.schedule=[2,1]"]

CASES = [
    # ---------------------------------------------------------------- CLI
    cli("guidance-nan", GEN + ["--guidance", "nan"], "`guidance_scale`", "must be a finite number >= 0", "nan"),
    cli("guidance-inf", GEN + ["--guidance", "inf"], "`guidance_scale`", "must be a finite number >= 0", "inf"),
    cli("guidance-negative", GEN + ["--guidance", "-1"], "`guidance_scale`", "must be a finite number >= 0",
        "-1.0"),
    cli("frames-2049", GEN + ["--frames", "2049"], "`num_frames`", "must be at most 127 for this model", "2049"),
    cli("frames-not-4k+1", GEN + ["--frames", "10"], "`num_frames`", "must be 2k + 1", "10"),
    cli("height-not-multiple", GEN + ["--height", "33"], "`height`", "must be a positive multiple of 8", "33"),
    cli("width-too-large", GEN + ["--width", "4096"], "`width`", "must be at most 512 for this model", "4096"),
    cli("steps-zero", ["generate", "--prompt", PROMPT, "--steps", "0"], "`num_steps`", "must be an integer >= 1",
        "0"),
    cli("seed-negative", GEN + ["--seed", "-5"], "`seed`", "must be an integer in [0, ", "-5"),
    cli("seed-2**64", GEN + ["--seed", str(2**64)], "`seed`", "must be an integer in [0, ", str(2**64)),
    cli("out-not-mp4", GEN + ["--out", "{tmp}/clip.txt"], "`--out`", "must be a path ending in .mp4", "clip.txt"),
    cli("model-unknown", GEN + ["--model", "nope"], "`model`", "must be a known model name", "'nope'"),
    cli("prompt-empty", ["generate", "--prompt", "", "--steps", "1"], "`prompt`", "must be a non-empty string",
        "''"),
    cli("synvid-steps-zero", ["synvid", "--num-steps", "0", "--out", "{tmp}/synvid"], "`num_steps`",
        "must be an integer >= 1", "0"),
    cli("synvid-store-key-too-large", SYN + ["--store", "key:99"], "`store`", "'key:M' with 1 <= M <= num_steps=2",
        "'key:99'"),
    cli("synvid-store-not-increasing", SYN + ["--store", "2,1"], "`store`", "increasing step indices in [0, 2]",
        "'2,1'"),
    cli("synvid-prompts-missing", SYN + ["--prompts", "missing.txt"], "`prompts`",
        "must be a preset ['train', 'heldout', 'all'] or an existing text file", "'missing.txt'"),
    cli("synvid-shard-size-zero", SYN + ["--shard-size", "0"], "`shard_size`", "must be an integer >= 1", "0"),
    cli("synvid-batch-size-zero", SYN + ["--batch-size", "0"], "`batch_size`", "must be an integer >= 1", "0"),
    cli("synvid-base-seed-negative", SYN + ["--base-seed", "-1"], "`base_seed`", "must be an integer >= 0", "-1"),
    cli("synvid-limit-shards-negative", SYN + ["--limit-shards", "-1"], "`limit_shards`",
        "must be an integer >= 0", "-1"),
    cli("synvid-guidance-nan", SYN + ["--guidance", "nan"], "`guidance_scale`", "must be a finite number >= 0",
        "nan"),
    cli("synvid-frames-2049", SYN + ["--frames", "2049"], "`num_frames`", "must be at most 127 for this model",
        "2049"),
    cli("synvid-into-accvideo-run", ["synvid", "--num-steps", "2", "--out", "{tmp}/accvideo-run"], "`out`",
        "holds a accvideo run, and this command writes a synvid run", "accvideo-run"),
    cli("accvideo-without-synvid", ["distill", "accvideo", "--out", "{tmp}/a"], "`--synvid`",
        "is required for `distill accvideo`", "but is None"),
    cli("accvideo-synvid-missing", ["distill", "accvideo", "--synvid", "{tmp}/nosuch", "--out", "{tmp}/a"],
        "`--synvid`", "must be a SynVid folder", "nosuch"),
    cli("gpd-schedule-malformed", GPD + ["--schedule", "48,x"], "`--schedule`",
        "must list the teacher's steps then each stage's", "'48,x'"),
    cli("gpd-schedule-not-dividing", GPD + ["--set", "method.teacher_steps=4", "--set", "method.schedule=[3,2]"],
        "`method.schedule`", "each count dividing the previous one", "[3, 2]"),
    cli("gpd-lr-zero", GPD + ["--set", "trainer.lr=0"], "`trainer.lr`", "must be > 0", "0.0"),
    cli("gpd-lr-nan", GPD + ["--set", "trainer.lr=nan"], "`trainer.lr`", "must be > 0", "nan"),
    cli("gpd-steps-zero", GPD + ["--set", "trainer.steps=0"], "`trainer.steps`", "must be >= 1", "0"),
    cli("gpd-parallel-unknown", GPD + ["--set", "trainer.parallel=xyz"], "`trainer.parallel`",
        "must be 'ddp' or 'fsdp2'", "'xyz'"),
    cli("gpd-mixed-precision-unknown", GPD + ["--set", "trainer.mixed_precision=fp8"], "`trainer.mixed_precision`",
        "must be 'no' or 'bf16'", "'fp8'"),
    cli("gpd-batch-size-text", GPD + ["--set", "trainer.batch_size=abc"], "`trainer.batch_size`", "must be int",
        "'abc'"),
    cli("gpd-unknown-key", GPD + ["--set", "trainer.bogus=1"], "'trainer.bogus'", "unknown config key",
        "'trainer.bogus=1'"),
    cli("gpd-into-accvideo-run", ["distill", "gpd", "--out", "{tmp}/accvideo-run"] + INTO, "`out`",
        "holds a accvideo run, and this command writes a gpd run", "accvideo-run"),
    cli("accvideo-into-gpd-run", ["distill", "accvideo", "--synvid", "{tmp}/synvid", "--out", "{tmp}/gpd-run",
                                  "--steps", "1", "--set", "method.num_key_steps=2"], "`out`",
        "holds a gpd run, and this command writes a accvideo run", "gpd-run"),
    cli("verify-nothing-there", ["verify", "{tmp}/none"], "`path`", "must be a model name, or a model, run or "
        "SynVid folder", "none", given="python -m accvideo verify {tmp}/none"),
    # ---------------------------------------------------------------- Python API
    api("generate-guidance-nan", "generate(model, prompt, guidance_scale=nan)", "`guidance_scale`",
        "must be a finite number >= 0", "nan"),
    api("generate-seed-float", "generate(model, prompt, seed=1.5)", "`seed`", "must be an integer in [0, ", "1.5"),
    api("resolve-frames-2049", "resolve_sampling(model, num_frames=2049)", "`num_frames`",
        "must be at most 127 for this model", "2049"),
    api("resolve-shift-nan", "resolve_sampling(model, shift=nan)", "`shift`", "must be a finite number > 0", "nan"),
    api("resolve-shift-zero", "resolve_sampling(model, shift=0)", "`shift`", "must be a finite number > 0", "0"),
    api("synvid-dtype", "SynVidConfig(dtype='float64').check()", "`dtype`",
        "must be one of ['float32', 'float16', 'bfloat16']", "'float64'"),
    api("synvid-store-key-zero", "SynVidConfig(store='key:0').check()", "`store`", "'key:M' with 1 <= M",
        "'key:0'"),
    api("trainer-batch-size-zero", "TrainerConfig(batch_size=0).validate()", "`trainer.batch_size`", "must be >= 1",
        "0"),
    api("claim-unknown-kind", "claim_run(out, 'bogus', {})", "`kind`", "must be one of", "'bogus'"),
    api("claim-changed-config", "claim_run(out, 'gpd', {'lr': 2}) after {'lr': 1}", "`lr`",
        "holds a gpd run made with another config", "1 there but 2 now"),
    api("load-model-empty", "load_model('')", "`model`", "must be a model name or a folder", "''"),
    api("check-seed-text", "check_seed('abc')", "`seed`", "must be an integer in [0, 4294967295]", "'abc'"),
    api("job-unknown-field", "make_spec('gpd', name='g', command='rm -rf /')", "unknown gpd job fields",
        "known fields are", "['command']"),
    api("job-manager-max-jobs", "JobManager(runs, max_jobs=0)", "`max_jobs`", "must be an integer >= 1", "0"),
    # ---------------------------------------------------------------- app endpoints (gradio_client)
    app("compare-prompt-blank", "/compare", {"prompt": "  "}, "`prompt`", "must be a non-empty string", "'  '"),
    app("compare-seed-fraction", "/compare", {"seed": 1.5}, "`seed`", "must be an integer in [0, 4294967295]",
        "1.5"),
    app("compare-seed-too-large", "/compare", {"seed": 2**40}, "`seed`", "must be an integer in [0, 4294967295]",
        str(2**40)),
    app("compare-seed-missing", "/compare", {"seed": None}, "`seed`", "must be an integer", "None"),
    app("compare-steps-zero", "/compare", {"teacher_steps": 0}, "`teacher_steps`", "less than minimum value 1",
        "Value 0"),
    app("compare-steps-500", "/compare", {"teacher_steps": 500}, "`teacher_steps`", "greater than maximum value 200",
        "Value 500"),
    app("compare-naive-steps-negative", "/compare", {"naive_steps": -1}, "`naive_steps`", "less than minimum value 0",
        "Value -1"),
    app("compare-steps-missing", "/compare", {"teacher_steps": None}, "`teacher_steps`",
        "must be a value this input can read", "None"),
    app("compare-teacher-unknown", "/compare", {"teacher": "nope"}, "`teacher`", "not in the list of choices",
        "nope"),
    app("compare-student-unknown", "/compare", {"students": ["nope"]}, "`students`", "must be chosen from",
        "'nope'"),
    app("compare-student-escape", "/compare", {"students": ["run:../../etc"]}, "`students`", "must be chosen from",
        "'run:../../etc'"),
    app("compare-too-many-students", "/compare", {"students": ["tiny-accvideo"] * 5}, "`students`",
        "must hold at most 3 models", "holds 5"),
    app("job-gpd-name-escape", "/launch_gpd", {"name": "../x"}, "`name`", "must be 1 to 64 characters", "'../x'"),
    app("job-gpd-name-shell", "/launch_gpd", {"name": "ok; rm -rf /"}, "`name`", "must be 1 to 64 characters",
        "'ok; rm -rf /'"),
    app("job-gpd-schedule-not-dividing", "/launch_gpd", {"schedule": "48,25"}, "`schedule`",
        "each dividing the previous one", "'48,25'"),
    app("job-gpd-schedule-shell", "/launch_gpd", {"schedule": "48,24 && ls"}, "`schedule`", "must list",
        "'48,24 && ls'"),
    app("job-gpd-steps-zero", "/launch_gpd", {"steps": 0}, "`steps`", "must be an integer in [1, 100000]", "0"),
    app("job-gpd-steps-fraction", "/launch_gpd", {"steps": 2.5}, "`steps`", "must be an integer in [1, 100000]",
        "2.5"),
    app("job-gpd-lr-too-large", "/launch_gpd", {"lr": 5.0}, "`lr`", "must be a number in [1e-07, 0.1]", "5.0"),
    app("job-gpd-batch-negative", "/launch_gpd", {"batch_size": -1}, "`batch_size`", "must be an integer in [1, 256]",
        "-1"),
    app("job-gpd-nproc-huge", "/launch_gpd", {"nproc": 10_000}, "`nproc`", "must be an integer in [1, ", "10000"),
    app("job-gpd-teacher-path", "/launch_gpd", {"teacher": "/etc/passwd"}, "`teacher`", "is not in the list of choices",
        "/etc/passwd"),
    app("job-synvid-steps-one", "/launch_synvid", {"num_steps": 1}, "`num_steps`", "must be an integer in [2, 200]",
        "1"),
    app("job-synvid-preset-file", "/launch_synvid", {"preset": "mine.txt"}, "`preset`", "is not in the list of choices",
        "mine.txt"),
    app("job-synvid-samples-zero", "/launch_synvid", {"samples_per_prompt": 0}, "`samples_per_prompt`",
        "must be an integer in [1, 64]", "0"),
    app("accvideo-synvid-unknown", "/launch_accvideo", {"synvid_run": "nope"}, "`synvid_run`",
        "must name a SynVid run", "'nope'"),
    app("accvideo-synvid-malformed", "/launch_accvideo", {"synvid_run": "bad-config"}, "`synvid_run`",
        "must name a SynVid run with a valid config.json", "'bad-config'"),
    app("accvideo-synvid-link-out", "/launch_accvideo", {"synvid_run": "link-out"}, "`synvid_run`",
        "must be a run folder inside the runs folder", "'link-out'"),
    app("accvideo-synvid-unfinished", "/launch_accvideo", {"synvid_run": "half-done"}, "`synvid_run`",
        "must name a finished SynVid run", "holds 2 of its 6 samples"),
    app("stop-unknown", "/stop_job", {"name": "ghost"}, "`name`", "must be a run in", "'ghost'"),
    app("stop-escape", "/stop_job", {"name": "../ghost"}, "`name`", "must be 1 to 64 characters", "'../ghost'"),
    app("resume-missing", "/resume_job", {"name": None}, "`name`", "must be 1 to 64 characters", "None"),
    app("load-student-unknown", "/load_student", {"name": "ghost"}, "`run`",
        "must be a finished distillation run with a student", "'ghost'"),
    app("toy-M-too-large", "/toy", {"M": 9}, "`M`", "greater than maximum value 5", "Value 9"),
    # ---------------------------------------------------------------- damaged files
    damaged("weights-byte-flipped", "a byte flipped in tiny-teacher's transformer weights (size kept), then "
            "load_model", "weights file", "does not match its recorded sha256",
            "transformer/diffusion_pytorch_model.safetensors"),
    damaged("weights-byte-flipped-verify", "the same flip, then `python -m accvideo verify`", "weights file",
            "does not match its recorded sha256", "transformer/diffusion_pytorch_model.safetensors"),
    damaged("weights-missing", "the transformer's weights file deleted, then load_model",
            "model component 'transformer'", "has no weights: neither .safetensors nor .bin files", "teacher"),
    damaged("hash-list-corrupt", "sha256.json replaced by '[1, 2', then load_model", "sha256.json",
            "is unreadable or corrupt", "teacher"),
    damaged("model-index-corrupt", "model_index.json replaced by '[[', then load_model", "model_index.json",
            "is unreadable or corrupt", "teacher"),
    damaged("checkpoint-byte-flipped", "a byte flipped in a run's checkpoints/last.pt, then `verify`", "checkpoint",
            "is corrupt: its sha256", "last.pt"),
    damaged("checkpoints-both-flipped", "both kept checkpoints byte-flipped, then a resume", "checkpoint",
            "No good checkpoint is left to resume from", "last.pt.prev"),
    damaged("shard-byte-flipped", "a byte flipped in a SynVid shard (size kept), then reading it", "SynVid shard",
            "is corrupt: its sha256 does not match", "shard-00000.safetensors"),
    damaged("shard-truncated", "a SynVid shard cut to 1000 bytes, then reading it", "SynVid shard",
            "is truncated", "shard-00000.safetensors"),
    damaged("run-record-corrupt", "run.json replaced by '{', then a command claims the folder", "`out`",
            "run.json is unreadable or corrupt", "run"),
    damaged("synvid-config-corrupt", "a SynVid folder's config.json replaced by '{', then a rerun", "`out`",
            "config.json is unreadable or corrupt", "synvid"),
    damaged("synvid-shards-without-config", "a SynVid folder's config.json deleted, then a rerun", "`out`",
            "holds SynVid shards (shard-00000.json, ...) but no config.json", "synvid"),
]

assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------------------ helpers


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes): equal before and after = nothing written or lost."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fill(text: str, **places) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def assert_names(message: str, case: Case, **places) -> None:
    for part in (case.argument, case.rule, case.value):
        assert fill(part, **places) in message, f"{case.id}: {fill(part, **places)!r} not in {message!r}"


def flip_a_byte(path: Path, offset_from_end: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def small_synvid(tiny_pipeline_dir, tmp_path_factory):
    """A finished two-shard SynVid dataset of the tiny teacher (1 prompt x 2 seeds, 3 states)."""
    from accvideo.synvid import SynVidConfig, generate_synvid

    root = tmp_path_factory.mktemp("bad-inputs-synvid")
    (root / "prompts.txt").write_text(PROMPT + "\n")
    generate_synvid(SynVidConfig(teacher=str(tiny_pipeline_dir), prompts=str(root / "prompts.txt"), num_steps=2,
                                 samples_per_prompt=2, shard_size=1), root / "data", progress=False)
    return root / "data"


def finished_run(folder: Path, kind: str) -> Path:
    """A finished AccVideo or GPD run as a later command finds it: run.json, summary.json, pipeline/."""
    from accvideo.util.runs import claim_run

    claim_run(folder, kind, {"teacher": "tiny-teacher"})
    (folder / "pipeline").mkdir()
    (folder / "pipeline" / "model_index.json").write_text("{}")
    (folder / "summary.json").write_text(json.dumps({"method": kind}))
    return folder


# ------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("case", [c for c in CASES if c.surface == "cli"], ids=lambda c: c.id)
def test_cli(case, tmp_path, small_synvid, capsys):
    from accvideo.cli import main

    finished_run(tmp_path / "accvideo-run", "accvideo")
    finished_run(tmp_path / "gpd-run", "gpd")
    shutil.copytree(small_synvid, tmp_path / "synvid")
    before = snapshot(tmp_path)
    assert main([fill(a, tmp=tmp_path) for a in case.call]) == 2
    err = capsys.readouterr().err  # progress bars may come first; the refusal is the last line
    assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    assert_names(err.strip().splitlines()[-1], case, tmp=tmp_path)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------ Python API


@pytest.fixture(scope="module")
def teacher():
    from accvideo.models.registry import load_model

    return load_model("tiny-teacher")


def _api_call(name: str, teacher, tmp: Path):
    from accvideo.app import jobs
    from accvideo.generation import generate, resolve_sampling
    from accvideo.models.registry import load_model
    from accvideo.synvid import SynVidConfig
    from accvideo.training.trainer import TrainerConfig
    from accvideo.util.checks import check_seed
    from accvideo.util.runs import claim_run

    calls = {
        "generate-guidance-nan": lambda: generate(teacher, PROMPT, guidance_scale=math.nan, num_steps=1),
        "generate-seed-float": lambda: generate(teacher, PROMPT, seed=1.5, num_steps=1),
        "resolve-frames-2049": lambda: resolve_sampling(teacher, num_frames=2049),
        "resolve-shift-nan": lambda: resolve_sampling(teacher, shift=math.nan),
        "resolve-shift-zero": lambda: resolve_sampling(teacher, shift=0),
        "synvid-dtype": lambda: SynVidConfig(dtype="float64").check(),
        "synvid-store-key-zero": lambda: SynVidConfig(store="key:0").check(),
        "trainer-batch-size-zero": lambda: TrainerConfig(batch_size=0).validate(),
        "claim-unknown-kind": lambda: claim_run(tmp / "out", "bogus", {}),
        "claim-changed-config": lambda: claim_run(tmp / "gpd-run", "gpd", {"lr": 2}),
        "load-model-empty": lambda: load_model(""),
        "check-seed-text": lambda: check_seed("abc"),
        "job-unknown-field": lambda: jobs.make_spec("gpd", name="g", command="rm -rf /"),
        "job-manager-max-jobs": lambda: jobs.JobManager(tmp / "runs", max_jobs=0),
    }
    return calls[name]


@pytest.mark.parametrize("case", [c for c in CASES if c.surface == "api"], ids=lambda c: c.id)
def test_api(case, tmp_path, teacher):
    from accvideo.util.runs import claim_run

    claim_run(tmp_path / "gpd-run", "gpd", {"lr": 1})
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as err:
        _api_call(case.call, teacher, tmp_path)()
    assert_names(str(err.value), case)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------ app endpoints

DEFAULTS = {
    "/compare": dict(prompt=PROMPT, seed=3, teacher_steps=2, students=[], naive_steps=0),
    "/launch_gpd": dict(name="g-1", schedule="48,24", teacher="tiny-teacher", steps=1, lr=1e-4, batch_size=2,
                        nproc=1),
    "/launch_synvid": dict(name="s-1", teacher="tiny-teacher", preset="train", num_steps=10, samples_per_prompt=1,
                           store="all", nproc=1),
    "/launch_accvideo": dict(name="a-1", synvid_run="nope", teacher="tiny-teacher", steps=1, m=2, lr=2e-4,
                             batch_size=2, nproc=1),
    "/stop_job": dict(name="ghost"),
    "/resume_job": dict(name="ghost"),
    "/load_student": dict(name="ghost", selected=[]),
    "/toy": dict(M=1.0, noise_mismatch=False, lower=-1.0, upper=1.0, num_points=400),
}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    """The app in this process, its runs folder holding three SynVid runs an AccVideo job must refuse."""
    from gradio_client import Client

    from accvideo.app.layout import build_app
    from tests.helpers.ports import free_port

    runs = tmp_path_factory.mktemp("bad-inputs-app") / "runs"
    outside = runs.parent / "outside"
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps({"num_steps": 10, "num_samples": 6}))
    runs.mkdir()
    (runs / "link-out").symlink_to(outside, target_is_directory=True)
    (runs / "bad-config").mkdir()
    (runs / "bad-config" / "config.json").write_text('{"num_steps": "ten"')
    (runs / "half-done").mkdir()
    (runs / "half-done" / "config.json").write_text(json.dumps({"num_steps": 10, "num_samples": 6}))
    (runs / "half-done" / "manifest.csv").write_text("shard,file,first_sample,num_samples,sha256,bytes\n"
                                                     "0,shard-00000.safetensors,0,2,abc,10\n")
    demo, port = build_app(runs_dir=runs), free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), runs
    finally:
        demo.close()


@pytest.mark.parametrize("case", [c for c in CASES if c.surface == "app"], ids=lambda c: c.id)
def test_app_endpoint(case, app_client, caplog):
    client, runs = app_client
    endpoint, changes = case.call
    before = snapshot(runs)
    with caplog.at_level("WARNING", logger="accvideo.app"):
        with pytest.raises(Exception) as err:
            client.predict(**{**DEFAULTS[endpoint], **changes}, api_name=endpoint)
    assert_names(str(err.value), case, runs=runs)
    assert snapshot(runs) == before
    # the server log: one line, the same sentence
    refused = [r.getMessage() for r in caplog.records if r.name == "accvideo.app"]
    assert len(refused) == 1 and refused[0].startswith("refused: ") and "\n" not in refused[0]


# ------------------------------------------------------------------------------------------ damaged files


def _damage(name: str, tmp: Path, small_synvid: Path, capsys):
    """Damage a copy in `tmp`; return the call that must refuse it (raising ValueError, or via the CLI)."""
    from accvideo.cli import main
    from accvideo.models.registry import ASSETS, load_model
    from accvideo.synvid import SynVidConfig, generate_synvid, open_synvid
    from accvideo.training.checkpoint import load_latest_checkpoint, previous_path, save_checkpoint
    from accvideo.util.runs import claim_run

    weights = "transformer/diffusion_pytorch_model.safetensors"
    if name.startswith(("weights", "hash", "model-index")):
        folder = tmp / "teacher"
        shutil.copytree(ASSETS / "tiny-teacher", folder)
        if name.startswith("weights-byte"):
            flip_a_byte(folder / weights)
        elif name == "weights-missing":
            (folder / weights).unlink()
        elif name == "hash-list-corrupt":
            (folder / "sha256.json").write_text("[1, 2")
        else:
            (folder / "model_index.json").write_text("[[")
        if name == "weights-byte-flipped-verify":
            return lambda: main(["verify", str(folder)]) == 2 and capsys.readouterr().err
        return lambda: load_model(folder, cached=False)
    if name.startswith("checkpoint"):
        import torch

        path = tmp / "run" / "checkpoints" / "last.pt"
        for step in (1, 2):
            save_checkpoint(path, step=step, weights=torch.ones(4096))
        flip_a_byte(path)
        if name == "checkpoint-byte-flipped":
            return lambda: main(["verify", str(tmp / "run")]) == 2 and capsys.readouterr().err
        flip_a_byte(previous_path(path))
        return lambda: load_latest_checkpoint(path)
    if name == "run-record-corrupt":
        (tmp / "run").mkdir()
        (tmp / "run" / "run.json").write_text("{")
        return lambda: claim_run(tmp / "run", "gpd", {})
    data = tmp / "synvid"
    shutil.copytree(small_synvid, data)
    config = json.loads((data / "config.json").read_text())
    rerun = SynVidConfig(teacher=config["teacher"], prompts=config["prompts_source"], num_steps=2,
                         samples_per_prompt=2, shard_size=1)
    if name == "shard-byte-flipped":
        flip_a_byte(data / "shard-00000.safetensors", 7)
        return lambda: list(open_synvid(data))
    if name == "shard-truncated":
        shard = data / "shard-00000.safetensors"
        shard.write_bytes(shard.read_bytes()[:1000])
        return lambda: open_synvid(data)[0]
    if name == "synvid-config-corrupt":
        (data / "config.json").write_text("{")
    else:
        (data / "config.json").unlink()
    return lambda: generate_synvid(rerun, data, progress=False)


@pytest.mark.parametrize("case", [c for c in CASES if c.surface == "file"], ids=lambda c: c.id)
def test_damaged_file(case, tmp_path, small_synvid, capsys):
    call = _damage(case.call, tmp_path, small_synvid, capsys)
    before = snapshot(tmp_path)
    try:
        message = call()
    except ValueError as err:
        message = str(err)
    assert isinstance(message, str), f"{case.id}: not refused"
    assert_names(message, case)
    assert snapshot(tmp_path) == before  # the damaged file is named, never deleted or rewritten


def test_reliability_doc_is_up_to_date():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(REPO / "scripts" / "reliability_doc.py"), "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
