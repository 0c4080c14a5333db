"""How a voice is found and how it is loaded: two frozen objects, each checked once, where it is
made. The command line, a Ray batch, the server and ``Voice.load``'s keyword arguments all build
them; nothing after that checks them again. Which engine ``auto`` comes to is decided by
``speech.engines`` (``resolve_engine`` before a voice is known, ``speech.engine_choice`` for a
voice on the CPU).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LavanyaError, import_optional, option
from ..limits import usable_threads
from ..modeltree.layout import VOCODER_FAMILIES

AUTO, ONNX, OPENVINO, TORCH = "auto", "onnx", "openvino", "torch"
ENGINES = (AUTO, ONNX, OPENVINO, TORCH)
# The acoustic model's precisions: its f32 export, or that export's matrix weights in int8
# (``speech.quantize``); the vocoder's own precision is ``onnx_engine.resolve_precision``'s.
F32, INT8 = "f32", "int8"
PRECISIONS = (F32, INT8)
# How an export is made: through the graph templates where the voice fits them, else torch
# (``auto``); only the templates (no torch, ever); only torch (the reference).
TEMPLATES = "templates"
CONVERTERS = (AUTO, TEMPLATES, TORCH)
# What the torch exporter needs (lavanya[torch]).
EXPORT_LIBRARIES = ("torch", "espnet2", "onnx")
_DEVICE = re.compile(r"^(?P<kind>cpu|cuda)(?::(?P<index>\d{1,4}))?\Z")


@dataclass(frozen=True)
class FindOptions:
    """Where a voice is looked for: ``models`` (default: ``$LAVANYA_MODELS``, ``./Fastspeech2_HS``,
    the bundled tree), a ``variant`` of the voice, a ``vocoder`` family instead of the
    language's own (``aryan`` or ``dravidian``)."""

    models: Path | None = None
    variant: str | None = None
    vocoder: str | None = None

    def __post_init__(self) -> None:
        if self.models is not None:
            object.__setattr__(self, "models", Path(self.models))
        if self.vocoder is not None and self.vocoder not in VOCODER_FAMILIES:
            raise LavanyaError(f"{option('vocoder')} {self.vocoder!r}: use {' or '.join(VOCODER_FAMILIES)}")


@dataclass(frozen=True)
class LoadOptions:
    """How a voice is loaded: the ``engine`` (``auto``, ``onnx``, ``openvino``, ``torch``), the
    ``device`` (``cpu``; ``cuda[:N]`` for torch), CPU ``threads`` (None: the engine's choice;
    more than the CPUs here is lowered, and ``threads_note`` says so), ``strict`` (a word not
    said as written fails), the export ``cache`` (default ``$LAVANYA_CACHE``, else the user
    cache directory)."""

    engine: str = AUTO
    device: str = "cpu"
    threads: int | None = None
    strict: bool = False
    cache: Path | None = None
    precision: str | None = None
    threads_note: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise LavanyaError(f"{option('engine')} {self.engine!r}: use one of {', '.join(ENGINES)}")
        device = checked_device(self.device)
        if self.engine not in (AUTO, TORCH) and device != "cpu":
            raise LavanyaError(f"{option('device')} {device} runs only the torch engine; use {option('engine')} "
                               f"torch, or {option('device')} cpu")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise LavanyaError(f"{option('precision')} {self.precision!r}: use {' or '.join(PRECISIONS)}")
        if self.precision == INT8 and (self.engine == TORCH or device != "cpu"):
            raise LavanyaError(f"{option('precision')} {INT8} is for the ONNX engines on the CPU; the torch engine "
                               f"computes in {F32} (drop {option('precision')}, or use {option('engine')} onnx)")
        threads, note = usable_threads(self.threads)
        object.__setattr__(self, "device", device)
        object.__setattr__(self, "threads", threads)
        object.__setattr__(self, "threads_note", note)
        object.__setattr__(self, "strict", bool(self.strict))
        if self.cache is not None:
            object.__setattr__(self, "cache", Path(self.cache))

    def derived(self, *, engine: str | None = None, threads: int | None = None) -> "LoadOptions":
        """A copy with the engine ``auto`` came to, or threads shared out by the caller from the
        CPUs it knows of (a server's workers, a Ray actor's node), not checked again against
        this machine's CPUs."""
        copy = object.__new__(LoadOptions)
        copy.__dict__.update(self.__dict__)
        if engine is not None:
            object.__setattr__(copy, "engine", engine)
        if threads is not None:
            object.__setattr__(copy, "threads", threads)
        return copy


def checked_device(device: str) -> str:
    """``device`` when torch can run on it here: ``cpu``, ``cuda`` or ``cuda:N`` with N below the
    number of CUDA devices torch sees; otherwise one LavanyaError. torch is imported only for
    a CUDA device."""
    match = _DEVICE.match(str(device).strip().lower())
    name = option("device")
    if not match:
        raise LavanyaError(f"{name} {device!r} is not a device lavanya runs on; use {name} cpu, cuda or cuda:N")
    if match["kind"] == "cpu":
        if match["index"] is not None:
            raise LavanyaError(f"{name} {device}: the CPU takes no index (torch uses every core it is "
                               f"given); use {name} cpu and {option('threads')} N")
        return "cpu"
    torch = import_optional("torch")
    if not torch.cuda.is_available():
        raise LavanyaError(f"{name} {device}: torch sees no CUDA device here; use {name} cpu")
    count = torch.cuda.device_count()
    if match["index"] is not None and int(match["index"]) >= count:
        raise LavanyaError(f"{name} {device}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return match.group(0)


def torch_installed() -> bool:
    """Whether the libraries the torch exporter needs are importable (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in EXPORT_LIBRARIES)


__all__ = ["AUTO", "CONVERTERS", "TEMPLATES", "ENGINES", "F32", "INT8", "ONNX", "OPENVINO", "PRECISIONS", "TORCH", "FindOptions", "LoadOptions", "checked_device", "torch_installed"]
