"""The job launcher: validated specs, the argv a user would type, and real tiny jobs in a runs folder."""

import json
import time
from pathlib import Path

import pytest

from accvideo.app import jobs

TINY_GPD = dict(schedule="48,24", steps=2, batch_size=2, watchdog=1)


@pytest.fixture
def runs(tmp_path):
    manager = jobs.JobManager(tmp_path / "runs")
    yield manager
    for state in manager.runs():  # a failed test must not leave a job running
        if state.status == "running":
            manager.stop(state.name)


def test_gpd_command_is_what_a_user_types(runs):
    argv = jobs.build_command(jobs.GPDJob("gpd-a", schedule="48, 24,12", steps=3, lr=1e-4, batch_size=2),
                              runs.runs_dir, gpus=0)
    assert argv[:3] == ["python", "-m", "accvideo"]
    assert argv[3:7] == ["distill", "gpd", "--teacher", "tiny-teacher"]
    assert argv[argv.index("--schedule") + 1] == "48,24,12"
    assert argv[argv.index("--out") + 1] == str(runs.runs_dir / "gpd-a")
    assert "trainer.batch_size=2" in argv and "--resume" in argv
    assert argv[argv.index("--watchdog") + 1] == "25" and "--watchdog-stop" not in argv  # on for app jobs
    off = jobs.build_command(jobs.GPDJob("gpd-c", watchdog=0, watchdog_stop="yes"), runs.runs_dir, gpus=0)
    assert "--watchdog" not in off and off[-1] == "--watchdog-stop"


def test_torchrun_with_several_processes_or_gpus(runs):
    spec = jobs.SynVidJob("syn-a", preset="heldout", num_steps=10, nproc=2)
    argv = jobs.build_command(spec, runs.runs_dir, gpus=0)
    assert argv[:5] == ["torchrun", "--standalone", "--nproc_per_node=2", "-m", "accvideo"]
    assert argv[5] == "synvid"
    one_gpu = jobs.build_command(jobs.GPDJob("gpd-b"), runs.runs_dir, gpus=1)
    assert one_gpu[0] == "torchrun" and "--nproc_per_node=1" in one_gpu
    assert jobs.executable_argv(["python", "-m", "accvideo"])[1:] == ["-m", "accvideo"]


@pytest.mark.parametrize("kind, fields, match", [
    ("gpd", dict(name="../etc"), "`name` must be 1 to 64 characters"),
    ("gpd", dict(name="a b"), "`name` must be 1 to 64 characters"),
    ("gpd", dict(name="x" * 65), "`name` must be 1 to 64 characters"),
    ("gpd", dict(name="ok; rm -rf /"), "`name` must be 1 to 64 characters"),
    ("gpd", dict(name="g", schedule="48,25"), "`schedule` must list"),
    ("gpd", dict(name="g", schedule="48;ls"), "`schedule` must list"),
    ("gpd", dict(name="g", steps=0), "`steps` must be an integer in"),
    ("gpd", dict(name="g", steps=2.5), "`steps` must be an integer in"),
    ("gpd", dict(name="g", lr=5.0), "`lr` must be a number in"),
    ("gpd", dict(name="g", batch_size=-1), "`batch_size` must be an integer in"),
    ("gpd", dict(name="g", nproc=10_000), "`nproc` must be an integer in"),
    ("gpd", dict(name="g", teacher="/etc/passwd"), "`teacher` must be one of"),
    ("gpd", dict(name="g", watchdog=-1), "`watchdog` must be an integer in"),
    ("gpd", dict(name="g", watchdog_stop="maybe"), r"`watchdog_stop` must be one of \['no', 'yes'\]"),
    ("synvid", dict(name="s", preset="mine.txt"), "`preset` must be one of"),
    ("synvid", dict(name="s", store="key:5; ls"), "`store` must be 'all' or 'key:M'"),
    ("synvid", dict(name="s", store="key:80", num_steps=50), "`store key:M` must be an integer in"),
    ("accvideo", dict(name="a", synvid_run="../x"), "`synvid_run` must be 1 to 64 characters"),
    ("accvideo", dict(name="a", synvid_run="missing"), "`synvid_run` must name a SynVid run"),
])
def test_invalid_fields_are_refused(runs, kind, fields, match):
    before = sorted(runs.runs_dir.rglob("*"))
    with pytest.raises(ValueError, match=match):
        runs.launch(jobs.make_spec(kind, **fields))
    # refused before anything is written: no run folder, no job.json, no runs.csv
    assert sorted(runs.runs_dir.rglob("*")) == before == []


def test_unknown_field_and_kind(runs):
    with pytest.raises(ValueError, match="unknown gpd job fields"):
        jobs.make_spec("gpd", name="g", command="rm -rf /")
    with pytest.raises(ValueError, match="`kind` must be one of"):
        jobs.make_spec("shell", name="g")


def test_run_dir_stays_inside(runs, tmp_path):
    for bad in ("..", "../x", "/tmp/x", "", None):
        with pytest.raises(ValueError, match="`name` must be 1 to 64 characters"):
            runs.run_dir(bad)
    assert runs.run_dir("ok_1-2").parent == runs.runs_dir.resolve()
    # a valid name that is a link out of the runs folder: only the inside-the-folder check sees it
    (tmp_path / "outside").mkdir()
    (runs.runs_dir / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(ValueError, match="`name` must stay inside the runs folder .* but is 'escape'"):
        runs.run_dir("escape")


@pytest.mark.slow
def test_tiny_gpd_job_runs_and_survives_a_restart(runs):
    state = runs.launch(jobs.make_spec("gpd", name="gpd-tiny", **TINY_GPD))
    assert state.status == "running" and "distill gpd" in state.command
    with pytest.raises(ValueError, match="must be a new run"):
        runs.launch(jobs.make_spec("gpd", name="gpd-tiny", **TINY_GPD))
    final = runs.wait("gpd-tiny", timeout=180)
    assert final.status == "finished", runs.log_tail("gpd-tiny")
    assert runs.progress("gpd-tiny") == (2, 2)
    metrics = jobs.read_metrics(runs.run_dir("gpd-tiny"), "gpd")
    assert list(metrics["step"].unique()) == [1, 2] and metrics["loss"].notna().all()
    assert "distill gpd" in runs.log_tail("gpd-tiny", 1000)
    assert "run:gpd-tiny" in runs.students()
    watched = jobs.read_watchdog(runs.run_dir("gpd-tiny"))  # TINY_GPD sets the watchdog to every step
    assert watched["step"] == 2 and watched["stage"] == "stage-1" and Path(watched["clip"]).is_file()
    # a new manager (an app restart) sees the same runs table, also saved as runs.csv
    again = jobs.JobManager(runs.runs_dir)
    table = again.table()
    assert table.loc[0, "name"] == "gpd-tiny" and table.loc[0, "status"] == "finished"
    assert "gpd-tiny" in (runs.runs_dir / "runs.csv").read_text()
    with pytest.raises(ValueError, match="has finished"):
        again.resume("gpd-tiny")


@pytest.mark.slow
def test_stop_then_resume_continues_from_the_checkpoint(runs):
    runs.launch(jobs.make_spec("gpd", name="gpd-long", schedule="48,24", steps=400, batch_size=1))
    checkpoint = runs.run_dir("gpd-long") / "stages" / "stage-1" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoint.exists():
        time.sleep(0.5)
    assert checkpoint.exists(), runs.log_tail("gpd-long")
    runs.stop("gpd-long")
    stopped = runs.wait("gpd-long", timeout=30)
    assert stopped.status == "stopped"
    with pytest.raises(ValueError, match="must be a running job"):
        runs.stop("gpd-long")
    done_before = runs.progress("gpd-long")[0]
    state = runs.resume("gpd-long")
    assert state.launches == 2 and state.status == "running"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and "resumed gpd" not in runs.log_tail("gpd-long", 2000):
            time.sleep(0.5)
        assert "resumed gpd" in runs.log_tail("gpd-long", 2000)
    finally:
        runs.stop("gpd-long")
        runs.wait("gpd-long", timeout=30)
    job = json.loads((runs.run_dir("gpd-long") / "job.json").read_text())
    assert job["launches"] == 2 and done_before > 0


def test_log_tail_strips_ansi_and_keeps_the_last_tqdm_redraw(runs):
    """The Distil tab's log: no escape codes, one line per tqdm bar (its last state), newest line last."""
    run = runs.runs_dir / "gpd-log"
    run.mkdir(parents=True)
    bar = "".join(f"\r\x1b[32mstep {i}/3\x1b[0m" for i in range(4))
    (run / "job.log").write_bytes(("$ python -m accvideo distill gpd\r\n"
                                   f"\x1b[1mstarting\x1b[0m\n{bar}\r\n\x1b[2K\x1b]0;title\x07"
                                   + "".join(f"line {i}\n" for i in range(50))).encode())
    tail = runs.log_tail("gpd-log", 1000)
    assert "\x1b" not in tail and "\r" not in tail and "[32m" not in tail
    assert tail.splitlines()[:3] == ["$ python -m accvideo distill gpd", "starting", "step 3/3"]
    assert runs.log_tail("gpd-log", 2).splitlines() == ["line 48", "line 49"]  # the newest lines, in order


def _busy_job(runs, name="busy"):
    """A job.json whose process is alive (its command line names accvideo, as a real job's does)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "accvideo"])
    # until the child has exec'd, /proc shows the parent's command line (no "accvideo"): under load the
    # manager could look in that window and call the job dead
    deadline = time.time() + 30
    while b"accvideo" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.time() < deadline:
        time.sleep(0.01)
    (runs.runs_dir / name).mkdir()
    (runs.runs_dir / name / "job.json").write_text(json.dumps({
        "name": name, "kind": "gpd", "spec": {"name": name, "steps": 1, "schedule": "48,24"},
        "argv": ["python"], "command": "python -m accvideo", "status": "running", "pid": proc.pid}))
    return proc


def test_concurrent_jobs_are_bounded(runs):
    assert runs.max_jobs == 1  # a CPU-only machine runs one job at a time
    proc = _busy_job(runs)
    try:
        before = sorted(runs.runs_dir.rglob("*"))
        with pytest.raises(ValueError, match=r"`max_jobs` allows 1 job\(s\) at once .* but 1 run now \(busy\)"):
            runs.launch(jobs.make_spec("gpd", name="g2", **TINY_GPD))
        assert sorted(runs.runs_dir.rglob("*")) == before  # nothing written
    finally:
        proc.kill()
        proc.wait()


def test_max_jobs_is_configurable_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCVIDEO_MAX_JOBS", "3")
    assert jobs.JobManager(tmp_path / "a").max_jobs == 3
    monkeypatch.setenv("ACCVIDEO_MAX_JOBS", "many")
    with pytest.raises(ValueError, match="`ACCVIDEO_MAX_JOBS` must be an integer >= 1 but is 'many'"):
        jobs.JobManager(tmp_path / "b")
    with pytest.raises(ValueError, match="`max_jobs` must be an integer >= 1 but is 0"):
        jobs.JobManager(tmp_path / "c", max_jobs=0)


def test_disk_use_is_estimated_before_a_job_starts(runs, monkeypatch):
    from collections import namedtuple

    from accvideo.app.jobs import quotas

    # tiny teacher: 16 channels x 3 latent frames x 4 x 4, text 8 x 32; 11 states; 6 held-out prompts
    spec = jobs.make_spec("synvid", name="s", preset="heldout", num_steps=10)
    assert quotas.estimate_disk_bytes(spec) == 6 * 4 * (11 * 16 * 3 * 4 * 4 + 8 * 32)
    assert quotas.estimate_disk_bytes(jobs.make_spec("gpd", name="g", schedule="48,24,12")) > \
        quotas.estimate_disk_bytes(jobs.make_spec("gpd", name="g", schedule="48,24"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(quotas.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 2**30 + 1000))
    with pytest.raises(ValueError, match=r"`disk` must have room for job 's': it needs about 0.00 GB but .* has "
                                         r"1.07 GB free"):
        runs.launch(spec)
    assert not any(runs.runs_dir.iterdir())
