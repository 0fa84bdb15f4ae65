"""The app in headless chromium: compare and read the speedup, move a toy slider, launch a tiny
distillation job, watch it finish and load its student into Compare. Screenshots of each tab go to
$ACCVIDEO_SCREENSHOTS (docs/screenshots when regenerating them) or the test's temporary folder."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from accvideo.app.layout import build_app
from tests.helpers.ports import free_port

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None and not Path(CHROMIUM).exists(),
                                 reason="Debian chromium is not installed")]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("ACCVIDEO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def page(runs_dir):
    from playwright.sync_api import sync_playwright

    port = free_port()
    demo = build_app("tiny-teacher", runs_dir=runs_dir)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)  # generous: CI shares 2 cores
            # not "networkidle": the Distil tab's timer polls every 2 s
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.wait_for_selector("#speedup", state="attached")
            yield page
            browser.close()
    finally:
        demo.close()


def _speedups(page) -> dict[str, float]:
    text = page.locator("#speedup").inner_text()
    return {m: float(x) for m, x in re.findall(r"([\w:-]+): ([\d.]+)x", text)}


def test_compare_reads_the_speedup(page, shots):
    page.get_by_role("tab", name="Compare").click()
    page.get_by_label("Prompt", exact=True).fill("a blue square moving up")
    page.get_by_label("number input for Teacher steps").fill("20")
    page.get_by_label("number input for Teacher steps").press("Tab")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_function("() => /tiny-accvideo: [\\d.]+x/.test(document.querySelector('#speedup').innerText)")
    speedups = _speedups(page)
    assert speedups["tiny-accvideo"] > 1.0
    page.wait_for_function("() => document.querySelectorAll('video').length >= 2")  # teacher and student
    page.wait_for_function("() => document.querySelector('#timing').innerText.includes('denoising_s')")
    page.wait_for_selector("#timing-plot .js-plotly-plot")
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    # bad input becomes a readable error, not a crash
    page.get_by_label("Prompt", exact=True).fill("   ")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_selector("text=must be a non-empty string")


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_prompt_builder_and_the_unknown_word_warning(page):
    """An unseen (held-out) combination built with the dropdowns fills the prompt box; free text
    with a word the tiny models do not know shows a warning naming it."""
    from accvideo.world import HELDOUT_COMBOS

    page.get_by_role("tab", name="Compare").click()
    color, shape, direction = HELDOUT_COMBOS[4]
    for elem_id, option in (("prompt-color", color), ("prompt-shape", shape), ("prompt-direction", direction)):
        _choose(page, elem_id, option)
    box = page.get_by_label("Prompt", exact=True)
    page.wait_for_function(f"() => document.querySelector('#prompt textarea').value === "
                           f"'a {color} {shape} moving {direction}'")
    assert not page.locator("#prompt-warning").is_visible()
    box.fill("a red dog moving left")
    page.wait_for_selector("#prompt-warning >> text=Unknown to tiny-teacher")
    assert "'dog'" in page.locator("#prompt-warning").inner_text()
    box.fill("a red circle moving left")
    page.wait_for_selector("#prompt-warning", state="hidden")


def test_toy_slider_changes_the_plot(page, shots):
    page.get_by_role("tab", name="Toy").click()
    summary = page.locator("#toy-summary")
    # the first toy run trains the 1D teacher and fills the caches: seconds on a quiet CPU
    page.wait_for_function("() => document.querySelector('#toy-summary').innerText.includes('M = 1')",
                           timeout=600_000)
    before = summary.inner_text()
    plot = page.locator("#toy-traj .js-plotly-plot")
    plot.wait_for()
    plot_before = plot.inner_html()
    box = page.get_by_label("number input for Dataset mismatch M")  # the slider's own number box
    box.fill("3")
    box.press("Tab")  # leaving the box is a slider `release`, the event the toy listens to
    page.wait_for_function("() => document.querySelector('#toy-summary').innerText.includes('M = 3')")
    assert summary.inner_text() != before
    page.wait_for_timeout(500)
    assert plot.inner_html() != plot_before  # the distillation points at M = 3 differ
    box.fill("2.5")
    box.press("Enter")  # a typed value applies on Enter too (the tab's script blurs the box)
    page.wait_for_function("() => document.querySelector('#toy-summary').innerText.includes('M = 2.5')")
    assert "5000 points per method" in summary.inner_text()  # the sample count is explained
    page.screenshot(path=str(shots / "toy.png"), full_page=True)


def test_accvideo_without_synvid_guides_to_the_synvid_form(page):
    page.get_by_role("tab", name="Distil").click()
    page.get_by_role("tab", name="AccVideo").click()
    page.wait_for_selector("#accvideo-needs-synvid >> text=AccVideo needs a finished SynVid run")
    page.locator("#make-synvid").click()
    # the SynVid form, filled with the smallest settings
    page.wait_for_function("() => document.querySelector('#synvid-num-steps input').value === '10'")
    assert page.get_by_role("tab", name="SynVid").get_attribute("aria-selected") == "true"
    assert page.locator("#synvid-preset input").first.input_value() == "heldout"


def test_accvideo_through_the_guided_synvid_run(page, shots):
    """The guided journey's end: launch the filled SynVid form, wait for it, then AccVideo from that
    run with the fewest steps (2 optimiser steps, batch 2, a 1-step student)."""
    page.get_by_role("tab", name="Distil").click()
    page.get_by_role("tab", name="AccVideo").click()
    if page.locator("#make-synvid").is_visible():  # run alone, the guided form is not filled yet
        page.locator("#make-synvid").click()
    page.wait_for_function("() => document.querySelector('#synvid-num-steps input').value === '10'")
    page.locator("#synvid-name textarea, #synvid-name input").first.fill("synvid-browser")
    page.locator("button", has_text="Launch SynVid").click()
    page.wait_for_function("() => document.querySelector('#job-command textarea').value.includes('synvid-browser')")
    page.wait_for_function("() => /synvid-browser.*finished/.test(document.querySelector('#job-progress').innerText)",
                           timeout=120_000)
    assert "6/6 samples" in page.locator("#job-progress").inner_text()  # the held-out preset's 6 prompts

    page.get_by_role("tab", name="AccVideo").click()
    page.wait_for_selector("#accvideo-needs-synvid", state="hidden", timeout=20_000)  # it has a SynVid run now
    _choose(page, "accvideo-synvid-run", "synvid-browser")
    command = _launch_two_steps(page, "accvideo", "AccVideo", "accvideo-browser", {"m": "1"}, timeout=120_000)
    assert "distill accvideo" in command and "synvid-browser" in command and "method.num_key_steps=1" in command
    page.screenshot(path=str(shots / "distil-accvideo.png"), full_page=True)


def _launch_two_steps(page, kind: str, label: str, name: str, fields: dict[str, str], timeout: int) -> str:
    """Fill the open `kind` form (name, 2 steps, batch 2, plus `fields`), launch it, wait until the
    run `name` has finished its 2 steps and is in the runs table; return the shown command."""
    for field, value in {"name": name, "steps": "2", "batch-size": "2", **fields}.items():
        page.locator(f"#{kind}-{field} textarea, #{kind}-{field} input").first.fill(value)
    page.locator("button", has_text=f"Launch {label}").click()
    page.wait_for_function(f"() => document.querySelector('#job-command textarea').value.includes('{name}')")
    command = page.locator("#job-command textarea").input_value()
    # the run's own name: an earlier test's finished job shows until the refresh reads the new one
    page.wait_for_function(f"() => /{name}.*finished/.test(document.querySelector('#job-progress').innerText)",
                           timeout=timeout)
    assert "2/2 steps" in page.locator("#job-progress").inner_text()
    page.wait_for_function(f"() => document.querySelector('#runs-table').innerText.includes('run:{name}')")
    return command


def test_launch_tiny_job_then_compare_its_student(page, shots):
    page.get_by_role("tab", name="Distil").click()
    page.get_by_role("tab", name="GPD").click()
    command = _launch_two_steps(page, "gpd", "GPD", "gpd-browser", {"schedule": "48,24"}, timeout=300_000)
    assert command.startswith(("python -m accvideo distill gpd", "torchrun ")) and "gpd-browser" in command
    page.screenshot(path=str(shots / "distil.png"), full_page=True)

    page.locator("button", has_text="Load student into Compare").click()
    page.wait_for_function("() => document.querySelector('#students').innerText.includes('run:gpd-browser')")
    page.get_by_label("Prompt", exact=True).fill("a red circle moving left")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_function("() => /run:gpd-browser: [\\d.]+x/.test(document.querySelector('#speedup').innerText)")
    assert _speedups(page)["run:gpd-browser"] > 0

    page.get_by_role("tab", name="Models").click()
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_function("() => document.querySelector('#models-table').innerText.includes('run:gpd-browser')")
    page.screenshot(path=str(shots / "models.png"), full_page=True)


def test_watchdog_flags_a_job_made_to_collapse_and_stops_it(page, monkeypatch):
    """A tiny GPD job with the watchdog on (every 5 steps, stop on a flag) that really collapses: the
    app's environment forces lr 10 on the jobs it launches (`ACCVIDEO_TEST_FORCE_LR`, read by the CLI
    only; the form refuses any lr above 0.1, and at 0.1 the tiny model degrades without collapsing)."""
    monkeypatch.setenv("ACCVIDEO_TEST_FORCE_LR", "10")  # inherited by the job's process at launch
    page.get_by_role("tab", name="Distil").click()
    page.get_by_role("tab", name="GPD").click()
    page.locator("#gpd-name textarea, #gpd-name input").first.fill("gpd-collapse")
    page.locator("#gpd-schedule textarea, #gpd-schedule input").first.fill("4,2")
    page.locator("#gpd-steps input").first.fill("10")
    page.locator("#gpd-batch-size input").first.fill("2")
    page.locator("#gpd-watchdog input").first.fill("5")
    _choose(page, "gpd-watchdog-stop", "yes")
    page.locator("button", has_text="Launch GPD").click()
    page.wait_for_function("() => document.querySelector('#job-command textarea').value.includes('gpd-collapse')")
    assert "--watchdog 5 --watchdog-stop" in page.locator("#job-command textarea").input_value()
    page.wait_for_function("() => document.querySelector('#watchdog-flags').innerText.includes('exploding')",
                           timeout=120_000)
    assert "Watchdog, step 5 (stage-1)" in page.locator("#watchdog-flags").inner_text()
    # stopped at the first flag: the CLI exits 3, which the app shows as failed, at 5 of 10 steps
    page.wait_for_function("() => document.querySelector('#job-progress').innerText.includes('failed')",
                           timeout=60_000)
    assert "gpd-collapse" in page.locator("#job-progress").inner_text()
    page.wait_for_function("() => document.querySelector('#job-log textarea').value.includes('watchdog flagged')",
                           timeout=20_000)
    page.wait_for_selector("#watchdog-clip video", state="attached", timeout=20_000)


def test_log_tail_opens_at_its_newest_line(page, runs_dir):
    """A run whose log is longer than the box, with colour codes and tqdm redraws: the box shows its end."""
    run = runs_dir / "long-log"
    run.mkdir()
    (run / "job.json").write_text(json.dumps({"name": "long-log", "kind": "gpd", "status": "stopped", "pid": None,
                                              "spec": {"name": "long-log", "steps": 4, "schedule": "48,24"},
                                              "argv": ["python"], "command": "python -m accvideo distill gpd"}))
    bar = "".join(f"\r\x1b[32mstep {i}/4\x1b[0m" for i in range(5))
    lines = "".join(f"line {i}\n" for i in range(30))
    (run / "job.log").write_text(f"$ python -m accvideo distill gpd\n{bar}\n{lines}")
    page.get_by_role("tab", name="Distil").click()
    page.locator("#job-select input").fill("long-log")
    page.locator("#job-select input").press("Enter")
    at_end = ("() => { const b = document.querySelector('#job-log textarea'); return b.value.endsWith('line 29') "
              "&& b.scrollHeight > b.clientHeight && b.scrollTop + b.clientHeight >= b.scrollHeight - 2; }")
    page.wait_for_function(at_end, timeout=20_000)
    text = page.locator("#job-log textarea").input_value()
    assert "\x1b" not in text and "[32m" not in text and "step 4/4" in text and "step 3/4" not in text
    page.get_by_role("tab", name="Models").click()
    page.get_by_role("tab", name="Distil").click()  # and again after leaving the tab
    page.wait_for_function(at_end, timeout=20_000)


def test_models_tab_fits_a_1280_px_page(page):
    """A narrow table (model, role, steps, ProcBench) and the selected row's details beside it."""
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        page.get_by_role("tab", name="Models").click()
        page.wait_for_function("() => document.querySelector('#models-table').innerText.includes('tiny-teacher')")
        widths = page.evaluate("""() => ({table: document.querySelector('#models-table').scrollWidth,
            inner: Math.max(...[...document.querySelectorAll('#models-table table')].map(t => t.scrollWidth)),
            page: document.documentElement.scrollWidth})""")
        assert widths["table"] <= 1280 and widths["inner"] <= 1280 and widths["page"] <= 1280, widths
        page.locator("#models-table").get_by_text("tiny-accvideo", exact=True).first.click()
        page.wait_for_function("() => document.querySelector('#model-details').innerText.includes('tiny-accvideo')")
        details = page.locator("#model-details").inner_text()
        # the command that made it, as its provenance.json records it
        provenance = Path(__file__).parents[1] / "assets" / "tiny-accvideo" / "provenance.json"
        command = json.loads(provenance.read_text())["command"]
        assert "provenance" in details and "assets/tiny-accvideo" in details and command in details
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
