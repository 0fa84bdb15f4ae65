"""The app's handlers as plain functions (every gr.Error path), then the launched app through gradio_client."""

import ast
import dataclasses
import json
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from accvideo.app import jobs
from accvideo.app.layout import gradio_errors
from accvideo.app.services import compare, job_views, models
from accvideo.app.services.toy import toy_update
from tests.helpers.ports import free_port


@pytest.fixture
def manager(tmp_path):
    return jobs.JobManager(tmp_path / "runs")


def test_compare_teacher_and_student(manager, monkeypatch):
    calls = []
    original = compare.generate
    monkeypatch.setattr(compare, "generate", lambda model, *a, **k: calls.append(k["spec"].num_steps)
                        or original(model, *a, **k))
    result = compare.compare_models("a red circle moving left", 7, 6, ["tiny-accvideo"], manager=manager)
    assert result.seed == 7
    assert [label.split(":")[0] for label, _ in result.videos] == ["tiny-teacher (teacher)", "tiny-accvideo"]
    assert all(Path(p).stat().st_size > 0 and p.endswith(".mp4") for _, p in result.videos)
    table = result.table
    assert list(table.columns) == ["model", "steps", "nfe", "text_encoder_s", "denoising_s", "vae_decode_s",
                                   "total_s", "total_min_s", "total_max_s", "speedup", "speedup_min", "speedup_max"]
    assert table["steps"].tolist() == [6, 5] and table["nfe"].tolist() == [12, 5]  # teacher uses CFG: 2 NFE a step
    assert table.loc[0, "speedup"] == table.loc[0, "speedup_min"] == 1.0
    # the median of the interleaved rounds' speedups, inside their range, near the ratio of the medians
    assert table.loc[1, "speedup_min"] <= table.loc[1, "speedup"] <= table.loc[1, "speedup_max"]
    assert table.loc[1, "speedup"] == pytest.approx(table.loc[0, "total_s"] / table.loc[1, "total_s"], rel=0.3)
    assert (table.total_min_s <= table.total_s).all() and (table.total_s <= table.total_max_s).all()
    note = compare.speedup_note(table)
    assert "tiny-accvideo: **" in note and f"Median of {compare.REPEATS} interleaved runs" in note
    assert [bar.name for bar in result.figure.data] == ["text encoder", "denoising", "vae decode"]
    assert calls == [6, 5] * (1 + compare.REPEATS)  # a warm-up round, then interleaved timed rounds
    naive = compare.compare_models("a red circle moving left", 7, 6, ["tiny-accvideo"], naive_steps=5, manager=manager)
    assert [label.split(":")[0] for label, _ in naive.videos] == [
        "tiny-teacher (teacher)", "tiny-teacher at 5 steps (no distillation)", "tiny-accvideo"]
    assert naive.table["steps"].tolist() == [6, 5, 5] and naive.table["nfe"].tolist() == [12, 10, 5]
    assert compare.naive_default_steps(["tiny-accvideo"], manager) == 5  # the students' steps, the tab's default
    assert compare.naive_default_steps([], manager) == 0
    again = compare.compare_models("a red circle moving left", 7, 6, [], manager=manager)
    assert again.videos[0][1] != result.videos[0][1]  # every request writes its own file
    random_seed = compare.compare_models("a red circle moving left", -1, 2, [], manager=manager).seed
    assert random_seed >= 0  # -1: a random seed, returned
    assert result.warning == ""
    free = compare.compare_models("a red dog moving left", 7, 1, [], manager=manager)
    assert "Unknown to tiny-teacher: 'dog'" in free.warning  # still generated, and the reason is named


def test_students_come_from_bundled_roles_and_finished_runs(manager, monkeypatch):
    assert "tiny-accvideo" in models.available_students(manager)
    assert "tiny-teacher" not in models.available_students(manager)
    run = manager.runs_dir / "my-gpd"
    (run / "pipeline").mkdir(parents=True)
    (run / "pipeline" / "model_index.json").write_text("{}")
    (run / "summary.json").write_text("{}")
    (run / "job.json").write_text('{"name": "my-gpd", "kind": "gpd", "spec": {"name": "my-gpd", "steps": 1}, '
                                  '"argv": ["python"], "command": "python", "status": "finished", "pid": null}')
    assert models.available_students(manager)["run:my-gpd"] == str(run.resolve() / "pipeline")


@pytest.mark.parametrize("args, match", [
    (("   ", 0, 4, []), "`prompt` must be a non-empty string"),
    (("a red circle moving left", 1.5, 4, []), "`seed` must be an integer"),
    (("a red circle moving left", "abc", 4, []), "`seed` must be an integer"),
    (("a red circle moving left", -2, 4, []), "`seed` must be an integer"),
    (("a red circle moving left", 0, 0, []), "`teacher_steps` must be an integer in"),
    (("a red circle moving left", 0, 4, [], -1), "`naive_steps` must be an integer in \\[0, 200\\] but is -1"),
    (("a red circle moving left", 0, 4, [], float("nan")), "`naive_steps` must be an integer in"),
    (("a red circle moving left", 0, 4, ["tiny-nope"]), "`students` must be chosen from"),
    (("a red circle moving left", 0, 4, ["run:../../etc"]), "`students` must be chosen from"),
])
def test_compare_errors_name_the_argument(manager, args, match):
    with pytest.raises(ValueError, match=match):
        compare.compare_models(*args, manager=manager)
    with pytest.raises(gr.Error, match=match):  # what the page shows: a plain sentence
        gradio_errors(compare.compare_models)(*args, manager=manager)


def test_generate_video_handler():
    path, table, seed = compare.generate_video("tiny-accvideo", "a blue square moving up", 3, 5, 1.0)
    assert Path(path).exists() and seed == 3
    assert list(table["stage"]) == ["text_encoder", "denoising", "vae_decode", "total"]
    with pytest.raises(ValueError, match="`seed` must be an integer"):
        compare.generate_video("tiny-accvideo", "a blue square moving up", 0.5, 5, 1.0)


def test_forms_come_from_the_job_specs(manager):
    for kind, cls in jobs.specs.SPEC_CLASSES.items():
        form = job_views.job_form(kind, manager)
        spec_fields = [f for f in dataclasses.fields(cls) if f.init]
        # one input per spec field, in the spec's order: the order of the /launch_* API's arguments
        assert [f.name for f in form] == [f.name for f in spec_fields]
        values = {f.name: f.value for f in form}
        assert values["name"] == f"{kind}-1"
        for f in spec_fields:
            if f.default is not dataclasses.MISSING and f.name != "synvid_run":  # no SynVid run yet: empty
                assert values[f.name] == f.default, (kind, f.name)
        assert [f.label for f in form] == [f.metadata["label"] for f in spec_fields]
    gpd = {f.name: f for f in job_views.job_form("gpd", manager)}
    assert gpd["steps"].label == "Steps per stage" and gpd["steps"].widget == "integer"
    assert gpd["lr"].widget == "number" and gpd["teacher"].widget == "choice"
    assert gpd["nproc"].help.endswith(f"1 to {jobs.max_processes()}")
    # the form's own values make a valid job
    argv = jobs.build_command(jobs.make_spec("gpd", **{n: f.value for n, f in gpd.items()}), manager.runs_dir, gpus=0)
    assert argv[3:5] == ["distill", "gpd"] and argv[argv.index("--schedule") + 1] == "48,24,12,6"


@pytest.mark.parametrize("kind, fields, match", [
    ("gpd", dict(name="../escape"), "`name` must be 1 to 64 characters"),
    ("gpd", dict(name="g", schedule="48,24 && ls"), "`schedule` must list"),
    ("gpd", dict(name="g", steps=-3), "`steps` must be an integer in"),
    ("accvideo", dict(name="a", synvid_run="nope", m=5), "`synvid_run` must name a SynVid run"),
    ("synvid", dict(name="s", num_steps=1), "`num_steps` must be an integer in"),
])
def test_launch_errors(manager, kind, fields, match):
    with pytest.raises(gr.Error, match=match):
        gradio_errors(job_views.launch_job)(manager, kind, **fields)


STOPPED_RUN = {"name": "my-gpd", "kind": "gpd", "spec": {"name": "my-gpd", "steps": 1, "schedule": "48,24"},
               "argv": ["python", "-c", "pass"], "command": "python -c pass", "status": "stopped", "pid": None}


def test_distil_is_read_only_on_a_public_space(tmp_path, monkeypatch, capfd, caplog):
    """Launch, Stop and Resume are each refused over the API, with one log line and nothing written."""
    import json

    from gradio_client import Client

    from accvideo.app.layout import build_app

    monkeypatch.setenv("SPACE_ID", "someone/accvideo")
    monkeypatch.delenv("ACCVIDEO_ENABLE_TRAINING", raising=False)
    assert not job_views.training_allowed()
    runs = tmp_path / "runs"
    (runs / "my-gpd").mkdir(parents=True)
    (runs / "my-gpd" / "job.json").write_text(json.dumps(STOPPED_RUN))  # Resume would relaunch it
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    demo, port = build_app(runs_dir=runs), free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        calls = {"/launch_gpd": dict(name="g-1", schedule="48,24", teacher="tiny-teacher", steps=1, lr=1e-4,
                                     batch_size=2, nproc=1),
                 "/stop_job": dict(name="my-gpd"), "/resume_job": dict(name="my-gpd")}
        for endpoint, kwargs in calls.items():
            with pytest.raises(Exception, match="training is disabled on this public Space"):
                client.predict(**kwargs, api_name=endpoint)
    finally:
        demo.close()
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == before
    assert "Traceback" not in capfd.readouterr().err
    assert [r.getMessage()[:37] for r in caplog.records if r.name == "accvideo.app"] == [
        "refused: training is disabled on this"] * 3
    monkeypatch.setenv("ACCVIDEO_ENABLE_TRAINING", "1")
    assert job_views.training_allowed()


def test_job_view_of_unknown_and_empty(manager):
    assert job_views.job_view(manager, None).progress == "no job selected"
    with pytest.raises(gr.Error, match="`name` must be a run"):
        gradio_errors(job_views.job_view)(manager, "ghost")
    with pytest.raises(gr.Error, match="`name` must be 1 to 64"):
        gradio_errors(manager.stop)("../ghost")


def test_refresh_reads_and_never_writes(manager):
    """The Distil tab's 2-second timer calls distil_snapshot: nothing in the runs folder may change."""
    run = manager.runs_dir / "my-gpd"
    run.mkdir(parents=True)
    (run / "job.json").write_text('{"name": "my-gpd", "kind": "gpd", "spec": {"name": "my-gpd", "steps": 4, '
                                  '"schedule": "48,24"}, "argv": ["python"], "command": "python -m accvideo", '
                                  '"status": "running", "pid": null}')
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in manager.runs_dir.rglob("*") if p.is_file()}
    snap = job_views.distil_snapshot(manager, "my-gpd")
    assert snap.run_names == ["my-gpd"] and snap.table.loc[0, "status"] == "stopped"  # its process is gone
    assert "my-gpd" in snap.view.progress and job_views.distil_snapshot(manager, "ghost").view.log == ""
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in manager.runs_dir.rglob("*") if p.is_file()}
    assert after == before and not (manager.runs_dir / jobs.TABLE_FILE).exists()


@pytest.mark.slow
def test_toy_update_and_bad_value():
    figures, summary = toy_update(0.5, False, -1.0, 1.0, 400)
    assert set(figures) == {"trajectories", "distribution_matching", "useless_vs_M", "student_results"}
    assert "M = 0.5" in summary
    with pytest.raises(gr.Error, match="`M` must be <= 5"):
        gradio_errors(toy_update)(9, False, -1.0, 1.0, 400)


def test_models_table(manager, monkeypatch):
    table = models.list_models(manager)
    bundled = table[table["source"] == "bundled"].set_index("model")
    assert {"tiny-teacher", "tiny-accvideo"} <= set(bundled.index)
    assert bundled.loc["tiny-accvideo", "role"] == "student" and bundled.loc["tiny-teacher", "available"]
    assert Path(bundled.loc["tiny-teacher", "where"]).is_dir()
    # provenance.json in one line: the commit it was bundled at and what it scored
    for name in ("tiny-teacher", "tiny-accvideo"):
        provenance = models.read_provenance(Path(bundled.loc[name, "where"]))
        line = bundled.loc[name, "provenance"]
        assert f"commit {provenance['bundled_at_commit'][:10]}" in line
        if "scores" in provenance:
            assert f"ProcBench {provenance['scores']['procbench_train']:.2f}" in line
    assert models.provenance_line({"bundled_at_commit": "0123456789abcdef", "wall_s": 2400.0, "seed": 0,
                               "reproduce": {"pipeline_wall_s": 4572.0},
                               "scores": {"procbench_train": 92.5, "procbench_heldout": 90.0, "bench_total_s": 0.1}}) \
        == ("commit 0123456789; reproduce run 76.2 min in all; trained in 40.0 min; ProcBench 92.50 (held out 90.00); "
            "0.100 s per video; seed 0")
    assert models.provenance_line({}) == ""
    # the tab's narrow table and one row's details
    overview = models.models_overview(table)
    assert list(overview.columns) == ["model", "role", "steps", "ProcBench"]
    assert overview.set_index("model").loc["tiny-teacher", "steps"] == str(int(bundled.loc["tiny-teacher", "steps"]))
    details = models.model_details(table, "tiny-accvideo")
    assert bundled.loc["tiny-accvideo", "where"] in details and bundled.loc["tiny-accvideo", "provenance"] in details
    command = models.read_provenance(Path(bundled.loc["tiny-accvideo", "where"]))["command"]
    assert f"```bash\n{command}" in details  # its provenance command, ready to copy
    with pytest.raises(ValueError, match="`model` must be one of the listed models .* but is 'nope'"):
        models.model_details(table, "nope")
    # when the registry reports real checkpoints, they show up with where they are or what to download
    monkeypatch.setattr(models.registry, "model_status", lambda: [
        {"name": "wan2.1-t2v-1.3b", "available": False, "path": None,
         "download": ["huggingface-cli download Wan-AI/...", "python -m accvideo models ..."]},
        {"name": "hunyuanvideo", "available": True, "path": "/models/hunyuan"}], raising=False)
    real = models.list_models(manager).query("source == 'real'").set_index("model")
    assert real.loc["wan2.1-t2v-1.3b", "how to get it"].startswith("huggingface-cli download")
    assert real.loc["hunyuanvideo", "where"] == "/models/hunyuan"


def _imports(path: Path) -> set[str]:
    """Top-level module names a file imports ('.' for a relative import inside the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." if node.level else node.module.split(".")[0])
    return found


def test_app_parts_keep_their_place():
    """layout.py and tabs/ hold components and wiring only (no torch, no lower layer: it goes through the services);
    the services and jobs hold the domain logic and no Gradio component."""
    app = Path(__file__).resolve().parents[1] / "accvideo" / "app"
    # logging: the one line a refused input leaves in the server log
    for path in [app / "layout.py", *app.glob("tabs/*.py")]:
        assert _imports(path) <= {"__future__", "logging", "pathlib", "gradio", "."}, path
    for path in [*app.glob("services/*.py"), *app.glob("jobs/*.py")]:
        assert "gradio" not in _imports(path), path
    assert all(len(path.read_text().splitlines()) <= 400 for path in app.rglob("*.py"))


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app as a user starts it: `python app.py` in its own process, on a free port."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    root = Path(__file__).resolve().parents[1]
    app = subprocess.Popen([sys.executable, str(root / "app.py"), "--port", str(port), "--runs-dir",
                            str(tmp_path_factory.mktemp("runs"))], cwd=root,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert app.poll() is None, app.stderr.read().decode()[-3000:]
                assert time.time() < deadline, "app did not answer within 180 s"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.terminate()
        app.wait(timeout=30)


@pytest.mark.slow
def test_gradio_client_compare(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/compare", "/toy", "/launch_gpd", "/stop_job", "/resume_job", "/load_student", "/models"} <= set(api)
    out = client.predict("a green triangle moving right", 11, 8, ["tiny-accvideo"], 4, api_name="/compare")
    teacher, naive, student, hidden1, hidden2, table, plot, seed, note = out
    video = [v["video"] if isinstance(v, dict) else v for v in (teacher, naive, student)]  # client versions differ
    assert all(Path(v).stat().st_size > 0 and v.endswith(".mp4") for v in video)
    assert hidden1 is None and hidden2 is None
    frame = pd.DataFrame(table["data"], columns=table["headers"])
    assert frame["model"].tolist() == ["tiny-teacher (teacher)", "tiny-teacher at 4 steps (no distillation)",
                                       "tiny-accvideo"]
    assert frame["speedup"].iloc[1] > 1 and seed == 11 and "tiny-accvideo" in note
    with pytest.raises(Exception, match="must be a non-empty string"):
        client.predict("  ", 0, 8, [], api_name="/compare")
    with pytest.raises(Exception, match="must be chosen from"):
        client.predict("a red circle moving left", 0, 8, ["nope"], api_name="/compare")


# one call per endpoint, by keyword: a value for every documented parameter, and what the answer shows
# (a sentence naming the argument, or the M slider's own range check: the keyword reached the right field).
# No call starts a job.
KEYWORD_CALLS = {
    "/compare": (dict(prompt="a red circle moving left", seed=3, teacher_steps=2, students=[], naive_steps=1,
                      teacher="tiny-teacher"), None),
    "/toy": (dict(M=9, noise_mismatch=False, lower=-1.0, upper=1.0, num_points=400), "maximum value 5"),
    "/launch_synvid": (dict(name="s-1", teacher="tiny-teacher", preset="train", num_steps=1, samples_per_prompt=1,
                            store="all", nproc=1), "`num_steps` must be an integer in"),
    "/launch_accvideo": (dict(name="a-1", synvid_run="nope", teacher="tiny-teacher", steps=1, m=5, lr=2e-4,
                              batch_size=2, nproc=1, watchdog=0, watchdog_stop="no"),
                         "`synvid_run` must name a SynVid run"),
    "/launch_gpd": (dict(name="g-1", schedule="48,24 && ls", teacher="tiny-teacher", steps=1, lr=1e-4,
                         batch_size=2, nproc=1, watchdog=0, watchdog_stop="no"), "`schedule` must list"),
    "/stop_job": (dict(name="ghost"), "`name` must be a run"),
    "/resume_job": (dict(name="ghost"), "`name` must be a run"),
    "/load_student": (dict(name="ghost", selected=[]), "`run` must be a finished distillation run"),
    "/models": (dict(), None),
}


@pytest.mark.slow
def test_every_endpoint_has_named_parameters_and_a_docstring(app_url):
    """view_api() shows no `param_N`, every endpoint has a description, and each is callable by its names."""
    import re

    from gradio_client import Client

    client = Client(app_url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(api) == set(KEYWORD_CALLS)
    for endpoint, info in api.items():
        names = [p["parameter_name"] for p in info["parameters"]]
        assert not [n for n in names if re.fullmatch(r"param_\d+", n)], (endpoint, names)
        assert info.get("description"), endpoint
        kwargs, error = KEYWORD_CALLS[endpoint]
        assert names == list(kwargs), endpoint
        if error is None:
            assert client.predict(**kwargs, api_name=endpoint) is not None
        else:
            with pytest.raises(Exception, match=re.escape(error)):
                client.predict(**kwargs, api_name=endpoint)


def test_accvideo_without_a_synvid_run_says_to_make_one(manager):
    """No SynVid run yet: the form says AccVideo needs one, and launching says to make one first."""
    for missing in (None, "", "  "):
        with pytest.raises(gr.Error, match=r"`synvid_run` must name a finished SynVid run .* make one first") as err:
            gradio_errors(job_views.launch_job)(manager, "accvideo", name="a", synvid_run=missing)
        assert "1 to 64 characters" not in str(err.value)
    assert "needs a finished SynVid run" in job_views.accvideo_notice([])
    assert job_views.accvideo_notice(["synvid-1"]) == ""
    # the form's smallest SynVid is one an AccVideo job with the default m can learn from
    small = jobs.make_spec("synvid", name="s", **job_views.SMALL_SYNVID)
    jobs.build_command(small, manager.runs_dir, gpus=0)
    assert small.num_steps >= jobs.AccVideoJob.m


def test_the_accvideo_form_shows_the_notice_and_the_way_to_synvid(tmp_path):
    from accvideo.app.layout import build_app

    config = build_app(runs_dir=tmp_path / "runs").get_config_file()
    by_id = {c["props"].get("elem_id"): c["props"] for c in config["components"]}
    assert "needs a finished SynVid run" in by_id["accvideo-needs-synvid"]["value"]
    assert by_id["accvideo-needs-synvid"]["visible"] and by_id["make-synvid"]["visible"]


def test_watchdog_record_and_note(tmp_path):
    """The Distil tab's watchdog panel: the latest record read back (clip made absolute) and its note."""
    (tmp_path / "watchdog.json").write_text(json.dumps({
        "step": 40, "stage": "stage-1", "clip": "watchdog/stage-1-step-000040.mp4", "flags": ["noise"],
        "stats": {"roughness": 1.41}}))
    record = jobs.read_watchdog(tmp_path)
    assert record["clip"] == str(tmp_path / "watchdog" / "stage-1-step-000040.mp4")
    assert job_views.watchdog_note(record) == "⚠️ **Watchdog, step 40 (stage-1): noise** (roughness 1.41)."
    assert job_views.watchdog_note({**record, "flags": []}) == "Watchdog, step 40 (stage-1): no collapse seen."
    assert jobs.read_watchdog(tmp_path / "none") == {} and "no validation clip yet" in job_views.watchdog_note({})


def test_mcp_schema_lists_the_endpoints_as_tools(tmp_path):
    """`python app.py --mcp` is `launch(mcp_server=True)`: the MCP schema lists compare and the toy as tools."""
    pytest.importorskip("mcp", reason="the mcp package (gradio[mcp]) is not installed")
    import urllib.request

    from accvideo.app.layout import build_app

    demo = build_app(runs_dir=tmp_path)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, mcp_server=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/mcp/schema", timeout=60) as response:
            schema = json.loads(response.read())
    finally:
        demo.close()
    tools = {tool["name"]: tool for tool in schema} if isinstance(schema, list) else schema
    assert {"compare", "toy"} <= set(tools), sorted(tools)
    assert "prompt" in json.dumps(tools["compare"]) and "num_points" in json.dumps(tools["toy"])


def test_gpu_duration_follows_steps_and_frames(manager, monkeypatch):
    """ZeroGPU's slot for a comparison grows with its transformer calls and the teacher's frames."""
    base = compare.GPU_BASE_SECONDS
    tiny = compare.gpu_duration("p", 0, 50, ["tiny-accvideo"], 5, manager=manager)  # 9 frames: short
    assert tiny == base + round((compare.REPEATS + 1) * (2 * 55 + 5) * 9 / 81)
    assert compare.gpu_duration("p", 0, 100, ["tiny-accvideo"], 5, manager=manager) > tiny
    monkeypatch.setattr(compare, "read_sampling_defaults", lambda folder: {"num_frames": 81, "num_steps": 4})
    assert compare.gpu_duration("p", 0, 50, [], 0, manager=manager) == base + (compare.REPEATS + 1) * 100
    assert compare.gpu_duration("p", 0, 200, [], 200, manager=manager) == compare.GPU_MAX_SECONDS
    assert compare.gpu_duration("p", 0, "many", [], 0, manager=manager) == base  # the call refuses it by name
