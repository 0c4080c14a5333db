"""What a voice said, written out: one mono 16-bit PCM WAV, and a mel spectrogram picture.

Audio is written as it is made (``wav_output``): each sentence's samples go to the file and are
dropped, so memory stays flat however long the text. A file gets its exact sizes in the header
at the end; standard output, which cannot seek, gets a header for a stream of unknown length.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import LavanyaError, import_optional, one_line
from ..fileio import output_mode, replace_file, replacing
from .voice import AudioChunk

STDOUT = "-"  # an output that is standard output

# RIFF and data sizes of a stream whose length is not known when the header goes out: the
# largest 32-bit value, which players and decoders read as "until the end of the stream".
UNKNOWN_LENGTH = 0xFFFFFFFF
# The most sample bytes a WAV header can describe (its RIFF size, 36 + data, is 32-bit).
WAV_DATA_MAX = UNKNOWN_LENGTH - 36
# Mel frames a --plot keeps (about 20 minutes at 22050 Hz, hop 256; some 30 MB); a longer text
# is plotted up to there.
PLOT_MAX_FRAMES = 100_000


def join_pcm(chunks: Sequence[AudioChunk]) -> np.ndarray:
    """The chunks in order as one int16 signal."""
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([chunk.to_int16() for chunk in chunks])


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV holding ``data_bytes`` of samples; ``None``
    for a stream (a pipe, an HTTP response) whose length is unknown when it starts."""
    data = UNKNOWN_LENGTH if data_bytes is None else data_bytes
    riff = UNKNOWN_LENGTH if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


class WavWriter:
    """A WAV being written: the header first, then samples as they come. ``finish`` puts the
    exact sizes in the header when the handle can seek; a stream keeps "unknown length"."""

    def __init__(self, handle: BinaryIO, sample_rate: int, name: str, *, seekable: bool):
        self.handle = handle
        self.sample_rate = sample_rate
        self.name = name
        self.seekable = seekable
        self.data_bytes = 0
        self._put(wav_header(sample_rate, 0 if seekable else None))

    @property
    def seconds(self) -> float:
        return self.data_bytes / 2 / self.sample_rate

    def write(self, pcm: np.ndarray) -> None:
        """Append int16 samples."""
        data = np.asarray(pcm, dtype="<i2").tobytes()
        if self.data_bytes + len(data) > WAV_DATA_MAX:
            raise LavanyaError(f"{self.name}: more audio than a WAV file can hold (4 GiB); split the text")
        self._put(data)
        self.data_bytes += len(data)

    def finish(self) -> None:
        if self.seekable:
            self.handle.seek(0)
            self._put(wav_header(self.sample_rate, self.data_bytes))
            self.handle.seek(0, os.SEEK_END)
        try:
            self.handle.flush()
        except OSError as exc:
            raise self._failure(exc) from None

    def _put(self, data: bytes) -> None:
        try:
            self.handle.write(data)
        except OSError as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: OSError) -> LavanyaError:
        if isinstance(exc, BrokenPipeError):
            _silence_stdout()
            return LavanyaError(f"{self.name} was closed before the WAV was complete")
        return LavanyaError(f"{self.name}: cannot write the WAV ({one_line(exc)})")


@contextlib.contextmanager
def wav_output(target: str | Path, sample_rate: int) -> Iterator[WavWriter]:
    """A ``WavWriter`` on ``target``: a path, written through a temporary file renamed into place
    when the block ends (removed on any failure or interrupt, ``path`` untouched; permissions
    from ``fileio.output_mode``), or ``-`` for standard output."""
    if str(target) == STDOUT:
        writer = WavWriter(sys.stdout.buffer, sample_rate, "standard output", seekable=False)
        yield writer
        writer.finish()
        return
    path = Path(target)
    in_block = False
    try:
        with replacing(path, mode=output_mode(path)) as handle:
            writer = WavWriter(handle, sample_rate, str(path), seekable=True)
            in_block = True
            yield writer
            in_block = False
            writer.finish()
    except OSError as exc:
        if in_block:  # not ours: raised by the caller's code in the block
            raise
        raise LavanyaError(f"{path}: cannot write the WAV ({one_line(exc)})") from None


def write_wav(path: Path | str, pcm: np.ndarray, sample_rate: int) -> None:
    """Write one WAV (``-``: standard output); never a half-written file at ``path``."""
    with wav_output(path, sample_rate) as writer:
        writer.write(pcm)


def _silence_stdout() -> None:
    """After the reader of standard output went away, point it at /dev/null so that Python's
    flush at exit does not print a second, unhelpful error."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class MelRecorder:
    """The mel frames of what was spoken, for ``--plot``, up to ``PLOT_MAX_FRAMES``; a pause is
    kept as its length only. Fed chunk by chunk, so the audio itself is never held."""

    def __init__(self, hop_length: int):
        self.hop_length = hop_length
        self.columns: list[np.ndarray | int] = []  # a mel [frames, bins], or a pause's frame count
        self.frames = 0
        self.sample_rate = 0
        self.truncated = False

    def add(self, chunk: AudioChunk) -> None:
        self.sample_rate = chunk.sample_rate
        wanted = len(chunk.mel) if chunk.mel is not None else round(len(chunk.samples) / self.hop_length)
        frames = min(wanted, PLOT_MAX_FRAMES - self.frames)
        self.truncated |= frames < wanted
        if frames > 0:
            self.columns.append(chunk.mel[:frames] if chunk.mel is not None else frames)
            self.frames += frames

    def save(self, path: Path) -> None:
        """A PNG of the mel spectrogram the vocoder was given, pauses shown as blank stretches."""
        mels = [column for column in self.columns if not isinstance(column, int)]
        if not mels:
            raise LavanyaError(f"{path}: nothing was spoken, so there is no spectrogram to plot")
        matplotlib = import_optional("matplotlib")
        matplotlib.use("Agg")
        from matplotlib import pyplot

        floor = float(min(mel.min() for mel in mels))
        spectrogram = np.concatenate([
            column if not isinstance(column, int) else np.full((column, mels[0].shape[1]), floor)
            for column in self.columns
        ]).T
        seconds = spectrogram.shape[1] * self.hop_length / self.sample_rate
        figure, axes = pyplot.subplots(figsize=(max(6.0, min(24.0, seconds * 2)), 3.5))
        image = axes.imshow(spectrogram, origin="lower", aspect="auto", interpolation="none",
                            extent=(0, seconds, 0, spectrogram.shape[0]))
        axes.set_xlabel("seconds" + (f" (the first {seconds:.0f} s only)" if self.truncated else ""))
        axes.set_ylabel("mel bin")
        figure.colorbar(image, ax=axes, label="log mel")
        figure.tight_layout()
        try:
            replace_file(Path(path), lambda handle: figure.savefig(handle, format="png", dpi=100),
                         mode=output_mode(Path(path)))
        except OSError as exc:
            raise LavanyaError(f"{path}: cannot write the plot ({one_line(exc)})") from None
        finally:
            pyplot.close(figure)
