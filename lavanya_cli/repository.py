"""Moved to ``lavanya_cli.modeltree.layout``; this import path stays for scripts that use it."""

from .modeltree.layout import ModelRoot, VocoderSpec, VoiceSpec, candidate_roots, find_voice, resolve_root  # noqa: F401
