"""The page at / in a real browser: Debian's Chromium driven by Playwright (no browser download).

CI installs chromium (``.ci/run``); these tests skip only where /usr/bin/chromium is absent.
Set LAVANYA_SCREENSHOT=PATH to keep a picture of the page after it has spoken.
"""

from __future__ import annotations

import os
import re
import time
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

pytestmark = [pytest.mark.slow,  # Chromium driven by Playwright
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")]


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


def _speak_and_wait(page, text: str = HINDI) -> None:
    page.get_by_label("Text").fill(text)
    page.get_by_role("button", name="Speak").click()
    page.locator("body[data-state=done]").wait_for(state="attached", timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1", timeout=WAIT_MS)


def _result_shown(page) -> dict:
    """What the result area shows of a spoken text: the player's source, the download link, the figures."""
    return page.evaluate("""() => ({
        src: document.querySelector('#player').getAttribute('src') || '',
        playable: document.querySelector('#player').readyState > 0,
        download: !document.querySelector('#download').hidden,
        stats: !document.querySelector('#stats').hidden,
        figures: [...document.querySelectorAll('#stats dd')].map((dd) => dd.textContent).join(''),
    })""")


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


def _refuse_in_words(page):
    page.get_by_label("Text").fill("")  # the server answers 422: nothing to say


def _answer_503(page):
    page.route("**/api/tts", lambda route: route.fulfill(
        status=503, content_type="application/json", headers={"Retry-After": "7"},
        body='{"error": "queue_full", "detail": "all workers busy"}'))


def _drop_the_connection(page):
    page.route("**/api/tts", lambda route: route.abort("connectionreset"))


@pytest.mark.parametrize("failure, words", [(_refuse_in_words, "nothing to say"),
                                            (_answer_503, "try again in 7 s"),
                                            (_drop_the_connection, "Cannot reach the server")],
                         ids=["empty-text-422", "busy-503", "network-error"])
def test_a_failed_request_after_a_spoken_one_clears_the_old_result(page, failure, words):
    _speak_and_wait(page)
    before = _result_shown(page)
    assert before["src"].startswith("blob:") and before["download"] and before["stats"] and before["figures"]
    failure(page)
    page.get_by_role("button", name="Speak").click()
    error = page.get_by_role("alert")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert words in error.inner_text()
    # the error stands alone: no audio, download or figures of the text before it
    assert _result_shown(page) == {"src": "", "playable": False, "download": False, "stats": False, "figures": ""}
    assert page.locator("#download").get_attribute("href") != before["src"]
    assert not page.locator("#status").inner_text().startswith("Done")


def test_the_old_result_goes_as_soon_as_a_new_request_starts(page):
    _speak_and_wait(page)
    held = []
    page.route("**/api/tts", lambda route: held.append(route))  # the answer is held back
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function("() => document.body.dataset.state === 'speaking'", timeout=WAIT_MS)
    page.wait_for_function("() => !document.querySelector('#player').getAttribute('src')", timeout=WAIT_MS)
    assert page.locator("#download").is_hidden() and page.locator("#stats").is_hidden()
    for route in held:
        route.abort()


def _answers_on_loading(browser, url: str, ready: str) -> list[tuple[int, str]]:
    """Every answer the browser got while loading ``url``, the icon it fetches for the tab
    included: Chromium asks for that itself, so only the DevTools protocol sees it, not
    ``page.on("response")``. Waits until ``ready`` is in the page and an icon has been answered."""
    context = browser.new_context()
    page = context.new_page()
    answers = []
    page.on("response", lambda response: answers.append((response.status, response.url)))
    devtools = context.new_cdp_session(page)
    devtools.send("Network.enable")
    devtools.on("Network.responseReceived",
                lambda event: answers.append((event["response"]["status"], event["response"]["url"])))
    page.goto(url)
    page.locator(ready).first.wait_for(state="attached", timeout=WAIT_MS)
    deadline = time.monotonic() + WAIT_MS / 1000
    while not any(re.search(r"/favicon\.(ico|svg)$", answered) for _, answered in answers):
        assert time.monotonic() < deadline, f"no icon was asked for: {answers}"
        page.wait_for_timeout(50)  # lets the browser's events in; the loop waits for the icon
    context.close()
    return answers


@pytest.mark.parametrize("path, ready", [("/", "#voice option"), ("/docs", "#reference section")])
def test_the_page_has_an_icon_and_nothing_it_asks_for_is_missing(browser, server, path, ready):
    answers = _answers_on_loading(browser, server.url + path, ready)
    assert [answer for answer in answers if answer[0] >= 400] == []
    assert (200, server.url + "/static/favicon.svg") in answers  # the icon the page names


def test_the_icon_is_an_image_the_page_may_show(page):
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/static/favicon.svg"
    # drawn under the page's Content-Security-Policy, as the tab's icon is
    size = page.evaluate("""(href) => new Promise((resolve) => {
        const image = new Image();
        image.onload = () => resolve([image.naturalWidth, image.naturalHeight]);
        image.onerror = () => resolve(null);
        image.src = href;
    })""", href)
    assert size is not None and size[0] > 0 and size[1] > 0


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
