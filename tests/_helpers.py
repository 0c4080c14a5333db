"""Plain helpers that more than one test module uses, written once: ``from _helpers import ...``
(pytest puts ``tests/`` on ``sys.path``, as it does for synthkit and the other kits). Fixtures that
several modules share live in conftest.py.

Not ``helpers``: indic_unified_parser puts its own directory at the end of ``sys.path`` and runs
``from helpers import *``, which would find a ``tests/helpers.py`` first."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path


def snapshot(top: Path) -> dict[str, tuple]:
    """Every entry below ``top`` (links not followed, hidden ones and .git included), by its path
    relative to ``top``: type, mode, link count, size, inode, modification time, and the content (a
    regular file's SHA-256, a link's target). Equal snapshots of one tree taken before and after
    something ran mean it added, removed, replaced, rewrote, touched and chmod-ed nothing there.
    test_add_voice.py keeps only the first two and the last (type, mode, content) of each tuple."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = None
            entries[path.relative_to(top).as_posix()] = (
                stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_nlink, info.st_size,
                info.st_ino, info.st_mtime_ns, content)
    return entries


def synth(cli, *args: object, models: Path | None = None):
    """``lavanya synth --models MODELS --lang hindi --gender male ARGS...`` through the ``cli``
    fixture (in-process): (exit code, stdout, stderr). MODELS is synthkit's shared tiny voice tree
    unless given."""
    if models is None:
        from synthkit import shared_voice_root

        models = shared_voice_root()
    return cli("synth", "--models", models, "--lang", "hindi", "--gender", "male", *args)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tts_body(text: str = "नमस्ते।", **fields) -> dict:
    """A ``/api/tts`` request body for the hindi/male voice; ``fields`` add to or replace its fields."""
    return {"text": text, "lang": "hindi", "gender": "male", **fields}


def metric(client, name: str, **labels: str) -> float:
    """One sample from the server's ``/metrics`` (``client`` an httpx client on it); 0 when absent."""
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    prefix = name + (f"{{{selector}}}" if selector else "") + " "
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


class TouchesMarker:
    """A pickled object whose unpickling runs a shell command (``os.system``, which pickle names
    ``posix.system``) that creates ``marker``: the proof that loading a pickle ran its code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def auto_engine(spec=None) -> str:
    """What ``auto`` comes to on this CPU for ``spec`` (default: the tiny hindi/male test voice)
    with the session's cache: measured there once, then kept."""
    from lavanya_cli.modeltree.layout import find_voice
    from lavanya_cli.speech.engine_choice import choose_engine
    from lavanya_cli.speech.engines import prepare_exports
    from lavanya_cli.speech.export_store import find_exports
    from lavanya_cli.speech.options import LoadOptions
    from synthkit import shared_voice_root

    spec = spec or find_voice("hindi", "male", models=shared_voice_root())
    options = LoadOptions()
    prepare_exports(spec, options)
    return choose_engine(spec, options, find_exports(spec, options.cache)).engine


def umask() -> int:
    """This process's umask, read the plain way (set and put back), apart from the library's."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
