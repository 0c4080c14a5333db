"""A voice's exported graphs spoken through ONNX Runtime or OpenVINO, with numpy around them.

Never imports torch or ESPnet (``tests/test_onnx_engine.py`` checks ``sys.modules`` in a fresh
process): this is the everyday synthesis path for machines that should not carry torch.

The acoustic model is split at the length regulator (``lavanya_cli.speech.export``):

* encoder graph: token ids -> per-token hidden states (pitch and energy embeddings added) and
  predicted log-durations; ESPnet's ``eos`` is appended inside the graph;
* numpy: durations rounded, scaled by ``alpha`` and repeated exactly as ESPnet's
  ``DurationPredictor.inference`` and ``LengthRegulator`` do (``regulate_lengths``);
* decoder graph: frame-level hidden states -> normalised mel after the postnet;
* numpy: ``GlobalMVN.inverse`` from the voice's ``feats_stats.npz`` (``MelDenormalizer``).

``OnnxAcoustic.mel`` returns what ``AcousticModel.__call__`` returns (denormalised log-mel,
``[frames, n_mels]``); ``OnnxVocoder.audio`` takes that layout (times the voice's mel scale).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LavanyaError, one_line
from ..limits import available_cpus, checked_frames
from ..modeltree.config import read_config
from ..modeltree.layout import VoiceSpec
from .export_store import DECODER_NAME, ENCODER_NAME, GENERATOR_NAME, Export, find_exports
from .tokens import Tokenizer

ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
RUNTIMES = (ONNXRUNTIME, OPENVINO)
AUTO = "auto"
F32 = "f32"
BF16 = "bf16"


# -- the numpy pieces ---------------------------------------------------------------------

def durations_from_log(log_durations: np.ndarray, offset: float = 1.0) -> np.ndarray:
    """``DurationPredictor.inference``: ``clamp(round(exp(d) - offset), min=0)`` in float32, as
    int64 (rounding half to even, as ``torch.round``). The exponential is taken in float64 and
    rounded to float32: numpy's own float32 ``exp`` is off by an ulp often enough to move a
    duration that sits at a half frame, while this agreed with torch's on 600,000 values,
    half-frame points included."""
    exponential = np.exp(np.asarray(log_durations, dtype=np.float32).astype(np.float64)).astype(np.float32)
    linear = exponential - np.float32(offset)
    return np.maximum(np.round(linear), 0).astype(np.int64)


def scaled_durations(durations: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``LengthRegulator``'s durations: ``alpha`` != 1 rescales them (``round(d * alpha)`` in
    float32); where every duration is zero, each token gets one frame, as ESPnet does."""
    if alpha != 1.0:
        if not alpha > 0:
            raise LavanyaError(f"alpha must be above 0, not {alpha}")
        durations = np.round(durations.astype(np.float32) * np.float32(alpha)).astype(np.int64)
    if durations.sum() == 0:
        durations = np.ones_like(durations)
    return durations


def regulate_lengths(hidden: np.ndarray, durations: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``LengthRegulator``: each token's hidden state repeated for its (scaled) frames."""
    return np.repeat(hidden, scaled_durations(durations, alpha), axis=0)


class MelDenormalizer:
    """``GlobalMVN.inverse`` with the statistics and options ESPnet's ``GlobalMVN`` would use:
    mean and std computed as it computes them (float64 from an int64 count), then float32."""

    def __init__(self, stats: Mapping[str, np.ndarray], norm_means: bool = True, norm_vars: bool = True,
                 eps: float = 1.0e-20):
        count = stats["count"]
        mean = stats["sum"] / count
        var = stats["sum_square"] / count - mean * mean
        std = np.sqrt(np.maximum(var, eps))
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.norm_means = bool(norm_means)
        self.norm_vars = bool(norm_vars)

    @classmethod
    def for_voice(cls, config: dict[str, Any], feats_stats: Path) -> "MelDenormalizer | None":
        """The voice's denormaliser (None where its config normalises nothing)."""
        if config.get("normalize") is None:
            return None
        from ..checks.stats import load_stats

        try:
            stats = load_stats(Path(feats_stats))
        except ValueError as exc:
            raise LavanyaError(f"{exc}; see lavanya verify") from None
        options = {k: v for k, v in (config.get("normalize_conf") or {}).items() if k != "stats_file"}
        unknown = set(options) - {"norm_means", "norm_vars", "eps"}
        if unknown:
            raise LavanyaError(f"normalize_conf has settings GlobalMVN does not take: {', '.join(sorted(unknown))}")
        return cls(stats, **options)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if self.norm_vars:
            frames = frames * self.std
        if self.norm_means:
            frames = frames + self.mean
        return frames


# -- runtimes -----------------------------------------------------------------------------

def _import_runtime(runtime: str):
    try:
        if runtime == ONNXRUNTIME:
            import onnxruntime
            return onnxruntime
        import openvino
        return openvino
    except ModuleNotFoundError:
        raise LavanyaError(f"the {runtime} engine needs {runtime}: python3 -m pip install {runtime}") from None


# ONNX Runtime session settings, chosen by measurement on the real-size voice (2 cores shared with
# other work, so only the memory figures are sharp; each variant in fresh processes, as lavanya
# bench --compare runs an engine): the CPU arena on and memory patterns off gave the lowest peak
# RSS, 356/360 MB for 1/5 sentences (arena on and patterns on 351/395, arena off 402/434 with
# patterns, 396/401 without: freed tensors stay in glibc's heap); patterns only pay for repeated
# shapes, and every sentence has its own. No spin-waiting: a spinning worker holds a core that
# another process needs, and spinning gave no measurable gain idle (warm RTF 1.37 vs 1.20, within
# noise).
ORT_SESSION_DEFAULTS = {"spinning": False, "arena": True, "memory_pattern": False}


def default_ort_threads() -> int:
    """Intra-op threads where none are asked for: a few more than the CPUs. ONNX Runtime splits
    each operator's work evenly among its threads, so a thread whose core another process keeps
    busy holds back every operator: on 2 cores with one busy, the real-size vocoder took 1.93x
    its idle time with 2 threads and 1.49x with 4, which cost 3% idle (the scheduler moves the
    extra threads to the free core)."""
    cpus = available_cpus()
    return cpus + min(cpus, 4)


class OrtRunner:
    """One graph in an ONNX Runtime session on the CPU (settings: ``ORT_SESSION_DEFAULTS``)."""

    def __init__(self, path: Path, threads: int | None = None, **settings: bool):
        ort = _import_runtime(ONNXRUNTIME)
        settings = {**ORT_SESSION_DEFAULTS, **settings}
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads or default_ort_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings["spinning"] else "0")
        options.enable_cpu_mem_arena = settings["arena"]
        options.enable_mem_pattern = settings["memory_pattern"]
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for a bad file
            raise LavanyaError(f"{path}: ONNX Runtime cannot load this graph ({one_line(exc, 300)}); "
                               "export the voice again") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self.input_names, inputs)))


@functools.cache
def openvino_bf16_supported() -> bool:
    """True where OpenVINO's CPU plugin computes in bfloat16 natively (AVX512-BF16 or AMX)."""
    ov = _import_runtime(OPENVINO)
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # a CPU plugin that cannot say: take f32
        return False


class OpenVinoRunner:
    """One graph compiled by OpenVINO for the CPU, at ``precision`` (``f32`` or ``bf16``)."""

    def __init__(self, path: Path, threads: int | None = None, precision: str = F32):
        ov = _import_runtime(OPENVINO)
        if precision not in (F32, BF16):
            raise LavanyaError(f"precision {precision!r}: use {F32} or {BF16}")
        # Unpinned threads: with another process busy on one of 2 cores, the vocoder took 1.87x
        # its idle time instead of 2.24x pinned (3% slower idle); OpenVINO keeps to one thread per
        # core whatever INFERENCE_NUM_THREADS asks beyond that.
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.model = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as exc:
            raise LavanyaError(f"{path}: OpenVINO cannot compile this graph ({one_line(exc, 300)}); "
                               "export the voice again") from None
        self.request = self.model.create_infer_request()

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        results = self.request.infer(list(inputs))
        return [np.asarray(results[output]) for output in self.model.outputs]


def make_runner(path: Path, runtime: str, threads: int | None, precision: str = F32):
    """A graph's runner on ``runtime`` (after ``resolve_runtime``)."""
    if runtime == ONNXRUNTIME:
        return OrtRunner(path, threads)
    return OpenVinoRunner(path, threads, precision)


# -- engines ------------------------------------------------------------------------------

class OnnxAcoustic:
    """Token ids to denormalised log-mel through the exported encoder and decoder graphs."""

    def __init__(self, encoder, decoder, denormalize: MelDenormalizer | None, duration_offset: float = 1.0):
        self.encoder = encoder
        self.decoder = decoder
        self.denormalize = denormalize
        self.duration_offset = duration_offset

    @classmethod
    def from_export(cls, export: Export, config: dict[str, Any], feats_stats: Path, *,
                    runtime: str = ONNXRUNTIME, threads: int | None = None, precision: str = F32) -> "OnnxAcoustic":
        graph = export.manifest.get("graph") or {}
        return cls(make_runner(export.file(ENCODER_NAME), runtime, threads, precision),
                   make_runner(export.file(DECODER_NAME), runtime, threads, precision),
                   MelDenormalizer.for_voice(config, feats_stats),
                   float(graph.get("duration_offset", 1.0)))

    def mel(self, token_ids: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """``[frames, n_mels]`` float32 log-mel for ``token_ids`` (without eos) at rate ``alpha``."""
        ids = np.ascontiguousarray(token_ids, dtype=np.int64).reshape(-1)
        hidden, log_durations = self.encoder(ids)
        durations = scaled_durations(durations_from_log(log_durations, self.duration_offset), alpha)
        checked_frames(float(durations.sum(dtype=np.float64)))  # before the expansion is made
        frames = np.repeat(hidden, durations, axis=0)
        (mel,) = self.decoder(np.ascontiguousarray(frames, dtype=np.float32))
        if self.denormalize is not None:
            mel = self.denormalize(mel)
        return np.asarray(mel, dtype=np.float32)


# Mel frames given to the vocoder graph at once (plus its context on either side). HiFi-GAN's
# activations grow with the input (over 350 MB for a 600-frame sentence on the 512-channel
# vocoder under ONNX Runtime); in windows the peak stays bounded whatever the sentence length.
# Chosen by measuring peak RSS and speed on the real-size voice: see ``OnnxVocoder``.
VOCODER_WINDOW_FRAMES = 256


class OnnxVocoder:
    """Mel ``[frames, n_mels]`` (already times the voice's mel scale) to float32 samples.

    An input longer than ``window_frames`` is vocoded window by window, each run given
    ``context_frames`` of mel on either side (HiFi-GAN's receptive field, computed at export)
    whose samples are then dropped: every kept sample sees the same mel as in one run over the
    whole input, so the audio is that run's (checked at export and in the tests), at a peak
    memory that no longer grows with the sentence. ``window_frames`` None: one run."""

    def __init__(self, generator, hop: int, context_frames: int, window_frames: int | None = VOCODER_WINDOW_FRAMES):
        self.generator = generator
        self.hop = hop
        self.context_frames = context_frames
        self.window_frames = window_frames

    @classmethod
    def from_export(cls, export: Export, *, runtime: str = ONNXRUNTIME, threads: int | None = None,
                    precision: str = F32, window_frames: int | None = VOCODER_WINDOW_FRAMES) -> "OnnxVocoder":
        graph = export.manifest.get("graph") or {}
        if not isinstance(graph.get("hop"), int) or not isinstance(graph.get("context_frames"), int):
            raise LavanyaError(f"{export.directory}: the export manifest lacks the vocoder's hop and context; "
                               "export the voice again")
        return cls(make_runner(export.file(GENERATOR_NAME), runtime, threads, precision), graph["hop"],
                   graph["context_frames"], window_frames)

    def _run(self, mel: np.ndarray) -> np.ndarray:
        (samples,) = self.generator(np.ascontiguousarray(mel.T[None]))
        return np.asarray(samples, dtype=np.float32).reshape(-1)

    def audio(self, mel: np.ndarray) -> np.ndarray:
        mel = np.asarray(mel, dtype=np.float32)
        frames, window, context = mel.shape[0], self.window_frames, self.context_frames
        if window is None or frames <= window + context:
            return self._run(mel)
        pieces = []
        for start in range(0, frames, window):
            stop = min(frames, start + window)
            low, high = max(0, start - context), min(frames, stop + context)
            samples = self._run(mel[low:high])
            pieces.append(samples[(start - low) * self.hop:(stop - low) * self.hop])
        return np.concatenate(pieces)


class OnnxVoiceEngines:
    """The tokenizer, acoustic engine and vocoder engine of one voice, from its exports; the
    interface ``speech.engines`` gives ``Voice`` (``name`` is the engine: ``onnx`` or ``openvino``)."""

    def __init__(self, tokenizer: Tokenizer, acoustic: OnnxAcoustic, vocoder: OnnxVocoder, runtime: str,
                 precision: str):
        self.tokenizer = tokenizer
        self.acoustic = acoustic
        self.vocoder = vocoder
        self.runtime = runtime
        self.precision = precision
        self.name = "onnx" if runtime == ONNXRUNTIME else "openvino"

    def mel(self, model_input: str, alpha: float = 1.0) -> np.ndarray:
        return self.acoustic.mel(self.tokenizer.ids(model_input), alpha)

    def audio(self, mel: np.ndarray) -> np.ndarray:
        return self.vocoder.audio(mel)


def resolve_runtime(runtime: str = AUTO, precision: str | None = None) -> tuple[str, str]:
    """The (runtime, precision) that ``runtime`` and ``precision`` (None: automatic) come to.

    ``auto`` is ONNX Runtime where it is installed, else OpenVINO: on the real-size voice ONNX
    Runtime peaked at 400 MB (OpenVINO 600-800 MB, over what a 512 MB host can give), with the
    same speech as torch. OpenVINO's automatic precision is bf16 (vocoder only, see
    ``load_engines``) where the CPU computes bfloat16 natively: about half the vocoder's time,
    and on the demo voice's held-out sentences 0.05 dB from f32 with a content ratio of 0.594
    against f32's 0.590, within the 0.6 aim (``scripts/onnx_precision.py``)."""
    if runtime == AUTO:
        runtime = ONNXRUNTIME if importlib.util.find_spec("onnxruntime") is not None else OPENVINO
    if runtime not in RUNTIMES:
        raise LavanyaError(f"unknown runtime {runtime!r}; known: {AUTO}, {', '.join(RUNTIMES)}")
    if precision is None:
        precision = BF16 if runtime == OPENVINO and openvino_bf16_supported() else F32
    if precision not in (F32, BF16):
        raise LavanyaError(f"precision {precision!r}: use {F32} or {BF16}")
    if precision == BF16 and runtime == ONNXRUNTIME:
        raise LavanyaError(f"the {ONNXRUNTIME} engine computes in {F32} only; {BF16} is for {OPENVINO}")
    if precision == BF16 and not openvino_bf16_supported():
        raise LavanyaError("this CPU has no bfloat16 support (OpenVINO lists no BF16 capability); use f32")
    return runtime, precision


def load_engines(spec: VoiceSpec, config: dict[str, Any] | None = None, *, runtime: str = AUTO,
                 threads: int | None = None, precision: str | None = None,
                 cache: Path | None = None) -> OnnxVoiceEngines:
    """The voice's exported graphs ready to speak: from its deploy root, or from the export
    cache where the export was made from the voice's current files. ``runtime`` and
    ``precision``: see ``resolve_runtime``.

    ``runtime`` is the vocoder's, over 90% of the work. The acoustic model runs through ONNX
    Runtime in f32 wherever it is installed: under OpenVINO it compiled 0.2 s slower and
    peaked 120 MB higher on the real-size voice for the same speed, and in bfloat16 it moved a
    duration by a frame in 11 of the demo voice's 20 held-out sentences
    (``scripts/onnx_precision.py``). Raises LavanyaError naming the command to run where there
    is no current export."""
    from ..frontend.kind import token_list

    config = read_config(spec.config_path) if config is None else config
    if threads is not None and threads < 1:
        raise LavanyaError(f"threads must be 1 or more, not {threads}")
    runtime, precision = resolve_runtime(runtime, precision)
    acoustic_export, vocoder_export = find_exports(spec, cache)
    tokenizer = Tokenizer.from_config(config, token_list(config, spec.model_dir))
    acoustic_runtime = ONNXRUNTIME if importlib.util.find_spec(ONNXRUNTIME) is not None else runtime
    acoustic = OnnxAcoustic.from_export(acoustic_export, config, spec.stats_path("feats"), runtime=acoustic_runtime,
                                        threads=threads, precision=F32)
    vocoder = OnnxVocoder.from_export(vocoder_export, runtime=runtime, threads=threads, precision=precision)
    return OnnxVoiceEngines(tokenizer, acoustic, vocoder, runtime, precision)


__all__ = ["OnnxAcoustic", "OnnxVocoder", "OnnxVoiceEngines", "MelDenormalizer", "load_engines",
           "resolve_runtime", "durations_from_log", "regulate_lengths", "openvino_bf16_supported"]
