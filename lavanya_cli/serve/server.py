"""Running the server: find the voices (fast, so a typo fails at once), start uvicorn, load
the voices on a thread while health already answers, serve until SIGINT or SIGTERM."""

from __future__ import annotations

import copy
import json
import logging.config
import math
import os
import signal
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.config

from ..errors import LavanyaError, Stopped
from .app import create_app
from .limits import ServerLimits
from .voices import VoiceName, VoiceSet, choose_specs


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``lavanya serve`` takes."""

    models: Path | None = None
    voices: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    limits: ServerLimits = field(default_factory=ServerLimits)
    threads: int | None = None
    strict: bool = False
    engine: str = "auto"
    log_format: str = "text"  # or "json": one JSON object per log line

    @property
    def engine_threads(self) -> int:
        """Threads per voice computation: the given number, else the CPUs shared out among workers
        (more threads than cores only makes the workers fight)."""
        if self.threads is not None:
            return self.threads
        return max(1, len(os.sched_getaffinity(0)) // self.limits.workers)

    def load_options(self) -> dict[str, Any]:
        return {"threads": self.engine_threads, "strict": self.strict, "engine": self.engine}


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
    """uvicorn's log setup, query strings kept out of the access log, and the server's own
    ``lavanya`` lines on the same stream; with ``log_format`` json, every line as JSON."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_queries"] = {"()": HideQueryStrings}
    config["handlers"]["access"]["filters"] = ["hide_queries"]
    config["loggers"]["lavanya"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        config["formatters"]["json"] = {"()": JsonLines}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    return config


def serve(config: ServeConfig) -> None:
    """Serve until interrupted. A voice that cannot be found or loaded, or an address that
    cannot be listened on, raises LavanyaError (after the server has stopped)."""
    names = [VoiceName.parse(text) for text in config.voices]
    failures: list[BaseException] = []
    voices = VoiceSet()

    def stop_on(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True  # the server below, running by the time voices load

    logging.config.dictConfig(logging_config(config.log_format))  # before the voices are looked for: they log
    specs = choose_specs(names, config.models)
    load = partial(voices.load, specs, config.load_options(), skip_failures=not names)
    app = create_app(config.limits, voices, load_voices=load, on_fatal=stop_on)
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_config=None,
        timeout_graceful_shutdown=math.ceil(config.limits.timeout) + 1))
    try:
        server.run()
    except Stopped as stop:  # uvicorn drained the requests, then passed the signal on: a clean stop
        logging.getLogger("lavanya.serve").info("stopped by %s after the requests in flight", signal.Signals(stop.signum).name)
        return
    except SystemExit:
        raise LavanyaError(f"cannot serve on {config.host}:{config.port} (see the line above)") from None
    if failures:
        raise failures[0]  # a LavanyaError, or (a missing library, a bug) what the command's main words
