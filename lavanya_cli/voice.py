"""Moved to ``lavanya_cli.speech.voice``; this import path stays for scripts that use it."""

from .speech.voice import AudioChunk, Utterance, Voice, read_voice_settings, require_weights, DEFAULT_MEL_SCALE, DEFAULT_PCM_SCALE, SETTINGS_NAME  # noqa: F401
