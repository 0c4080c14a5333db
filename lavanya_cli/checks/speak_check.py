"""Speaking one short sentence through a voice and checking that what comes out can be speech.

Every other check compares files with each other; this one listens. A voice whose files all fit
can still be useless: an untrained or damaged duration predictor gives no frames (an empty or
tiny WAV), a vocoder from another voice or a wrong ``mel_scale`` gives silence or a square wave
at full scale. Three measures catch those without knowing the language:

* level: the RMS of the samples about their mean (a constant offset is silence to the ear),
  as written to the WAV, must reach ``SILENCE_DBFS``;
* clipping: at most ``CLIPPED_SHARE_MAX`` of the samples may sit at full scale (speech has
  peaks, never a quarter of its samples pinned to the rails);
* duration: between ``SECONDS_PER_TOKEN`` seconds per character of model input, a range wide
  around what real voices speak (docs/verify.md); far outside it the durations are broken.

The test sentence is the language's own words for one to five, read from the model root's
``numToText/<language>.csv`` (see ``sentence_for_language``): every language upstream ships has that
table, its words are in the language's phone dictionary or plain enough for the unified parser,
counting is neutral content, and five short words give a length the duration check can judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import LavanyaError
from ..frontend.characters import read_phone_dictionary
from ..modeltree.layout import VoiceSpec

if TYPE_CHECKING:
    from ..speech.options import LoadOptions

SILENCE_DBFS = -50.0
CLIP_LEVEL = 0.99
CLIPPED_SHARE_MAX = 0.25
SECONDS_PER_TOKEN = (0.02, 0.5)
TEST_NUMBERS = ("1", "2", "3", "4", "5")
# Words taken from the phone dictionary when the root has no number table for the language.
_DICTIONARY_WORDS = 5
_FULL_SCALE = 32768.0


@dataclass
class SpeakCheck:
    """What speaking the test sentence gave: the measures and, one line each, what is wrong.

    ``not_spoken`` says why nothing was spoken (no test sentence for the language); a check not spoken
    has no problems and is not ``ok``.
    """

    voice: str
    sentence: str | None = None
    model_input: str = ""
    seconds: float = 0.0
    level_dbfs: float | None = None
    clipped_share: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (what is wrong, the fix)
    not_spoken: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.not_spoken

    def summary(self) -> str:
        """One line: the sentence and the measures (or why nothing was spoken)."""
        if self.not_spoken:
            return self.not_spoken
        level = "no level" if self.level_dbfs is None else f"level {self.level_dbfs:.0f} dBFS"
        return (f"{self.sentence!r} spoken: {self.seconds:.2f} s for {len(self.model_input)} characters "
                f"of model input, {level}, {self.clipped_share:.0%} of samples at full scale")


def sentence_for_language(root: Path, language: str) -> str | None:
    """The language's words for one to five from ``numToText/<language>.csv``, else five short
    words of ``phone_dict/<language>``; None when the root has neither for the language."""
    from ..frontend.numbers import MissingNumberWord, NumberTable

    table_path = Path(root) / "numToText" / f"{language}.csv"
    if table_path.is_file():
        try:
            table = NumberTable.load(table_path)
            return " ".join(table.word(number) for number in TEST_NUMBERS)
        except (LavanyaError, MissingNumberWord):
            pass
    dictionary = Path(root) / "phone_dict" / language
    if dictionary.is_file():
        try:
            entries = read_phone_dictionary(dictionary)
        except LavanyaError:
            return None
        words = [word for word in entries if 2 <= len(word) <= 8 and word.isalpha()][:_DICTIONARY_WORDS]
        return " ".join(words) or None
    return None


def audio_problems(samples: np.ndarray, sample_rate: int,
                   characters: int) -> tuple[float | None, float, list[tuple[str, str]]]:
    """Level (dBFS, None for no samples), share of clipped samples and the problems (what is
    wrong, the fix) of audio whose ``samples`` are in WAV units (1.0 = full scale) for
    ``characters`` of model input."""
    problems = []
    seconds = len(samples) / sample_rate
    low, high = (characters * bound for bound in SECONDS_PER_TOKEN)
    if len(samples) and not np.isfinite(samples).all():
        return None, 0.0, [("the audio holds NaN or infinity: the weights are damaged",
                            "restore them from the voice's release")]
    level = None
    clipped = 0.0
    if len(samples):
        deviation = float(np.std(samples.astype(np.float64)))
        level = 20 * math.log10(deviation) if deviation > 0 else -math.inf
        clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
    if level is None or level < SILENCE_DBFS:
        shown = "no samples" if level is None else f"level {level:.0f} dBFS"
        problems.append((f"the test sentence came out silent ({shown}, below {SILENCE_DBFS:.0f} dBFS): the "
                         "vocoder does not fit these weights or mel_scale is wrong",
                         "check the vocoder with lavanya verify --deep and mel_scale in lavanya.yaml"))
    if clipped > CLIPPED_SHARE_MAX:
        problems.append((f"the test sentence is clipped throughout ({clipped:.0%} of samples at full scale)",
                         "lower mel_scale or pcm_scale in lavanya.yaml, or put the voice's own vocoder in place"))
    if not low <= seconds <= high:
        problems.append((f"the test sentence lasted {seconds:.2f} s for {characters} characters of model input "
                         f"(expected {low:.2f}-{high:.2f} s): the duration predictor is broken",
                         "these weights are untrained or damaged; restore the voice's released weights"))
    return level, clipped, problems


def speak_voice(voice: VoiceSpec, sentence: str | None = None, *,
                options: "LoadOptions | None" = None) -> SpeakCheck:
    """Load ``voice`` with ``options`` (default: ``auto``), speak ``sentence`` (default:
    ``sentence_for_language``) and check
    the audio. A voice that cannot be loaded or cannot pronounce the sentence is a problem too,
    so callers (``add-voice``, ``verify --speak``) get one answer per voice."""
    sentence = sentence or sentence_for_language(voice.root, voice.language)
    result = SpeakCheck(voice.name, sentence)
    if sentence is None:
        result.not_spoken = (f"no test sentence: the root has no numToText/{voice.language}.csv or "
                          f"phone_dict/{voice.language}")
        return result
    from ..speech.options import LoadOptions
    from ..speech.voice import Voice

    try:
        loaded = Voice.load(voice, options=options or LoadOptions())
        plan = loaded.plan(sentence)
        chunks = list(loaded.render(plan))
    except LavanyaError as exc:
        result.problems.append((f"the voice cannot speak: {exc.message}", "fix what the message names"))
        return result
    unpronounced = [problem for utterance in plan for problem in utterance.problems]
    if unpronounced:
        result.problems.append(("the front-end cannot pronounce the test sentence: " + "; ".join(unpronounced),
                                "give the voice the phone_dict and numToText files of its language"))
    spoken = [chunk for chunk in chunks if chunk.text]
    result.model_input = " ".join(chunk.model_input for chunk in spoken)
    samples = np.concatenate([chunk.samples * (chunk.pcm_scale / _FULL_SCALE) for chunk in spoken]) \
        if spoken else np.zeros(0, dtype=np.float32)
    result.seconds = len(samples) / loaded.sample_rate
    characters = sum(len(chunk.model_input) for chunk in spoken)
    result.level_dbfs, result.clipped_share, problems = audio_problems(samples, loaded.sample_rate, characters)
    result.problems += problems
    return result
