"""The ranges of the numbers a user may send, and the server's own limits.

A number from a user (a JSON field, a query parameter) is checked by ``limits.checked_number``
against the range ``lavanya_cli.limits`` gives that quantity everywhere; the page and the
OpenAPI schema read the ranges from ``ServerLimits.describe``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import LavanyaError, option
from ..limits import ALPHA_RANGE, PAUSE_RANGE

DEFAULT_MAX_CHARS = 2000
DEFAULT_QUEUE = 8
DEFAULT_TIMEOUT = 60.0
# Bytes of JSON body per allowed character: a character escaped as a surrogate pair is 12 bytes.
BODY_BYTES_PER_CHAR = 12
BODY_OVERHEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """What one server accepts and how much work it takes on at once."""

    max_chars: int = DEFAULT_MAX_CHARS
    queue: int = DEFAULT_QUEUE
    timeout: float = DEFAULT_TIMEOUT
    workers: int = 1

    def __post_init__(self) -> None:
        if self.max_chars < 1:
            raise LavanyaError(f"{option('max_chars')} must be 1 or more, not {self.max_chars}")
        if self.queue < 0:
            raise LavanyaError(f"{option('queue')} must be 0 or more, not {self.queue}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise LavanyaError(f"{option('timeout')} must be a number of seconds above 0, not {self.timeout}")
        if self.workers < 1:
            raise LavanyaError(f"{option('workers')} must be 1 or more, not {self.workers}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body read: enough for ``max_chars`` of text however it is escaped."""
        return self.max_chars * BODY_BYTES_PER_CHAR + BODY_OVERHEAD_BYTES

    def describe(self) -> dict[str, object]:
        """The limits as the page and API clients see them."""
        return {
            "max_chars": self.max_chars,
            "alpha": {"min": ALPHA_RANGE[0], "max": ALPHA_RANGE[1], "default": 1.0},
            "sentence_silence": {"min": PAUSE_RANGE[0], "max": PAUSE_RANGE[1], "default": 0.0},
            "timeout_seconds": self.timeout,
            "queue": self.queue,
            "workers": self.workers,
        }
