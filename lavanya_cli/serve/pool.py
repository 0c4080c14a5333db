"""Speech work off the event loop: ``workers`` threads, a wait line of at most ``queue``
requests, and a deadline per request.

A request is admitted at once or refused at once (``QueueFull``): it either takes a free worker
or joins the line. Its work then runs one step at a time on a worker thread (the plan, then one
sentence or pause per step). A request that passes its deadline or whose client leaves is
closed: the graph running for it is told to stop (``speech.cancel``), so its worker is free
within one operator rather than after the sentence; the worker is handed on only when that run
has ended, so no more than ``workers`` sentences ever run at once.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..frontend import segment_text
from ..speech.cancel import StopSwitch, stoppable

if TYPE_CHECKING:
    from ..modeltree.layout import VoiceSpec
    from ..speech.voice import AudioChunk, Utterance
    from .voices import VoiceSet

T = TypeVar("T")

# Retry-After is an estimate from recent request times, kept within these seconds.
RETRY_AFTER_RANGE = (1, 60)
_SMOOTHING = 0.2  # weight of the latest request in the running service-time average


class QueueFull(Exception):
    """Every worker is busy and the wait line is full."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy; retry after {retry_after} s")
        self.retry_after = retry_after


class DeadlinePassed(Exception):
    """The request's time ran out (waiting, planning or rendering)."""


@dataclass(frozen=True)
class Prepared:
    """What the plan says before any audio: sentences to speak and words that will be skipped."""

    sentences: int
    unpronounced: tuple[str, ...]
    plan: tuple[Utterance, ...] = ()


@dataclass(frozen=True)
class Piece:
    """One sentence or pause as little-endian 16-bit PCM."""

    pcm: bytes
    seconds: float
    spoken: bool


class SpeechPool:
    """The worker threads and the wait line for one server (all state lives on its event loop)."""

    def __init__(self, workers: int, queue: int):
        self.workers = workers
        self.queue_limit = queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lavanya-speech")
        self._free = workers
        self._line: deque[asyncio.Future[None]] = deque()
        self._service_seconds = 1.0

    @property
    def waiting(self) -> int:
        """Requests in the wait line."""
        return len(self._line)

    @property
    def busy(self) -> int:
        """Workers held by a request (including one finishing a sentence for a client that left)."""
        return self.workers - self._free

    def retry_after(self) -> int:
        """Seconds until a place is likely free, from the recent time per request."""
        estimate = math.ceil(self._service_seconds * (self.waiting + 1) / self.workers)
        return max(RETRY_AFTER_RANGE[0], min(RETRY_AFTER_RANGE[1], estimate))

    def admit(self, voices: VoiceSet, spec: VoiceSpec, text: str, alpha: float | None,
              sentence_silence: float, timeout: float) -> SpeechJob:
        """A job holding a worker or a place in line, or ``QueueFull`` at once. The voice is
        taken (loaded if need be) only once the job has a worker: waiting requests hold no
        voice in memory."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        if self._free > 0:
            self._free -= 1
            turn.set_result(None)
        elif len(self._line) < self.queue_limit:
            self._line.append(turn)
        else:
            raise QueueFull(self.retry_after())
        return SpeechJob(self, turn, voices, spec, text, alpha, sentence_silence, loop.time() + timeout)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _leave_line(self, turn: asyncio.Future[None]) -> None:
        try:
            self._line.remove(turn)
        except ValueError:
            pass

    def _hand_on(self, held_seconds: float) -> None:
        """A worker is free: give it to the first request still in line, else keep it free."""
        self._service_seconds += _SMOOTHING * (held_seconds - self._service_seconds)
        while self._line:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


class SpeechJob:
    """One request's speech, driven from the event loop: ``prepare`` then ``next_piece`` until
    None; ``close`` always (it gives the worker and the voice back, after a running sentence if
    need be). ``voice`` and ``sample_rate`` are set by ``prepare``; ``loaded`` says whether it
    waited for a load."""

    def __init__(self, pool: SpeechPool, turn: asyncio.Future[None], voices: VoiceSet, spec: VoiceSpec,
                 text: str, alpha: float | None, sentence_silence: float, deadline: float):
        self.spec = spec
        self.voice = None
        self.sample_rate = 0
        self.loaded = False
        self._voices = voices
        self.deadline = deadline  # on the loop's clock
        self._pool = pool
        self._turn = turn
        self._text = text
        self._alpha = alpha
        self._sentence_silence = sentence_silence
        self._holding = False
        self._held_since = 0.0
        self._running: asyncio.Future | None = None
        self._chunks = None
        self._closed = False
        self._switch = StopSwitch()

    async def prepare(self) -> Prepared:
        """Wait for a worker, then take the voice and plan the text there (LavanyaError: nothing
        speakable, or the voice cannot be loaded; ``VoiceMemoryBusy``: not now)."""
        try:
            async with asyncio.timeout_at(self.deadline):
                await self._turn
        except TimeoutError:
            raise DeadlinePassed("waited for a worker until the time limit") from None
        finally:
            self._holding = self._turn.done() and not self._turn.cancelled()
            if not self._holding:
                self._pool._leave_line(self._turn)
        self._held_since = asyncio.get_running_loop().time()
        return await self._in_worker(self._plan)

    def retry_after(self) -> int:
        """Seconds after which trying again is likely to find room."""
        return self._pool.retry_after()

    async def next_piece(self) -> Piece | None:
        """The next sentence or pause, rendered on the worker; None at the end."""
        return await self._in_worker(self._render_next)

    def close(self) -> None:
        """Done with the request: its running graph is stopped and its worker given back."""
        if self._closed:
            return
        self._closed = True
        self._switch.stop()
        if not self._holding:
            self._pool._leave_line(self._turn)
            return
        if self._running is not None and not self._running.done():
            self._running.add_done_callback(self._finished_after_close)
        else:
            self._give_back()

    # -- on the loop ---------------------------------------------------------------------

    async def _in_worker(self, work: Callable[[], T]) -> T:
        running = asyncio.wrap_future(self._pool._executor.submit(self._stoppable, work))
        self._running = running
        try:
            async with asyncio.timeout_at(self.deadline):
                return await asyncio.shield(running)
        except TimeoutError:
            raise DeadlinePassed("the time limit passed while speaking") from None

    def _finished_after_close(self, running: asyncio.Future) -> None:
        if not running.cancelled():
            running.exception()  # retrieved: nobody is waiting for it any more
        self._give_back()

    def _give_back(self) -> None:
        if self.voice is not None:  # no sentence of it runs any more: it may be evicted, and
            self._voices.release(self.spec)  # nothing here keeps it alive once it is
            self.voice, self._chunks = None, None
        self._pool._hand_on(asyncio.get_running_loop().time() - self._held_since)

    # -- on a worker thread --------------------------------------------------------------

    def _stoppable(self, work: Callable[[], T]) -> T:
        with stoppable(self._switch):
            return work()

    def _plan(self) -> Prepared:
        self.voice, self.loaded = self._voices.acquire(self.spec)
        self.sample_rate = self.voice.sample_rate
        # The numbers were checked as the request came in, the tags' as the text is cut.
        plan = self.voice.plan_segments(segment_text(self._text, sentence_silence=self._sentence_silence), self._alpha)
        self._chunks = self.voice.stream(plan)
        unpronounced = dict.fromkeys(word for utterance in plan for word in utterance.unpronounced)
        return Prepared(sum(1 for utterance in plan if utterance.text), tuple(unpronounced), tuple(plan))

    def _render_next(self) -> Piece | None:
        chunk: AudioChunk | None = next(self._chunks, None)
        if chunk is None:
            return None
        return Piece(chunk.to_int16().astype("<i2", copy=False).tobytes(), chunk.seconds, not chunk.is_silence)
