"""Text front-end: raw text to exactly what a Fastspeech2_HS acoustic model was trained on.

Pipeline (upstream's text_preprocess_for_inference.py, without its network G2P): clean into
phrases, spell numbers from ``numToText``, words to phone characters from ``phone_dict`` or the
unified parser, then wrap each phrase as ``$<characters>.`` Which of these steps a voice takes
depends on its config (see ``kind``). The phone dictionaries are read through compact tables
kept in the cache (``tables``). Pure Python; no torch, no ESPnet.
"""

from .core import Frontend, PreparedText
from .kind import FrontendKind, detect_kind
from .segment import Silence, Speech, segment_text

__all__ = ["Frontend", "FrontendKind", "PreparedText", "Silence", "Speech", "detect_kind", "segment_text"]
