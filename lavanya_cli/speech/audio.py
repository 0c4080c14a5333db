"""What a voice said, written out: one mono 16-bit PCM WAV, and a mel spectrogram picture."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..fileio import replace_file
from ..errors import LavanyaError
from .voice import AudioChunk


def join_pcm(chunks: Sequence[AudioChunk]) -> np.ndarray:
    """The chunks in order as one int16 signal."""
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([chunk.to_int16() for chunk in chunks])


# RIFF and data sizes of a stream whose length is not known when the header goes out: the
# largest 32-bit value, which players and decoders read as "until the end of the stream".
UNKNOWN_LENGTH = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV holding ``data_bytes`` of samples; ``None``
    for a stream (a pipe, an HTTP response) whose length is unknown when it starts."""
    data = UNKNOWN_LENGTH if data_bytes is None else data_bytes
    riff = UNKNOWN_LENGTH if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data))


def wav_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    """A complete mono 16-bit PCM WAV file in memory."""
    samples = np.asarray(pcm, dtype="<i2").tobytes()
    return wav_header(sample_rate, len(samples)) + samples


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    """Write the WAV through a temporary file and a rename: never a half-written file at ``path``."""
    data = wav_bytes(pcm, sample_rate)
    try:
        replace_file(Path(path), lambda handle: handle.write(data))
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot write the WAV ({exc.strerror or exc})") from None


def save_mel_plot(chunks: Sequence[AudioChunk], hop_length: int, path: Path) -> None:
    """A PNG of the mel spectrogram the vocoder was given, pauses shown as blank stretches."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    mels = [chunk.mel for chunk in chunks if chunk.mel is not None]
    if not mels:
        raise LavanyaError(f"{path}: nothing was spoken, so there is no spectrogram to plot")
    floor = float(min(mel.min() for mel in mels))
    columns = []
    for chunk in chunks:
        if chunk.mel is not None:
            columns.append(chunk.mel)
        else:
            columns.append(np.full((round(len(chunk.samples) / hop_length), mels[0].shape[1]), floor))
    spectrogram = np.concatenate(columns).T
    seconds = spectrogram.shape[1] * hop_length / chunks[0].sample_rate
    figure, axes = pyplot.subplots(figsize=(max(6.0, min(24.0, seconds * 2)), 3.5))
    image = axes.imshow(spectrogram, origin="lower", aspect="auto", interpolation="none",
                        extent=(0, seconds, 0, spectrogram.shape[0]))
    axes.set_xlabel("seconds")
    axes.set_ylabel("mel bin")
    figure.colorbar(image, ax=axes, label="log mel")
    figure.tight_layout()
    try:
        replace_file(Path(path), lambda handle: figure.savefig(handle, format="png", dpi=100))
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        pyplot.close(figure)
