"""Every number a user gives, checked by one function, and the bounds on the work one input causes.

A number reaches synthesis from an option (``--alpha``, ``--sentence-silence``), an inline tag
(``<alpha=1.2>``, ``<sil=2s>``) or a JSONL field (``"alpha"``); all go through
``checked_number``, so ``nan``, ``inf``, ``1e400`` or ``1e9`` get the same one-line refusal
wherever they were written. The caps keep memory and time proportional to what was asked and
far from what a small machine cannot give: ``--alpha 1e9`` once had torch ask for far more
memory than any machine has, and a text of nothing but minute-long pauses once made a huge WAV
(docs/safety.md has the figures).
"""

from __future__ import annotations

import functools
import math
import os
import re

from .errors import LavanyaError, option
from .fileio import format_size

# Each quantity a user gives has one range, here, whoever takes it (an option, a JSONL field, an
# inline tag, an HTTP field, a Python argument): it is checked where it enters and trusted after.
# Speaking rate, ESPnet's duration multiplier: 0.25 is four times faster, 4 four times slower.
ALPHA_MIN = 0.25
ALPHA_MAX = 4.0
ALPHA_RANGE = (ALPHA_MIN, ALPHA_MAX)
# One pause: a <sil=...> tag or the pause between sentences.
PAUSE_MAX_SECONDS = 60.0
PAUSE_RANGE = (0.0, PAUSE_MAX_SECONDS)
# All pauses of one text (one job): tags and --sentence-silence together.
TEXT_SILENCE_MAX_SECONDS = 30 * 60.0
# All audio of one text (one job), pauses included; a 48 kHz WAV of this is about 2 GB.
TEXT_AUDIO_MAX_SECONDS = 6 * 3600.0
# The text of one job (one WAV): about six hours of Hindi, the audio one text may make, so more
# could never be spoken; checked before any work (a line far beyond it once took minutes to plan;
# docs/safety.md).
TEXT_MAX_BYTES = 1 << 20
# Mel frames one sentence may expand to (about 2 minutes at 22050 Hz, hop 256): the decoder's
# attention grows with the square of this, so it is checked before the expansion is made.
SENTENCE_FRAMES_MAX = 10_000

# Text read from a file or standard input (--input, --lines, --jsonl, stdin): a long book
# chapter is 100-600 KB of UTF-8; 1 MiB of Hindi is about six hours of speech.
INPUT_LIMIT_DEFAULT = 1 << 20
INPUT_LIMIT_MAX = 64 << 20
INPUT_LIMIT_ENV = "LAVANYA_MAX_INPUT"
_SIZE = re.compile(r"^\s*(\d{1,15})\s*([KMG]?)i?B?\s*$", re.IGNORECASE)


def checked_frames(frames: float) -> None:
    """Refuse a sentence whose predicted durations add up past ``SENTENCE_FRAMES_MAX`` mel frames,
    before the expansion is made (every engine asks this)."""
    if not 0 <= frames <= SENTENCE_FRAMES_MAX:
        shown = f"{frames:.0f}" if math.isfinite(frames) and frames < 1e12 else "an unbounded number of"
        raise LavanyaError(f"the acoustic model predicts {shown} frames for one sentence, more than the "
                           f"{SENTENCE_FRAMES_MAX} a sentence may have; lower alpha or split the sentence")


def checked_number(value: object, what: str, low: float, high: float, unit: str = "") -> float:
    """``value`` as a float when it is a finite number from ``low`` to ``high``; otherwise one
    LavanyaError, ``<what> must be a number from <low> to <high><unit>, not <value>``."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float (JSON allows 1 followed by 400 zeros)
            number = math.inf
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise LavanyaError(f"{what} must be a number from {low:g} to {high:g}{unit}, not {_shown(value)}")
    return number


def checked_alpha(value: object, what: str | None = None) -> float:
    """A speaking rate (ESPnet's alpha) in ``ALPHA_RANGE``; ``what``: where it was written."""
    return checked_number(value, what or option("alpha"), *ALPHA_RANGE)


def checked_pause(value: object, what: str | None = None) -> float:
    """One pause in seconds, in ``PAUSE_RANGE`` (default: the pause between sentences)."""
    return checked_number(value, what or option("sentence_silence"), *PAUSE_RANGE, " s")


def usable_threads(requested: int | None) -> tuple[int | None, str | None]:
    """``(threads, note)``: at least 1 and at most the CPUs this process may run on; the note
    says when a larger request was lowered (a thread per missing CPU only adds contention)."""
    if requested is None:
        return None, None
    if isinstance(requested, bool) or not isinstance(requested, int):
        raise LavanyaError(f"{option('threads')} must be a whole number of 1 or more, not {requested!r}")
    if requested < 1:
        raise LavanyaError(f"{option('threads')} must be 1 or more, not {requested}")
    cpus = available_cpus()
    if requested > cpus:
        return cpus, f"{option('threads')} {requested} is more than the {cpus} CPU(s) available here; using {cpus}"
    return requested, None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def input_limit(size: str | None = None) -> int:
    """Bytes of text one input may hold: ``size`` (``--max-input``), else ``$LAVANYA_MAX_INPUT``,
    else 1 MiB. A size is bytes or a number with K, M or G (binary: 1M = 1 MiB), up to 64 MiB."""
    if size is not None:
        return _parse_size(size, option("max_input"))
    env = os.environ.get(INPUT_LIMIT_ENV)
    if env:
        return _parse_size(env, f"${INPUT_LIMIT_ENV}")
    return INPUT_LIMIT_DEFAULT


def input_limit_hint(limit: int) -> str:
    """What to tell a user whose input is over ``limit``."""
    return (f"more than the input limit of {format_size(limit)}; raise it with {option('max_input')} SIZE "
            f"or ${INPUT_LIMIT_ENV} (at most {format_size(INPUT_LIMIT_MAX)}), or split the text")


def spoken_text_limit(limit: int):
    """``(bytes, over)`` for one text to be spoken, read under the input limit ``limit``: never
    more than ``TEXT_MAX_BYTES``, and ``over(bytes)`` the words for a longer one."""
    if limit < TEXT_MAX_BYTES:
        return limit, input_limit_hint
    return TEXT_MAX_BYTES, lambda most: (f"more than the {format_size(most)} one text may hold (about six hours "
                                         f"of speech); split it into several texts ({option('lines')} or {option('jsonl')})")


def _parse_size(text: str, what: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise LavanyaError(f"{what} must be a size in bytes, or with K, M or G (e.g. 4M), not {text!r}")
    size = int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]
    return int(checked_number(size, what, 1, INPUT_LIMIT_MAX, f" bytes ({format_size(INPUT_LIMIT_MAX)})"))


def _shown(value: object) -> str:
    """A user's value as they wrote it, short."""
    try:
        text = str(value)
    except ValueError:  # an integer with more digits than Python prints
        return "a number too large to print"
    return text if len(text) <= 40 else text[:37] + "..."


NOT_MEASURED = 0  # what ``rss_bytes`` says where /proc cannot say: the budget's count alone then holds


def rss_bytes() -> int:
    """This process's resident memory now (``NOT_MEASURED`` where /proc cannot say)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _page_size()
    except (OSError, ValueError, IndexError):
        return NOT_MEASURED


@functools.cache
def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")
