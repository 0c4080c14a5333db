"""``lavanya serve``: the text-to-speech web server (API, page, health and metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import LavanyaError
from ..serve.limits import DEFAULT_MAX_CHARS, DEFAULT_QUEUE, DEFAULT_TIMEOUT
from .app import app
from .options import EngineOption, LogFormatOption, ModelsOption, ThreadsOption
from .output import PlainFormat, warning_line


@app.command()
def serve(
    models: Optional[Path] = ModelsOption,
    voice: Optional[list[str]] = typer.Option(
        None, "--voice", metavar="LANG/GENDER[/VARIANT]",
        help="A voice to serve, loaded at start and kept loaded, e.g. hindi/male; repeat for more "
             "(default: every voice in the model root, each loaded when first asked for)."),
    on_demand: bool = typer.Option(
        False, "--on-demand",
        help="With --voice: serve the model root's other voices too, each loaded when first asked for."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    allowed_host: Optional[list[str]] = typer.Option(
        None, "--allowed-host", metavar="NAME",
        help="A Host name to answer to (*.example.com for subdomains, * for any); repeat for more "
             "(default: localhost, 127.0.0.1 and ::1 on a loopback address, else any)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    max_chars: int = typer.Option(DEFAULT_MAX_CHARS, "--max-chars", metavar="N", help="Longest text per request (413 above)."),
    queue: int = typer.Option(DEFAULT_QUEUE, "--queue", metavar="N", help="Requests that may wait for a worker (503 beyond)."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", metavar="SECONDS",
                                  help="Time limit per request, from arrival to the last byte sent "
                                       "(504, or the stream is cut)."),
    workers: int = typer.Option(1, "--workers", metavar="N", help="Requests synthesized at once, one thread each."),
    max_memory: Optional[str] = typer.Option(
        None, "--max-memory", metavar="SIZE",
        help="The most memory the server may hold, e.g. 450M or 1.5G: voices are loaded on demand and the "
             "least recently used evicted to stay within it (default: the cgroup's limit less headroom, "
             "else no limit). See docs/serve.md."),
    threads: Optional[int] = ThreadsOption,
    engine: str = EngineOption,
    precision: Optional[str] = typer.Option(
        None, "--precision", metavar="f32|int8",
        help="The acoustic models' weights (default: as exported): int8 serves each voice's int8 export (made "
             "once from its f32 export where missing), or f32 with a log line where its guard refused it."),
    strict: bool = typer.Option(False, "--strict", help="Refuse (422) text with a word that cannot be pronounced."),
    format: PlainFormat = LogFormatOption,
) -> None:
    """Serve text-to-speech over HTTP: a page at /, the API at /api, reference at /docs.

    Each synthesis gets --threads CPU threads, by default the CPUs shared among the workers.
    The server's output is its log, all of it on stderr: with --format json, one JSON object
    per line (time, level, logger, message; client, method, path and status for each request).
    SIGINT or SIGTERM stops it after the requests in flight; a second one cuts them. Exit
    code 130 or 143.
    """
    from ..speech.options import LoadOptions

    from ..serve.limits import ServerLimits
    from ..serve.memory import parse_size
    from ..serve.server import ServeConfig, serve as run_server  # without the serve extra, cli.main names it

    if not 0 <= port <= 65535:
        raise LavanyaError(f"--port must be from 0 to 65535, not {port}")
    options = LoadOptions(engine=engine, threads=threads, strict=strict, precision=precision)
    if options.threads_note:
        warning_line(options.threads_note)
    limits = ServerLimits(max_chars=max_chars, queue=queue, timeout=timeout, workers=workers)
    run_server(ServeConfig(models=models, voices=tuple(voice or ()), host=host, port=port, limits=limits,
                           options=options, log_format=format.value,
                           allowed_hosts=tuple(allowed_host or ()),
                           max_memory=None if max_memory is None else parse_size(max_memory),
                           on_demand=on_demand))
