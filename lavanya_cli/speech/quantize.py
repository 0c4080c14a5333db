"""The acoustic model's matrix weights in int8, served only where a guard hears it speak as f32.

An int8 export is made from the voice's f32 acoustic export, without torch: ONNX Runtime's
dynamic quantization (``onnx`` and ``onnxruntime``) stores every MatMul and Conv weight as
unsigned 8-bit per output channel and quantizes their inputs at run time; the result runs as
``DynamicQuantizeLinear``, ``MatMulInteger`` and ``ConvInteger``. Unsigned weights, because
ONNX Runtime's signed ``ConvInteger`` kernel ran the model at half the f32 speed where unsigned
ran it faster than f32 (docs/engines.md, "Precision"). The conv biases come out reshaped by a
node of constants alone, which ``graphs`` refuses in any graph (a runtime would compute it
while loading); they are folded into initializers here. The vocoder stays as it is.

The guard compares the int8 graphs with the f32 ones (ONNX against ONNX, no torch) on model
inputs made from the voice's own tokens (``export.check_sentences``, at ``GUARD_LENGTHS``):

* durations: the share of tokens whose rounded duration equals f32's (``DURATIONS_EQUAL_MIN``)
  and the total frames (within ``FRAMES_DIFFERENCE_MAX`` of f32's);
* mel: int8's decoder on int8's hidden states, regulated with f32's durations, against f32's
  mel (mean absolute log-mel difference, ``MEL_MEAN_ABS_MAX``);
* audio: both mels (``GUARD_AUDIO_FRAMES`` of each sentence's middle) through the voice's f32
  vocoder export, int8's waveform at least ``SNR_DB_MIN`` above its difference from f32's.

Where a figure fails, the refusal is recorded (so it is not measured again on every load) and
the f32 model is served with a note naming the figure. docs/engines.md has the figures.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LavanyaError, __version__, option
from ..limits import checked_number
from ..modeltree.config import read_config, token_list
from ..modeltree.layout import DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME, VoiceSpec
from . import export_store as store
from .export import ExportOutcome, check_sentences, describe_files, ensure_exports, snr_db, write_export_manifest
from .graphs import read_graph
from .onnx_engine import MelDenormalizer, OnnxVocoder, OrtRunner, durations_from_log, regulate_lengths
from .options import AUTO, F32, INT8
from .tokens import Tokenizer
from .voice_files import voice_scales

ACOUSTIC_GRAPHS = (ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME)
QUANTIZED_OPERATORS = ("MatMul", "Conv")
# Tokens per guard sentence: export's check lengths and one longer, so that int8's error is
# also measured over a long attention span.
GUARD_LENGTHS = (12, 48, 120, 240)
# The guard's bounds (docs/engines.md, "Precision", has the measurements behind them).
# Durations, over all the guard's tokens: int8 moves a duration that sits near a half frame by
# one frame (the trained demo voice: 8% of tokens, total frames 0.3% longer), which no one
# hears; more changed tokens or a longer or shorter whole is another rhythm.
DURATIONS_EQUAL_MIN = 0.8
FRAMES_DIFFERENCE_MAX = 0.02
# Mean absolute log-mel difference with f32's durations, the worst sentence: 2.5x the largest
# measured (the real-size voice 0.021, the demo voice 0.015); weights int8 cannot hold measure
# far above.
MEL_MEAN_ABS_MAX = 0.05
# Waveform SNR of int8's audio against f32's through the same vocoder, the worst sentence: the
# demo voice's trained HiFi-GAN gave 31 dB (a random-weight vocoder hears almost no difference).
SNR_DB_MIN = 20.0
# Mel frames of each guard sentence heard through the vocoder (from its middle): HiFi-GAN is
# most of the guard's time (the real-size one took 3.8 s for 486 frames on 2 cores).
GUARD_AUDIO_FRAMES = 128
ONNX_INSTALL = "python3 -m pip install 'onnx>=1.16'"


# -- making the int8 graphs -----------------------------------------------------------------

def require_onnx():
    """The ``onnx`` package (quantization reads and writes graphs through it; the light install
    lacks it): one line with the install command where it is missing."""
    try:
        import onnx
    except ModuleNotFoundError:
        raise LavanyaError(f"{option('precision')} {INT8} needs the onnx package to quantize the acoustic model "
                           f"(onnx is not installed): {ONNX_INSTALL}") from None
    return onnx


@contextlib.contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer advises "pre-processing" through the root logger, which would
    also set up logging for the whole process: meanwhile a handler keeps logging from being set
    up, and a filter on the root logger drops the quantizer's own records (records of other
    threads and loggers pass: a server's log stays on)."""
    root = logging.getLogger()
    silent = logging.NullHandler()
    root.addHandler(silent)
    root.addFilter(_not_from_quantizer)
    try:
        yield
    finally:
        root.removeFilter(_not_from_quantizer)
        root.removeHandler(silent)


def _not_from_quantizer(record: logging.LogRecord) -> bool:
    return "onnxruntime/quantization/" not in record.pathname.replace("\\", "/")


def quantize_graph(source: str | bytes, target: Path) -> None:
    """The f32 graph ``source`` (a checked ``Graph.source()``) with its MatMul and Conv weights
    in unsigned int8 per channel, written to ``target``; constant-only reshapes folded."""
    onnx = require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_model_from_string(source) if isinstance(source, bytes) else onnx.load(source)
    with _quiet_quantizer():
        quantize_dynamic(model, target, op_types_to_quantize=list(QUANTIZED_OPERATORS), per_channel=True,
                         weight_type=QuantType.QUInt8)
    quantized = onnx.load(target)
    _fold_constant_reshapes(quantized)
    onnx.save(quantized, target)


def _fold_constant_reshapes(model) -> None:
    """Each ``Reshape`` of an initializer (or an ``Identity`` of one, as shared weights are
    exported) by an initializer replaced by the reshaped initializer (ONNX's rule for a 0 in
    the shape: that dimension kept); initializers and aliases left unread dropped."""
    from onnx import numpy_helper

    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    constants = dict(initializers)  # a name and the initializer it holds
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and len(node.input) == 1 and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
        if node.op_type == "Reshape" and len(node.input) == 2 and all(name in constants for name in node.input):
            data = numpy_helper.to_array(constants[node.input[0]])
            shape = [data.shape[index] if size == 0 else int(size)
                     for index, size in enumerate(numpy_helper.to_array(constants[node.input[1]]))]
            folded = numpy_helper.from_array(data.reshape(shape), node.output[0])
            graph.initializer.append(folded)
            initializers[folded.name] = constants[folded.name] = folded
        else:
            kept.append(node)
    outputs = {output.name for output in graph.output}
    while True:  # an alias whose only reader was folded goes too
        read = {name for node in kept for name in node.input} | outputs
        unread_aliases = [node for node in kept if node.op_type == "Identity" and node.output[0] not in read]
        if not unread_aliases:
            break
        kept = [node for node in kept if node not in unread_aliases]
    unread = [tensor for tensor in graph.initializer if tensor.name not in read]
    del graph.node[:]
    graph.node.extend(kept)
    for tensor in unread:
        graph.initializer.remove(tensor)
    for stale in [value for value in graph.input if value.name not in read and value.name in initializers]:
        graph.input.remove(stale)


# -- the guard ------------------------------------------------------------------------------

@dataclass
class GuardFigures:
    """How the int8 graphs compared with the f32 ones on the guard's sentences."""

    sentences: int = 0
    tokens: list[int] = field(default_factory=list)
    durations_equal: int = 0  # tokens (with each sentence's eos) whose rounded duration equals f32's
    frames: int = 0  # f32's frames over all sentences, and int8's own
    int8_frames: int = 0
    mel_mean_abs_max: float = 0.0
    snr_db_min: float = math.inf

    @property
    def durations_equal_share(self) -> float:
        return self.durations_equal / max(sum(self.tokens) + self.sentences, 1)

    @property
    def frames_difference(self) -> float:
        return abs(self.int8_frames - self.frames) / max(self.frames, 1)

    def failure(self) -> str | None:
        """The first figure beyond its bound, in words (None: int8 passes)."""
        if self.durations_equal_share < DURATIONS_EQUAL_MIN:
            return (f"only {self.durations_equal_share:.0%} of token durations equal f32's "
                    f"(at least {DURATIONS_EQUAL_MIN:.0%})")
        if self.frames_difference > FRAMES_DIFFERENCE_MAX:
            return f"total frames {self.frames_difference:.1%} off f32's (at most {FRAMES_DIFFERENCE_MAX:.0%})"
        if self.mel_mean_abs_max > MEL_MEAN_ABS_MAX:
            return f"mel error {self.mel_mean_abs_max:.3g} log-mel (at most {MEL_MEAN_ABS_MAX:g})"
        if self.snr_db_min < SNR_DB_MIN:
            return f"audio {self.snr_db_min:.1f} dB SNR against f32's (at least {SNR_DB_MIN:g} dB)"
        return None

    def manifest_entry(self) -> dict[str, Any]:
        failure = self.failure()
        return {
            "passed": failure is None,
            "failed": failure,
            "note": None if failure is None else f"int8 acoustic model refused by its guard ({failure}); "
                                                 f"the {F32} acoustic model is served",
            "sentences": self.sentences,
            "tokens": self.tokens,
            "durations_equal": round(self.durations_equal_share, 4),
            "frames": self.frames,
            "int8_frames": self.int8_frames,
            "frames_difference": round(self.frames_difference, 4),
            "mel_mean_abs_max": round(self.mel_mean_abs_max, 5),
            "snr_db_min": None if math.isinf(self.snr_db_min) else round(self.snr_db_min, 2),
            "bounds": {"durations_equal_min": DURATIONS_EQUAL_MIN, "frames_difference_max": FRAMES_DIFFERENCE_MAX,
                       "mel_mean_abs_max": MEL_MEAN_ABS_MAX, "snr_db_min": SNR_DB_MIN},
        }


class _Acoustic:
    """An acoustic export's encoder and decoder, run whole (the guard's sentences are short)."""

    def __init__(self, directory: Path, files: dict[str, Any], threads: int | None):
        runners = []
        for name in ACOUSTIC_GRAPHS:
            with read_graph(directory / name, files[name]) as graph:
                runners.append(OrtRunner(graph, threads))
        self.encoder, self.decoder = runners

    def mel(self, hidden: np.ndarray, durations: np.ndarray) -> np.ndarray:
        (mel,) = self.decoder(np.ascontiguousarray(regulate_lengths(hidden, durations), dtype=np.float32))
        return np.asarray(mel, dtype=np.float32)


def guard_figures(spec: VoiceSpec, f32: store.Export, int8_directory: Path, int8_files: dict[str, Any],
                  vocoder: store.Export, threads: int | None = None) -> GuardFigures:
    """The int8 graphs in ``int8_directory`` (listed by ``int8_files``) against the f32 export
    ``f32``, heard through ``vocoder`` (see the module doc)."""
    config = read_config(spec.config_path)
    tokens = token_list(config, spec.model_dir) or []
    tokenizer = Tokenizer.from_config(config, tokens)
    offset = checked_number(f32.manifest["graph"].get("duration_offset", 1.0),
                            f"{f32.directory}: duration_offset", 0.0, 10.0)
    denormalize = MelDenormalizer.for_voice(config, spec.stats_path("feats")) or (lambda mel: mel)
    mel_scale = np.float32(voice_scales(spec)[0])
    reference = _Acoustic(f32.directory, f32.manifest["files"], threads)
    quantized = _Acoustic(int8_directory, int8_files, threads)
    speaker = OnnxVocoder.from_export(vocoder, threads=threads)
    figures = GuardFigures()
    for sentence in check_sentences(tokens, GUARD_LENGTHS):
        ids = tokenizer.ids(sentence)
        hidden, log_durations = reference.encoder(ids)
        int8_hidden, int8_log_durations = quantized.encoder(ids)
        durations = durations_from_log(log_durations, offset)
        int8_durations = durations_from_log(int8_log_durations, offset)
        mel = denormalize(reference.mel(hidden, durations))
        int8_mel = denormalize(quantized.mel(int8_hidden, durations))  # f32's durations: the same frames
        figures.sentences += 1
        figures.tokens.append(int(ids.size))
        figures.durations_equal += int(np.count_nonzero(durations == int8_durations))
        figures.frames += int(durations.sum())
        figures.int8_frames += int(int8_durations.sum())
        figures.mel_mean_abs_max = max(figures.mel_mean_abs_max, float(np.mean(np.abs(int8_mel - mel))))
        start = max(0, (len(mel) - GUARD_AUDIO_FRAMES) // 2)
        heard = slice(start, start + GUARD_AUDIO_FRAMES)
        figures.snr_db_min = min(figures.snr_db_min, snr_db(speaker.audio(mel[heard] * mel_scale),
                                                            speaker.audio(int8_mel[heard] * mel_scale)))
    return figures


# -- the int8 export ------------------------------------------------------------------------

def ensure_int8(spec: VoiceSpec, acoustic: store.Export, vocoder: store.Export, cache: Path | None = None,
                threads: int | None = None) -> tuple[store.Export, list[str]]:
    """The acoustic export to serve at int8, and ``[store.ACOUSTIC_INT8]`` where it was made now:
    the cache's int8 export of the f32 ``acoustic``, made (and guarded) where there is none;
    ``acoustic`` itself with the refusal and its note where the guard refused int8."""
    if acoustic.precision == INT8:
        return acoustic, []
    if acoustic.manifest.get("guard"):  # a deploy root written at int8 whose guard refused it
        return store.refused_int8(acoustic, acoustic.manifest["guard"]), []
    made = []
    int8 = store.find_int8_export(acoustic, vocoder, cache)
    if int8 is None:
        require_onnx()
        target = store.int8_directory(acoustic, vocoder, cache)
        store.writable_cache(target.parent.parent)
        try:
            store.write_atomically(target, lambda scratch: _fill_int8(scratch, spec, acoustic, vocoder, threads))
        except OSError as exc:  # a file where the cache keeps its exports, a full disk
            raise store.unwritable_cache(target.parent.parent, exc) from None
        int8 = store.Export(target, store.read_export_manifest(target), deployed=False)
        made.append(store.ACOUSTIC_INT8)
    if int8.manifest["guard"].get("passed") is not True:
        return store.refused_int8(acoustic, int8.manifest["guard"]), made
    return int8, made


def _fill_int8(scratch: Path, spec: VoiceSpec, acoustic: store.Export, vocoder: store.Export,
               threads: int | None) -> None:
    """Quantize ``acoustic``'s graphs into ``scratch`` and guard them; the manifest records the
    guard's figures, and lists the graphs only where it passed (a refusal keeps none)."""
    for name in ACOUSTIC_GRAPHS:
        with acoustic.read_graph(name) as graph:
            quantize_graph(graph.source(), scratch / name)
    files = describe_files(scratch, list(ACOUSTIC_GRAPHS))
    guard = guard_figures(spec, acoustic, scratch, files, vocoder, threads).manifest_entry()
    if not guard["passed"]:
        for name in ACOUSTIC_GRAPHS:
            (scratch / name).unlink()
        files = {}
    import onnx
    import onnxruntime

    write_export_manifest(scratch, {
        **{key: acoustic.manifest[key] for key in ("format", "kind", "name", "weights", "sources", "check")
           if key in acoustic.manifest},
        "files": files,
        "graph": {**acoustic.manifest["graph"], "precision": INT8,
                  "quantization": {"weights": "uint8", "per_channel": True, "operators": list(QUANTIZED_OPERATORS)}},
        "guard": guard,
        "quantized_from": store.int8_sources(acoustic, vocoder),
        "versions": {"lavanya": __version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


def ensure_int8_exports(spec: VoiceSpec, cache: Path | None = None, threads: int | None = None,
                        converter: str = AUTO) -> ExportOutcome:
    """``export.ensure_exports`` (made by ``converter`` where missing) with the acoustic export at
    int8 (``ensure_int8``): what ``lavanya export --precision int8`` makes and deploys."""
    outcome = ensure_exports(spec, cache, converter)
    acoustic, made = ensure_int8(spec, outcome.acoustic, outcome.vocoder, cache, threads)
    return ExportOutcome(acoustic, outcome.vocoder, [*outcome.made, *made], outcome.converters)


def make_missing_int8(spec: VoiceSpec, missing: store.MissingInt8Export, cache: Path | None = None,
                      threads: int | None = None) -> str:
    """The int8 export ``find_exports`` found missing, made now; the note for the user."""
    started = time.perf_counter()
    ensure_int8(spec, missing.acoustic, missing.vocoder, cache, threads)
    return (f"quantized {spec.name}'s acoustic model to int8 and checked it against {F32} in "
            f"{time.perf_counter() - started:.1f} s (cache: {store.cache_root(cache)}); later runs start from it")


__all__ = [
    "DURATIONS_EQUAL_MIN",
    "FRAMES_DIFFERENCE_MAX",
    "MEL_MEAN_ABS_MAX",
    "SNR_DB_MIN",
    "GuardFigures",
    "ensure_int8",
    "ensure_int8_exports",
    "guard_figures",
    "make_missing_int8",
    "quantize_graph",
    "require_onnx",
]
