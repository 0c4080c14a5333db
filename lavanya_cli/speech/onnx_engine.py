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
import os
import stat
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LavanyaError, missing_library, one_line
from ..fileio import cache_root, format_size, make_directories, stat_signature, time_saving_writes
from ..limits import available_cpus, checked_frames, checked_number
from ..modeltree.config import read_config, token_list
from ..modeltree.layout import (DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME, EXPORT_MANIFEST_NAME, GENERATOR_GRAPH_NAME,
                                VoiceSpec)
from .cancel import run_stoppable
from .export_store import Export, find_exports
from .graphs import Graph, check_generator_memory
from .options import ONNX, OPENVINO
from .tokens import SPACE, Tokenizer

# The runtimes' Python modules; the engine names (``options.ONNX``, ``options.OPENVINO``) say
# which runs the vocoder.
ORT_MODULE = "onnxruntime"
OPENVINO_MODULE = "openvino"
F32 = "f32"
BF16 = "bf16"


# -- the numpy pieces ---------------------------------------------------------------------

ABSURD_FRAMES = np.float32(2**31)


def durations_from_log(log_durations: np.ndarray, offset: float = 1.0) -> np.ndarray:
    """``DurationPredictor.inference``: ``clamp(round(exp(d) - offset), min=0)`` in float32, as
    int64 (rounding half to even, as ``torch.round``). The exponential is taken in float64 and
    rounded to float32: numpy's own float32 ``exp`` is off by an ulp often enough to move a
    duration that sits at a half frame, while this agrees with torch's, half-frame points
    included (docs/engines.md says on how many values)."""
    with np.errstate(over="ignore", invalid="ignore"):  # a damaged model's values: see below
        exponential = np.exp(np.asarray(log_durations, dtype=np.float32).astype(np.float64)).astype(np.float32)
        rounded = np.maximum(np.round(exponential - np.float32(offset)), 0)
    # An infinite, NaN or absurd duration becomes 2^31 frames (which the frame bound refuses)
    # rather than whatever its cast to int64 would give.
    return np.nan_to_num(np.minimum(rounded, ABSURD_FRAMES), nan=ABSURD_FRAMES).astype(np.int64)


def scaled_durations(durations: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``LengthRegulator``'s durations: ``alpha`` != 1 rescales them (``round(d * alpha)`` in
    float32); where every duration is zero, each token gets one frame, as ESPnet does."""
    if alpha != 1.0:  # checked where it entered (limits.ALPHA_RANGE)
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
        from ..modeltree.stats import load_stats

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

def import_runtime(module: str):
    """``onnxruntime`` or ``openvino``, imported with their telemetry off: ONNX Runtime would
    write a device id under ``~/.cache/Microsoft`` and send events to Microsoft, OpenVINO's
    ``openvino_telemetry`` writes ``~/intel`` and sends events to Google Analytics. lavanya
    promises no network at run time and a server that writes nothing, so ONNX Runtime is
    imported with ``ORT_DISABLE_TELEMETRY=1`` (read once, at its import) and OpenVINO without
    ``openvino_telemetry`` (its tools fall back to their own no-op stub). A process that
    imported ONNX Runtime before lavanya gets ``disable_telemetry_events()`` only."""
    try:
        if module == ORT_MODULE:
            os.environ["ORT_DISABLE_TELEMETRY"] = "1"
            import onnxruntime

            onnxruntime.disable_telemetry_events()
            onnxruntime.set_default_logger_severity(ORT_FATAL)  # its failures reach us as exceptions
            return onnxruntime
        sys.modules.setdefault("openvino_telemetry", None)
        import openvino
        return openvino
    except ModuleNotFoundError as exc:  # ONNX Runtime is no extra: the light install has it
        raise (missing_library(exc) or LavanyaError(f"this needs {module}, which is not installed: "
                                                    f"python3 -m pip install {module}")) from None


ORT_FATAL = 4  # ONNX Runtime's log severity: nothing but fatal errors on stderr

# ONNX Runtime session settings. No spin-waiting: a spinning worker holds a core that another
# process needs. Memory patterns off: they only pay for repeated shapes, and every sentence has
# its own. The CPU arena is one per process, shared by every session and capped
# (``ARENA_BYTES_PER_RUN`` for each synthesis that may run at once): sessions take turns with
# the same memory (a lower peak than an arena per session), and a graph that asks for more than
# the cap fails with an error instead of taking the machine's memory. Weights stay outside the
# arena. docs/engines.md has the measurements.
ORT_SESSION_DEFAULTS = {"spinning": False, "memory_pattern": False, "shared_arena": True}
# The arena one synthesis may fill: twice what the real-size voice's decoder at
# ``DECODER_FRAMES_MAX`` frames and its vocoder windows were measured to need.
ARENA_BYTES_PER_RUN = 256 << 20
_arena = {"runs": 1, "registered": False, "shared_threads": None}


def reserve_arena(runs: int) -> None:
    """Size ONNX Runtime's shared arena for ``runs`` syntheses at once (a server's workers);
    effective only before the first session is made in this process."""
    _arena["runs"] = max(1, int(runs))


def share_runtime_threads(threads: int) -> None:
    """Give every ONNX Runtime session of this process one pool of ``threads`` threads instead
    of a pool each (a server with 31 voices would otherwise start two pools per voice); effective
    only before the first session is made in this process."""
    _arena["shared_threads"] = max(1, int(threads))


def arena_bytes() -> int:
    """The cap on ONNX Runtime's shared arena in this process."""
    return ARENA_BYTES_PER_RUN * _arena["runs"]


def _register_arena(ort) -> None:
    if _arena["registered"]:
        return
    if _arena["shared_threads"] is not None:
        try:
            ort.capi._pybind_state.set_global_thread_pool_sizes(_arena["shared_threads"], 1)
        except Exception:  # the runtime was set up earlier in this process: sessions keep pools of their own
            _arena["shared_threads"] = None
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    # Extend by powers of two (0): regions are reused across sessions, which gave the lowest peak.
    config = ort.OrtArenaCfg(arena_bytes(), 0, -1, -1)
    try:
        ort.create_and_register_allocator(info, config)
    except Exception as exc:  # registered earlier by someone else in this process: use theirs
        if "already" not in str(exc).lower():
            raise LavanyaError(f"ONNX Runtime cannot set up its memory arena ({one_line(exc)})") from None
    _arena["registered"] = True


def default_ort_threads() -> int:
    """Intra-op threads where none are asked for: a few more than the CPUs. ONNX Runtime splits
    each operator's work evenly among its threads, so a thread whose core another process keeps
    busy holds back every operator; the extra threads let the scheduler move work to the free
    cores (docs/engines.md has the measurements)."""
    cpus = available_cpus()
    return cpus + min(cpus, 4)


class OrtRunner:
    """One checked graph (``graphs.Graph``) in an ONNX Runtime session on the CPU."""

    def __init__(self, graph: Graph, threads: int | None = None, **settings: bool):
        ort = import_runtime(ORT_MODULE)
        settings = {**ORT_SESSION_DEFAULTS, **settings}
        if settings["shared_arena"]:
            _register_arena(ort)
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if settings["shared_arena"] and _arena["shared_threads"] is not None:
            options.use_per_session_threads = False  # the process's one pool (share_runtime_threads)
        else:
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = threads or default_ort_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings["spinning"] else "0")
        if settings["shared_arena"]:
            options.add_session_config_entry("session.use_env_allocators", "1")
            options.add_session_config_entry("session.use_device_allocator_for_initializers", "1")
        options.enable_mem_pattern = settings["memory_pattern"]
        options.log_severity_level = ORT_FATAL
        self.path = graph.path
        try:
            # No constant folding: it would compute while loading, outside the arena (the graph
            # check refuses nodes made of constants alone; lavanya's exports are folded already).
            self.session = run_stoppable(
                lambda: ort.InferenceSession(graph.source(), options, providers=["CPUExecutionProvider"],
                                             disabled_optimizers=["ConstantFolding"]), _nothing)
        except Exception as exc:  # ORT raises its own exception types for a bad file
            raise LavanyaError(f"{graph.path}: ONNX Runtime cannot load this graph ({one_line(exc, 300)}); "
                               "export the voice again") from None
        graph.unchanged()
        if getattr(self.session, "_model_bytes", None) is not None:
            # Given bytes (where there is no /proc), ONNX Runtime's Python session keeps them for
            # a reset lavanya never asks for: the size of the graph, held for nothing.
            self.session._model_bytes = None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._ort = ort

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        options = self._ort.RunOptions()
        options.log_severity_level = ORT_FATAL
        feeds = dict(zip(self.input_names, inputs))
        try:
            return run_stoppable(lambda: self.session.run(None, feeds, options),
                                 lambda: setattr(options, "terminate", True))
        except LavanyaError:
            raise
        except Exception as exc:
            reason = one_line(exc, 300)
            if "BFCArena" in str(exc):
                reason = (f"it asked for more memory than the {format_size(arena_bytes())} ONNX Runtime may use "
                          "here; no graph lavanya exports does")
            raise LavanyaError(f"{self.path}: ONNX Runtime failed running this graph ({reason}); "
                               "export the voice again") from None


def _nothing() -> None:
    """Making a session cannot be stopped; a signal still ends the command (see ``cancel``)."""


@functools.cache
def openvino_bf16_supported() -> bool:
    """True where OpenVINO's CPU plugin computes in bfloat16 natively (AVX512-BF16 or AMX)."""
    ov = import_runtime(OPENVINO_MODULE)
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # a CPU plugin that cannot say: take f32
        return False


# OpenVINO's compiled graphs kept in the cache (its CACHE_DIR, under this name): a start then
# loads the compiled vocoder instead of compiling it, in about half the time (docs/engines.md).
# Each is about the size of its graph (54 MB for the 512-channel HiFi-GAN); before a compile
# the newest ``COMPILED_KEPT`` are kept (by when they were compiled).
COMPILED_DIRECTORY = "openvino"
COMPILED_KEPT = 4
COMPILED_SUFFIX = ".blob"


def compiled_model_cache(cache: Path | None) -> Path | None:
    """The directory OpenVINO keeps its compiled graphs in, made where missing and pruned to the
    newest ``COMPILED_KEPT`` (a file in it that is not this user's, or that others could write,
    is removed); None where this process writes no such cache (a server), where it cannot be
    written, or where it is not a directory of this user's that no one else can write. OpenVINO
    loads what it finds there unchecked, so it is trusted as far as the user's own files and no
    further (a parent directory others can write is the user's to fix, as for any of their files)."""
    if not time_saving_writes():  # OpenVINO would write into it: a server compiles at start
        return None
    directory = cache_root(cache) / COMPILED_DIRECTORY
    try:
        make_directories(directory)
        status = os.lstat(directory)
    except OSError:
        return None
    if (not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o022
            or not os.access(directory, os.W_OK)):
        return None
    try:
        compiled = []
        for entry in os.scandir(directory):
            if not entry.name.endswith(COMPILED_SUFFIX):
                continue
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022:
                compiled.append((info.st_mtime_ns, entry.path))
            else:  # not one this user's OpenVINO wrote, or others could change it: not loaded
                os.unlink(entry.path)
        for _, path in sorted(compiled, reverse=True)[COMPILED_KEPT:]:
            os.unlink(path)
    except OSError:  # another process pruned it first
        pass
    return directory


class OpenVinoRunner:
    """One checked graph compiled by OpenVINO for the CPU, at ``precision`` (``f32`` or
    ``bf16``), the compiled graph kept in ``compiled_cache`` (``compiled_model_cache``; None:
    compiled at every start); a run can be cancelled from another thread (``cancel``)."""

    def __init__(self, graph: Graph, threads: int | None = None, precision: str = F32,
                 compiled_cache: Path | None = None):
        ov = import_runtime(OPENVINO_MODULE)
        if precision not in (F32, BF16):
            raise LavanyaError(f"precision {precision!r}: use {F32} or {BF16}")
        # Unpinned threads: with another process busy on one of 2 cores the vocoder held up
        # better than pinned (docs/engines.md); OpenVINO keeps to one thread per core whatever
        # INFERENCE_NUM_THREADS asks beyond that.
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        self.path = graph.path
        core = ov.Core()
        if compiled_cache is not None:
            # Keyed by OpenVINO's digest of the graph read (its content, not its path), the
            # settings and OpenVINO's version: another graph or version compiles anew.
            core.set_property({"CACHE_DIR": str(compiled_cache)})
        try:
            self.model = run_stoppable(lambda: core.compile_model(core.read_model(graph.source()), "CPU", config),
                                       _nothing)
        except Exception as exc:
            raise LavanyaError(f"{graph.path}: OpenVINO cannot compile this graph ({one_line(exc, 300)}); "
                               "export the voice again") from None
        graph.unchanged()
        self.outputs = len(self.model.outputs)
        self._requests = threading.local()  # an infer request per thread: a server's workers share the voice

    def _request(self):
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.model.create_infer_request()
        return request

    def _run(self, request, inputs: list[np.ndarray]) -> list[np.ndarray]:
        request.start_async(inputs)
        request.wait()
        return [np.array(request.get_output_tensor(index).data) for index in range(self.outputs)]

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        request = self._request()
        try:
            return run_stoppable(lambda: self._run(request, list(inputs)), request.cancel)
        except LavanyaError:
            raise
        except Exception as exc:
            raise LavanyaError(f"{self.path}: OpenVINO failed running this graph ({one_line(exc, 300)}); "
                               "export the voice again") from None


def make_runner(graph: Graph, engine: str, threads: int | None, precision: str = F32,
                compiled_cache: Path | None = None):
    """A graph's runner for ``engine`` (``onnx``: ONNX Runtime; ``openvino``, its compiled graph
    kept in ``compiled_cache``), in ``precision`` (after ``resolve_precision``)."""
    if engine == ONNX:
        return OrtRunner(graph, threads)
    return OpenVinoRunner(graph, threads, precision, compiled_cache)


# -- engines ------------------------------------------------------------------------------

# Tokens the encoder and mel frames the decoder are given at once. Their self-attention grows
# with the square of the length, so one long sentence (spelled-out words make them) once took a
# server to several times its usual memory; a longer sentence is encoded and decoded in pieces
# cut between words (at a space token, where a listener expects a pause). Shorter ones, about 11.6 s of speech at
# 22,050 Hz, go through whole, as every sentence once did (docs/engines.md has the figures).
ENCODER_TOKENS_MAX = 1000
DECODER_FRAMES_MAX = 1000
# Bounds on the hidden states' width and the mel's bins (every published voice: 384 and 80).
ADIM_MAX = 2048
N_MELS_MAX = 512


def pieces(length: int, cuts: np.ndarray, limit: int | None,
           fallback: np.ndarray | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``0..length``, each at most ``limit`` long and ending at
    the last of ``cuts`` that fits (else the last of ``fallback``, else at ``limit``); one range
    where ``limit`` is None or not exceeded."""
    ranges, start = [], 0
    while limit is not None and length - start > limit:
        stop = start + limit
        for candidates in (cuts, fallback):
            if candidates is None:
                continue
            fitting = candidates[(candidates > start) & (candidates <= start + limit)]
            if fitting.size:
                stop = int(fitting[-1])
                break
        ranges.append((start, stop))
        start = stop
    ranges.append((start, length))
    return ranges


class OnnxAcoustic:
    """Token ids to denormalised log-mel through the exported encoder and decoder graphs.

    A sentence longer than ``encoder_tokens`` tokens or ``decoder_frames`` frames is computed in
    pieces cut after a space (``space_id``), so that memory stays bounded whatever the text; None
    computes it whole (the export check compares whole sentences with torch)."""

    def __init__(self, encoder, decoder, denormalize: MelDenormalizer | None, duration_offset: float = 1.0,
                 space_id: int | None = None, encoder_tokens: int | None = ENCODER_TOKENS_MAX,
                 decoder_frames: int | None = DECODER_FRAMES_MAX, adim: int | None = None, n_mels: int | None = None):
        self.encoder = encoder
        self.decoder = decoder
        self.denormalize = denormalize
        self.duration_offset = duration_offset
        self.space_id = space_id
        self.encoder_tokens = encoder_tokens
        self.decoder_frames = decoder_frames
        self.adim = adim  # the hidden states' width and the mel's bins, where the export says
        self.n_mels = n_mels

    @classmethod
    def from_export(cls, export: Export, config: dict[str, Any], feats_stats: Path, *, space_id: int | None = None,
                    engine: str = ONNX, threads: int | None = None, precision: str = F32) -> "OnnxAcoustic":
        graph = export.manifest["graph"]
        where = export.directory / EXPORT_MANIFEST_NAME
        offset = checked_number(graph.get("duration_offset", 1.0), f"{where}: duration_offset", 0.0, 10.0)
        adim = _manifest_size(graph, "adim", ADIM_MAX, where)
        n_mels = _manifest_size(graph, "n_mels", N_MELS_MAX, where)
        with export.read_graph(ENCODER_GRAPH_NAME) as encoder:
            encoder_runner = make_runner(encoder, engine, threads, precision)
        with export.read_graph(DECODER_GRAPH_NAME) as decoder:
            decoder_runner = make_runner(decoder, engine, threads, precision)
        return cls(encoder_runner, decoder_runner, MelDenormalizer.for_voice(config, feats_stats), offset, space_id,
                   adim=adim, n_mels=n_mels)

    def mel(self, token_ids: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """``[frames, n_mels]`` float32 log-mel for ``token_ids`` (without eos) at rate ``alpha``."""
        ids = np.ascontiguousarray(token_ids, dtype=np.int64).reshape(-1)
        is_space = ids == self.space_id if self.space_id is not None else np.zeros(ids.size, dtype=bool)
        hidden, log_durations = [], []
        encoded = pieces(ids.size, np.flatnonzero(is_space) + 1, self.encoder_tokens)
        for index, (start, stop) in enumerate(encoded):
            piece_hidden, piece_log_durations = self.encoder(ids[start:stop])  # eos appended in the graph
            _expect(piece_hidden, (stop - start + 1, self.adim), ADIM_MAX, self.encoder, "hidden states")
            _expect(piece_log_durations, (stop - start + 1,), 0, self.encoder, "durations")
            keep = len(piece_hidden) if index == len(encoded) - 1 else stop - start  # one eos: the sentence's
            hidden.append(piece_hidden[:keep])
            log_durations.append(piece_log_durations[:keep])
        durations = scaled_durations(durations_from_log(np.concatenate(log_durations), self.duration_offset), alpha)
        checked_frames(float(durations.sum(dtype=np.float64)))  # before the expansion is made
        frames = np.ascontiguousarray(np.repeat(np.concatenate(hidden), durations, axis=0), dtype=np.float32)
        token_ends = np.cumsum(durations)
        word_ends = token_ends[np.flatnonzero(is_space)]  # rows are the tokens, then the one eos
        mels = []
        for start, stop in pieces(frames.shape[0], word_ends, self.decoder_frames, token_ends):
            (piece_mel,) = self.decoder(frames[start:stop])
            mels.append(_expect(piece_mel, (stop - start, self.n_mels), N_MELS_MAX, self.decoder, "mel"))
        mel = np.concatenate(mels) if len(mels) > 1 else mels[0]
        if self.denormalize is not None:
            mel = self.denormalize(mel)
        return np.asarray(mel, dtype=np.float32)


def _manifest_size(graph: dict[str, Any], key: str, largest: int, where: Path) -> int | None:
    """An export manifest's ``adim`` or ``n_mels`` (None where it does not say)."""
    value = graph.get(key)
    if value is None:
        return None
    return int(checked_number(value, f"{where}: {key}", 1, largest))


def _expect(array: Any, shape: tuple[int | None, ...], largest: int, runner: Any, what: str) -> np.ndarray:
    """A graph's output as float32, refused unless it has ``shape`` (None: any size up to
    ``largest``): a graph that gave more rows, wider rows or more samples than the engine asked
    for would make the numpy work after it (a repeat, a concatenation) unbounded."""
    array = np.asarray(array)
    if array.ndim != len(shape) or any(size != want if want is not None else not 0 < size <= largest
                                       for size, want in zip(array.shape, shape)):
        raise LavanyaError(f"{getattr(runner, 'path', 'a graph')}: gave {what} of shape {list(array.shape)} where "
                           f"{['any' if size is None else size for size in shape]} was asked for: not a graph "
                           "lavanya exports; export the voice again")
    return np.asarray(array, dtype=np.float32)


# Mel frames given to the vocoder graph at once (plus its context on either side). HiFi-GAN's
# activations grow with the input (docs/engines.md has the figure for the 512-channel vocoder);
# in windows the peak stays bounded whatever the sentence length.
# Chosen by measuring peak RSS and speed on the real-size voice: see ``OnnxVocoder``. The
# activations follow the samples, so a window is a number of samples: 256 frames of the 22.05
# kHz vocoders (hop 256), 64 of the 48 kHz ones (hop 1024).
VOCODER_WINDOW_SAMPLES = 256 * 256
# The input lengths a vocoder with fixed lengths runs at: this many even steps up to a whole
# window with its context. OpenVINO keeps about 30 MB for every input length it has run (the
# real-size vocoder in bfloat16), so 4 lengths bound it; on 16 new sentences 4 steps ran as fast
# as 8 at 60 MB less, and both far below free lengths, which had reached 360 MB more and were
# still growing (docs/engines.md).
FIXED_LENGTH_STEPS = 4


def vocoder_window_frames(hop: int) -> int:
    """Mel frames per vocoder window for a vocoder of ``hop`` samples per frame."""
    return max(16, VOCODER_WINDOW_SAMPLES // hop)


def fixed_lengths(window: int, context: int) -> tuple[int, ...]:
    """The input lengths of a vocoder run at fixed lengths: ``FIXED_LENGTH_STEPS`` even steps up
    to a window and its context on both sides."""
    whole = window + 2 * context
    return tuple(sorted({-(-whole * step // FIXED_LENGTH_STEPS) for step in range(1, FIXED_LENGTH_STEPS + 1)}))


# Bounds on what a vocoder export's manifest may say (HiFi-GAN V1: hop 256 or 1024, context 15).
HOP_MAX = 4096
CONTEXT_FRAMES_MAX = 256


class OnnxVocoder:
    """Mel ``[frames, n_mels]`` (already times the voice's mel scale) to float32 samples.

    An input longer than ``window_frames`` is vocoded window by window, each run given
    ``context_frames`` of mel on either side (HiFi-GAN's receptive field, computed at export)
    whose samples are then dropped: every kept sample sees the same mel as in one run over the
    whole input, so the audio is that run's (checked at export and in the tests), at a peak
    memory that no longer grows with the sentence. ``window_frames`` 0: by the hop
    (``vocoder_window_frames``); None: one run.

    With ``fixed`` lengths (a runtime that compiles again for every new input length: OpenVINO)
    every run is made one of ``fixed_lengths``: widened with more of the sentence's own mel on
    either side (more context than needed: the kept samples are the same), and only where the
    whole sentence is shorter, padded after its end with its last frame. Those samples are
    dropped; the last ``context_frames`` of such a short sentence then hear the padding instead
    of HiFi-GAN's zeros, a difference within the bfloat16 guard (tests/test_onnx_engine.py)."""

    def __init__(self, generator, hop: int, context_frames: int, window_frames: int | None = 0,
                 fixed: bool = False):
        self.generator = generator
        self.hop = hop
        self.context_frames = context_frames
        self.window_frames = vocoder_window_frames(hop) if window_frames == 0 else window_frames
        self.lengths = (fixed_lengths(self.window_frames, context_frames)
                        if fixed and self.window_frames is not None else ())

    @classmethod
    def from_export(cls, export: Export, *, engine: str = ONNX, threads: int | None = None,
                    precision: str = F32, window_frames: int | None = 0,
                    compiled_cache: Path | None = None) -> "OnnxVocoder":
        graph = export.manifest.get("graph") or {}
        hop, context = graph.get("hop"), graph.get("context_frames")
        if not (isinstance(hop, int) and 0 < hop <= HOP_MAX and isinstance(context, int)
                and 0 <= context <= CONTEXT_FRAMES_MAX):
            raise LavanyaError(f"{export.directory / EXPORT_MANIFEST_NAME}: the vocoder's hop and context are missing or "
                               "out of range; export the voice again")
        with export.read_graph(GENERATOR_GRAPH_NAME) as generator:
            if window_frames is not None:
                window = vocoder_window_frames(hop) if window_frames == 0 else window_frames
                check_generator_memory(generator.summary, window + 2 * context, generator.path)
            runner = make_runner(generator, engine, threads, precision, compiled_cache)
        return cls(runner, hop, context, window_frames, fixed=engine == OPENVINO)

    def _run(self, mel: np.ndarray, low: int, high: int, exact: bool = False) -> np.ndarray:
        """The samples of frames ``low..high`` of ``mel``, run at a fixed length where there are
        fixed lengths (unless ``exact``), with the samples of the frames added for it dropped."""
        run_low, run_high, padding = (low, high, 0) if exact else self._fixed_run(low, high, mel.shape[0])
        piece = mel[run_low:run_high]
        if padding:
            piece = np.concatenate([piece, np.repeat(piece[-1:], padding, axis=0)])
        (samples,) = self.generator(np.ascontiguousarray(piece.T[None]))
        samples = _expect(samples, (1, 1, piece.shape[0] * self.hop), 0, self.generator, "audio").reshape(-1)
        return samples[(low - run_low) * self.hop:(high - run_low) * self.hop]

    def _fixed_run(self, low: int, high: int, frames: int) -> tuple[int, int, int]:
        """The frames to run for ``low..high`` and the padding after them: the shortest fixed
        length that holds them, taken from the sentence before ``low``, then after ``high``,
        then padded; unchanged without fixed lengths or for a run longer than all of them."""
        length = next((length for length in self.lengths if length >= high - low), None)
        if length is None:
            return low, high, 0
        run_low = max(0, high - length)
        run_high = min(frames, run_low + length)
        return run_low, run_high, length - (run_high - run_low)

    def audio(self, mel: np.ndarray, first: int | None = None) -> np.ndarray:
        """``audio_pieces`` joined: the same samples, in one array."""
        pieces = list(self.audio_pieces(mel, first))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def audio_pieces(self, mel: np.ndarray, first: int | None = None) -> Iterator[np.ndarray]:
        """The samples window by window, as they are made; ``first``: the first window's frames
        where smaller than the others (a stream's first bytes come sooner). That first window
        runs at its own length, fixed lengths or not: rounded up, it would delay the very
        bytes it is there to hurry (one more length per value of ``first``: a server's is one)."""
        mel = np.asarray(mel, dtype=np.float32)
        frames, window, context = mel.shape[0], self.window_frames, self.context_frames
        first = window if first is None or (window is not None and first >= window) else first
        if first is None or frames <= first + context:
            yield self._run(mel, 0, frames)
            return
        start = 0
        while start < frames:
            stop = min(frames, start + (first if start == 0 else window or frames))
            low, high = max(0, start - context), min(frames, stop + context)
            samples = self._run(mel, low, high, exact=start == 0 and first != window)
            yield samples[(start - low) * self.hop:(stop - low) * self.hop]
            start = stop


_vocoders: "weakref.WeakValueDictionary[tuple, OnnxVocoder]" = weakref.WeakValueDictionary()
_vocoders_lock = threading.Lock()


def shared_vocoder(export: Export, *, engine: str, threads: int | None, precision: str,
                   cache: Path | None = None) -> OnnxVocoder:
    """The vocoder of ``export``, one per generator graph file and runtime settings in this
    process: voices that share a vocoder, as upstream's do (4 for 31 voices), hold it once. It
    lives while some loaded voice holds it, and is freed with the last one. The file is known by
    its SHA-256 as the manifest lists it and by its stat signature, so only the very file that
    was read and checked when the vocoder was made is taken for it (another tree's manifest
    naming the same digest does not skip the checks of its own file)."""
    def made() -> OnnxVocoder:  # OpenVINO's compiled cache is looked at (and pruned) only to make one
        compiled = compiled_model_cache(cache) if engine == OPENVINO else None
        return OnnxVocoder.from_export(export, engine=engine, threads=threads, precision=precision,
                                       compiled_cache=compiled)

    digest = (export.manifest.get("files") or {}).get(GENERATOR_GRAPH_NAME, {}).get("sha256")
    try:
        status = os.stat(export.directory / GENERATOR_GRAPH_NAME)
    except OSError:  # read_graph says what is wrong with it
        return made()
    key = (digest, *stat_signature(status), engine, threads, precision)
    with _vocoders_lock:  # two voices of one vocoder loading at once make it once
        vocoder = _vocoders.get(key)
        if vocoder is None:
            vocoder = _vocoders[key] = made()
        return vocoder


class OnnxEngine:
    """The tokenizer, acoustic model and vocoder of one voice, from its exports: the interface
    ``speech.engines`` gives ``Voice`` (``name`` is the engine: ``onnx`` or ``openvino``).
    ``precision`` is the vocoder's, ``acoustic_precision`` the acoustic graphs' (``f32`` or
    ``int8``); ``notes``: what the user should know (int8 asked for, f32 served); ``choice``: why
    ``auto`` came to this engine (``engine_choice.Choice``), None where it was named."""

    def __init__(self, tokenizer: Tokenizer, acoustic: OnnxAcoustic, vocoder: OnnxVocoder, name: str,
                 precision: str, acoustic_precision: str = F32, notes: tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.acoustic = acoustic
        self.vocoder = vocoder
        self.name = name
        self.precision = precision
        self.acoustic_precision = acoustic_precision
        self.notes = notes
        self.choice = None

    def mel(self, model_input: str, alpha: float = 1.0) -> np.ndarray:
        return self.acoustic.mel(self.tokenizer.ids(model_input), alpha)

    def audio(self, mel: np.ndarray, first: int | None = None) -> np.ndarray:
        return self.vocoder.audio(mel, first)

    def audio_pieces(self, mel: np.ndarray, first: int | None = None) -> Iterator[np.ndarray]:
        return self.vocoder.audio_pieces(mel, first)


def resolve_precision(engine: str, precision: str | None = None) -> str:
    """The precision the vocoder runs in for ``engine`` (``onnx`` or ``openvino``): ``precision``
    when given and possible, else OpenVINO's bf16 where the CPU computes bfloat16 natively
    (docs/engines.md has its speed and quality against f32), else f32."""
    if precision is None:
        return BF16 if engine == OPENVINO and openvino_bf16_supported() else F32
    if precision not in (F32, BF16):
        raise LavanyaError(f"precision {precision!r}: use {F32} or {BF16}")
    if precision == BF16 and engine == ONNX:
        raise LavanyaError(f"the {ONNX} engine computes in {F32} only; {BF16} is for {OPENVINO}")
    if precision == BF16 and not openvino_bf16_supported():
        raise LavanyaError("this CPU has no bfloat16 support (OpenVINO lists no BF16 capability); use f32")
    return precision


def load_onnx_engine(spec: VoiceSpec, config: dict[str, Any] | None = None, *, engine: str = ONNX,
                     threads: int | None = None, precision: str | None = None,
                     cache: Path | None = None, acoustic_precision: str | None = None,
                     exports: tuple[Export, Export] | None = None) -> OnnxEngine:
    """The voice's exported graphs ready to speak: from its deploy root, or from the export
    cache where the export was made from the voice's current files (``exports``: as
    ``find_exports`` gave them, where the caller has them). ``engine`` (``onnx`` or
    ``openvino``, already decided: ``speech.engines``) runs the vocoder, most of the work;
    ``precision``: see ``resolve_precision``.

    The acoustic model always runs through ONNX Runtime, inside its capped arena (under
    OpenVINO it compiled slower and peaked higher for the same speed, and bfloat16 moved
    durations; docs/engines.md), from its export at ``acoustic_precision`` (None: as exported;
    ``f32``; ``int8``: see ``export_store.find_exports``, and ``notes`` where f32 is served).
    Raises LavanyaError naming the command to run where there is no current export."""
    if engine not in (ONNX, OPENVINO):
        raise LavanyaError(f"engine {engine!r}: the exported graphs run on {ONNX} or {OPENVINO}")
    config = read_config(spec.config_path) if config is None else config
    precision = resolve_precision(engine, precision)
    acoustic_export, vocoder_export = exports or find_exports(spec, cache, acoustic_precision)
    tokenizer = Tokenizer.from_config(config, token_list(config, spec.model_dir))
    acoustic = OnnxAcoustic.from_export(acoustic_export, config, spec.stats_path("feats"),
                                        space_id=tokenizer.ids_of.get(SPACE), threads=threads)
    vocoder = shared_vocoder(vocoder_export, engine=engine, threads=threads, precision=precision, cache=cache)
    return OnnxEngine(tokenizer, acoustic, vocoder, engine, precision, acoustic_export.precision,
                      (acoustic_export.note,) if acoustic_export.note else ())


__all__ = ["OnnxAcoustic", "OnnxVocoder", "fixed_lengths", "OnnxEngine", "MelDenormalizer", "load_onnx_engine", "reserve_arena",
           "share_runtime_threads", "shared_vocoder", "import_runtime",
           "resolve_precision", "durations_from_log", "regulate_lengths", "openvino_bf16_supported", "pieces"]
