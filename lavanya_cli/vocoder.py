"""Moved to ``lavanya_cli.speech.vocoder``; this import path stays for scripts that use it."""

from .speech.vocoder import espnet_to_upstream_state, hifigan_from_config, load_hifigan, read_hifigan_config, save_upstream_generator, upstream_to_espnet_state, vocoder_mismatches  # noqa: F401
