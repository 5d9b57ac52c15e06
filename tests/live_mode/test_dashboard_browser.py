"""The dashboard as a person sees it: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) opens the page while live mode runs on a clip played at
its own pace; the timeline gains points as windows arrive and the video updates. The screenshot
is written to ``$DASHBOARD_SCREENSHOT`` when set (the docs' docs/images/dashboard.png comes from
``DASHBOARD_SCREENSHOT=docs/images/dashboard.png pytest tests/live_mode/test_dashboard_browser.py``)."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from live_mode import LiveRunner, LiveSettings
from live_mode.dashboard import DashboardServer
from live_mode.dashboard_state import DashboardState
from media.capture import CameraSource

pytestmark = pytest.mark.slow  # a browser and the tiny pipeline, in real time


def chrome():
    """A headless Chromium through Selenium, or skip saying what is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("chromium and chromedriver not installed: the browser test drives headless Chromium "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1050", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def wait_for(check, timeout: float, what: str):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")


def test_page_shows_video_timeline_and_status_as_windows_arrive(tmp_path, tiny_pipeline_run):
    from fusion.prediction import Predictor
    from tests.conftest import make_scene_clip

    browser = chrome()
    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=300, fps=10.0, size=(320, 180), faces=3, audio=False)
    runner = LiveRunner(Predictor.from_run(tiny_pipeline_run), LiveSettings(window=2.0, stride=0.5, drop_late=True))
    state = DashboardState()
    runner.listeners.append(state)
    server = DashboardServer(state).start()
    source = CameraSource(str(clip), size_for=runner.size_for, pace=True)   # the clip at its own pace
    live = threading.Thread(target=runner.run, args=(source,), kwargs={"handle_sigint": False}, daemon=True)
    live.start()
    try:
        browser.get(server.url)
        assert browser.title == "Live group emotion"

        def points() -> int:
            return int(browser.execute_script("return Number(document.getElementById('timeline').dataset.points"
                                              " || 0)"))

        first = wait_for(lambda: points() >= 2 and points(), 120, "two points on the timeline")
        wait_for(lambda: points() > first, 60, "the timeline to grow")
        video = browser.find_element("id", "video")
        wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", video) > 0, 30, "a video frame")
        shot = video.screenshot_as_png
        wait_for(lambda: video.screenshot_as_png != shot, 30, "the video to change")
        status = browser.find_element("id", "st-windows").text
        assert status.isdigit() and int(status) >= 2
        assert browser.find_elements("css selector", "#streams .stream")
        wait_for(lambda: browser.find_elements("css selector", "#keyframes img"), 30, "the keyframe strip")
        time.sleep(1.0)  # the keyframe thumbnails load
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1400, height + 140)   # the whole page in the screenshot (+ the window's frame)
        time.sleep(0.5)
        out = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
        out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(out))
        assert out.stat().st_size > 10_000
    finally:
        browser.quit()
        runner.request_stop("test done")
        live.join(30)
        server.stop()
    assert not live.is_alive()
