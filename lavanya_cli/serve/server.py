"""Running the server: list the voices (fast, no weights read, so a typo fails at once), check
that the memory budget can hold them, start uvicorn, load the pinned voices on a thread while
health already answers, serve until SIGINT or SIGTERM (the other voices load when asked for).

Stopping: the first SIGINT or SIGTERM stops taking requests and lets those in flight finish
(each within its own ``--timeout``); a second one cuts them (their work stopped, their
connections dropped) and stops at once. Either way one log line says what happens, and the
command exits 130 (SIGINT) or 143 (SIGTERM), as every lavanya command stopped by a signal does.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import logging.config
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.config

from ..errors import LavanyaError, Stopped, flag_wording, option
from ..fileio import forgo_time_saving_writes, format_size
from ..limits import available_cpus
from ..speech.options import LoadOptions
from .app import ANY_HOST, create_app
from .http import BoundedHttpProtocol
from .limits import ServerLimits
from .memory import RUN_BYTES, default_budget
from .voices import MemoryPlan, VoiceName, VoiceSet, served_specs

log = logging.getLogger("lavanya.serve")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``lavanya serve`` takes."""

    models: Path | None = None
    voices: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    limits: ServerLimits = field(default_factory=ServerLimits)
    options: LoadOptions = field(default_factory=LoadOptions)  # threads None: shared out, see load_options
    log_format: str = "text"  # or "json": one JSON object per log line
    allowed_hosts: tuple[str, ...] = ()  # empty: see ``hosts``
    max_memory: int | None = None  # bytes for the whole process; None: the cgroup's limit less headroom, or none
    on_demand: bool = False  # with voices named: the root's other voices too, loaded when asked for

    @property
    def load_options(self) -> LoadOptions:
        """How every voice is loaded: the options given, with threads per computation the given
        number, else the CPUs shared out among the workers (more threads than cores only makes
        the workers fight)."""
        if self.options.threads is not None:
            return self.options
        return self.options.derived(threads=max(1, available_cpus() // self.limits.workers))

    @property
    def hosts(self) -> tuple[str, ...]:
        """The Host names the server answers to: those given, else the loopback names when it
        listens on loopback (a page elsewhere cannot reach it by DNS rebinding), else any."""
        if self.allowed_hosts:
            return self.allowed_hosts
        return LOOPBACK_NAMES + (self.host,) if is_loopback(self.host) else (ANY_HOST,)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HideQueryStrings(logging.Filter):
    """Text sent with ``GET /api/tts?text=...`` is the user's business: the access log keeps
    the path and drops the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:  # uvicorn's access line
            client, method, path, version, status = record.args
            record.args = (client, method, str(path).split("?", 1)[0], version, status)
        return True


class JsonLines(logging.Formatter):
    """A log record as one JSON object on one line, for log collectors: time, level, logger and
    message, plus client, method, path and status for uvicorn's access lines."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                                "level": record.levelname.lower(), "logger": record.name,
                                "message": record.getMessage()}
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            line.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's log setup on one stream, stderr (its access lines would go to stdout), query
    strings kept out of the access log, and the server's own ``lavanya`` lines on the same
    stream; with ``log_format`` json, every line as JSON."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_queries"] = {"()": HideQueryStrings}
    config["handlers"]["access"]["filters"] = ["hide_queries"]
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
    config["loggers"]["lavanya"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        config["formatters"]["json"] = {"()": JsonLines}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    return config


def uvicorn_config(app: Any, host: str = "127.0.0.1", port: int = 8000, timeout: float = 60.0,
                   **options: Any) -> uvicorn.Config:
    """uvicorn's settings for lavanya's app: the bounded HTTP protocol (``serve.http``), no
    WebSocket (the app has no such route; an upgrade is answered as plain HTTP), and a graceful
    stop that waits as long as a request may take."""
    return uvicorn.Config(app, host=host, port=port, http=BoundedHttpProtocol, ws="none", log_config=None,
                          timeout_graceful_shutdown=math.ceil(timeout) + 1, **options)


class LavanyaServer(uvicorn.Server):
    """uvicorn's server with lavanya's stop (see the module doc): the first signal is uvicorn's
    graceful stop, the second cuts the requests in flight so that the graceful stop ends at
    once, a third exits the process on the spot. ``signals`` records the signals received (the
    command exits with the first one's code)."""

    def __init__(self, config: uvicorn.Config, app_state: Any):
        super().__init__(config)
        self.signals: list[int] = []
        self._state = app_state
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.signals.append(sig)
        name = signal.Signals(sig).name
        if len(self.signals) == 1:
            self.should_exit = True
            log.info("%s: taking no more requests; finishing %d in flight (at most %g s); send it again to stop now",
                     name, self._state.in_flight(), self.config.timeout_graceful_shutdown)
        elif len(self.signals) == 2 and self._loop is not None:
            log.warning("%s again: cutting %d requests in flight and stopping", name, self._state.in_flight())
            self._loop.call_soon_threadsafe(self._state.cut_all, "shutdown")  # on the loop, not in the handler
        else:  # a third: nothing is waited for, not even a worker inside a graph
            log.warning("%s a third time: exiting now", name)
            logging.shutdown()
            os._exit(Stopped(self.signals[0]).exit_code)


def serve(config: ServeConfig) -> None:
    """Serve until interrupted. A voice that cannot be found or loaded, or an address that
    cannot be listened on, raises LavanyaError (after the server has stopped); a stop by signal
    raises Stopped once the server has stopped (already logged)."""
    from ..speech.onnx_engine import (
        ORT_MODULE,
        import_runtime,
        reserve_arena,
        share_runtime_threads,
    )
    from ..speech.options import AUTO, ONNX, OPENVINO, TORCH

    forgo_time_saving_writes()  # the server writes nothing it does not need
    names = [VoiceName.parse(text) for text in config.voices]
    failures: list[BaseException] = []
    voices = VoiceSet()

    def stop_on(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True  # the server below, running by the time voices load

    logging.config.dictConfig(logging_config(config.log_format))  # before the voices are looked for: they log
    specs, pinned = served_specs(names, config.models, config.on_demand)
    options = config.load_options
    memory = memory_plan(config)
    if memory.budget is not None and options.engine == AUTO:
        # The budget counts what ONNX Runtime holds per byte of graph (serve.memory); OpenVINO's
        # compiled vocoders (one per input length it has run, bounded by the fixed lengths) and
        # its runtime are not counted by it: within a budget auto takes the engine it can count.
        options = options.derived(engine=ONNX)
        log.info("engine onnx: within a memory budget, auto does not measure or pick OpenVINO")
    elif memory.budget is not None and options.engine in (OPENVINO, TORCH):
        if config.max_memory is not None:
            raise LavanyaError(f"{option('max_memory', flag='--max-memory')} holds voices on the onnx engine; "
                               f"{options.engine} keeps memory no budget can count: use "
                               f"{option('engine', flag='--engine')} onnx")
        log.warning("no memory budget: the %s engine keeps memory no budget can count", options.engine)
        memory = MemoryPlan(None, memory.fixed)
    reserve_arena(config.limits.workers)
    if options.engine != TORCH:
        share_runtime_threads(options.threads * config.limits.workers)
        import_runtime(ORT_MODULE)  # part of what the process holds before any voice
    try:
        voices.serve(specs, pinned, options, memory.measured_from_now())
    except LavanyaError as exc:
        if not memory.from_cgroup:
            raise
        # A server that ran in its cgroup before budgets existed keeps running as it did.
        log.warning("%s; serving without a memory budget", exc.message)
        voices.serve(specs, pinned, options, MemoryPlan(None, memory.fixed))
    log.info("serving %d voices (%d pinned); %s", len(specs), len(pinned), _memory_line(voices.memory))
    app = create_app(config.limits, voices, load_voices=voices.load_pinned, on_fatal=stop_on,
                     allowed_hosts=config.hosts)
    server = LavanyaServer(uvicorn_config(app, config.host, config.port, config.limits.timeout), app.state)
    try:
        with flag_wording(False):  # what the server says from here goes to HTTP clients too, who know no flags
            server.run()
    except SystemExit:
        raise LavanyaError(f"cannot serve on {config.host}:{config.port} (see the line above)") from None
    if failures:
        raise failures[0]  # a LavanyaError, or (a missing library, a bug) what the command's main words
    if server.signals:
        log.info("stopped by %s", signal.Signals(server.signals[0]).name)
        raise Stopped(server.signals[0], announced=True)


def memory_plan(config: ServeConfig) -> MemoryPlan:
    """The budget (given, else from the cgroup, else none) and what of it is not for voices:
    each worker's synthesis, and (``measured_from_now``) the process as it is before any voice."""
    if config.max_memory is not None:
        return MemoryPlan(config.max_memory, config.limits.workers * RUN_BYTES)
    budget, line = default_budget()
    log.info("%s", line)
    return MemoryPlan(budget, config.limits.workers * RUN_BYTES, from_cgroup=budget is not None)


def _memory_line(memory: MemoryPlan) -> str:
    if memory.budget is None:
        return "no memory budget"
    return (f"memory budget {format_size(memory.budget)}: {format_size(memory.fixed)} for the server and its "
            f"workers, {format_size(memory.for_voices)} for voices")


__all__ = ["LavanyaServer", "ServeConfig", "is_loopback", "logging_config", "memory_plan", "serve", "uvicorn_config"]
