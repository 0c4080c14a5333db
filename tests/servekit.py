"""A real ``lavanya serve`` application on uvicorn in a thread, and a voice whose sentences wait
for the test's permission, so queueing, timeouts and disconnects happen exactly when a test says.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from lavanya_cli.serve.app import create_app
from lavanya_cli.serve.limits import ServerLimits
from lavanya_cli.serve.server import uvicorn_config
from lavanya_cli.serve.voices import VoiceSet

WAIT_SECONDS = 30  # the most any helper waits for the server or a gate before failing the test


class GatedVoice:
    """A loaded voice whose every sentence or pause first waits for a permit (``allow``).
    ``entered`` counts pieces that asked to start; ``rendered`` those that finished."""

    def __init__(self, voice):
        self._voice = voice
        self.spec = voice.spec
        self.sample_rate = voice.sample_rate
        self._permits = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.entered = 0
        self.rendered = 0

    def allow(self, pieces: int = 1) -> None:
        for _ in range(pieces):
            self._permits.release()

    def plan_segments(self, *args, **kwargs):
        return self._voice.plan_segments(*args, **kwargs)

    def render(self, plan):
        return self._gated(plan, streaming=False)

    def stream(self, plan):
        return self._gated(plan, streaming=True)

    def _gated(self, plan, streaming: bool):
        """The voice's audio entry by entry, each after a permit (the first sentence in the
        pieces ``Voice.stream`` gives it when ``streaming``)."""
        first = True
        for utterance in plan:
            with self._lock:
                self.entered += 1
            if not self._permits.acquire(timeout=WAIT_SECONDS):
                raise RuntimeError("the test never allowed this sentence")
            split = streaming and first and bool(utterance.text)
            chunks = list((self._voice.stream if split else self._voice.render)([utterance]))
            first = first and not utterance.text
            with self._lock:
                self.rendered += 1
            yield from chunks


@dataclass
class RunningServer:
    url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_SECONDS)


def start_server(voices: list | None, limits: ServerLimits | None = None,
                 load_voices: Callable[[VoiceSet], None] | None = None,
                 on_fatal: Callable[[BaseException], None] | None = None,
                 allowed_hosts: tuple[str, ...] = ("*",), send_buffer: int | None = None,
                 voice_set: VoiceSet | None = None) -> RunningServer:
    """Serve ``voices`` (already loaded) or, with ``load_voices``, whatever it adds to the set,
    on a free loopback port, with the command's uvicorn settings (``serve.server.uvicorn_config``);
    returns once uvicorn is listening. ``send_buffer``: the kernel's send buffer of each
    connection (small, a client that stops reading blocks the server's sends soon). ``voice_set``:
    serve that set, as the command configures it (voices loaded on demand)."""
    voice_set = voice_set or VoiceSet(None if load_voices else voices)
    loader = (lambda: load_voices(voice_set)) if load_voices else None
    app = create_app(limits or ServerLimits(), voice_set, load_voices=loader, on_fatal=on_fatal,
                     allowed_hosts=allowed_hosts)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:  # accepted connections inherit it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, timeout=1, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return RunningServer(f"http://127.0.0.1:{port}", app, server, thread)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)
