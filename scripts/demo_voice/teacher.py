"""eSpeak NG as the demo voice's teacher: audio plus the exact timing of every phoneme.

eSpeak NG comes from the ``espeakng-loader`` wheel (library and data, no system install) and is
driven through ctypes in synchronous mode with phoneme events switched on. Each phoneme event
carries the sample where the phoneme starts and the text offset of the word it belongs to, so
durations need no forced aligner.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phone:
    """One eSpeak phoneme: its mnemonic, first sample, and the 0-based text offset of its word."""

    name: str
    start: int
    text_position: int

    @property
    def is_pause(self) -> bool:
        return self.name.startswith("_")

    @property
    def is_marker(self) -> bool:
        """Language switches such as ``(en)`` take no time of their own worth keeping."""
        return self.name.startswith("(")


@dataclass(frozen=True)
class Rendering:
    audio: np.ndarray  # float32 in [-1, 1], SAMPLE_RATE
    phones: list[Phone]


class Teacher:
    """One eSpeak NG engine in synchronous mode; ``render(text)`` returns audio and phones."""

    def __init__(self, voice: str = "hi") -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data,
                                           _INITIALIZE_PHONEME_EVENTS)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"eSpeak NG initialised at {rate} Hz, expected {SAMPLE_RATE}")
        self._chunks: list[np.ndarray] = []
        self._phones: list[Phone] = []
        self._callback = _Callback(self._collect)  # kept alive as long as the engine
        self._lib.espeak_SetSynthCallback(self._callback)
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice!r}")

    def _collect(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                name = event.id.string.decode("ascii", "replace")
                self._phones.append(Phone(name, event.sample, event.text_position - 1))
            index += 1
        return 0

    def render(self, text: str) -> Rendering:
        self._chunks, self._phones = [], []
        data = text.encode("utf-8")
        self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Rendering(audio.astype(np.float32) / 32768.0, list(self._phones))
