"""The tiny test voice (synthkit) exported to ONNX once per session, in a cache of its own."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from synthkit import shared_voice_root


@functools.cache
def shared_cache() -> Path:
    """A session's export cache holding the tiny hindi/male voice's exports (read-only by convention)."""
    from lavanya_cli.modeltree.layout import find_voice
    from lavanya_cli.speech.export import ensure_exports

    cache = Path(tempfile.mkdtemp(prefix="lavanya-onnx-cache-"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    ensure_exports(find_voice("hindi", "male", models=shared_voice_root()), cache)
    return cache


def tiny_spec():
    from lavanya_cli.modeltree.layout import find_voice

    return find_voice("hindi", "male", models=shared_voice_root())


def copy_tree(source: Path, target: Path) -> Path:
    """A private copy of a voice tree, for tests that change files."""
    shutil.copytree(source, target)
    return target
