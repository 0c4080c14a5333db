"""``lavanya serve`` under attack, over real HTTP: clients that stop reading or never finish a
request, oversized request lines and headers, hostile bodies and hosts, other sites' pages,
telemetry, and stops by signal. Each would once have held a worker, stalled the loop, filled
memory, printed tracebacks or written files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lavanya_cli.serve import http as bounded_http
from lavanya_cli.serve.app import UNPRONOUNCED_HEADER_MAX_BYTES
from lavanya_cli.serve.limits import ServerLimits
from lavanya_cli.serve.server import ServeConfig
from _helpers import free_port, metric, tts_body
from servekit import WAIT_SECONDS, start_server, wait_until
from synthkit import shared_voice

REPO = Path(__file__).resolve().parents[1]
LAVANYA = [sys.executable, "-c", "from lavanya_cli.cli import run; run()"]


def _raw(url: str, request: bytes, read: bool = True, timeout: float = WAIT_SECONDS) -> bytes:
    """Send raw bytes to the server; its whole answer (until it closes, or its body is complete)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused and closed while we were still sending
        answer = b""
        while read:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
            if _complete(answer):  # a kept-alive connection stays open after its answer
                break
        return answer


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response with a content-length: its head and its body."""
    head, found, body = answer.partition(b"\r\n\r\n")
    lengths = [line.split(b":", 1)[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return bool(found and lengths) and len(body) >= int(lengths[0])


def _json_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


@pytest.fixture(scope="module")
def server():
    running = start_server([shared_voice()], ServerLimits(workers=1, queue=0, timeout=3),
                           allowed_hosts=("localhost", "127.0.0.1", "::1"), send_buffer=4096)
    yield running
    running.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=WAIT_SECONDS) as client:
        yield client


# -- clients that stall -------------------------------------------------------------------------

@pytest.mark.slow  # waits out the 3 s deadline
def test_a_client_that_stops_reading_is_cut_at_the_deadline_and_frees_its_worker(server, client):
    body = json.dumps(tts_body("नमस्ते। " * 150)).encode()
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    stalled.sendall(b"POST /api/tts HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # then never reads
    try:
        wait_until(lambda: metric(client, "lavanya_workers_busy") == 1, "the stalled request holds the worker")
        started = time.monotonic()
        wait_until(lambda: metric(client, "lavanya_tts_cut_total", reason="stalled") == 1, "the stall is cut")
        assert time.monotonic() - started < 6  # at the 3 s deadline, not when the client gives up
        wait_until(lambda: metric(client, "lavanya_workers_busy") == 0, "the worker is free")
        assert client.post("/api/tts", json=tts_body()).status_code == 200  # served again, not 503
        assert _closed_soon(stalled)  # the connection was dropped, not left open on unread audio
    finally:
        stalled.close()


def _closed_soon(sock: socket.socket, seconds: float = 10) -> bool:
    """Whether the server ends the connection: what was buffered reads out, then EOF or a reset."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


@pytest.mark.slow  # waits out the read timeout
@pytest.mark.parametrize("partial", [
    b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ",  # headers that never end
    b"POST /api/tts HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 30000\r\n\r\n{",  # a body that never ends
])
def test_a_request_that_never_finishes_arriving_is_answered_408(server, monkeypatch, partial):
    monkeypatch.setattr(bounded_http, "REQUEST_SECONDS", 1.0)
    started = time.monotonic()
    status, error = _json_error(_raw(server.url, partial))
    assert status == 408 and error["error"] == "request_timeout"
    assert time.monotonic() - started < 8


def test_a_body_refused_unread_is_answered_once_and_closed(server, monkeypatch):
    monkeypatch.setattr(bounded_http, "REQUEST_SECONDS", 1.0)
    answer = _raw(server.url, b"POST /api/tts HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 60000\r\n\r\n{")
    assert answer.count(b"HTTP/1.1 ") == 1 and _json_error(answer)[0] == 413


@pytest.mark.slow  # waits out the read timeout
def test_a_kept_alive_connection_fed_stray_line_breaks_is_closed(server, monkeypatch):
    monkeypatch.setattr(bounded_http, "REQUEST_SECONDS", 1.0)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT_SECONDS) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.endswith(b"}"):
            first += sock.recv(65536)
        started = time.monotonic()
        sock.sendall(b"\r\n")  # cancels uvicorn's keep-alive timer without starting a request
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert _json_error(answer)[0] == 408 and time.monotonic() - started < 8


# -- sizes at the server itself -----------------------------------------------------------------

@pytest.mark.parametrize("request_head, status, error", [
    (b"GET /api/tts?text=" + b"a" * 300_000 + b" HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", 414, "uri_too_long"),
    (b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 300_000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(100)) + b"\r\n",
     431, "headers_too_large"),
    (b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"".join(b"x-%d: %s\r\n" % (i, b"a" * 6000) for i in range(8))
     + b"\r\n", 431, "headers_too_large"),
    (b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * (2 << 20), 431, "headers_too_large"),
    (b"GET /healthz HTTP/1.1\r\nhost: [::1\r\n\r\n", 400, "bad_host"),
    (b"BREW /\x00 HTCPCP/1.0\r\n\r\n", 400, "bad_request"),
])
def test_oversized_or_malformed_requests_get_the_json_error_shape(server, request_head, status, error):
    got_status, body = _json_error(_raw(server.url, request_head))
    assert (got_status, body["error"]) == (status, error) and body["detail"]


def test_a_huge_request_line_does_not_stall_the_event_loop(server, client):
    def flood() -> None:
        _raw(server.url, b"GET /" + b"a" * (50 << 20) + b" HTTP/1.1\r\n\r\n", read=False)

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        for _ in range(5):
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert time.monotonic() - started < 1.0
    finally:
        sender.join(WAIT_SECONDS)


# -- bodies -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, words", [
    (b'{"text": "\xff\xfe", "lang": "hindi", "gender": "male"}', "not UTF-8"),
    (b"[" * 20_000 + b"]" * 20_000, "nested"),
    (b'{"text": "x", "lang": "hindi", "gender": "male", "alpha": 1' + b"0" * 5000 + b"}", "the body is not valid JSON"),
    ('{"text": "नमस्ते \\ud800", "lang": "hindi", "gender": "male"}'.encode(), "lone surrogate"),
    (b'{"text": "x", "lang": "hindi", "gender": "male", "alpha": "2"}', "not a string"),
    (b'{"text": "x", "lang": ', "the body is not valid JSON"),
])
def test_a_hostile_body_is_422_invalid_request_in_one_line(client, raw, words):
    response = client.post("/api/tts", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_request", response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail and not detail[0].isdigit()


def test_query_numbers_are_read_as_decimal_text(client):
    ok = client.get("/api/tts", params={"text": "नमस्ते।", "lang": "hindi", "gender": "male", "alpha": "1.25"})
    assert ok.status_code == 200


def test_an_early_413_is_counted_under_its_route(server, client):
    answer = _raw(server.url, b"POST /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
                              b"content-length: 10485760\r\n\r\nxxx")
    status, error = _json_error(answer)
    assert status == 413 and error["error"] == "body_too_large"
    assert metric(client, "lavanya_http_requests_total", route="/metrics", status="413") == 1


def test_words_left_out_are_bounded_in_the_header_and_listed_in_full_by_api_text(client):
    words = [chr(0x4E00 + index) for index in range(400)]  # 400 words no voice here can say
    text = "नमस्ते " + " ".join(words)
    response = client.post("/api/tts", json=tts_body(text))
    assert response.status_code == 200
    header = response.headers["x-unpronounced"]
    assert 0 < len(header) <= UNPRONOUNCED_HEADER_MAX_BYTES and response.headers["x-unpronounced-count"] == "400"
    planned = client.post("/api/text", json=tts_body(text)).json()
    assert planned["unpronounced"] == words and planned["sentences"][0]["spoken"] is True


# -- hosts, other sites, methods ----------------------------------------------------------------

def test_only_the_allowed_hosts_are_answered(server):
    refused = httpx.get(server.url + "/healthz", headers={"host": "evil.example:8000"})
    assert refused.status_code == 400 and refused.json()["error"] == "bad_host"
    assert httpx.get(server.url + "/healthz", headers={"host": "localhost:8000"}).status_code == 200


@pytest.mark.parametrize("headers", [{"sec-fetch-site": "cross-site"}, {"origin": "http://evil.example"}])
def test_speech_is_refused_to_other_sites_pages(client, headers):
    response = client.get("/api/tts", params=tts_body(), headers=headers)
    assert response.status_code == 403 and response.json()["error"] == "cross_origin"
    assert client.get("/api/voices", headers=headers).status_code == 200  # reading the list is harmless


def test_the_page_s_own_requests_pass(server, client):
    same = client.post("/api/tts", json=tts_body(), headers={"origin": server.url, "sec-fetch-site": "same-origin"})
    assert same.status_code == 200


def test_head_answers_on_every_read_route(client):
    for path in ("/healthz", "/readyz", "/api/voices", "/metrics", "/", "/docs"):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b"", path
    assert client.head("/api/tts").status_code == 405  # never starts speech


def test_the_default_hosts_follow_the_listen_address():
    assert set(ServeConfig(host="127.0.0.1").hosts) >= {"localhost", "127.0.0.1", "::1"}
    assert "*" not in ServeConfig(host="::1").hosts
    assert ServeConfig(host="0.0.0.0").hosts == ("*",)
    assert ServeConfig(host="127.0.0.1", allowed_hosts=("tts.example.org",)).hosts == ("tts.example.org",)


# -- the whole server as a process ------------------------------------------------------------

def _start(args: list, env: dict, log: Path, trace: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [*LAVANYA, "serve", "--port", str(port), *map(str, args)]
    if trace is not None:
        command = ["strace", "-f", "-e", "trace=connect", "-o", str(trace), *command]
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO), **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    return subprocess.run(["strace", "-qq", "-e", "trace=none", "true"], capture_output=True).returncode == 0


@pytest.mark.slow  # a server in a subprocess under strace
@pytest.mark.skipif(not _strace_works(), reason="strace is missing or may not trace here (.ci/run installs it)")
def test_the_server_writes_nothing_and_reaches_no_network(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    engine = "openvino" if __import__("importlib").util.find_spec("openvino") else "onnx"  # both runtimes load
    env = {"HOME": str(home), "LAVANYA_CACHE": str(home / "cache"), "XDG_CACHE_HOME": "", "LAVANYA_MODELS": ""}
    trace = tmp_path / "connect.trace"
    process, url = _start(["--engine", engine], env, tmp_path / "serve.log", trace)
    try:
        for _ in range(3):
            assert httpx.post(url + "/api/tts", json=tts_body(), timeout=60).status_code == 200
        time.sleep(12)  # ONNX Runtime's telemetry looked its host up about 8 s after start
    finally:
        (server_pid,) = _children(process.pid)  # strace's child: the server
        os.kill(server_pid, signal.SIGTERM)
        process.wait(60)
    assert "+++ exited with 143 +++" in trace.read_text(), (tmp_path / "serve.log").read_text()
    assert sorted(str(path.relative_to(home)) for path in home.rglob("*")) == []
    connects = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    assert connects == []  # no name lookups, no connections: only the socket it listens on


def test_telemetry_is_off_before_the_runtimes_load(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = ("from lavanya_cli.speech.onnx_engine import import_runtime as load\n"
            "import importlib.util, os, sys\n"
            "ort = load('onnxruntime')\n"
            "if importlib.util.find_spec('openvino'): load('openvino')\n"
            "import numpy as np\n"
            "from pathlib import Path\n"
            "from lavanya_cli.modeltree.layout import BUNDLED_ROOT\n"
            "path = BUNDLED_ROOT / 'vocoder/male/aryan/hifigan/generator.onnx'\n"
            "ort.InferenceSession(str(path)).run(None, {'mel': np.zeros((1, 80, 10), np.float32)})\n"
            "print(os.environ['ORT_DISABLE_TELEMETRY'], sys.modules.get('openvino_telemetry', 'absent'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home), "XDG_CACHE_HOME": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "1"
    assert list(home.rglob("*")) == []  # no ~/.cache/Microsoft device id, no ~/intel


@pytest.mark.slow  # a server in a subprocess
def test_a_second_signal_cuts_the_requests_in_flight_without_a_traceback(tmp_path):
    import graphkit

    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.slow())
    log = tmp_path / "serve.log"
    process, url = _start(["--models", root, "--engine", "onnx", "--timeout", "120"], {}, log)
    outcome = []

    def speak() -> None:
        try:
            outcome.append(httpx.post(url + "/api/tts", json=tts_body("नमस्ते आप कैसे हैं मैं ठीक हूँ " * 8),
                                      timeout=120).status_code)
        except httpx.HTTPError as exc:
            outcome.append(type(exc).__name__)

    client = threading.Thread(target=speak)
    try:
        client.start()
        time.sleep(3)
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: "finishing 1 in flight" in log.read_text(), "the first signal is logged")
        assert process.poll() is None  # the request in flight keeps it up
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        assert time.monotonic() - started < 10
    finally:
        process.kill()
        client.join(WAIT_SECONDS)
    text = log.read_text()
    assert process.returncode == 143
    assert "SIGTERM again: cutting 1 requests in flight" in text and "stopped by SIGTERM" in text
    assert "Traceback" not in text and "Exception in ASGI application" not in text and "lavanya: error" not in text
    assert outcome and outcome[0] != 200  # the stream was cut, not completed


@pytest.mark.slow  # a server in a subprocess
def test_a_first_signal_lets_the_request_in_flight_finish(tmp_path):
    import graphkit

    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.slow())
    log = tmp_path / "serve.log"
    process, url = _start(["--models", root, "--engine", "onnx", "--timeout", "4"], {}, log)
    outcome = []
    client = threading.Thread(target=lambda: outcome.append(
        httpx.post(url + "/api/tts", json=tts_body("नमस्ते आप कैसे हैं मैं ठीक हूँ " * 8), timeout=60).status_code))
    try:
        client.start()
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        process.kill()
        client.join(WAIT_SECONDS)
    assert outcome == [504]  # answered (at its own deadline), not cut
    assert process.returncode == 143 and "finishing 1 in flight" in log.read_text()


@pytest.mark.slow  # a server in a subprocess
def test_a_pinned_voice_whose_graph_is_a_fifo_stops_the_server_with_one_line(tmp_path):
    import graphkit

    root = graphkit.hostile_tree(tmp_path / "tree", special="fifo")
    started = time.monotonic()
    result = subprocess.run([*LAVANYA, "serve", "--models", str(root), "--voice", "hindi/male",
                             "--port", str(free_port())], capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and time.monotonic() - started < 60
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lavanya: error: ") and "generator.onnx: ONNX graph is a FIFO" in last


def test_a_voice_on_demand_whose_graph_is_a_fifo_is_refused_without_a_second_try(tmp_path, caplog):
    import graphkit
    from servekit import start_server

    from lavanya_cli.modeltree.layout import ModelRoot
    from lavanya_cli.serve.voices import VoiceSet
    from lavanya_cli.speech.options import LoadOptions

    root = graphkit.hostile_tree(tmp_path / "tree", special="fifo")
    voices = VoiceSet()
    voices.serve(list(ModelRoot(root).voices()), [], LoadOptions(engine="onnx", threads=1))
    running = start_server(None, voice_set=voices)
    try:
        with httpx.Client(base_url=running.url, timeout=WAIT_SECONDS) as client:
            for _ in range(2):
                response = client.post("/api/tts", json=tts_body("नमस्ते।"))
                assert response.status_code == 500 and response.json()["error"] == "voice_unavailable"
                assert "hindi/male cannot be loaded" in response.json()["detail"]
                assert str(root) not in response.text  # paths are the server's business
            assert client.get("/healthz").status_code == 200
    finally:
        running.stop()
    assert caplog.text.count("ONNX graph is a FIFO") == 1  # one load tried, one line in the log


def test_a_client_that_sends_ahead_without_reading_is_dropped(server, client, caplog):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT_SECONDS) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            for _ in range(20):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n" * 1000)
        except (ConnectionResetError, BrokenPipeError):
            pass  # dropped while still sending: what is expected
        assert _closed_soon(sock)
    assert "more than 8 requests sent ahead of their answers" in caplog.text
    assert client.get("/healthz").status_code == 200


@pytest.mark.slow  # waits out the deadline
def test_a_client_that_reads_no_page_is_dropped_at_the_deadline(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT_SECONDS) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        started = time.monotonic()
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nhost: localhost\r\n\r\n" * 8)  # about 200 KB to send
        time.sleep(5)  # past the 3 s deadline without reading
        assert _closed_soon(sock) and time.monotonic() - started < 20


def test_a_websocket_upgrade_is_answered_as_plain_http(server):
    answer = _raw(server.url, b"GET /healthz HTTP/1.1\r\nhost: evil.example\r\nconnection: upgrade\r\n"
                              b"upgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: "
                              b"dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", read=True, timeout=5)
    assert _json_error(answer)[0] == 400
