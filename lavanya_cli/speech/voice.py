"""A voice loaded once and spoken through many times, in the spirit of piper's ``PiperVoice``.

``Voice.load`` checks the voice's files, builds its front-end and loads an engine
(``speech.engines``): by default the voice's ONNX exports through ONNX Runtime, without torch;
``engine="torch"`` builds its FastSpeech2 from ``config.yaml`` with ESPnet's own modules and
loads ``model.pth`` with ``weights_only=True``. The user's files are only read.
``voice.synthesize(text)`` then yields one ``AudioChunk`` per sentence or pause, with nothing
rebuilt between them.

Upstream feeds the vocoder ``feat_gen_denorm * 2.3262`` and writes ``audio * 32768`` as int16.
Those two numbers are the defaults here; a voice whose vocoder was trained differently says so
in an optional ``lavanya.yaml`` beside its ``config.yaml`` (``mel_scale:``, ``pcm_scale:``), and
``Voice.load(mel_scale=..., pcm_scale=...)`` overrides both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from ..modeltree.config import STATS_ENTRIES, load_yaml, read_config, sample_rate, stats_file_entries
from ..errors import LavanyaError, one_line
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text
from ..limits import TEXT_AUDIO_MAX_SECONDS, checked_alpha, checked_number, usable_threads
from ..modeltree.lfs_pointer import require_content
from ..modeltree.layout import VoiceSpec, find_voice
from .engines import AUTO, SpeechEngines, load_engines
from .runtime import checked_device
from .vocoder import read_hifigan_config, vocoder_mismatches

if TYPE_CHECKING:
    from ..frontend import Frontend, Silence, Speech

DEFAULT_MEL_SCALE = 2.3262
DEFAULT_PCM_SCALE = 32768.0
SETTINGS_NAME = "lavanya.yaml"
# Each setting's range: far around upstream's values, so a typo cannot make deafening noise.
_SETTINGS_BOUNDS = {"mel_scale": (0.01, 100.0), "pcm_scale": (1.0, 1e6)}


@dataclass
class AudioChunk:
    """One sentence (or pause) of audio: float32 samples in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    text: str = ""  # the sentence as written; empty for a pause
    model_input: str = ""  # the exact string the acoustic model was given
    unpronounced: list[str] = field(default_factory=list)  # words left out
    incomplete: list[str] = field(default_factory=list)  # words spoken without some letters
    mel: np.ndarray | None = None  # [frames, mel bins]: ESPnet's denormalised mel (times mel_scale for the vocoder)
    pcm_scale: float = DEFAULT_PCM_SCALE

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def is_silence(self) -> bool:
        return not self.text

    def to_int16(self) -> np.ndarray:
        """16-bit PCM as upstream writes it (``audio * pcm_scale``), clipped instead of wrapping."""
        return np.clip(self.samples * self.pcm_scale, -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class Utterance:
    """A planned piece of speech: the sentence, its model input and its rate; or a pause; or a
    sentence left out (``skipped``: nothing in it can be spoken), kept for its report and
    rendered as nothing."""

    text: str = ""
    model_input: str = ""
    alpha: float = 1.0
    unpronounced: tuple[str, ...] = ()  # words left out
    problems: tuple[str, ...] = ()  # each word left out, spelled or spoken incompletely, and why, one line each
    silence_seconds: float = 0.0
    incomplete: tuple[str, ...] = ()  # words spoken without some of their letters
    spelled: tuple[str, ...] = ()  # Latin-script words no dictionary knows, spoken letter by letter
    skipped: str = ""  # the sentence as written, when none of it can be spoken


def read_voice_settings(spec: VoiceSpec) -> dict[str, float]:
    """The optional ``lavanya.yaml`` beside a voice's config (vocoder scaling that differs from upstream's)."""
    path = spec.model_dir / SETTINGS_NAME
    if not path.exists():
        return {}
    try:
        settings = load_yaml(read_regular_text(path, RESOURCE_MAX_BYTES, SETTINGS_NAME)) or {}
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot read it ({one_line(exc)})") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise LavanyaError(f"{path}: does not parse ({one_line(exc)})") from None
    unknown = set(settings) - set(_SETTINGS_BOUNDS) if isinstance(settings, dict) else {"(not a mapping)"}
    if unknown:
        raise LavanyaError(f"{path}: unknown settings {', '.join(sorted(map(str, unknown)))}; "
                           f"known: {', '.join(sorted(_SETTINGS_BOUNDS))}")
    return {key: checked_number(value, f"{path}: {key}", *_SETTINGS_BOUNDS[key]) for key, value in settings.items()}


def find_usable_voice(language: str, gender: str, *, models: Path | None = None, variant: str | None = None,
                      vocoder: str | None = None) -> tuple[VoiceSpec, tuple[str, ...]]:
    """The voice synthesis would load, and why voices in earlier candidate roots were passed
    over: the first root whose voice has real weights (not LFS pointers) or is a deploy root's
    export. Reads no weights."""
    skipped: list[str] = []
    spec = find_voice(language, gender, variant, models, vocoder=vocoder, require=require_speakable, skipped=skipped)
    return spec, tuple(skipped)


class Voice:
    """A loaded voice. Build it with ``Voice.load``; ``synthesize`` as often as needed."""

    def __init__(self, spec: VoiceSpec, config: dict[str, Any], engines: SpeechEngines, frontend: "Frontend", *,
                 device: str, alpha: float, mel_scale: float, pcm_scale: float):
        self.spec = spec
        self.config = config
        self.sample_rate = sample_rate(config) or 22050
        self.hop_length = int((config.get("feats_extract_conf") or {}).get("hop_length", 256))
        self.device = device
        self.alpha = alpha
        self.mel_scale = mel_scale
        self.pcm_scale = pcm_scale
        self.frontend = frontend
        self.engines = engines
        self.engine = engines.name
        # Why voices in earlier candidate roots were passed over (LFS pointers, no weights).
        self.skipped: tuple[str, ...] = ()
        # What the user should know about the load (an export made on the way).
        self.notes: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        voice: VoiceSpec | str,
        gender: str | None = None,
        *,
        models: Path | None = None,
        variant: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
        vocoder: str | None = None,
        alpha: float = 1.0,
        strict: bool = False,
        mel_scale: float | None = None,
        pcm_scale: float | None = None,
        engine: str = AUTO,
        cache: Path | None = None,
    ) -> "Voice":
        """Load a voice by ``VoiceSpec`` or by ``language, gender``: the first candidate root
        (``--models``, ``$LAVANYA_MODELS``, ``./Fastspeech2_HS``, the bundled tree) whose voice
        has real weights, so a real voice wins over the bundled demo.

        ``engine``: ``auto``, ``onnx``, ``openvino`` or ``torch`` (``speech.engines``); ``cache``:
        the export cache (default ``$LAVANYA_CACHE``, else the user cache directory).
        ``vocoder`` forces a vocoder family (``aryan``/``dravidian``); ``threads`` sets the
        engine's CPU threads; ``alpha`` is the default rate (higher is slower).
        """
        skipped: tuple[str, ...] = ()
        if isinstance(voice, VoiceSpec):
            spec = voice
        else:
            if gender is None:
                raise LavanyaError("Voice.load needs a gender with a language")
            spec, skipped = find_usable_voice(voice, gender, models=models, variant=variant, vocoder=vocoder)
        alpha = checked_alpha(alpha, "alpha")
        device = checked_device(device)
        threads, _ = usable_threads(threads)
        config = _check_files(spec)
        settings = read_voice_settings(spec)
        from ..frontend import Frontend

        frontend = Frontend.for_voice(spec, config, strict=strict)
        engines, notes = load_engines(spec, config, engine=engine, device=device, threads=threads, cache=cache)
        mel_scale = settings.get("mel_scale", DEFAULT_MEL_SCALE) if mel_scale is None else \
            checked_number(mel_scale, "mel_scale", *_SETTINGS_BOUNDS["mel_scale"])
        pcm_scale = settings.get("pcm_scale", DEFAULT_PCM_SCALE) if pcm_scale is None else \
            checked_number(pcm_scale, "pcm_scale", *_SETTINGS_BOUNDS["pcm_scale"])
        loaded = cls(spec, config, engines, frontend, device=device, alpha=alpha, mel_scale=mel_scale,
                     pcm_scale=pcm_scale)
        loaded.skipped = skipped
        loaded.notes = tuple(notes)
        return loaded

    # -- text to plan --------------------------------------------------------------------

    def plan(self, text: str, alpha: float | None = None, sentence_silence: float = 0.0) -> list[Utterance]:
        """Sentences (model input ready) and pauses, checked before any audio is made: a malformed
        tag, empty text, too many pauses, a text with nothing speakable in any sentence or (under
        ``strict``) a word not spoken as written fails here. A sentence with nothing speakable is
        left out (``Utterance.skipped``), its words reported, and the pause before it goes too."""
        from ..frontend import segment_text

        return self.plan_segments(segment_text(text, sentence_silence=sentence_silence), alpha)

    def plan_segments(self, segments: Iterable["Speech | Silence"], alpha: float | None = None) -> list[Utterance]:
        """``plan`` for text already cut by ``frontend.segment_text`` (a batch segments every
        text before any voice is loaded)."""
        from ..frontend import Silence

        base_alpha = self.alpha if alpha is None else checked_alpha(alpha, "alpha")
        segments = list(segments)
        prepared = iter(self.frontend.prepare_all(item.text for item in segments if not isinstance(item, Silence)))
        planned: list[Utterance] = []
        gap: Silence | None = None  # the --sentence-silence pause before the next sentence spoken
        spoken = False
        for item in segments:
            if isinstance(item, Silence):
                if item.between_sentences:
                    gap = item
                else:
                    planned.append(Utterance(silence_seconds=item.seconds))
                continue
            sentence = next(prepared)
            report = dict(unpronounced=tuple(sentence.unpronounced), problems=tuple(sentence.problems),
                          incomplete=tuple(sentence.incomplete), spelled=tuple(sentence.spelled))
            if not sentence.spoken:
                planned.append(Utterance(skipped=item.text, **report))
                continue
            if gap is not None and spoken:
                planned.append(Utterance(silence_seconds=gap.seconds))
            gap, spoken = None, True
            planned.append(Utterance(text=item.text, model_input=sentence.model_input,
                                     alpha=item.alpha if item.alpha is not None else base_alpha, **report))
        return planned

    # -- audio ---------------------------------------------------------------------------

    def synthesize(self, text: str, alpha: float | None = None, sentence_silence: float = 0.0) -> Iterator[AudioChunk]:
        """One ``AudioChunk`` per sentence or pause of ``text``, in order."""
        return self.render(self.plan(text, alpha, sentence_silence))

    def render(self, plan: Iterable[Utterance]) -> Iterator[AudioChunk]:
        """Audio for a plan from ``plan()``, one chunk per entry, made as it is asked for (nothing
        is kept). One plan makes at most ``TEXT_AUDIO_MAX_SECONDS`` of audio; beyond that it
        stops with a LavanyaError."""
        seconds = 0.0
        for utterance in plan:
            if utterance.skipped:
                continue  # nothing in it can be spoken; the plan keeps its report
            if utterance.text:
                chunk = self.speak(utterance.model_input, utterance.alpha, text=utterance.text,
                                   unpronounced=list(utterance.unpronounced), incomplete=list(utterance.incomplete))
            else:
                samples = np.zeros(round(utterance.silence_seconds * self.sample_rate), dtype=np.float32)
                chunk = AudioChunk(samples, self.sample_rate, pcm_scale=self.pcm_scale)
            seconds += chunk.seconds
            if seconds > TEXT_AUDIO_MAX_SECONDS:
                raise LavanyaError(f"the text makes more than {TEXT_AUDIO_MAX_SECONDS / 3600:g} hours of audio, "
                                   "the most one text may; split it into several")
            yield chunk

    def speak(self, model_input: str, alpha: float | None = None, *, text: str = "",
              unpronounced: list[str] | None = None, incomplete: list[str] | None = None) -> AudioChunk:
        """Audio for one prepared model-input string (what ``lavanya text`` prints)."""
        alpha = self.alpha if alpha is None else checked_alpha(alpha, "alpha")
        mel = self.engines.mel(model_input, alpha)
        return AudioChunk(
            samples=self.engines.audio(mel * np.float32(self.mel_scale)),
            sample_rate=self.sample_rate,
            text=text or model_input,
            model_input=model_input,
            unpronounced=unpronounced or [],
            incomplete=incomplete or [],
            mel=mel,
            pcm_scale=self.pcm_scale,
        )


def _check_files(spec: VoiceSpec) -> dict[str, Any]:
    """Every file the voice needs, checked up front so each problem is one line naming it."""
    from .export_store import is_deployed_vocoder

    spec.require_inside()
    config = read_config(spec.config_path)
    require_speakable(spec)
    for key in stats_file_entries(config):
        kind = STATS_ENTRIES[key]
        require_content(spec.stats_path(kind), f"{kind} statistics")
    vocoder = read_hifigan_config(spec.vocoder.config_path)
    if not is_deployed_vocoder(spec.vocoder):
        require_content(spec.vocoder.generator_path, "HiFi-GAN generator")
    if differences := vocoder_mismatches(config, vocoder):
        raise LavanyaError(f"{spec.vocoder.config_path}: does not fit {spec.name} ({'; '.join(differences)}); "
                           "pick the other family with --vocoder aryan|dravidian")
    return config


def require_speakable(spec: VoiceSpec) -> None:
    """A one-line error unless the voice has real weights, or is a deploy root's export (its
    graphs without ``model.pth``)."""
    from .export_store import is_deployed_voice

    if not is_deployed_voice(spec):
        require_weights(spec)


def require_weights(spec: VoiceSpec) -> Path:
    """The voice's weights file, or a one-line error when it is absent or only an LFS pointer."""
    weights = spec.weights_path
    if weights is None:
        raise LavanyaError(f"{spec.model_dir}: no model.pth (no weights for {spec.name})")
    require_content(weights, "the acoustic model")
    return weights


__all__ = ["AudioChunk", "Utterance", "Voice", "find_usable_voice", "read_voice_settings", "require_speakable",
           "DEFAULT_MEL_SCALE", "DEFAULT_PCM_SCALE", "SETTINGS_NAME"]
