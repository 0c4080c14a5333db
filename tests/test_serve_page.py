"""The page at / in a real browser: Debian's Chromium driven by Playwright (no browser download).

CI installs chromium (``.ci/run``); these tests skip only where /usr/bin/chromium is absent.
Set LAVANYA_SCREENSHOT=PATH to keep a picture of the page after it has spoken.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lavanya_cli.serve.limits import ServerLimits
from servekit import start_server
from synthkit import shared_voice

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HINDI = "नमस्ते, आप कैसे हैं? मैं ठीक हूँ।"
WAIT_MS = 30_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")


@pytest.fixture(scope="module")
def server():
    running = start_server([shared_voice()], ServerLimits(max_chars=200))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context()
    page = context.new_page()
    outside = []
    page.on("request", lambda request: None if request.url.startswith(("blob:", server.url))
            else outside.append(request.url))
    page.goto(server.url + "/")
    page.locator("#voice option").first.wait_for(state="attached", timeout=WAIT_MS)
    yield page
    context.close()
    assert outside == [], "the page asked for something outside the server"


def test_typing_hindi_and_pressing_speak_plays_audio(page):
    page.get_by_label("Text").fill(HINDI)
    assert page.locator("#count").inner_text() == f"{len(HINDI)} / 200 characters"
    page.get_by_role("button", name="Speak").click()
    page.locator("body[data-state=done]").wait_for(state="attached", timeout=WAIT_MS)
    # functions, not strings: the page's Content-Security-Policy forbids evaluating strings
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1", timeout=WAIT_MS)
    audio = page.evaluate("""() => {
        const player = document.querySelector('#player');
        return {duration: player.duration, error: player.error && player.error.code, src: player.src};
    }""")
    assert audio["error"] is None and audio["src"].startswith("blob:")
    # the WAV's sizes were filled in, so the player knows its real length: several seconds of speech
    assert 0.5 < audio["duration"] < 30
    download = page.get_by_role("link", name="Download the WAV")
    assert download.is_visible() and download.get_attribute("href") == audio["src"]
    assert page.locator("#stat-rtf").inner_text() and page.locator("#error").is_hidden()
    if os.environ.get("LAVANYA_SCREENSHOT"):
        page.screenshot(path=os.environ["LAVANYA_SCREENSHOT"], full_page=True)


def test_an_error_from_the_server_is_shown_in_words(page):
    page.get_by_label("Text").fill("क" * 201)
    assert "over the limit" in page.locator("#count").inner_text()
    page.get_by_label("Text").press("Control+Enter")  # the keyboard way to speak
    error = page.get_by_role("alert")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert "too long" in error.inner_text() and "201 characters" in error.inner_text()
    assert page.locator("#player").get_attribute("src") is None


def test_unpronounceable_text_is_explained(page):
    page.get_by_label("Text").fill("😀")
    page.get_by_role("button", name="Speak").click()
    error = page.get_by_role("alert")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert error.inner_text().startswith("This cannot be spoken") and "nothing to say" in error.inner_text()


def test_controls_have_labels_and_the_text_box_takes_the_voice_s_language(page):
    for label in ("Voice", "Text", "Speed"):
        assert page.get_by_label(label).count() == 1, label
    assert page.locator("#text").get_attribute("lang") == "hi"
    assert page.locator("#voice option").all_inner_texts() == ["Hindi, male"]
