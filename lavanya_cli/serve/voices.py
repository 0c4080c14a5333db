"""The voices a server speaks with: chosen at start-up, loaded once, resident until it stops.

``--voice hindi/male`` names a voice the way ``lavanya synth --lang hindi --gender male`` finds
it (the candidate roots, a real voice before the bundled demo); with no ``--voice`` every voice
in the model root that loads is served, and the ones that do not are passed over with a line
in the log saying why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LavanyaError, option
from ..modeltree.layout import LANGUAGE_ALIASES, ModelRoot, VoiceSpec, find_voice, pick_voice, resolve_root

if TYPE_CHECKING:
    from ..speech.options import LoadOptions
    from ..speech.voice import Voice

log = logging.getLogger("lavanya.serve")



@dataclass(frozen=True)
class VoiceName:
    """``language/gender[/variant]`` as a user writes it."""

    language: str
    gender: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "VoiceName":
        parts = [part.strip().lower() for part in text.split("/")]
        if len(parts) not in (2, 3) or not all(parts):
            raise LavanyaError(f"{option('voices', flag='--voice')} {text!r}: write language/gender or "
                               "language/gender/variant, e.g. hindi/male (see lavanya voices)")
        return cls(LANGUAGE_ALIASES.get(parts[0], parts[0]), parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return f"{self.language}/{self.gender}" + (f"/{self.variant}" if self.variant else "")


def choose_specs(names: list[VoiceName], models: Path | None) -> list[VoiceSpec]:
    """The voices to load, found without reading any weights (fast, so a typo fails at once).

    Named voices must exist with real weights. With no names, every voice of the model root with
    weights is chosen; the others (LFS pointers, no ``model.pth``) are logged and passed over."""
    from ..modeltree.weights import require_speakable

    if names:
        specs = [find_voice(name.language, name.gender, name.variant, models, require=require_speakable)
                 for name in names]
        return list(dict.fromkeys(specs))
    root = resolve_root(models)
    specs = []
    for spec in ModelRoot(root).voices():
        try:
            require_speakable(spec)
        except LavanyaError as exc:
            log.warning("passed over %s: %s", spec.name, exc.message)
            continue
        specs.append(spec)
    if not specs:
        raise LavanyaError(f"{root}: no voice with weights to serve (see lavanya voices {root})")
    return specs


class VoiceSet:
    """Loaded voices by language, gender and variant; ``ready`` once every one has loaded."""

    def __init__(self, voices: list["Voice"] | None = None):
        self._voices: list[Voice] = []
        self.ready = False
        if voices is not None:
            self.add_all(voices)

    def add_all(self, voices: list["Voice"]) -> None:
        self._voices = sorted(voices, key=lambda v: (v.spec.language, v.spec.gender, v.spec.variant))
        self.ready = True

    def load(self, specs: list[VoiceSpec], options: "LoadOptions", *, skip_failures: bool) -> None:
        """Load every voice in ``specs`` with ``options`` (through ``VoiceCache``, as batches load
        theirs). A failure is fatal
        unless ``skip_failures`` (voices found by scanning the root rather than named)."""
        from ..speech.voice_cache import VoiceCache

        cache = VoiceCache(options=options)
        loaded = []
        for spec in specs:
            try:
                loaded.append(cache.load(spec))
            except LavanyaError as exc:
                if not skip_failures:
                    raise
                log.warning("passed over %s: %s", spec.name, exc.message)
                continue
            for note in loaded[-1].notes:
                log.info("%s", note)
            log.info("loaded %s%s from %s (%s engine)", spec.name, " (demo voice)" if spec.demo else "", spec.root,
                     loaded[-1].engine)
        if not loaded:
            raise LavanyaError("no voice could be loaded; see the lines above")
        self.add_all(loaded)

    @property
    def voices(self) -> list["Voice"]:
        return list(self._voices)

    def names(self) -> list[str]:
        return [voice.spec.name for voice in self._voices]

    def find(self, language: str, gender: str, variant: str | None = None) -> "Voice":
        """The loaded voice asked for; without a variant the plain one is preferred, as on disk.
        Raises LookupError with the voices there are."""
        spec = pick_voice((voice.spec for voice in self._voices), language, gender, variant)
        if spec is None:
            raise LookupError(VoiceName(LANGUAGE_ALIASES.get(language.lower(), language.lower()), gender.lower(), variant))
        return next(voice for voice in self._voices if voice.spec == spec)

    def describe(self) -> list[dict[str, Any]]:
        """What ``GET /api/voices`` lists: no filesystem paths, which are the server's business."""
        return [{
            "name": voice.spec.name,
            "language": voice.spec.language,
            "gender": voice.spec.gender,
            "variant": voice.spec.variant or None,
            "sample_rate": voice.sample_rate,
            "demo": voice.spec.demo,
            "engine": voice.engine,
        } for voice in self._voices]
