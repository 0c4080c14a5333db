"""How much memory the server may hold, what a voice costs, and giving memory back.

The budget (``serve --max-memory``) is for the whole process. Part of it is fixed: the process
as it starts (Python, the web stack, the runtime: measured, not guessed) and the working memory
of the syntheses that may run at once (``RUN_BYTES`` each). The rest holds voices. A voice costs
its acoustic graphs and, once per distinct generator, its vocoder graph, each times
``RESIDENT_PER_GRAPH_BYTE``: what ONNX Runtime was measured to hold per byte of graph file
(docs/serve.md has the figures). Where no graph exists yet (a model tree with weights, exported
on first load), the weights stand in for it: a graph is the size of the weights it came from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import LavanyaError, option
from ..fileio import MIB, format_size
from ..limits import rss_bytes
from ..modeltree.layout import (
    DECODER_GRAPH_NAME,
    ENCODER_GRAPH_NAME,
    GENERATOR_GRAPH_NAME,
    VOCODER_WEIGHTS_NAME,
    VoiceSpec,
)
from ..speech.options import INT8

# Resident bytes per byte of graph file once ONNX Runtime holds it, front-end included: measured
# 1.12 for the full-size voice in f32 (219 MB for 196 MB of graphs), 0.9-1.5 for its int8
# acoustic graphs (33-53 MB for 36 MB, as the allocator reuses what earlier voices freed).
RESIDENT_PER_GRAPH_BYTE = 1.4
# One synthesis's working memory: ONNX Runtime's arena grew by 75 MB for the full-size voice's
# longest pieces (1,000 decoder frames, 256-frame vocoder windows), plus numpy's arrays.
RUN_BYTES = 96 * MIB
# Room for a load in progress beyond what the voice keeps: the largest graph being parsed (ONNX
# Runtime holds the file's protobuf while it makes the weights' tensors), at least this.
LOAD_MARGIN_BYTES = 16 * MIB
# An int8 acoustic graph is about a quarter of its fp32 graph (docs/engines.md).
INT8_SHARE = 0.27
# Taken off a cgroup's memory limit for the default budget: the page cache and the kernel's
# own share of the limit, and other processes of the container.
CGROUP_HEADROOM_SHARE = 0.10
CGROUP_HEADROOM_MIN = 48 * MIB

_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """``450M``, ``1.5G``, ``512MiB``, ``300000000``: bytes (K, M, G are powers of 1024, as in
    systemd's ``MemoryMax=``)."""
    match = _SIZE.match(str(text))
    if match is None:
        raise LavanyaError(f"{option('max_memory', flag='--max-memory')} {text!r}: write a size such as "
                           "450M, 1.5G or 512MiB")
    size = float(match["number"]) * _UNITS[match["unit"].lower()]
    if not math.isfinite(size) or size < 1 * MIB or size > 1 << 50:
        raise LavanyaError(f"{option('max_memory', flag='--max-memory')} {text!r}: give a size from 1M to 1P")
    return int(size)


def cgroup_limit(proc: Path = Path("/proc/self/cgroup"), mount: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory limit of this process's cgroup: the smallest of its own and its ancestors' (v2
    ``memory.max``, else v1 ``memory.limit_in_bytes``); None where there is none or it cannot be
    read."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            base, name = mount, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = mount / "memory", "memory.limit_in_bytes"
        else:
            continue
        parts = [part for part in path.strip().split("/") if part and part not in (".", "..")]
        for depth in range(len(parts), -1, -1):  # the cgroup itself, then each ancestor
            try:
                text = (base.joinpath(*parts[:depth]) / name).read_text().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < 1 << 60:  # "max", or v1's huge "no limit": none here
                limits.append(int(text))
    return min(limits) if limits else None


def default_budget() -> tuple[int | None, str]:
    """The budget when none is given: the cgroup's limit less headroom, else none; and a line
    saying where it came from."""
    limit = cgroup_limit()
    if limit is None:
        return None, "no memory budget (no --max-memory, no cgroup limit): every voice asked for stays loaded"
    headroom = max(int(limit * CGROUP_HEADROOM_SHARE), CGROUP_HEADROOM_MIN)
    budget = limit - headroom
    return budget, (f"memory budget {format_size(budget)}: the cgroup's limit of {format_size(limit)} "
                    f"less {format_size(headroom)} of headroom (set --max-memory to choose)")




@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return library if library is not None and hasattr(library, "malloc_trim") else None


def give_back_memory() -> None:
    """Return freed heap memory to the system. glibc's allocator keeps what a dropped voice
    freed in its arenas (measured: 340 MB resident after a voice was dropped, 149 MB after
    ``malloc_trim``); elsewhere (musl, macOS) this does nothing."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@dataclass(frozen=True)
class Footprint:
    """What loading a voice is expected to add: its acoustic model, and its vocoder unless a
    resident voice already holds the same one (``vocoder_key``); and beyond that while the load
    runs, the largest graph it parses (``acoustic_loading``, ``vocoder_loading``)."""

    acoustic: int
    vocoder: int
    vocoder_key: str
    acoustic_loading: int = LOAD_MARGIN_BYTES
    vocoder_loading: int = LOAD_MARGIN_BYTES

    def loading(self, with_vocoder: bool = True) -> int:
        """What the load needs beyond what it keeps, with or without making the vocoder."""
        return max(LOAD_MARGIN_BYTES, self.acoustic_loading, self.vocoder_loading if with_vocoder else 0)


def _file_bytes(*paths: Path) -> int | None:
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            return None
    return sum(sizes)


def estimate_footprint(spec: VoiceSpec, precision: str | None = None) -> Footprint:
    """The voice's expected resident bytes from the sizes of the graphs it will load (beside its
    config in a deploy root or the demo voice), else of its weights; no file is read."""
    graphs = [_file_bytes(spec.model_dir / name) for name in (ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME)]
    if None in graphs:  # exported on first load: each graph about half the weights
        weights = (_file_bytes(spec.weights_path) or 0) * (INT8_SHARE if precision == INT8 else 1)
        graphs = [int(weights) // 2] * 2
    vocoder_dir = spec.vocoder.directory
    vocoder = _file_bytes(vocoder_dir / GENERATOR_GRAPH_NAME)
    if vocoder is None:
        vocoder = _file_bytes(vocoder_dir / VOCODER_WEIGHTS_NAME) or 0
    return Footprint(int(sum(graphs) * RESIDENT_PER_GRAPH_BYTE), int(vocoder * RESIDENT_PER_GRAPH_BYTE),
                     str(vocoder_dir.resolve()), max(graphs), vocoder)


__all__ = [
    "LOAD_MARGIN_BYTES",
    "RUN_BYTES",
    "Footprint",
    "cgroup_limit",
    "default_budget",
    "estimate_footprint",
    "give_back_memory",
    "parse_size",
    "rss_bytes",
]
