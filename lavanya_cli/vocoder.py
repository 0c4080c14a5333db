"""``lavanya_cli.vocoder.load_hifigan``, the import path documented before the package was laid out
by job; the torch vocoder lives in ``lavanya_cli.speech.vocoder``."""

from .speech.vocoder import load_hifigan

__all__ = ["load_hifigan"]
