"""Stopping a synthesis while a runtime computes, from a deadline or a signal.

A graph run is C++ code: while ONNX Runtime or OpenVINO computes, Python's signal handlers wait
and an event loop cannot interrupt the thread. Both runtimes can be told to stop from another
thread (ONNX Runtime's ``RunOptions.terminate``, OpenVINO's ``InferRequest.cancel``), so:

* ``run_stoppable`` runs one graph call. In the main thread (a command), the call runs on a
  helper thread while the main thread waits, so SIGINT and SIGTERM interrupt the wait at once
  and the runtime is told to stop; elsewhere (a server's worker) it runs in place.
* A ``StopSwitch`` stops the calls of one request from another thread: the server flips it at
  the request's deadline or when its client leaves, and the graph call running for it ends
  within one operator; the next one is not started (``Cancelled``).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import LavanyaError

T = TypeVar("T")
# How long an interrupted command waits for the runtime to notice it was told to stop, so that
# no thread is still computing while the interpreter shuts down.
STOP_GRACE_SECONDS = 2.0


class Cancelled(LavanyaError):
    """The synthesis was stopped (its deadline passed, or its client left)."""

    def __init__(self) -> None:
        super().__init__("the synthesis was stopped")


class StopSwitch:
    """Stops the graph calls made under it (``stoppable``) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._hooks: set[Callable[[], None]] = set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Flip the switch. The hooks run under the lock, so none runs after its call has left
        ``watching`` (a runtime object reused by the next call must not be stopped)."""
        with self._lock:
            self._stopped = True
            for hook in self._hooks:
                hook()

    @contextlib.contextmanager
    def watching(self, hook: Callable[[], None]) -> Iterator[None]:
        """``hook`` is called if the switch is flipped while the block runs; Cancelled at once
        if it already was."""
        with self._lock:
            if self._stopped:
                raise Cancelled()
            self._hooks.add(hook)
        try:
            yield
        finally:
            with self._lock:
                self._hooks.discard(hook)


_current: contextvars.ContextVar[StopSwitch | None] = contextvars.ContextVar("lavanya_stop_switch", default=None)


@contextlib.contextmanager
def stoppable(switch: StopSwitch) -> Iterator[None]:
    """Graph calls in this block (in this thread or context) stop when ``switch`` is flipped."""
    token = _current.set(switch)
    try:
        yield
    finally:
        _current.reset(token)


def run_stoppable(run: Callable[[], T], stop: Callable[[], None]) -> T:
    """``run()`` (one graph call), which ``stop()`` makes end early from another thread; see
    the module doc. A call stopped by the current switch raises Cancelled."""
    switch = _current.get()
    watch = switch.watching(stop) if switch is not None else contextlib.nullcontext()
    with watch:
        if threading.current_thread() is not threading.main_thread():
            result = _call(run)
        else:
            result = _call_beside(run, stop)
    if switch is not None and switch.stopped:
        raise Cancelled()
    return result.value()


class _Result:
    def __init__(self) -> None:
        self._value: object = None
        self._error: BaseException | None = None

    def value(self):
        if self._error is not None:
            raise self._error
        return self._value


def _call(run: Callable[[], T]) -> _Result:
    result = _Result()
    try:
        result._value = run()
    except Exception as exc:
        result._error = exc
    return result


def _call_beside(run: Callable[[], T], stop: Callable[[], None]) -> _Result:
    """``run()`` on a helper thread while this (main) thread waits where a signal can reach it;
    a signal's exception stops the runtime, waits a moment for it, and goes on up."""
    result = _Result()
    done = threading.Event()

    def target() -> None:
        nonlocal result
        try:
            result = _call(run)
        finally:
            done.set()

    thread = threading.Thread(target=target, name="lavanya-graph", daemon=True)
    _helpers.add(thread)
    thread.start()
    try:
        done.wait()
    except BaseException:
        stop()
        done.wait(STOP_GRACE_SECONDS)
        raise
    _helpers.discard(thread)
    return result


_helpers: set[threading.Thread] = set()


def runtime_still_busy() -> bool:
    """Whether a graph call of an interrupted command is still running (making a session cannot
    be stopped): the command should then leave without the interpreter's teardown, which would
    wait for or crash under it."""
    return any(thread.is_alive() for thread in _helpers)


__all__ = ["Cancelled", "StopSwitch", "run_stoppable", "runtime_still_busy", "stoppable"]
