"""Quiet access to ESPnet: its imports and its runs print nothing the user did not ask for."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import warnings


def text2speech_class():
    """ESPnet's ``Text2Speech``: what upstream runs (``upstream_way``) and what builds training
    models; lavanya's own synthesis avoids its slow import (see ``acoustic``).

    Its import reaches ``g2p_en``, which calls ``nltk.download`` at import time (a network
    attempt that prints errors offline); lavanya's voices never use g2p_en, so the download is
    replaced by a no-op for the import.
    """
    import nltk

    download = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        return import_espnet("espnet2.bin.tts_inference").Text2Speech
    finally:
        nltk.download = download


def import_espnet(module: str):
    """Import an ESPnet module with its console noise held back: ESPnet's transformer layers
    print a Flash Attention notice on stdout, which would corrupt ``-o -`` and ``--format json``."""
    with quiet_libraries(), contextlib.redirect_stdout(io.StringIO()):
        return importlib.import_module(module)


@contextlib.contextmanager
def quiet_libraries():
    """No library warnings or log records reach the console while ESPnet and torch work."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
