"""Moved to ``lavanya_cli.speech.audio``; this import path stays for scripts that use it."""

from .speech.audio import join_pcm, save_mel_plot, wav_bytes, write_wav  # noqa: F401
