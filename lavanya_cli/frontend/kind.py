"""Which input a voice's acoustic model takes, read from its ``config.yaml``.

Three kinds exist among the published voices:

* ``phrases``: common-label-set characters, each phrase wrapped as ``$<characters>.`` (``fastspeech2_hs``
  voices and every New-Models voice);
* ``phones``: the same characters, words separated by spaces, no wrapping (English,
  ``fastspeech2_tf``);
* ``characters``: the cleaned text itself (Urdu and Punjabi, ``fastspeech2_tf_char``).

The token list decides: phone voices have ASCII letters among their tokens (``a``, ``k``, ...),
character voices have the letters of their script instead; phrase voices have ``$``. The
``stats_file`` path (``.../fastspeech2_tf_char/feats_stats.npz``) is only a hint, used when the
token list is absent, because ``lavanya fix-config`` rewrites it to a bare file name.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any

from ..modeltree.config import token_list


class FrontendKind(str, Enum):
    PHRASES = "phrases"
    PHONES = "phones"
    CHARACTERS = "characters"


PHRASE_START = "$"
PHRASE_END = "."
_PATH_HINTS = (
    (re.compile(r"fastspeech2_tf_char"), FrontendKind.CHARACTERS),
    (re.compile(r"fastspeech2_tf(?![a-z_])"), FrontendKind.PHONES),
    (re.compile(r"fastspeech2_hs"), FrontendKind.PHRASES),
)


def kind_from_tokens(tokens: list[str]) -> FrontendKind | None:
    """The kind the token list shows, or None when it shows nothing either way."""
    single = [token for token in tokens if len(token) == 1]
    if not single:
        return None
    if not any(token.isascii() and token.isalpha() for token in single):
        return FrontendKind.CHARACTERS
    return FrontendKind.PHRASES if PHRASE_START in single else FrontendKind.PHONES


def kind_from_stats_path(config: dict[str, Any]) -> FrontendKind | None:
    """The hint in upstream's absolute ``stats_file`` paths (gone after ``fix-config``)."""
    for key in ("normalize_conf", "pitch_normalize_conf", "energy_normalize_conf"):
        path = str((config.get(key) or {}).get("stats_file") or "")
        for pattern, kind in _PATH_HINTS:
            if pattern.search(path):
                return kind
    return None


def detect_kind(config: dict[str, Any], model_dir: Path | None = None) -> FrontendKind:
    """Tokens first, then the stats path hint; phrases (most voices) when neither says."""
    tokens = token_list(config, model_dir)
    return (
        (kind_from_tokens(tokens) if tokens else None)
        or kind_from_stats_path(config)
        or FrontendKind.PHRASES
    )
