"""Load test: N concurrent comparisons through `gradio_client` against a launched app.

    python scripts/loadtest.py [--calls 8] [--teacher-steps 50] [--students tiny-accvideo]

Starts `python app.py` on a free port in its own process, waits until it answers, fires
`--calls` `/compare` requests at once from as many threads, and samples the app process's
resident memory (RSS, from /proc or psutil) every 0.1 s until all have answered. Prints one
line per call (queue + run latency) and the peak RSS, and exits non-zero when a call failed.
The app runs one generation at a time (`concurrency_limit=1`), so the calls are queued and
latencies grow linearly; memory should not, since every request only adds its output files.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` plus its children, in MiB."""
    try:
        import psutil

        proc = psutil.Process(pid)
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # the child ended between listing and reading
                pass
        return total / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(calls: int, teacher_steps: int, students: list[str], runs_dir: str, startup_timeout: float) -> dict:
    from gradio_client import Client

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs-dir", runs_dir],
                           cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = {"rss": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak["rss"] = max(peak["rss"], rss_mib(app.pid))
            except Exception:  # noqa: BLE001 - a child (ffmpeg) ended mid-read; the next sample counts
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        client = None
        while time.perf_counter() - t0 < startup_timeout:
            if app.poll() is not None:
                raise RuntimeError(f"the app exited with code {app.returncode} before answering")
            try:
                # long HTTP timeouts: queued calls wait minutes on a busy CPU; outputs stay on the server
                client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False,
                                httpx_kwargs={"timeout": 1800})
                break
            except Exception:
                time.sleep(0.5)
        if client is None:
            raise RuntimeError(f"the app did not answer within {startup_timeout} s")
        startup_s = time.perf_counter() - t0
        idle_rss = rss_mib(app.pid)
        results: list[dict] = [{} for _ in range(calls)]

        def one(i: int):
            start = time.perf_counter()
            try:
                job = client.submit("a red circle moving left", i, teacher_steps, students, api_name="/compare")
                out = job.result(timeout=1800)
                table = out[4]
                results[i] = {"call": i, "ok": True, "latency_s": time.perf_counter() - start,
                              "speedup": table["data"][-1][-1] if table and table["data"] else None}
            except Exception as err:
                results[i] = {"call": i, "ok": False, "latency_s": time.perf_counter() - start, "error": str(err)}

        threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
        t_calls = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_calls
        return {"calls": calls, "ok": sum(r["ok"] for r in results), "wall_s": wall, "startup_s": startup_s,
                "idle_rss_mib": idle_rss, "peak_rss_mib": peak["rss"], "results": results}
    finally:
        stop.set()
        sampler.join(timeout=2)
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/loadtest.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--teacher-steps", type=int, default=50)
    parser.add_argument("--students", default="tiny-accvideo", help="comma-separated student names")
    parser.add_argument("--runs-dir", default="runs/loadtest")
    parser.add_argument("--startup-timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true", help="also print the whole result as JSON")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error(f"`--calls` must be >= 1 but is {args.calls}")
    students = [s.strip() for s in args.students.split(",") if s.strip()]
    report = run(args.calls, args.teacher_steps, students, args.runs_dir, args.startup_timeout)
    print(f"app answered after {report['startup_s']:.1f} s; idle RSS {report['idle_rss_mib']:.0f} MiB")
    for r in report["results"]:
        extra = f"speedup {r['speedup']}x" if r["ok"] else f"FAILED: {r['error']}"
        print(f"call {r['call']}: {r['latency_s']:.2f} s  {extra}")
    print(f"{report['ok']}/{report['calls']} calls completed in {report['wall_s']:.1f} s; "
          f"peak app RSS {report['peak_rss_mib']:.0f} MiB")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0 if report["ok"] == report["calls"] else 1


if __name__ == "__main__":
    sys.exit(main())
