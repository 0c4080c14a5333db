"""The web application: the speech API, health, metrics, the page and its API reference.

Audio is never written anywhere: each request's sentences go from the worker straight into the
response, the WAV header first with "length unknown" (so the first sentence can go out before the
last is made). Every failure the client can act on is JSON ``{"error": code, "detail": words}``
with a status that says what happened, from a malformed request line (``serve.http``) to a
body that is not UTF-8 JSON.

The request's deadline (``--timeout``) covers everything: waiting for a worker, speaking, and
sending. A client that stops reading is cut at the deadline and its worker freed; a client that
leaves stops its work at once (the sentence being computed is stopped, see ``speech.cancel``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import resource
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import LavanyaError, __version__
from ..fileio import format_size
from ..frontend.cleaning import lone_surrogate
from ..limits import ALPHA_RANGE, PAUSE_RANGE, checked_number
from ..speech.audio import wav_header
from ..speech.cancel import Cancelled
from .http import CUT_EXTENSION
from .limits import ServerLimits
from .metrics import ServerMetrics
from .pool import DeadlinePassed, Prepared, QueueFull, SpeechJob, SpeechPool
from .voices import VoiceMemoryBusy, VoiceSet, VoiceUnavailable

log = logging.getLogger("lavanya.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page and the API reference load only their own files; audio plays from blob: URLs.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
                                 b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
NOT_READY_RETRY_SECONDS = 5
# The words left out, in a header (percent-encoded, space-separated), kept under nginx's default
# 4 KB proxy buffer with the other headers; ``X-Unpronounced-Count`` says how many there are
# and ``POST /api/text`` lists them all.
UNPRONOUNCED_HEADER_MAX_BYTES = 1024
# Seconds an error answer may take to send when the request's deadline has passed (a 504).
ERROR_SEND_SECONDS = 5.0
# The routes that start speech work: refused to other sites' pages.
SPEECH_PATHS = frozenset({"/api/tts", "/api/text"})
# JSON nesting a request body may have (a speech request is one flat object).
JSON_DEPTH_MAX = 32
ANY_HOST = "*"


# -- request ---------------------------------------------------------------------------------

_DECIMAL = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")


def _json_number(value: Any) -> Any:
    """A JSON number field: true, false and strings are refused (``"2"`` is not a number)."""
    if isinstance(value, (bool, str)):
        raise ValueError(f"must be a number, not {'true or false' if isinstance(value, bool) else 'a string'}")
    return value


def _query_number(value: Any) -> Any:
    """A query parameter arrives as text: a decimal number, else refused."""
    if isinstance(value, str):
        if not _DECIMAL.match(value) or len(value) > 40:
            raise ValueError("must be a decimal number")
        return float(value)
    return _json_number(value)


def _in_range(name: str, bounds: tuple[float, float]) -> Callable[[float | None], float | None]:
    def check(value: float | None) -> float | None:
        if value is None:
            return None
        try:
            return checked_number(value, name, *bounds)
        except LavanyaError as exc:
            raise ValueError(exc.message) from None
    return check


def _number(name: str, bounds: tuple[float, float], description: str, parse: Callable[[Any], Any] = _json_number):
    """A user number field: checked by ``checked_number``, its range in the OpenAPI schema."""
    return Annotated[
        float | None,
        BeforeValidator(parse),
        AfterValidator(_in_range(name, bounds)),
        Field(description=f"{description} From {bounds[0]:g} to {bounds[1]:g}.",
              json_schema_extra={"minimum": bounds[0], "maximum": bounds[1]}),
    ]


def _unicode_text(value: str) -> str:
    """Text that can be spoken and sent back: no lone surrogate (``"\\ud800"`` in JSON)."""
    if (at := lone_surrogate(value)) is not None:
        raise ValueError(f"holds a lone surrogate (\\u{ord(value[at]):04x}) at character {at}: send the text as UTF-8")
    return value


_ALPHA_DOC = "Speaking rate as a duration scale: higher is slower (default 1)."
_SILENCE_DOC = "Seconds of pause between sentences."


class SpeechRequest(BaseModel):
    """What to say and with which voice (the JSON body of POST)."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, AfterValidator(_unicode_text)] = Field(
        description="Text to speak. Inline tags: <alpha=1.2> for the rate, <sil=500ms> for a pause.")
    lang: Annotated[str, AfterValidator(_unicode_text)] = Field(
        min_length=1, max_length=40, description="Voice language, e.g. hindi (see /api/voices).")
    gender: Annotated[str, AfterValidator(_unicode_text)] = Field(min_length=1, max_length=16,
                                                                  description="male or female.")
    variant: Annotated[str | None, AfterValidator(lambda v: v if v is None else _unicode_text(v))] = Field(
        None, max_length=40, description="Voice variant (latest, bilingual, ...).")
    alpha: _number("alpha", ALPHA_RANGE, _ALPHA_DOC) = None
    sentence_silence: _number("sentence_silence", PAUSE_RANGE, _SILENCE_DOC) = 0.0
    format: Literal["wav", "pcm"] = Field(
        "wav", description="wav: a WAV stream; pcm: raw little-endian 16-bit mono PCM, rate in X-Sample-Rate.")


class SpeechQuery(SpeechRequest):
    """The same as query parameters of GET (numbers as decimal text)."""

    alpha: _number("alpha", ALPHA_RANGE, _ALPHA_DOC, _query_number) = None
    sentence_silence: _number("sentence_silence", PAUSE_RANGE, _SILENCE_DOC, _query_number) = 0.0


class ErrorBody(BaseModel):
    error: str = Field(description="A short code: queue_full, timeout, text_too_long, unspeakable, ...")
    detail: str = Field(description="What went wrong and what to do, in words.")


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": words} for status, words in {
        400: "A Host this server does not answer to, or a request that is not valid HTTP.",
        403: "A request from another site's page (this API answers its own page and non-browser clients).",
        404: "No such voice here (the body lists the voices there are).",
        413: "The text is longer than the server's --max-chars.",
        414: "A request target over 8 KB: send long text in a POST body.",
        422: "Malformed JSON or parameters, empty text, or nothing the voice can pronounce.",
        431: "Headers too large or too many.",
        503: "Every worker is busy and the wait line is full, the voice does not fit in the server's memory "
             "budget while the loaded voices are in use, or voices are still loading (see Retry-After).",
        504: "No audio within the server's --timeout.",
    }.items()
}


class CheckedJsonRequest(Request):
    """A request whose JSON body is parsed strictly: UTF-8, bounded nesting, numbers Python can
    hold; any failure is a ``json.JSONDecodeError`` (FastAPI's 422 ``json_invalid``) naming it,
    never an internal error."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body())
        return self._json


def parse_json_body(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"not UTF-8 (byte {exc.start})", "", exc.start) from None
    depth = _nesting(text)
    if depth > JSON_DEPTH_MAX:
        raise json.JSONDecodeError(f"nested {depth} levels deep (at most {JSON_DEPTH_MAX})", text, 0)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # a number with thousands of digits
        raise json.JSONDecodeError(str(exc).split(";")[0], text, 0) from None


def _nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting in JSON text outside strings (an upper bound: cheap,
    before the parser recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth -= 1
    return deepest


class CheckedRoute(APIRoute):
    """FastAPI's route with ``CheckedJsonRequest`` for its body."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(CheckedJsonRequest(request.scope, request.receive))

        return checked


# -- the streamed answer ---------------------------------------------------------------------

class ClientStalled(Exception):
    """The client stopped reading: the response could not be sent before the deadline."""


class SpeechResponse(Response):
    """Audio sentence by sentence. Headers go out with the first sentence, so a request that
    times out or cannot be spoken before then still gets a JSON error and its status; later,
    a timeout or failure closes the connection mid-stream, which a client sees as a cut body.
    A client that leaves stops the work at once; one that stops reading is cut at the deadline.
    ``cut`` ends it from outside (a forced shutdown)."""

    def __init__(self, job: SpeechJob, audio_format: str, metrics: ServerMetrics, arrived: float,
                 timeout: float, active: set[SpeechResponse]):
        super().__init__(status_code=200)
        self._job = job
        self._format = audio_format
        self._metrics = metrics
        self._arrived = arrived
        self._timeout = timeout
        self._active = active
        self._tasks: anyio.abc.TaskGroup | None = None
        self._cut_connection: Callable[[], None] | None = None
        self._cut_reason: str | None = None

    def cut(self, reason: str) -> None:
        """Stop the work and drop the connection (on the event loop)."""
        self._cut_reason = reason
        self._job.close()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._cut_connection = scope.get("extensions", {}).get(CUT_EXTENSION)
        self._active.add(self)
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks

                async def watch_for_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    self._cut_reason = self._cut_reason or "disconnect"
                    self._job.close()  # stops the sentence being computed
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch_for_disconnect)
                try:
                    await self._stream(scope, receive, send)
                except ClientStalled:
                    log.warning("%s: the client stopped reading; cut at the %g s limit",
                                self._job.spec.name, self._timeout)
                    self._cut_reason = "stalled"
                finally:
                    tasks.cancel_scope.cancel()
                    if self._cut_reason and self._cut_connection is not None:
                        self._cut_connection()  # dropped, not closed: nothing waits for unread audio
        finally:
            self._active.discard(self)
            self._job.close()
            if self._cut_reason:
                self._metrics.cut.labels(self._cut_reason).inc()

    async def _send(self, send: Send, message: Message, grace: float = 0.0) -> None:
        """``send`` within the request's deadline (or ``grace`` seconds from now, if later): a
        client that does not read is cut."""
        deadline = max(self._job.deadline, asyncio.get_running_loop().time() + grace)
        try:
            async with asyncio.timeout_at(deadline):
                await send(message)
        except TimeoutError:
            raise ClientStalled() from None

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        job = self._job
        try:
            prepared = await job.prepare()
            first = await job.next_piece()
        except DeadlinePassed as exc:
            detail = f"no audio within the server's {self._timeout:g} s limit ({exc}); try a shorter text"
            return await _error(504, "timeout", detail)(scope, receive, self._sender(send))
        except Cancelled:
            return
        except (VoiceMemoryBusy, VoiceUnavailable) as exc:
            return await _voice_refusal(exc, job)(scope, receive, self._sender(send))
        except LavanyaError as exc:
            return await _error(422, "unspeakable", exc.message)(scope, receive, self._sender(send))
        except Exception:
            log.exception("speech failed before the first sentence")
            failed = _error(500, "internal", "speech failed; see the server log")
            return await failed(scope, receive, self._sender(send))

        rate = job.sample_rate
        headers = {"cache-control": "no-store", "x-sample-rate": str(rate), "x-sample-format": "s16le",
                   "x-channels": "1", "x-voice": quote(job.spec.name), "x-sentences": str(prepared.sentences),
                   "x-voice-loaded": "cold" if job.loaded else "warm"}
        if prepared.unpronounced:
            headers["x-unpronounced"] = unpronounced_header(prepared.unpronounced)
            headers["x-unpronounced-count"] = str(len(prepared.unpronounced))
        headers["content-type"] = "audio/wav" if self._format == "wav" else "application/octet-stream"
        await self._send(send, {"type": "http.response.start", "status": 200,
                                "headers": [(key.encode(), value.encode()) for key, value in headers.items()]})
        opening = wav_header(rate, None) if self._format == "wav" else b""
        await self._send_piece(send, opening + first.pcm, first.seconds)
        self._metrics.first_byte.observe(time.perf_counter() - self._arrived)
        while True:
            try:
                piece = await job.next_piece()
            except DeadlinePassed:
                log.warning("%s: stopped at the %g s limit; the stream is cut", job.spec.name, self._timeout)
                self._cut_reason = "timeout"
                return  # without the final empty body: the server closes the connection mid-stream
            except Cancelled:
                return
            except Exception as exc:
                log.error("speech failed mid-stream: %s", exc.message if isinstance(exc, LavanyaError) else exc,
                          exc_info=None if isinstance(exc, LavanyaError) else exc)
                self._cut_reason = "error"
                return
            if piece is None:
                break
            await self._send_piece(send, piece.pcm, piece.seconds)
        await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        self._metrics.latency.observe(time.perf_counter() - self._arrived)

    def _sender(self, send: Send) -> Send:
        """``send`` for an error answer: it may go out after the deadline (a 504 always does)."""
        async def bounded(message: Message) -> None:
            await self._send(send, message, grace=ERROR_SEND_SECONDS)
        return bounded

    async def _send_piece(self, send: Send, body: bytes, seconds: float) -> None:
        await self._send(send, {"type": "http.response.body", "body": body, "more_body": True})
        self._metrics.audio_seconds.labels(self._job.spec.name).inc(seconds)


def unpronounced_header(words: tuple[str, ...]) -> str:
    """The words left out, percent-encoded and space-separated, as many as fit in
    ``UNPRONOUNCED_HEADER_MAX_BYTES`` (``X-Unpronounced-Count`` has the total)."""
    kept, size = [], 0
    for word in words:
        encoded = quote(word)
        grown = size + len(encoded) + (3 if kept else 0)  # "%20" between words
        if grown > UNPRONOUNCED_HEADER_MAX_BYTES:
            break
        kept.append(encoded)
        size = grown
    return "%20".join(kept)


# -- what every request passes through -------------------------------------------------------

def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` (a Host header or an origin's host, port and brackets taken off) is one
    of ``allowed``: a name, ``*.domain`` for its subdomains, or ``*`` for any."""
    if ANY_HOST in allowed:
        return True
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:  # "[::1" and the like: no host at all
        return False
    for pattern in allowed:
        pattern = pattern.lower().strip("[]")
        if name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def _origin_host(origin: str) -> str:
    """The host part of an ``Origin`` header ("" for ``null`` or one that does not parse)."""
    try:
        return urlsplit(origin).netloc
    except ValueError:
        return ""


class Guard:
    """ASGI middleware: answers only for ``allowed_hosts`` (a page on another name, as after DNS
    rebinding, gets 400), refuses speech to other sites' pages (403), adds the security headers
    to every response, drops a client that reads nothing of it for ``send_seconds``, bounds
    request bodies (one declared too large is refused unread; a chunked one is stopped where it
    passes the bound) and counts responses by route and status (``no_response`` when the client
    left before any)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, too_large: Callable[[], Response],
                 max_body_bytes: int, allowed_hosts: tuple[str, ...], route_of: Callable[[Scope], str],
                 send_seconds: float):
        self.app = app
        self.metrics = metrics
        self.too_large = too_large
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = allowed_hosts
        self.route_of = route_of
        self.send_seconds = send_seconds

    def _refusal(self, scope: Scope) -> Response | None:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.allowed_hosts):
            return _error(400, "bad_host", f"this server does not answer to the host {host[:100]!r}; "
                                           "see lavanya serve --allowed-host")
        if scope["path"] in SPEECH_PATHS:
            origin = headers.get(b"origin", b"").decode("latin-1")
            cross_site = headers.get(b"sec-fetch-site", b"") == b"cross-site"
            if cross_site or (origin and not host_allowed(_origin_host(origin), self.allowed_hosts)):
                return _error(403, "cross_origin", "speech is not started for another site's page")
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return self.too_large()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status: int | None = None

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            try:
                async with asyncio.timeout(self.send_seconds):
                    await send(message)
            except TimeoutError:  # a client that reads nothing: dropped, whatever it asked for
                cut = scope.get("extensions", {}).get(CUT_EXTENSION)
                if cut is not None:
                    cut()

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, guarded_send)
            self.metrics.requests.labels(self.route_of(scope), str(status)).inc()
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise StarletteHTTPException(413)  # FastAPI passes it on to the 413 handler
            return message
        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:
            status = status or 500  # answered by the server's error handler, outside this middleware
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or self.route_of(scope)
            self.metrics.requests.labels(route, str(status or "no_response")).inc()


# -- the application -------------------------------------------------------------------------

def create_app(limits: ServerLimits, voices: VoiceSet, load_voices: Callable[[], None] | None = None,
               on_fatal: Callable[[BaseException], None] | None = None,
               allowed_hosts: tuple[str, ...] = (ANY_HOST,)) -> FastAPI:
    """The server for ``voices``. ``load_voices`` (blocking) runs on a thread of its own once the
    server is up, so health answers while voices load and readiness turns true when they have;
    if it fails, ``on_fatal`` is told (the command stops the server and exits with the error).
    ``allowed_hosts``: the Host names it answers to (``*``: any). ``app.state.cut_all(reason)``
    cuts every speech request in flight (a forced shutdown)."""
    pool = SpeechPool(limits.workers, limits.queue)
    metrics = ServerMetrics(waiting=lambda: pool.waiting, busy=lambda: pool.busy, voices=voices)
    voices.observer = metrics
    active: set[SpeechResponse] = set()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if load_voices:
            _load_in_background(load_voices, on_fatal, asyncio.get_running_loop())
        yield
        pool.shutdown()

    app = FastAPI(
        title="lavanya", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Text to speech with Fastspeech2_HS voices. Audio is streamed sentence by sentence.",
        **_no_telemetry(),
    )
    app.router.route_class = CheckedRoute

    def cut_all(reason: str) -> int:
        cut = list(active)
        for response in cut:
            response.cut(reason)
        return len(cut)

    app.state.cut_all = cut_all
    app.state.in_flight = lambda: len(active)

    def body_too_large() -> JSONResponse:
        return _error(413, "body_too_large", f"the request body is over {limits.max_body_bytes} bytes; "
                      f"the text may be {limits.max_chars} characters")

    def route_of(scope: Scope) -> str:
        for route in app.router.routes:
            if route.matches(scope)[0] is not Match.NONE:  # PARTIAL: the path, another method
                return getattr(route, "path", "other")
        return "other"

    app.add_middleware(Guard, metrics=metrics, too_large=body_too_large, max_body_bytes=limits.max_body_bytes,
                       allowed_hosts=tuple(allowed_hosts), route_of=route_of, send_seconds=limits.timeout)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return body_too_large()
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return _error(500, "internal", "internal error; see the server log")

    def admit(request: SpeechRequest) -> SpeechJob | JSONResponse:
        """The request's job (a worker or a place in line), or the response refusing it."""
        if not voices.ready:
            return _error(503, "not_ready", "voices are still loading; try again shortly",
                          headers={"retry-after": str(NOT_READY_RETRY_SECONDS)})
        if len(request.text) > limits.max_chars:
            return _error(413, "text_too_long", f"the text is {len(request.text)} characters; this server takes "
                          f"at most {limits.max_chars} per request: split it")
        if not request.text.strip():
            return _error(422, "unspeakable", "nothing to say: the text is empty")
        try:
            spec = voices.find(request.lang, request.gender, request.variant)
        except LookupError as missing:
            names = voices.names()
            return _error(404, "unknown_voice", f"no voice {missing.args[0]} here; voices: {', '.join(names)}",
                          voices=names)
        try:
            return pool.admit(voices, spec, request.text, request.alpha, request.sentence_silence or 0.0, limits.timeout)
        except QueueFull as busy:
            workers = f"all {pool.workers} workers are" if pool.workers > 1 else "the one worker is"
            return _error(503, "queue_full", f"{workers} busy and {pool.queue_limit} requests are waiting; "
                          f"retry after {busy.retry_after} s", headers={"retry-after": str(busy.retry_after)})

    async def speak(request: SpeechRequest) -> Response:
        arrived = time.perf_counter()
        job = admit(request)
        if isinstance(job, Response):
            return job
        return SpeechResponse(job, request.format, metrics, arrived, limits.timeout, active)

    speech_doc = dict(
        response_class=Response, responses={200: {"content": {"audio/wav": {}, "application/octet-stream": {}},
                                                  "description": "Audio, streamed sentence by sentence."},
                                            **ERROR_RESPONSES},
    )

    @app.post("/api/tts", summary="Speak text (JSON body)", **speech_doc)
    async def speak_post(request: SpeechRequest) -> Response:
        return await speak(request)

    @app.get("/api/tts", summary="Speak text (query parameters, for quick use)", **speech_doc)
    async def speak_get(request: Annotated[SpeechQuery, Query()]) -> Response:
        return await speak(request)

    @app.post("/api/text", summary="What would be spoken: sentences, model input, words left out (no audio)",
              responses=ERROR_RESPONSES)
    async def plan_text(request: SpeechRequest) -> Any:
        job = admit(request)
        if isinstance(job, Response):
            return job
        try:
            prepared = await job.prepare()
        except DeadlinePassed as exc:
            return _error(504, "timeout", f"not planned within the server's {limits.timeout:g} s limit ({exc})")
        except (VoiceMemoryBusy, VoiceUnavailable) as exc:
            return _voice_refusal(exc, job)
        except LavanyaError as exc:
            return _error(422, "unspeakable", exc.message)
        finally:
            job.close()
        return _plan_body(job, prepared)

    def both(path: str, **kwargs: Any):
        """GET (in the API's schema) and HEAD (for health checks that send it) on one function."""
        def register(function: Callable) -> Callable:
            app.api_route(path, methods=["HEAD"], **{**kwargs, "include_in_schema": False})(function)
            return app.get(path, **kwargs)(function)
        return register

    @both("/api/voices", summary="The voices this server speaks with, and its limits")
    async def list_voices() -> dict[str, Any]:
        return {"voices": voices.describe(), "limits": limits.describe(), "ready": voices.ready,
                "memory": voices.describe_memory()}

    @both("/healthz", summary="Alive: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @both("/readyz", summary="Ready: the pinned voices (serve --voice) are loaded", responses={503: {"model": ErrorBody}})
    async def readyz() -> Response:
        if not voices.ready:
            return _error(503, "not_ready", "voices are still loading",
                          headers={"retry-after": str(NOT_READY_RETRY_SECONDS)})
        return JSONResponse({"status": "ready", "voices": voices.names()})

    @both("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @both("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @both("/docs", include_in_schema=False)
    async def api_reference() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html")

    @both("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:  # where browsers look for an icon when a page names none
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _voice_refusal(exc: VoiceMemoryBusy | VoiceUnavailable, job: SpeechJob) -> JSONResponse:
    """A voice that does not fit in memory now (503, try again) or cannot be loaded at all."""
    if isinstance(exc, VoiceMemoryBusy):
        retry = job.retry_after()
        return _error(503, "voice_memory", f"{exc}; retry after {retry} s", headers={"retry-after": str(retry)})
    return _error(500, "voice_unavailable", str(exc))


def _plan_body(job: SpeechJob, prepared: Prepared) -> dict[str, Any]:
    return {
        "voice": job.spec.name,
        "sentences": [{"text": u.text or u.left_out, "model_input": u.model_input, "spoken": bool(u.text),
                       "unpronounced": list(u.unpronounced), "spelled": list(u.spelled),
                       "incomplete": list(u.incomplete)}
                      for u in prepared.plan if u.text or u.left_out],
        "unpronounced": list(prepared.unpronounced),
    }


def _no_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry (newer versions) off: the server reports through /metrics
    and its log, and reaches no collector."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}}


def _load_in_background(load_voices: Callable[[], None], on_fatal: Callable[[BaseException], None] | None,
                        loop: asyncio.AbstractEventLoop) -> None:
    """``load_voices`` on a daemon thread: a stop never waits for a load to finish."""
    import threading

    def run() -> None:
        try:
            load_voices()
        except Exception as exc:
            message = exc.message if isinstance(exc, LavanyaError) else f"{type(exc).__name__}: {exc}"
            log.error("cannot load the voices: %s", message, exc_info=None if isinstance(exc, LavanyaError) else exc)
            if on_fatal is not None:
                loop.call_soon_threadsafe(on_fatal, exc)
            return
        log.info("ready; peak memory so far %s", format_size(peak_rss_bytes()))

    threading.Thread(target=run, name="lavanya-load-voices", daemon=True).start()


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _validation_detail(exc: RequestValidationError) -> str:
    """Pydantic's errors as ``field: what is wrong`` lines joined into one."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            position = next((part for part in error.get("loc", ()) if isinstance(part, int)), None)
            where = f" at character {position}" if position else ""
            parts.append(f"the body is not valid JSON: {error.get('ctx', {}).get('error', 'parse error')}{where}")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where and not message.startswith(where) else message)
    return "; ".join(parts) or "invalid request"


__all__ = ["SpeechRequest", "SpeechResponse", "create_app", "host_allowed", "peak_rss_bytes"]
