"""The speech server's API over real HTTP (uvicorn on loopback) with the tiny random-weight voice."""

from __future__ import annotations

import re
import struct
import threading
import time

import httpx
import numpy as np
import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.serve.limits import ServerLimits
from lavanya_cli.speech.audio import UNKNOWN_LENGTH
from _helpers import auto_engine, metric, tts_body
from servekit import WAIT_SECONDS, GatedVoice, start_server, wait_until
from synthkit import shared_voice

THREE_SENTENCES = "नमस्ते। आप कैसे हैं? मैं ठीक हूँ।"


def _pcm(text: str, **options) -> bytes:
    """What the voice says for ``text``, straight from the library, as the server should send it."""
    chunks = shared_voice().synthesize(text, **options)
    return b"".join(chunk.to_int16().astype("<i2").tobytes() for chunk in chunks)


@pytest.fixture(scope="module")
def plain():
    """A server on the tiny voice with default limits, shared by the tests that only read."""
    running = start_server([shared_voice()])
    with httpx.Client(base_url=running.url, timeout=WAIT_SECONDS) as client:
        yield client
    running.stop()


@pytest.fixture
def gated():
    """Start a server on a GatedVoice with the given limits; stopped (gates opened) afterwards."""
    started = []

    def start(**limits):
        voice = GatedVoice(shared_voice())
        running = start_server([voice], ServerLimits(**limits))
        client = httpx.Client(base_url=running.url, timeout=WAIT_SECONDS)
        started.append((voice, running, client))
        return voice, running, client

    yield start
    for voice, running, client in started:
        voice.allow(100)
        client.close()
        running.stop()


def _read(chunks, size: int) -> bytes:
    """At least ``size`` bytes from a response's chunk iterator (a sentence may span reads)."""
    data = b""
    while len(data) < size:
        data += next(chunks)
    return data


# -- what comes back -------------------------------------------------------------------------

def test_voices_lists_what_is_loaded_and_the_limits(plain):
    body = plain.get("/api/voices").json()
    assert body["voices"] == [{"name": "hindi/male", "language": "hindi", "gender": "male", "variant": None,
                               "sample_rate": 22050, "demo": False, "engine": auto_engine(),
                               "state": "resident", "pinned": True}]
    assert body["limits"]["max_chars"] == 2000 and body["limits"]["alpha"] == {"min": 0.25, "max": 4.0, "default": 1.0}


def test_post_returns_the_voice_s_audio_as_a_streamed_wav(plain):
    response = plain.post("/api/tts", json=tts_body(THREE_SENTENCES, alpha=1.5, sentence_silence=0.2))
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == "22050" and response.headers["x-sentences"] == "3"
    assert "content-length" not in response.headers  # streamed, not buffered
    riff, riff_size, wave = struct.unpack("<4sI4s", response.content[:12])
    data_tag, data_size = struct.unpack("<4sI", response.content[36:44])
    assert (riff, wave, data_tag) == (b"RIFF", b"WAVE", b"data")
    assert riff_size == data_size == UNKNOWN_LENGTH
    assert response.content[44:] == _pcm(THREE_SENTENCES, alpha=1.5, sentence_silence=0.2)


def test_get_with_pcm_format_gives_the_same_samples_without_a_header(plain):
    response = plain.get("/api/tts", params={"text": "नमस्ते।", "lang": "hindi", "gender": "male", "format": "pcm"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-sample-format"] == "s16le" and response.headers["x-sample-rate"] == "22050"
    assert response.content == _pcm("नमस्ते।")


def test_first_sentence_goes_out_before_the_second_is_made(gated):
    voice, _, client = gated()
    voice.allow(1)
    first_sentence = _pcm("नमस्ते।")
    with client.stream("POST", "/api/tts", json=tts_body(THREE_SENTENCES)) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = _read(chunks, 44 + len(first_sentence))
        # the whole first sentence arrived while the second waits at its gate
        wait_until(lambda: voice.entered == 2, "the second sentence starts")
        assert voice.rendered == 1
        voice.allow(2)
        rest = b"".join(chunks)
    assert first[44:] == first_sentence
    assert first[44:] + rest == _pcm(THREE_SENTENCES)


# -- load and limits -------------------------------------------------------------------------

def test_queue_full_is_refused_at_once_while_health_and_metrics_answer(gated):
    voice, running, client = gated(workers=1, queue=1)
    results = {}

    def send(name):
        results[name] = httpx.post(running.url + "/api/tts", json=tts_body("नमस्ते।"), timeout=WAIT_SECONDS)

    holder = threading.Thread(target=send, args=("holder",))
    holder.start()
    wait_until(lambda: voice.entered == 1, "the first request holds the worker")
    waiter = threading.Thread(target=send, args=("waiter",))
    waiter.start()
    wait_until(lambda: metric(client, "lavanya_queue_depth") == 1, "the second request waits")

    refused = client.post("/api/tts", json=tts_body("नमस्ते।"))
    assert refused.status_code == 503
    assert refused.json()["error"] == "queue_full" and "retry" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    # every worker is busy, yet health, readiness and metrics answer
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert metric(client, "lavanya_workers_busy") == 1

    voice.allow(2)
    holder.join(WAIT_SECONDS)
    waiter.join(WAIT_SECONDS)
    assert results["holder"].status_code == results["waiter"].status_code == 200
    assert metric(client, "lavanya_http_requests_total", route="/api/tts", status="503") == 1
    assert metric(client, "lavanya_http_requests_total", route="/api/tts", status="200") == 2


@pytest.mark.slow  # waits out a timeout
def test_a_request_that_waits_past_the_timeout_gets_504(gated):
    voice, running, client = gated(workers=1, queue=2, timeout=0.5)
    holder = threading.Thread(target=httpx.post, args=(running.url + "/api/tts",),
                              kwargs={"json": tts_body("नमस्ते।"), "timeout": WAIT_SECONDS})
    holder.start()
    wait_until(lambda: voice.entered == 1, "the first request holds the worker")
    late = client.post("/api/tts", json=tts_body("नमस्ते।"))
    assert late.status_code == 504 and late.json()["error"] == "timeout"
    assert metric(client, "lavanya_queue_depth") == 0  # it left the line
    voice.allow(1)
    holder.join(WAIT_SECONDS)
    assert voice.entered == 1  # the timed-out request never reached a worker


@pytest.mark.slow  # waits out a 3 s timeout
def test_a_stream_past_the_timeout_is_cut_and_its_work_stops(gated):
    voice, _, client = gated(timeout=3.0)
    voice.allow(1)
    first_sentence = _pcm("नमस्ते।")
    with client.stream("POST", "/api/tts", json=tts_body(THREE_SENTENCES)) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        received = _read(chunks, 44 + len(first_sentence))
        wait_until(lambda: voice.entered == 2, "the second sentence starts")
        time.sleep(3.2)  # past the deadline while the second sentence waits at its gate
        voice.allow(5)
        with pytest.raises(httpx.RemoteProtocolError):  # the body ends without its last chunk
            for piece in chunks:
                received += piece
    wait_until(lambda: metric(client, "lavanya_workers_busy") == 0, "the worker is free")
    # the sentence that was running was stopped (its graphs never ran); the third never started
    assert voice.entered == 2 and voice.rendered == 1
    assert received[44:] == first_sentence
    assert metric(client, "lavanya_tts_cut_total", reason="timeout") == 1
    assert client.post("/api/tts", json=tts_body("नमस्ते।")).status_code == 200  # the worker serves again


def test_a_client_that_leaves_stops_its_work(gated):
    voice, _, client = gated(workers=1)
    voice.allow(1)
    with client.stream("POST", "/api/tts", json=tts_body(THREE_SENTENCES)) as response:
        _read(response.iter_raw(), 44 + len(_pcm("नमस्ते।")))
        wait_until(lambda: voice.entered == 2, "the second sentence starts")
    # the client has closed the connection mid-stream
    wait_until(lambda: metric(client, "lavanya_tts_cut_total", reason="disconnect") == 1, "the server notices")
    voice.allow(5)
    wait_until(lambda: metric(client, "lavanya_workers_busy") == 0, "the worker is free")
    assert voice.entered == 2 and voice.rendered == 1  # the running sentence was stopped too


@pytest.mark.slow  # waits out a client's timeout
def test_a_client_that_leaves_the_line_frees_its_place(gated):
    voice, running, client = gated(workers=1, queue=1)
    outcomes = []

    def send(timeout):
        try:
            outcomes.append(httpx.post(running.url + "/api/tts", json=tts_body("नमस्ते।"), timeout=timeout).status_code)
        except httpx.ReadTimeout:
            outcomes.append("left")

    holder = threading.Thread(target=send, args=(WAIT_SECONDS,))
    holder.start()
    wait_until(lambda: voice.entered == 1, "the first request holds the worker")
    leaver = threading.Thread(target=send, args=(2.0,))
    leaver.start()
    wait_until(lambda: metric(client, "lavanya_queue_depth") == 1, "the second request waits")
    leaver.join(WAIT_SECONDS)
    wait_until(lambda: metric(client, "lavanya_queue_depth") == 0, "the leaver is out of the line")
    voice.allow(1)
    holder.join(WAIT_SECONDS)
    assert outcomes == ["left", 200] and voice.entered == 1


@pytest.mark.parametrize("body, status, error", [
    (tts_body("क" * 2001), 413, "text_too_long"),
    (tts_body("   "), 422, "unspeakable"),
    (tts_body("😀 🙂"), 422, "unspeakable"),
    (tts_body("<alpha=8>नमस्ते।"), 422, "unspeakable"),
    (tts_body("<sil=oops>नमस्ते।"), 422, "unspeakable"),
    ({"lang": "hindi", "gender": "male"}, 422, "invalid_request"),
    (tts_body(THREE_SENTENCES, alpha=0.1), 422, "invalid_request"),
    (tts_body(THREE_SENTENCES, alpha=True), 422, "invalid_request"),
    (tts_body(THREE_SENTENCES, sentence_silence=-1), 422, "invalid_request"),
    (tts_body(THREE_SENTENCES, format="mp3"), 422, "invalid_request"),
    (tts_body(THREE_SENTENCES, speed=2), 422, "invalid_request"),
    (tts_body(THREE_SENTENCES, lang="tamil"), 404, "unknown_voice"),
])
def test_bad_requests_get_a_status_and_a_json_reason(plain, body, status, error):
    response = plain.post("/api/tts", json=body)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["detail"]


def test_unknown_voice_lists_the_voices(plain):
    body = plain.post("/api/tts", json=tts_body(THREE_SENTENCES, gender="female")).json()
    assert body["voices"] == ["hindi/male"] and "hindi/female" in body["detail"]


@pytest.mark.parametrize("raw", [b'{"text": "x", "lang": ', b'{"text": "x", "lang": "hindi", "gender": "male", "alpha": NaN}',
                                 b'{"text": "x", "lang": "hindi", "gender": "male", "alpha": Infinity}', b"[1, 2]"])
def test_malformed_json_and_non_finite_numbers_are_422(plain, raw):
    response = plain.post("/api/tts", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_query_numbers_are_checked_too(plain):
    for alpha in ("nan", "inf", "abc", "5"):
        response = plain.get("/api/tts", params={"text": "नमस्ते।", "lang": "hindi", "gender": "male", "alpha": alpha})
        assert response.status_code == 422, alpha
        assert "alpha" in response.json()["detail"]


@pytest.mark.parametrize("declared", [True, False])
def test_a_body_over_the_bound_is_413_whether_or_not_its_length_is_declared(plain, declared):
    body = b"{" + b" " * (2000 * 12 + 20000) + b"}"
    content = body if declared else iter([body[:10000], body[10000:]])  # an iterator goes chunked
    response = plain.post("/api/tts", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"


# -- health, readiness, metrics, the page -----------------------------------------------------

def test_ready_only_once_the_voices_have_loaded():
    loaded = threading.Event()

    def load(voice_set):
        assert loaded.wait(WAIT_SECONDS)
        voice_set.add_all([shared_voice()])

    running = start_server(None, load_voices=load)
    try:
        with httpx.Client(base_url=running.url, timeout=WAIT_SECONDS) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 503
            early = client.post("/api/tts", json=tts_body("नमस्ते।"))
            assert early.status_code == 503 and early.json()["error"] == "not_ready"
            loaded.set()
            wait_until(lambda: client.get("/readyz").status_code == 200, "ready")
            assert client.post("/api/tts", json=tts_body("नमस्ते।")).status_code == 200
    finally:
        running.stop()


def test_a_voice_that_fails_to_load_is_reported():
    failures = []

    def load(_voice_set):
        raise LavanyaError("model.pth: not loadable")

    running = start_server(None, load_voices=load, on_fatal=failures.append)
    try:
        wait_until(lambda: bool(failures), "the failure is reported")
        assert failures[0].message == "model.pth: not loadable"
        assert httpx.get(running.url + "/readyz").status_code == 503
    finally:
        running.stop()


def test_metrics_count_requests_audio_and_first_bytes(plain):
    before = metric(plain, "lavanya_audio_seconds_total", voice="hindi/male")
    first_bytes = metric(plain, "lavanya_tts_first_byte_seconds_count")
    response = plain.post("/api/tts", json=tts_body("नमस्ते।"))
    seconds = (len(response.content) - 44) / 2 / 22050
    assert metric(plain, "lavanya_audio_seconds_total", voice="hindi/male") - before == pytest.approx(seconds)
    assert metric(plain, "lavanya_tts_first_byte_seconds_count") == first_bytes + 1
    assert metric(plain, "lavanya_http_requests_total", route="/healthz", status="200") >= 0
    assert plain.get("/metrics").headers["content-type"].startswith("text/plain")


def test_the_page_and_reference_are_served_without_anything_from_outside(plain):
    page = plain.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert plain.get("/docs").status_code == 200
    assert "/api/tts" in plain.get("/openapi.json").json()["paths"]
    for name in ("index.html", "docs.html"):
        html = plain.get("/" if name == "index.html" else "/docs").text
        for asset in re.findall(r'(?:src|href)="([^"#]+)"', html):
            assert asset.startswith("/"), f"{name} loads {asset} from elsewhere"
            assert plain.get(asset).status_code == 200, asset


def test_favicon_ico_answers_with_the_page_s_icon(plain):
    icon = plain.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")
    assert b"<svg" in icon.content and icon.content == plain.get("/static/favicon.svg").content
    assert "default-src 'self'" in icon.headers["content-security-policy"]
    head = plain.head("/favicon.ico")
    assert head.status_code == 200 and head.headers["content-type"] == icon.headers["content-type"]
    assert plain.post("/favicon.ico").status_code == 405


def test_unknown_paths_get_the_json_error_shape(plain):
    response = plain.get("/nowhere")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_nothing_is_written_to_disk(plain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert plain.post("/api/tts", json=tts_body("नमस्ते।")).status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_the_samples_are_16_bit_audio_not_silence(plain):
    response = plain.post("/api/tts", json=tts_body("नमस्ते।"))
    samples = np.frombuffer(response.content[44:], dtype="<i2")
    assert samples.size > 22050 // 10 and np.abs(samples).max() > 0


def test_a_strict_server_refuses_a_word_it_cannot_pronounce():
    from lavanya_cli.speech.voice import Voice
    from synthkit import shared_voice_root

    running = start_server([Voice.load("hindi", "male", models=shared_voice_root(), strict=True)])
    try:
        response = httpx.post(running.url + "/api/tts", json=tts_body("नमस्ते 😀"), timeout=WAIT_SECONDS)
        assert response.status_code == 422 and "not every word can be spoken" in response.json()["detail"]
        lenient = httpx.post(running.url + "/api/tts", json=tts_body("नमस्ते।"), timeout=WAIT_SECONDS)
        assert lenient.status_code == 200
    finally:
        running.stop()


def test_words_that_are_skipped_are_named_in_a_header(plain):
    response = plain.post("/api/tts", json=tts_body("नमस्ते 😀"))
    assert response.status_code == 200 and response.headers["x-unpronounced"] == "%F0%9F%98%80"
