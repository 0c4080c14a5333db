"""Model-input text to token ids, as ESPnet's ``CharTokenizer`` and ``TokenIDConverter`` make them,
without importing ESPnet (whose import pulls in torch).

Fastspeech2_HS voices use ``token_type: char``: every character is a token, a space is the token
``<space>``, a non-linguistic symbol (``non_linguistic_symbols``; null in every upstream config)
is one token, and a token outside the ``token_list`` becomes ``<unk>``. ``tests/test_tokens.py``
compares this with ESPnet's classes on every upstream token list.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LavanyaError

SPACE = "<space>"
UNKNOWN = "<unk>"


class Tokenizer:
    """``ids(text)``: the int64 token ids ESPnet's preprocessor gives for model-input ``text``."""

    def __init__(self, token_list: Iterable[str], non_linguistic_symbols: Iterable[str] | None = None):
        self.token_list = [str(token) for token in token_list]
        self.ids_of: dict[str, int] = {}
        for index, token in enumerate(self.token_list):
            if token in self.ids_of:
                raise LavanyaError(f"token_list has {token!r} twice")
            self.ids_of[token] = index
        if UNKNOWN not in self.ids_of:
            raise LavanyaError(f"token_list has no {UNKNOWN} token")
        self.unknown_id = self.ids_of[UNKNOWN]
        # ESPnet tries the symbols in set order, which only matters where one symbol starts
        # another (its result then changes from run to run); the longest first is one of its
        # orders. An empty symbol would make ESPnet loop forever; it is left out.
        self.symbols = sorted({s for s in (non_linguistic_symbols or ()) if s}, key=len, reverse=True)

    @classmethod
    def from_config(cls, config: dict[str, Any], token_list: list[str] | None = None) -> "Tokenizer":
        """The tokenizer a voice's ``config.yaml`` describes (``token_list`` overrides the config's,
        for configs that name a tokens file)."""
        tokens = token_list if token_list is not None else config.get("token_list")
        if not isinstance(tokens, list):
            raise LavanyaError("config.yaml has no inline token_list")
        return cls(tokens, _symbols(config.get("non_linguistic_symbols")))

    def tokens(self, text: str) -> list[str]:
        """``text`` split as ``CharTokenizer.text2tokens`` splits it."""
        tokens: list[str] = []
        position = 0
        while position < len(text):
            for symbol in self.symbols:
                if text.startswith(symbol, position):
                    tokens.append(symbol)
                    position += len(symbol)
                    break
            else:
                character = text[position]
                tokens.append(SPACE if character == " " else character)
                position += 1
        return tokens

    def ids(self, text: str) -> np.ndarray:
        """Token ids of ``text``, ``<unk>`` for a token outside the list."""
        return np.array([self.ids_of.get(token, self.unknown_id) for token in self.tokens(text)], dtype=np.int64)


def _symbols(setting: Any) -> list[str] | None:
    """``non_linguistic_symbols`` as ESPnet reads it: null, a list, or a file of one symbol a line
    (a missing file means none, as ESPnet, which only warns)."""
    if setting is None:
        return None
    if isinstance(setting, (list, tuple)):
        return [str(symbol) for symbol in setting]
    from ..fileio import RESOURCE_MAX_BYTES, read_regular_text

    path = Path(str(setting))
    try:
        text = read_regular_text(path, RESOURCE_MAX_BYTES, "non-linguistic symbols file")
    except FileNotFoundError:
        return None
    except PermissionError:
        raise LavanyaError(f"{path}: non-linguistic symbols file is not readable") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # Python's text mode
    return [line.rstrip() for line in lines]
