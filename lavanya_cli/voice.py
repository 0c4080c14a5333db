"""``lavanya_cli.voice.Voice``, the import path documented before the package was laid out by job;
the voice lives in ``lavanya_cli.speech.voice``."""

from .speech.voice import AudioChunk, Voice

__all__ = ["AudioChunk", "Voice"]
