"""The page at / in a real browser: Debian's Chromium driven by Playwright (no browser download).

CI installs chromium (``.ci/run``); these tests skip only where /usr/bin/chromium is absent.
Set LAVANYA_SCREENSHOT=PATH to keep a picture of the page after it has spoken.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
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


# -- a many-voice server, as the page sees it: GET /api/voices answered by the test ------------

def _listed(name: str, state: str | None = "resident", pinned: bool = False, demo: bool = False) -> dict:
    """One voice as ``GET /api/voices`` lists it; ``name`` is ``language/gender[ (variant)]``;
    ``state`` None: a server from before on-demand loading (no state, no pinned)."""
    match = re.fullmatch(r"(\w+)/(\w+)(?: \((\w+)\))?", name)
    language, gender, variant = match.groups()
    voice = {"name": name, "language": language, "gender": gender, "variant": variant, "sample_rate": 22050,
             "demo": demo, "engine": "onnx" if state in (None, "resident") else None}
    if state is not None:
        voice.update(state=state, pinned=pinned)
    return voice


class FakeVoices:
    """What the page gets from ``GET /api/voices``: ``voices`` and ``memory`` (None: left out,
    as servers from before on-demand loading do), changeable while the page runs; ``asked``
    counts the page's requests."""

    def __init__(self, voices: list[dict], memory: dict | None = None):
        self.voices = voices
        self.memory = memory
        self.asked = 0
        self._lock = threading.Lock()

    def state(self, name: str, state: str) -> None:
        with self._lock:
            for voice in self.voices:
                if voice["name"] == name:
                    voice.update(state=state, engine="onnx" if state == "resident" else None)

    def answer(self, route) -> None:
        with self._lock:
            self.asked += 1
            body = {"voices": self.voices, "limits": ServerLimits(max_chars=200).describe(), "ready": True}
            if self.memory is not None:
                body["memory"] = self.memory
            text = json.dumps(body)
        route.fulfill(status=200, content_type="application/json", body=text)


# Listed out of order, as a server might: the page sorts by language, gender, then variant.
MANY_VOICES = ["tamil/male", "hindi/male (v2)", "hindi/male", "bengali/female", "hindi/female",
               "tamil/female", "english/male"]
MEGABYTE = 1_000_000


@pytest.fixture
def open_page(browser, server):
    """Opens the page on ``FakeVoices(voices, memory)``; returns the page and the fake."""
    opened = []

    def open_(voices: list[dict], memory: dict | None = None):
        context = browser.new_context()
        page = context.new_page()
        outside = []
        opened.append((context, outside))
        page.on("request", lambda request: None if request.url.startswith(("blob:", server.url))
                else outside.append(request.url))
        fake = FakeVoices(voices, memory)
        page.route("**/api/voices", fake.answer)
        page.goto(server.url + "/")
        page.locator("#voice option").first.wait_for(state="attached", timeout=WAIT_MS)
        return page, fake

    yield open_
    for context, outside in opened:
        context.close()
        assert outside == [], "the page asked for something outside the server"


def _wav(seconds: float = 0.25, rate: int = 22050) -> bytes:
    """A WAV as the server streams it: a header whose sizes say "unknown", then silence."""
    samples = int(seconds * rate)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2,
                         2, 16, b"data", 0xFFFFFFFF)
    return header + bytes(2 * samples)


def _speak_wav(route) -> None:
    route.fulfill(status=200, content_type="audio/wav", headers={"X-Sample-Rate": "22050"}, body=_wav())


def _picker(page) -> list[tuple[str, list[tuple[str, str]]]]:
    """The picker's groups in order: each group's label and its options' (words, value)."""
    return page.evaluate("""() => [...document.querySelectorAll('#voice > optgroup')].map((group) =>
        [group.label, [...group.querySelectorAll('option')].map((option) => [option.text, option.value])])""")


def _voice_state(page) -> str:
    return page.locator("#voice-state").inner_text()


def _wait_for_voice_state(page, words: str) -> None:
    page.wait_for_function("(words) => document.querySelector('#voice-state').textContent === words",
                           arg=words, timeout=WAIT_MS)


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
    assert _picker(page) == [["Hindi", [["male", "hindi/male"]]]]
    # a screen reader hears the voice's whole name, language included, and whether it is loaded
    assert page.get_by_role("option", name="Hindi, male").count() == 1
    assert page.get_by_label("Voice").get_attribute("aria-describedby").split() == ["voice-state", "voice-note"]
    assert _voice_state(page) == "ready"


def test_the_picker_groups_the_voices_by_language_and_the_request_names_the_one_chosen(open_page):
    page, _ = open_page([_listed(name) for name in MANY_VOICES])
    assert _picker(page) == [
        ["Bengali", [["female", "bengali/female"]]],
        ["English", [["male", "english/male"]]],
        ["Hindi", [["female", "hindi/female"], ["male", "hindi/male"], ["male (v2)", "hindi/male (v2)"]]],
        ["Tamil", [["female", "tamil/female"], ["male", "tamil/male"]]],
    ]
    assert page.get_by_role("option", name="Hindi, male (v2)").count() == 1
    assert page.get_by_role("option", name="Tamil, female").count() == 1
    # the first voice is chosen; the keyboard moves through the groups in order
    picker = page.get_by_label("Voice")
    assert picker.input_value() == "bengali/female"
    picker.focus()
    picker.press("ArrowDown")
    assert picker.input_value() == "english/male" and page.locator("#text").get_attribute("lang") == "en"
    sent = []

    def answer(route):
        sent.append(route.request.post_data_json)
        _speak_wav(route)

    page.route("**/api/tts", answer)
    for choice, lang, request in [("hindi/male (v2)", "hi", {"lang": "hindi", "gender": "male", "variant": "v2"}),
                                  ("tamil/female", "ta", {"lang": "tamil", "gender": "female"})]:
        picker.select_option(choice)
        assert page.locator("#text").get_attribute("lang") == lang
        page.get_by_label("Text").fill("वणक्कम्")
        page.get_by_role("button", name="Speak").click()
        page.locator("body[data-state=done]").wait_for(state="attached", timeout=WAIT_MS)
        named = {key: sent[-1].get(key) for key in ("lang", "gender", "variant")}
        assert named == {"variant": None, **request}
        # the list is asked for again after each request: the choice stays
        page.wait_for_function("() => !document.querySelector('#speak').disabled", timeout=WAIT_MS)
        assert picker.input_value() == choice


def test_the_status_beside_the_picker_says_whether_the_voice_is_loaded(open_page):
    page, _ = open_page([_listed("hindi/male", pinned=True), _listed("tamil/female", "cold"),
                         _listed("bengali/male", "loading")])
    picker = page.get_by_label("Voice")
    for choice, words, state in [("hindi/male", "ready", "resident"),
                                 ("tamil/female", "loads on first use (a few seconds)", "cold"),
                                 ("bengali/male", "loading…", "loading")]:
        picker.select_option(choice)
        assert _voice_state(page) == words and page.locator("#voice-state").get_attribute("data-state") == state
        note = page.locator("#voice-note").inner_text()
        assert "null" not in note and "undefined" not in note
    # the closed picker shows "female"; the note under it names the language as well
    assert page.locator("#voice-note").inner_text().startswith("Bengali, male")
    picker.select_option("hindi/male")
    assert page.locator("#voice-note").inner_text() == "Hindi, male: 22050 Hz, onnx; always kept loaded"
    assert page.locator("#memory").is_hidden()  # the answer has no memory figures


def test_a_voice_loading_elsewhere_is_looked_at_again_until_it_is_ready(open_page):
    page, fake = open_page([_listed("hindi/male", "loading")])
    assert _voice_state(page) == "loading…"
    fake.state("hindi/male", "resident")
    _wait_for_voice_state(page, "ready")  # without a request of the page's


def test_speaking_with_a_cold_voice_says_it_loads_until_the_audio_comes(open_page):
    page, fake = open_page([_listed("hindi/male"), _listed("tamil/female", "cold")],
                           memory={"budget_bytes": 2048 * MEGABYTE, "resident_bytes": 310 * MEGABYTE})
    memory = page.locator("#memory")
    assert memory.is_visible() and memory.inner_text() == "Voices in memory: 310 MB of 2,048 MB"
    page.get_by_label("Voice").select_option("tamil/female")
    assert _voice_state(page) == "loads on first use (a few seconds)"
    held = []
    page.route("**/api/tts", lambda route: held.append(route))  # the voice "loads": no answer yet
    page.get_by_label("Text").fill("வணக்கம்")
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function("() => document.body.dataset.state === 'speaking'", timeout=WAIT_MS)
    _wait_for_voice_state(page, "loading voice…")
    assert page.locator("#voice-state").get_attribute("data-state") == "loading"
    assert page.locator("#status").inner_text().startswith("Loading the voice")
    # the voice is in memory now; the audio comes, and the page asks for the list again
    fake.state("tamil/female", "resident")
    fake.memory = {"budget_bytes": 2048 * MEGABYTE, "resident_bytes": 620 * MEGABYTE}
    asked = fake.asked
    page.wait_for_timeout(100)
    assert len(held) == 1
    _speak_wav(held[0])
    page.locator("body[data-state=done]").wait_for(state="attached", timeout=WAIT_MS)
    _wait_for_voice_state(page, "ready")
    page.wait_for_function("() => document.querySelector('#memory').textContent.includes('620 MB')",
                           timeout=WAIT_MS)
    assert fake.asked > asked and memory.inner_text() == "Voices in memory: 620 MB of 2,048 MB"
    assert page.locator("#status").inner_text().startswith("Done")
    # a resident voice speaks without the loading words
    page.unroute("**/api/tts")
    held.clear()
    page.route("**/api/tts", lambda route: held.append(route))
    page.get_by_label("Voice").select_option("hindi/male")
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function("() => document.body.dataset.state === 'speaking'", timeout=WAIT_MS)
    assert _voice_state(page) == "ready" and page.locator("#status").inner_text() == "Speaking…"
    page.wait_for_timeout(100)
    _speak_wav(held[0])
    page.locator("body[data-state=done]").wait_for(state="attached", timeout=WAIT_MS)


@pytest.mark.parametrize("error, detail, words", [
    ("voice_memory", "loading tamil/female needs 310 MB and every loaded voice is in use",
     "no memory free to load this voice just now; try again in 12 s"),
    ("queue_full", "all 2 workers are busy and 4 requests are waiting; retry after 12 s",
     "busy with other requests; try again in 12 s"),
], ids=["voice_memory", "queue_full"])
def test_a_voice_that_cannot_load_now_is_explained_and_stays_cold(open_page, error, detail, words):
    page, fake = open_page([_listed("hindi/male"), _listed("tamil/female", "cold")])
    page.get_by_label("Voice").select_option("tamil/female")
    page.route("**/api/tts", lambda route: route.fulfill(
        status=503, content_type="application/json", headers={"Retry-After": "12"},
        body=json.dumps({"error": error, "detail": detail})))
    asked = fake.asked
    page.get_by_label("Text").fill("வணக்கம்")
    page.get_by_role("button", name="Speak").click()
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=WAIT_MS)
    assert words in alert.inner_text() and detail in alert.inner_text()
    _wait_for_voice_state(page, "loads on first use (a few seconds)")
    page.wait_for_function("() => !document.querySelector('#speak').disabled", timeout=WAIT_MS)
    deadline = time.monotonic() + WAIT_MS / 1000
    while fake.asked <= asked:  # the list was asked for again after the refusal
        assert time.monotonic() < deadline, "the page did not ask for the voices again"
        page.wait_for_timeout(50)
    assert alert.is_visible() and words in alert.inner_text()  # the refresh leaves the error be


def test_a_server_from_before_on_demand_loading_still_works(open_page):
    page, _ = open_page([_listed("hindi/male", None), _listed("hindi/female", None)])
    assert _picker(page) == [["Hindi", [["female", "hindi/female"], ["male", "hindi/male"]]]]
    assert _voice_state(page) == "ready" and page.locator("#memory").is_hidden()
    assert page.locator("#status").inner_text() == "Ready."
