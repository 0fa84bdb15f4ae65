"""The first app: the handler as a plain function, then the real page in headless chromium."""

import shutil
import socket
from pathlib import Path

import pytest

from accvideo.ui import build_app, generate_video

CHROMIUM = "/usr/bin/chromium"


def test_handler_generates_and_times(tiny_pipeline_dir):
    path, table, seed = generate_video(str(tiny_pipeline_dir), "a red circle moving left", 3, 2, 2.0)
    assert Path(path).stat().st_size > 0 and path.endswith(".mp4")
    assert list(table["stage"]) == ["text_encoder", "denoising", "vae_decode", "total"]
    assert seed == 3
    path2, _, _ = generate_video(str(tiny_pipeline_dir), "a red circle moving left", 3, 2, 2.0)
    assert path2 != path  # every request writes its own file


@pytest.mark.parametrize("args, match", [
    (("   ", 0, 2, 1.0), "`prompt` must be a non-empty string"),
    (("a red circle moving left", 1.5, 2, 1.0), "`seed` must be an integer"),
    (("a red circle moving left", 0, 0, 1.0), "`num_steps` must be an integer >= 1"),
])
def test_handler_bad_input(tiny_pipeline_dir, args, match):
    with pytest.raises(ValueError, match=match):
        generate_video(str(tiny_pipeline_dir), *args)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_app_in_browser(tiny_pipeline_dir):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    demo = build_app(str(tiny_pipeline_dir))
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_label("Prompt").fill("a blue square moving up")
            page.get_by_label("Denoising steps", exact=False).first.fill("3")
            page.locator("button", has_text="Generate").click()
            page.wait_for_selector("video", timeout=60_000)
            src = page.locator("video").first.get_attribute("src")
            assert src and ".mp4" in src
            page.wait_for_selector("text=denoising", timeout=30_000)
            # bad input becomes a readable error, not a crash
            page.get_by_label("Prompt").fill("   ")
            page.locator("button", has_text="Generate").click()
            page.wait_for_selector("text=must be a non-empty string", timeout=30_000)
            browser.close()
    finally:
        demo.close()
