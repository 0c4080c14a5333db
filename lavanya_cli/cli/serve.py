"""``lavanya serve``: the text-to-speech web server (API, page, health and metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import LavanyaError
from ..serve.limits import DEFAULT_MAX_CHARS, DEFAULT_QUEUE, DEFAULT_TIMEOUT
from .app import ModelsOption, app

# Modules of the ``serve`` extra; an install without it gets a line naming the extra.
SERVE_MODULES = {"fastapi", "uvicorn", "starlette", "prometheus_client", "anyio", "pydantic"}


@app.command()
def serve(
    models: Optional[Path] = ModelsOption,
    voice: Optional[list[str]] = typer.Option(
        None, "--voice", metavar="LANG/GENDER[/VARIANT]",
        help="A voice to load, e.g. hindi/male; repeat for more (default: every voice in the model root)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    max_chars: int = typer.Option(DEFAULT_MAX_CHARS, "--max-chars", metavar="N", help="Longest text per request (413 above)."),
    queue: int = typer.Option(DEFAULT_QUEUE, "--queue", metavar="N", help="Requests that may wait for a worker (503 beyond)."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", metavar="SECONDS",
                                  help="Time limit per request, waiting included (504, or the stream is cut)."),
    workers: int = typer.Option(1, "--workers", metavar="N", help="Requests synthesized at once, one thread each."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N",
                                          help="CPU threads per synthesis (default: the CPUs shared among workers)."),
    strict: bool = typer.Option(False, "--strict", help="Refuse (422) text with a word that cannot be pronounced."),
) -> None:
    """Serve text-to-speech over HTTP: a page at /, the API at /api, reference at /docs."""
    try:
        from ..serve.limits import ServerLimits
        from ..serve.server import ServeConfig, serve as run_server
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in SERVE_MODULES:
            raise LavanyaError(f"lavanya serve needs the server libraries ({exc.name} is not installed): "
                               "python3 -m pip install 'lavanya[serve]'") from None
        raise
    if not 0 <= port <= 65535:
        raise LavanyaError(f"--port must be from 0 to 65535, not {port}")
    if threads is not None and threads < 1:
        raise LavanyaError(f"--threads must be 1 or more, not {threads}")
    limits = ServerLimits(max_chars=max_chars, queue=queue, timeout=timeout, workers=workers)
    run_server(ServeConfig(models=models, voices=tuple(voice or ()), host=host, port=port, limits=limits,
                           threads=threads, strict=strict))
