"""A voice loaded once and spoken through many times, in the spirit of piper's ``PiperVoice``.

``Voice.load`` checks the voice's files, builds its front-end and loads an engine
(``speech.engines``): by default the voice's ONNX exports through ONNX Runtime, without torch;
``engine="torch"`` builds its FastSpeech2 from ``config.yaml`` with ESPnet's own modules and
loads ``model.pth`` with ``weights_only=True``. The user's files are only read.
``voice.synthesize(text)`` then yields one ``AudioChunk`` per sentence or pause, with nothing
rebuilt between them.

How it is found and loaded is two typed objects (``speech.options``): ``FindOptions`` and
``LoadOptions``; ``Voice.load`` takes them, or the same settings as keyword arguments.
The vocoder's input and output scaling come from ``voice_files`` (upstream's numbers, or the
voice's ``lavanya.yaml``); ``Voice.load(mel_scale=..., pcm_scale=...)`` overrides both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LavanyaError
from ..limits import TEXT_AUDIO_MAX_SECONDS, checked_alpha
from ..modeltree.config import output_rate
from ..modeltree.layout import VoiceSpec, find_voice
from ..modeltree.weights import require_speakable
from .engines import Engine, load_engine
from .options import AUTO, FindOptions, LoadOptions
from .voice_files import DEFAULT_PCM_SCALE, check_voice_files, voice_scales

if TYPE_CHECKING:
    from ..frontend import Frontend, Silence, Speech



# The first sentence's first audio is vocoded on its own, this many mel frames of it (0.37 s at
# 22,050 Hz, hop 256): a stream's first bytes wait for that, not the whole sentence (``stream``).
FIRST_PIECE_FRAMES = 32


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
    continued: bool = False  # the rest of the sentence before (``Voice.stream``): speech, with no text

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def is_silence(self) -> bool:
        return not self.text and not self.continued

    def to_int16(self) -> np.ndarray:
        """16-bit PCM as upstream writes it (``audio * pcm_scale``), clipped instead of wrapping."""
        return np.clip(self.samples * self.pcm_scale, -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class Utterance:
    """A planned piece of speech: the sentence, its model input and its rate; or a pause; or a
    sentence left out (``left_out``: nothing in it can be spoken), kept for its report and
    rendered as nothing."""

    text: str = ""
    model_input: str = ""
    alpha: float = 1.0
    unpronounced: tuple[str, ...] = ()  # words left out
    problems: tuple[str, ...] = ()  # each word left out, spelled or spoken incompletely, and why, one line each
    silence_seconds: float = 0.0
    incomplete: tuple[str, ...] = ()  # words spoken without some of their letters
    spelled: tuple[str, ...] = ()  # Latin-script words no dictionary knows, spoken letter by letter
    left_out: str = ""  # the sentence as written, when none of it can be spoken


def find_usable_voice(language: str, gender: str, find: FindOptions = FindOptions()) -> tuple[VoiceSpec, tuple[str, ...]]:
    """The voice synthesis would load, and why voices in earlier candidate roots were passed
    over: the first root whose voice has real weights (not LFS pointers) or is a deploy root's
    export. Reads no weights."""
    passed_over: list[str] = []
    spec = find_voice(language, gender, find.variant, find.models, vocoder=find.vocoder, require=require_speakable,
                      passed_over=passed_over)
    return spec, tuple(passed_over)


class Voice:
    """A loaded voice. Build it with ``Voice.load``; ``synthesize`` as often as needed."""

    def __init__(self, spec: VoiceSpec, config: dict[str, Any], engine: Engine, frontend: "Frontend", *,
                 device: str, alpha: float, mel_scale: float, pcm_scale: float):
        self.spec = spec
        self.config = config
        self.sample_rate = output_rate(config)
        self.hop_length = int((config.get("feats_extract_conf") or {}).get("hop_length", 256))
        self.device = device
        self.alpha = alpha
        self.mel_scale = mel_scale
        self.pcm_scale = pcm_scale
        self.frontend = frontend
        self.backend = engine  # the engine speaking (``engine`` is its name)
        self.engine = engine.name
        # Why voices in earlier candidate roots were passed over (LFS pointers, no weights).
        self.passed_over: tuple[str, ...] = ()
        # What the user should know about the load (an export made on the way).
        self.notes: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        voice: VoiceSpec | str,
        gender: str | None = None,
        *,
        find: FindOptions | None = None,
        options: LoadOptions | None = None,
        models: Path | None = None,
        variant: str | None = None,
        vocoder: str | None = None,
        engine: str = AUTO,
        device: str = "cpu",
        threads: int | None = None,
        strict: bool = False,
        cache: Path | None = None,
        alpha: float = 1.0,
        mel_scale: float | None = None,
        pcm_scale: float | None = None,
    ) -> "Voice":
        """Load a voice by ``VoiceSpec`` or by ``language, gender``: the first candidate root
        (``models``, ``$LAVANYA_MODELS``, ``./Fastspeech2_HS``, the bundled tree) whose voice
        has real weights, so a real voice wins over the bundled demo.

        How it is found and loaded: ``find`` and ``options`` (``speech.options``), or the same
        settings as keyword arguments (``models``, ``variant``, ``vocoder``; ``engine``,
        ``device``, ``threads``, ``strict``, ``cache``), used where the object is not given.
        ``alpha`` is the default rate (higher is slower).
        """
        given = {"engine": engine != AUTO, "device": device != "cpu", "threads": threads is not None,
                 "strict": bool(strict), "cache": cache is not None, "models": models is not None,
                 "variant": variant is not None, "vocoder": vocoder is not None}
        _one_way(options, [name for name in ("engine", "device", "threads", "strict", "cache") if given[name]])
        _one_way(find, [name for name in ("models", "variant", "vocoder") if given[name]])
        if options is None:
            options = LoadOptions(engine=engine, device=device, threads=threads, strict=strict, cache=cache)
        passed_over: tuple[str, ...] = ()
        if isinstance(voice, VoiceSpec):
            spec = voice
        else:
            if gender is None:
                raise LavanyaError("Voice.load needs a gender with a language")
            find = find if find is not None else FindOptions(models=models, variant=variant, vocoder=vocoder)
            spec, passed_over = find_usable_voice(voice, gender, find)
        alpha = checked_alpha(alpha)
        config = check_voice_files(spec)
        mel_scale, pcm_scale = voice_scales(spec, mel_scale, pcm_scale)
        from ..frontend import Frontend

        frontend = Frontend.for_voice(spec, config, strict=options.strict, cache=options.cache)
        loaded_engine, notes = load_engine(spec, config, options)
        loaded = cls(spec, config, loaded_engine, frontend, device=options.device, alpha=alpha, mel_scale=mel_scale,
                     pcm_scale=pcm_scale)
        loaded.passed_over = passed_over
        loaded.notes = tuple(notes)
        return loaded

    # -- text to plan --------------------------------------------------------------------

    def plan(self, text: str, alpha: float | None = None, sentence_silence: float = 0.0) -> list[Utterance]:
        """Sentences (model input ready) and pauses, checked before any audio is made: a malformed
        tag, empty text, too many pauses, a text with nothing speakable in any sentence or (under
        ``strict``) a word not spoken as written fails here. A sentence with nothing speakable is
        left out (``Utterance.left_out``), its words reported, and the pause before it goes too.
        ``alpha`` and ``sentence_silence`` are checked here (``lavanya_cli.limits``' ranges)."""
        from ..frontend import segment_text

        alpha = None if alpha is None else checked_alpha(alpha)
        return self.plan_segments(segment_text(text, sentence_silence=sentence_silence), alpha)

    def plan_segments(self, segments: Iterable["Speech | Silence"], alpha: float | None = None) -> list[Utterance]:
        """``plan`` for text already cut by ``frontend.segment_text`` (a batch segments every
        text before any voice is loaded), with an ``alpha`` already checked where it entered."""
        from ..frontend import Silence

        base_alpha = self.alpha if alpha is None else alpha
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
                planned.append(Utterance(left_out=item.text, **report))
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
        return self._render(plan, streaming=False)

    def stream(self, plan: Iterable[Utterance]) -> Iterator[AudioChunk]:
        """``render``'s audio, the same samples, in the vocoder's pieces: the first sentence's
        first ``FIRST_PIECE_FRAMES`` of mel alone, then each vocoder window (``continued``
        chunks carry no text). A stream's first audio then waits for a fraction of the first
        sentence, not all of it."""
        return self._render(plan, streaming=True)

    def _render(self, plan: Iterable[Utterance], streaming: bool) -> Iterator[AudioChunk]:
        seconds, first = 0.0, True
        for utterance in plan:
            if utterance.left_out:
                continue  # nothing in it can be spoken; the plan keeps its report
            if utterance.text:
                # The first sentence is vocoded in the same pieces whether streamed or not, so a
                # stream's audio is render's to the sample.
                chunks = self._speak(utterance.model_input, utterance.alpha, text=utterance.text,
                                     unpronounced=list(utterance.unpronounced), incomplete=list(utterance.incomplete),
                                     first=FIRST_PIECE_FRAMES if first else None, apart=streaming)
                first = False
            else:
                samples = np.zeros(round(utterance.silence_seconds * self.sample_rate), dtype=np.float32)
                chunks = [AudioChunk(samples, self.sample_rate, pcm_scale=self.pcm_scale)]
            for chunk in chunks:
                seconds += chunk.seconds
                if seconds > TEXT_AUDIO_MAX_SECONDS:
                    raise LavanyaError(f"the text makes more than {TEXT_AUDIO_MAX_SECONDS / 3600:g} hours of audio, "
                                       "the most one text may; split it into several")
                yield chunk

    def speak(self, model_input: str, alpha: float | None = None, *, text: str = "",
              unpronounced: list[str] | None = None, incomplete: list[str] | None = None) -> AudioChunk:
        """Audio for one prepared model-input string (what ``lavanya text`` prints)."""
        (chunk,) = self._speak(model_input, self.alpha if alpha is None else checked_alpha(alpha), text=text,
                               unpronounced=unpronounced, incomplete=incomplete)
        return chunk

    def _speak(self, model_input: str, alpha: float, *, text: str = "", unpronounced: list[str] | None = None,
               incomplete: list[str] | None = None, first: int | None = None,
               apart: bool = False) -> Iterator[AudioChunk]:
        """The sentence's audio: one chunk, or (``apart``) one per piece the vocoder makes,
        ``first`` frames the first; the text and mel go with the first chunk."""
        mel = self.backend.mel(model_input, alpha)
        scaled = mel * np.float32(self.mel_scale)
        pieces = self.backend.audio_pieces(scaled, first) if apart else [self.backend.audio(scaled, first)]
        for index, samples in enumerate(pieces):
            yield AudioChunk(samples=samples, sample_rate=self.sample_rate, pcm_scale=self.pcm_scale,
                             **(dict(text=text or model_input, model_input=model_input, unpronounced=unpronounced or [],
                                     incomplete=incomplete or [], mel=mel) if index == 0 else {"continued": True}))


def _one_way(given: object, keywords: list[str]) -> None:
    """Refuse settings given both in an options object and as keyword arguments: one would be
    ignored."""
    if given is not None and keywords:
        raise LavanyaError(f"Voice.load got {type(given).__name__} and {', '.join(keywords)} too; give "
                           f"{', '.join(keywords)} in the {type(given).__name__}")


__all__ = ["AudioChunk", "Utterance", "Voice", "find_usable_voice"]
