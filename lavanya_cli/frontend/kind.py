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

from ..errors import LavanyaError, one_line
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text
from ..modeltree.paths import require_inside


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


def token_list(config: dict[str, Any], model_dir: Path | None = None) -> list[str] | None:
    """The config's ``token_list``: inline, or a tokens file inside ``model_dir`` (a path in the
    config is only looked up there, so a hostile config cannot point at files elsewhere)."""
    tokens = config.get("token_list")
    if isinstance(tokens, list):
        return [str(token) for token in tokens]
    if isinstance(tokens, str) and tokens and model_dir is not None:
        path = Path(tokens)
        inside = [] if path.is_absolute() or ".." in path.parts else [model_dir / path]
        for candidate in (*inside, model_dir / path.name):
            if candidate.exists():
                require_inside(model_dir, candidate)
                try:
                    return read_regular_text(candidate, RESOURCE_MAX_BYTES, "the token list").split()
                except OSError as exc:
                    raise LavanyaError(f"{candidate}: cannot read the token list ({one_line(exc)})") from None
    return None


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
