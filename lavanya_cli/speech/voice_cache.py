"""Voices by language and gender, found on first ask (no weights read) and loaded on first use,
each with the same options: the one lookup-and-cache the local runner, Ray's actors and the
server load voices through."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import LavanyaError
from ..modeltree.layout import VoiceSpec
from .options import FindOptions, LoadOptions
from .voice import Voice, find_usable_voice

@dataclass
class VoiceCache:
    """Voices by ``(language, gender)``: found on first ask (``spec``, no weights read), loaded
    on first use (``get``, or ``load`` for a voice already found), each once, with ``find`` and
    ``options``. A voice that failed to load fails again at once, without a second try."""

    find: FindOptions = field(default_factory=FindOptions)
    options: LoadOptions = field(default_factory=LoadOptions)
    specs: dict[tuple[str, str], tuple[VoiceSpec, tuple[str, ...]]] = field(default_factory=dict)
    loaded: dict[VoiceSpec, Voice | LavanyaError] = field(default_factory=dict)
    load_seconds: float = 0.0

    def spec(self, language: str, gender: str) -> VoiceSpec:
        key = (language.lower(), gender.lower())
        if key not in self.specs:
            self.specs[key] = find_usable_voice(language, gender, self.find)
        return self.specs[key][0]

    def get(self, language: str, gender: str) -> Voice:
        spec = self.spec(language, gender)
        return self.load(spec, self.specs[(language.lower(), gender.lower())][1])

    def load(self, spec: VoiceSpec, passed_over: tuple[str, ...] = ()) -> Voice:
        """The voice of ``spec`` (``passed_over``: why other roots' voices were not it)."""
        if spec not in self.loaded:
            started = time.perf_counter()
            try:
                voice = Voice.load(spec, options=self.options)
            except LavanyaError as exc:
                self.loaded[spec] = exc
                raise
            finally:
                self.load_seconds += time.perf_counter() - started
            voice.passed_over = passed_over
            self.loaded[spec] = voice
        voice = self.loaded[spec]
        if isinstance(voice, LavanyaError):
            raise voice
        return voice

    @property
    def voices(self) -> list[Voice]:
        """The voices loaded, in the order they were."""
        return [voice for voice in self.loaded.values() if isinstance(voice, Voice)]
