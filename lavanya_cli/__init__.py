"""lavanya: load, check, repair and run IIT Madras Fastspeech2_HS voices.

The public API is five names, imported on first use so that ``import lavanya_cli`` stays light
(the maintenance commands never pay for a synthesis runtime)::

    from lavanya_cli import Voice, find_voice, verify_root, LavanyaError, AudioChunk

The package is laid out by job: ``modeltree`` (where voices and their files are), ``frontend``
(text to model input), ``speech`` (a voice speaking), ``checks`` (verify and the repairs),
``batch`` (many texts to many WAVs, here or on Ray), ``serve`` (the web server), ``bench``
(measuring), ``add_voice`` (adding a voice to a tree), ``cli`` (the ``lavanya`` command) and
``testing`` (voice builders for tests and benchmarks); docs/design.md draws their layers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import __version__

_PUBLIC = {
    "Voice": "lavanya_cli.speech.voice",
    "AudioChunk": "lavanya_cli.speech.voice",
    "find_voice": "lavanya_cli.modeltree.layout",
    "verify_root": "lavanya_cli.checks.verify",
    "LavanyaError": "lavanya_cli.errors",
}
__all__ = [*_PUBLIC, "__version__"]

if TYPE_CHECKING:
    from .checks.verify import verify_root
    from .errors import LavanyaError
    from .modeltree.layout import find_voice
    from .speech.voice import AudioChunk, Voice


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'lavanya_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
