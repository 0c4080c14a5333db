"""The web application: the speech API, health, metrics, the page and its API reference.

Audio is never written anywhere: each request's sentences go from the worker straight into the
response, the WAV header first with "length unknown" (so the first sentence can go out before the
last is made). Every failure the client can act on is JSON ``{"error": code, "detail": words}``
with a status that says what happened.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import LavanyaError
from ..limits import checked_number
from ..speech.audio import wav_header
from .limits import ALPHA_RANGE, SENTENCE_SILENCE_RANGE, ServerLimits
from .metrics import ServerMetrics
from .pool import DeadlinePassed, QueueFull, SpeechJob, SpeechPool
from .voices import VoiceSet

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


# -- request ---------------------------------------------------------------------------------

def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _in_range(name: str, bounds: tuple[float, float]) -> Callable[[float | None], float | None]:
    def check(value: float | None) -> float | None:
        if value is None:
            return None
        try:
            return checked_number(value, name, *bounds)
        except LavanyaError as exc:
            raise ValueError(exc.message) from None
    return check


def _number(name: str, bounds: tuple[float, float], description: str):
    """A user number field: checked by ``checked_number``, its range in the OpenAPI schema."""
    return Annotated[
        float | None,
        BeforeValidator(_not_bool),
        AfterValidator(_in_range(name, bounds)),
        Field(description=f"{description} From {bounds[0]:g} to {bounds[1]:g}.",
              json_schema_extra={"minimum": bounds[0], "maximum": bounds[1]}),
    ]


class SpeechRequest(BaseModel):
    """What to say and with which voice (the JSON body of POST, or the query of GET)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="Text to speak. Inline tags: <alpha=1.2> for the rate, <sil=500ms> for a pause.")
    lang: str = Field(min_length=1, max_length=40, description="Voice language, e.g. hindi (see /api/voices).")
    gender: str = Field(min_length=1, max_length=16, description="male or female.")
    variant: str | None = Field(None, max_length=40, description="Voice variant (latest, bilingual, ...).")
    alpha: _number("alpha", ALPHA_RANGE, "Speaking rate as a duration scale: higher is slower (default 1).") = None
    sentence_silence: _number("sentence_silence", SENTENCE_SILENCE_RANGE, "Seconds of pause between sentences.") = 0.0
    format: Literal["wav", "pcm"] = Field(
        "wav", description="wav: a WAV stream; pcm: raw little-endian 16-bit mono PCM, rate in X-Sample-Rate.")


class ErrorBody(BaseModel):
    error: str = Field(description="A short code: queue_full, timeout, text_too_long, unspeakable, ...")
    detail: str = Field(description="What went wrong and what to do, in words.")


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": words} for status, words in {
        404: "No such voice here (the body lists the voices there are).",
        413: "The text is longer than the server's --max-chars.",
        422: "Malformed JSON or parameters, empty text, or nothing the voice can pronounce.",
        503: "Every worker is busy and the wait line is full (see Retry-After), or voices are still loading.",
        504: "No audio within the server's --timeout.",
    }.items()
}


# -- the streamed answer ---------------------------------------------------------------------

class SpeechResponse(Response):
    """Audio sentence by sentence. Headers go out with the first sentence, so a request that
    times out or cannot be spoken before then still gets a JSON error and its status; later,
    a timeout or failure closes the connection mid-stream, which a client sees as a cut body.
    A client that leaves stops the work at the next sentence."""

    def __init__(self, job: SpeechJob, audio_format: str, metrics: ServerMetrics, arrived: float,
                 timeout: float):
        super().__init__(status_code=200)
        self._job = job
        self._format = audio_format
        self._metrics = metrics
        self._arrived = arrived
        self._timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tasks:
            async def watch_for_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tasks.cancel_scope.cancel()

            tasks.start_soon(watch_for_disconnect)
            try:
                await self._stream(scope, receive, send)
            except anyio.get_cancelled_exc_class():
                self._metrics.cut.labels("disconnect").inc()
                raise
            finally:
                tasks.cancel_scope.cancel()
                self._job.close()

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        job = self._job
        try:
            prepared = await job.prepare()
            first = await job.next_piece()
        except DeadlinePassed as exc:
            detail = f"no audio within the server's {self._timeout:g} s limit ({exc}); try a shorter text"
            return await _error(504, "timeout", detail)(scope, receive, send)
        except LavanyaError as exc:
            return await _error(422, "unspeakable", exc.message)(scope, receive, send)
        except Exception:
            log.exception("speech failed before the first sentence")
            return await _error(500, "internal", "speech failed; see the server log")(scope, receive, send)

        rate = job.voice.sample_rate
        headers = {"cache-control": "no-store", "x-sample-rate": str(rate), "x-sample-format": "s16le",
                   "x-channels": "1", "x-voice": quote(job.voice.spec.name), "x-sentences": str(prepared.sentences)}
        if prepared.unpronounced:
            headers["x-unpronounced"] = quote(" ".join(prepared.unpronounced))
        headers["content-type"] = "audio/wav" if self._format == "wav" else "application/octet-stream"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(key.encode(), value.encode()) for key, value in headers.items()]})
        opening = wav_header(rate, None) if self._format == "wav" else b""
        await self._send_piece(send, opening + first.pcm, first.seconds)
        self._metrics.first_byte.observe(time.perf_counter() - self._arrived)
        while True:
            try:
                piece = await job.next_piece()
            except DeadlinePassed:
                log.warning("%s: stopped at the %g s limit; the stream is cut", job.voice.spec.name, self._timeout)
                self._metrics.cut.labels("timeout").inc()
                return  # without the final empty body: the server closes the connection mid-stream
            except Exception:
                log.exception("speech failed mid-stream")
                self._metrics.cut.labels("error").inc()
                return
            if piece is None:
                break
            await self._send_piece(send, piece.pcm, piece.seconds)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self._metrics.latency.observe(time.perf_counter() - self._arrived)

    async def _send_piece(self, send: Send, body: bytes, seconds: float) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self._metrics.audio_seconds.labels(self._job.voice.spec.name).inc(seconds)


# -- what every request passes through -------------------------------------------------------

class Guard:
    """ASGI middleware: adds the security headers to every response, bounds request bodies (one
    declared too large is refused unread; a chunked one is stopped where it passes the bound) and
    counts responses by route and status (``no_response`` when the client left before any)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, too_large: Callable[[], Response],
                 max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.too_large = too_large
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status: int | None = None

        async def guarded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self.too_large()(scope, receive, guarded_send)
            self.metrics.requests.labels("other", "413").inc()
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
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(route, str(status or "no_response")).inc()


# -- the application -------------------------------------------------------------------------

def create_app(limits: ServerLimits, voices: VoiceSet, load_voices: Callable[[], None] | None = None,
               on_fatal: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The server for ``voices``. ``load_voices`` (blocking) runs on a thread once the server
    is up, so health answers while voices load and readiness turns true when they have; if it
    fails, ``on_fatal`` is told (the command stops the server and exits with the error)."""
    pool = SpeechPool(limits.workers, limits.queue)
    metrics = ServerMetrics(waiting=lambda: pool.waiting, busy=lambda: pool.busy)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        loading = asyncio.create_task(_load(load_voices, on_fatal)) if load_voices else None
        yield
        if loading is not None:
            loading.cancel()
        pool.shutdown()

    app = FastAPI(
        title="lavanya", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Text to speech with Fastspeech2_HS voices. Audio is streamed sentence by sentence.",
    )

    def body_too_large() -> JSONResponse:
        return _error(413, "body_too_large", f"the request body is over {limits.max_body_bytes} bytes; "
                      f"the text may be {limits.max_chars} characters")

    app.add_middleware(Guard, metrics=metrics, too_large=body_too_large, max_body_bytes=limits.max_body_bytes)

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

    async def speak(request: SpeechRequest) -> Response:
        arrived = time.perf_counter()
        if not voices.ready:
            return _error(503, "not_ready", "voices are still loading; try again shortly",
                          headers={"retry-after": str(NOT_READY_RETRY_SECONDS)})
        if len(request.text) > limits.max_chars:
            return _error(413, "text_too_long", f"the text is {len(request.text)} characters; this server takes "
                          f"at most {limits.max_chars} per request: split it")
        if not request.text.strip():
            return _error(422, "unspeakable", "nothing to say: the text is empty")
        try:
            voice = voices.find(request.lang, request.gender, request.variant)
        except LookupError as missing:
            names = voices.names()
            return _error(404, "unknown_voice", f"no voice {missing.args[0]} here; voices: {', '.join(names)}",
                          voices=names)
        try:
            job = pool.admit(voice, request.text, request.alpha, request.sentence_silence or 0.0, limits.timeout)
        except QueueFull as busy:
            return _error(503, "queue_full", f"all {pool.workers} workers are busy and {pool.queue_limit} requests "
                          f"are waiting; retry after {busy.retry_after} s",
                          headers={"retry-after": str(busy.retry_after)})
        return SpeechResponse(job, request.format, metrics, arrived, limits.timeout)

    speech_doc = dict(
        response_class=Response, responses={200: {"content": {"audio/wav": {}, "application/octet-stream": {}},
                                                  "description": "Audio, streamed sentence by sentence."},
                                            **ERROR_RESPONSES},
    )

    @app.post("/api/tts", summary="Speak text (JSON body)", **speech_doc)
    async def speak_post(request: SpeechRequest) -> Response:
        return await speak(request)

    @app.get("/api/tts", summary="Speak text (query parameters, for quick use)", **speech_doc)
    async def speak_get(request: Annotated[SpeechRequest, Query()]) -> Response:
        return await speak(request)

    @app.get("/api/voices", summary="The voices this server speaks with, and its limits")
    async def list_voices() -> dict[str, Any]:
        return {"voices": voices.describe(), "limits": limits.describe(), "ready": voices.ready}

    @app.get("/healthz", summary="Alive: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready: every voice is loaded", responses={503: {"model": ErrorBody}})
    async def readyz() -> Response:
        if not voices.ready:
            return _error(503, "not_ready", "voices are still loading",
                          headers={"retry-after": str(NOT_READY_RETRY_SECONDS)})
        return JSONResponse({"status": "ready", "voices": voices.names()})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def api_reference() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _load(load_voices: Callable[[], None], on_fatal: Callable[[BaseException], None] | None) -> None:
    try:
        await asyncio.to_thread(load_voices)
    except Exception as exc:
        message = exc.message if isinstance(exc, LavanyaError) else f"{type(exc).__name__}: {exc}"
        log.error("cannot load the voices: %s", message, exc_info=None if isinstance(exc, LavanyaError) else exc)
        if on_fatal is not None:
            on_fatal(exc)
        return
    log.info("ready; peak memory so far %d MB", peak_rss_bytes() // (1 << 20))


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _validation_detail(exc: RequestValidationError) -> str:
    """Pydantic's errors as ``field: what is wrong`` lines joined into one."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            message = f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
        message = message.removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where and not message.startswith(where) else message)
    return "; ".join(parts) or "invalid request"


__all__ = ["create_app", "SpeechRequest", "SpeechResponse", "peak_rss_bytes"]
