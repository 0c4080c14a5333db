"""A voice exported to ONNX once, checked against torch, for the torch-free engine to speak.

Needs torch and ESPnet (the voice is loaded the way ``Voice.load`` loads it). Three graphs:

* ``acoustic_encoder.onnx``: ``token_ids [tokens]`` int64 -> ``hidden [tokens + 1, adim]``
  (encoder output plus pitch and energy embeddings, as ``FastSpeech2._forward`` adds them) and
  ``log_durations [tokens + 1]``; the eos token is appended inside, as ``FastSpeech2.inference``;
* ``acoustic_decoder.onnx``: ``hidden [frames, adim]`` -> ``mel [frames, n_mels]``, normalised,
  after the postnet;
* ``generator.onnx``: HiFi-GAN, ``mel [1, n_mels, frames]`` -> ``audio [1, 1, samples]``.

ESPnet's positional encodings add a table built for 5000 positions; traced as it is, that
table would be a constant and cap every input. Here the tables are computed inside the graph
from the input's length (``Positions`` in ``_graph_modules``), so any length works.

Every export is checked at export time on sentences made from the voice's own tokens, at
three rates, through the same engine code synthesis uses (``onnx_engine``): the mel must be
within ``MEL_MAX_ABS`` of torch's everywhere (same frame count), the waveform at least
``MIN_SNR_DB`` above the difference. Otherwise nothing is written.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EXIT_PROBLEMS, LavanyaError, option
from ..fileio import PHONE_DICT_MAX_BYTES, RESOURCE_MAX_BYTES, copy_regular, replace_file
from ..modeltree.checkpoint import RESTORE_WEIGHTS
from ..modeltree.config import fix_stats_paths_text, read_config_text, token_list
from ..modeltree.layout import (CONFIG_NAME, DECODER_GRAPH_NAME, DEMO_MARKER, ENCODER_GRAPH_NAME, EXPORT_MANIFEST_NAME,
                                GENERATOR_GRAPH_NAME, VOCODER_WEIGHTS_NAME, ModelRoot, VoiceSpec)
from ..modeltree.paths import require_inside
from ..modeltree.weights import is_deployed_vocoder, is_deployed_voice
from . import export_store as store
from .convert import NotConvertible, convert_acoustic, convert_vocoder, template_version
from .graphs import check_generator_memory, read_graph
from .onnx_engine import MelDenormalizer, OnnxAcoustic, OnnxVocoder, OrtRunner, vocoder_window_frames
from .options import AUTO, F32, TEMPLATES, TORCH, torch_installed
from .tokens import SPACE, Tokenizer
from .vocoder import read_hifigan_config
from .voice_files import check_voice_files, voice_scales

if TYPE_CHECKING:
    import torch

    from .torch_engine import TorchEngine

OPSET = 17
MEL_MAX_ABS = 1e-3  # log-mel units (natural log of power)
MIN_SNR_DB = 40.0
CHECK_LENGTHS = (12, 48, 120)  # tokens per check sentence
CHECK_ALPHAS = (1.0, 0.8, 1.3)
# A converted export has no torch to compare with (the tests compare the templates with torch):
# its graphs run once, briefly, to catch weights that give non-finite output.
CONVERTED_CHECK_LENGTHS = (12, 48)
CONVERTED_CHECK_FRAMES = 48
# Files beside config.yaml that a deploy root keeps (besides the statistics).
VOICE_EXTRAS = ("feats_type", "lavanya.yaml", DEMO_MARKER)
FRONTEND_FILES = ("multilingualcharmap.json",)
_SPECIAL = {"<blank>", "<unk>", "<sos/eos>", SPACE}


# -- graphs -------------------------------------------------------------------------------

def _torch():
    import torch

    return torch


@functools.cache
def _graph_modules():
    """The wrapper modules, defined on first use so that importing this module stays cheap."""
    torch = _torch()
    from .espnet_import import import_espnet

    embedding = import_espnet("espnet.nets.pytorch_backend.transformer.embedding")

    class Positions(torch.nn.Module):
        """ESPnet's ``PositionalEncoding`` / ``ScaledPositionalEncoding`` with the sinusoid table
        computed for the input's own length: ``x * sqrt(d) + pe`` or ``x + alpha * pe``."""

        def __init__(self, original: torch.nn.Module):
            super().__init__()
            self.scaled = isinstance(original, embedding.ScaledPositionalEncoding)
            self.alpha = original.alpha if self.scaled else None
            self.xscale = original.xscale
            self.d_model = original.d_model
            steps = torch.arange(0, self.d_model, 2, dtype=torch.float32)
            self.register_buffer("div_term", torch.exp(steps * -(math.log(10000.0) / self.d_model)),
                                 persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            length = x.shape[1]
            angles = torch.arange(length, dtype=torch.float32).unsqueeze(1) * self.div_term
            table = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(1, length, self.d_model)
            return x + self.alpha * table if self.scaled else x * self.xscale + table

    class Encoder(torch.nn.Module):
        def __init__(self, fastspeech2: torch.nn.Module):
            super().__init__()
            self.fastspeech2 = fastspeech2
            # A named initializer, not a constant folded into a node: the graph templates
            # (``convert``) fill it with each voice's own eos id.
            self.register_buffer("eos_id", torch.tensor([fastspeech2.eos], dtype=torch.int64))

        def forward(self, token_ids: torch.Tensor):
            model = self.fastspeech2
            xs = torch.cat([token_ids, self.eos_id]).unsqueeze(0)
            hs, _ = model.encoder(xs, None)
            pitch = model.pitch_predictor(hs, None)
            energy = model.energy_predictor(hs, None)
            log_durations = model.duration_predictor(hs, None)
            energy_embedding = model.energy_embed(energy.transpose(1, 2)).transpose(1, 2)
            pitch_embedding = model.pitch_embed(pitch.transpose(1, 2)).transpose(1, 2)
            hs = hs + energy_embedding + pitch_embedding
            return hs[0], log_durations[0]

    class Decoder(torch.nn.Module):
        def __init__(self, fastspeech2: torch.nn.Module):
            super().__init__()
            self.fastspeech2 = fastspeech2

        def forward(self, hidden: torch.Tensor):
            model = self.fastspeech2
            zs, _ = model.decoder(hidden.unsqueeze(0), None)
            before = model.feat_out(zs).view(1, -1, model.odim)
            if model.postnet is None:
                return before[0]
            return (before + model.postnet(before.transpose(1, 2)).transpose(1, 2))[0]

    return Positions, Encoder, Decoder


@contextlib.contextmanager
def _dynamic_positions(fastspeech2: "torch.nn.Module"):
    """The model with length-independent positional encodings while exporting; restored after."""
    positions, _, _ = _graph_modules()
    originals = [(stack.embed, stack.embed[-1]) for stack in (fastspeech2.encoder, fastspeech2.decoder)]
    try:
        for embed, original in originals:
            embed[-1] = positions(original)
        yield
    finally:
        for embed, original in originals:
            embed[-1] = original


def unsupported_structure(fastspeech2: "torch.nn.Module") -> str | None:
    """What the export cannot split this FastSpeech2 at, in words (None: every upstream voice)."""
    for name in ("encoder_type", "decoder_type"):
        if getattr(fastspeech2, name, "transformer") != "transformer":
            return f"{name} {getattr(fastspeech2, name)}"
    for name in ("spks", "langs", "spk_embed_dim"):
        if getattr(fastspeech2, name, None) is not None:
            return f"{name} {getattr(fastspeech2, name)}"
    if getattr(fastspeech2, "use_gst", False):
        return "use_gst"
    if getattr(fastspeech2, "reduction_factor", 1) != 1:
        return f"reduction_factor {fastspeech2.reduction_factor}"
    return None


def _export_graph(module: "torch.nn.Module", example: "torch.Tensor", path: Path, inputs: list[str],
                  outputs: list[str], axes: dict[str, dict[int, str]]) -> None:
    torch = _torch()
    from .espnet_import import quiet_libraries

    module.eval()  # torch.onnx.export restores the wrapper's mode, and with it the model's
    with quiet_libraries(), torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          do_constant_folding=True)
    module.eval()


def export_acoustic_graphs(fastspeech2: "torch.nn.Module", directory: Path) -> None:
    """Write ``acoustic_encoder.onnx`` and ``acoustic_decoder.onnx`` for ``fastspeech2`` into
    ``directory`` (unchecked: see ``export_acoustic``)."""
    torch = _torch()
    if problem := unsupported_structure(fastspeech2):
        raise LavanyaError(f"this FastSpeech2 has {problem}; the ONNX export handles upstream's "
                           "transformer voices only")
    _, encoder, decoder = _graph_modules()
    adim = fastspeech2.feat_out.in_features
    with _dynamic_positions(fastspeech2):
        _export_graph(encoder(fastspeech2), torch.zeros(7, dtype=torch.int64) + 2, directory / ENCODER_GRAPH_NAME,
                      ["token_ids"], ["hidden", "log_durations"],
                      {"token_ids": {0: "tokens"}, "hidden": {0: "tokens_eos"}, "log_durations": {0: "tokens_eos"}})
        _export_graph(decoder(fastspeech2), torch.zeros(23, adim), directory / DECODER_GRAPH_NAME,
                      ["hidden"], ["mel"], {"hidden": {0: "frames"}, "mel": {0: "frames"}})


def export_generator_graph(generator: "torch.nn.Module", n_mels: int, directory: Path) -> None:
    """Write ``generator.onnx`` (HiFi-GAN, dynamic time axis) into ``directory`` (unchecked)."""
    torch = _torch()
    _export_graph(generator, torch.zeros(1, n_mels, 19), directory / GENERATOR_GRAPH_NAME, ["mel"], ["audio"],
                  {"mel": {2: "frames"}, "audio": {2: "samples"}})


def receptive_radius_frames(config: dict[str, Any]) -> int:
    """Mel frames on either side of a frame that can reach its samples through HiFi-GAN V1 (an
    upper bound, plus one): the input convolution (kernel 7), each transposed convolution
    (kernel / rate input samples) and multi-receptive-field block (per ResBlock1, kernel - 1
    over 2 times the sum of dilation + 1, in that stage's samples), the output convolution.
    16 frames for upstream's vocoders; windows given this much context match one whole run."""
    radius, upsampled = 3.0, 1
    resblock = max((kernel - 1) / 2 * sum(d + 1 for d in dilations)
                   for kernel, dilations in zip(config["resblock_kernel_sizes"], config["resblock_dilation_sizes"]))
    for rate, kernel in zip(config["upsample_rates"], config["upsample_kernel_sizes"]):
        radius += math.ceil(kernel / rate) / upsampled
        upsampled *= rate
        radius += resblock / upsampled
    radius += 3 / upsampled
    return math.ceil(radius) + 1


# -- checks -------------------------------------------------------------------------------

def check_sentences(token_list: list[str], lengths: tuple[int, ...] = CHECK_LENGTHS, seed: int = 0) -> list[str]:
    """Model-input strings from the voice's own tokens: words of 2-7 tokens joined by spaces,
    about ``lengths`` tokens each, the same every time."""
    tokens = [t for t in token_list if t not in _SPECIAL and len(t) == 1 and not t.isspace()]
    if not tokens:
        raise LavanyaError("the token_list has no character tokens to make check sentences from")
    chooser = random.Random(seed)
    sentences = []
    for length in lengths:
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < length:
            words.append("".join(chooser.choice(tokens) for _ in range(chooser.randint(2, 7))))
        sentences.append(" ".join(words))
    return sentences


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Signal-to-difference ratio in dB (infinite for identical signals)."""
    noise = float(np.sum((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


@dataclass
class CheckFigures:
    """How an export compared with torch on the check sentences."""

    sentences: int = 0
    alphas: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    mel_max_abs: float = 0.0
    snr_db_min: float = math.inf
    problems: list[str] = field(default_factory=list)

    def manifest_entry(self, kind: str) -> dict[str, Any]:
        entry = {"sentences": self.sentences, "alphas": self.alphas, "frames": self.frames}
        if kind == store.ACOUSTIC:
            entry.update(tokens=self.tokens, mel_max_abs=self.mel_max_abs, mel_max_abs_bound=MEL_MAX_ABS)
        else:
            entry.update(waveform_snr_db_min=None if math.isinf(self.snr_db_min) else round(self.snr_db_min, 2),
                         waveform_snr_db_bound=MIN_SNR_DB)
        return entry


@dataclass(frozen=True)
class TorchReference:
    """A voice on the torch engine, as the export checks its graphs against it: the files checked
    as ``Voice.load`` checks them, the vocoder's mel scale from its settings."""

    spec: VoiceSpec
    config: dict[str, Any]
    backend: "TorchEngine"
    mel_scale: float

    @classmethod
    def load(cls, spec: VoiceSpec) -> "TorchReference":
        from .torch_engine import TorchEngine

        config = check_voice_files(spec)
        mel_scale, _ = voice_scales(spec)
        return cls(spec, config, TorchEngine.load(spec, config), mel_scale)


def _reference_mels(voice: "TorchReference", sentences: list[str]) -> list[tuple[str, float, np.ndarray]]:
    torch = _torch()
    from .espnet_import import quiet_libraries

    references = []
    with torch.inference_mode(), quiet_libraries():
        for sentence, alpha in zip(sentences, CHECK_ALPHAS * len(sentences)):
            references.append((sentence, alpha, voice.backend.acoustic_model(sentence, alpha).float().cpu().numpy()))
    return references


def _acoustic_to_check(directory: Path, config: dict[str, Any], spec: VoiceSpec, duration_offset: float) -> OnnxAcoustic:
    """The acoustic graphs just written to ``directory`` on the engine synthesis uses, given whole
    sentences (as torch computes them): what every export's check runs."""
    with read_graph(directory / ENCODER_GRAPH_NAME) as encoder, read_graph(directory / DECODER_GRAPH_NAME) as decoder:
        runners = OrtRunner(encoder), OrtRunner(decoder)
    return OnnxAcoustic(*runners, MelDenormalizer.for_voice(config, spec.stats_path("feats")), duration_offset,
                        encoder_tokens=None, decoder_frames=None)


def _vocoder_to_check(directory: Path, hop: int, context: int) -> OnnxVocoder:
    """The generator just written to ``directory`` as synthesis runs it, in windows, its memory
    per window checked first: what every export's check runs."""
    with read_graph(directory / GENERATOR_GRAPH_NAME) as generator:
        check_generator_memory(generator.summary, vocoder_window_frames(hop) + 2 * context, generator.path)
        return OnnxVocoder(OrtRunner(generator), hop, context)


def check_acoustic(voice: "TorchReference", directory: Path, references) -> CheckFigures:
    """The exported acoustic graphs in ``directory`` against torch's mels ``references``."""
    config = voice.config
    tokenizer = Tokenizer.from_config(config, token_list(config, voice.spec.model_dir))
    engine = _acoustic_to_check(directory, config, voice.spec,
                              float(voice.backend.acoustic_model.network.tts.duration_predictor.offset))
    figures = CheckFigures()
    for sentence, alpha, expected in references:
        ids = tokenizer.ids(sentence)
        if ids.tolist() != voice.backend.acoustic_model.token_ids(sentence).tolist():
            figures.problems.append(f"token ids differ from ESPnet's for {sentence[:40]!r}")
            continue
        mel = engine.mel(ids, alpha)
        figures.sentences += 1
        figures.alphas.append(alpha)
        figures.tokens.append(int(ids.size))
        figures.frames.append(int(expected.shape[0]))
        if mel.shape != expected.shape:
            figures.problems.append(f"{mel.shape[0]} frames where torch gives {expected.shape[0]} (alpha {alpha})")
            continue
        figures.mel_max_abs = max(figures.mel_max_abs, float(np.max(np.abs(mel - expected), initial=0.0)))
    if figures.mel_max_abs > MEL_MAX_ABS:
        figures.problems.append(f"mel differs from torch's by up to {figures.mel_max_abs:.3g} "
                                f"(bound {MEL_MAX_ABS:g})")
    return figures


def check_vocoder(voice: "TorchReference", directory: Path, references, hop: int, context: int) -> CheckFigures:
    """The exported generator in ``directory`` against torch's on the reference mels, in the
    windows synthesis uses (the longest check sentence spans several)."""
    torch = _torch()
    engine = _vocoder_to_check(directory, hop, context)
    figures = CheckFigures()
    for _, alpha, mel in references:
        vocoder_input = mel * voice.mel_scale
        with torch.inference_mode():
            expected = voice.backend.vocoder_module(torch.from_numpy(vocoder_input).T.unsqueeze(0)).reshape(-1).numpy()
        audio = engine.audio(vocoder_input)
        figures.sentences += 1
        figures.alphas.append(alpha)
        figures.frames.append(int(mel.shape[0]))
        if audio.shape != expected.shape:
            figures.problems.append(f"{audio.size} samples where torch gives {expected.size}")
            continue
        figures.snr_db_min = min(figures.snr_db_min, snr_db(expected, audio))
    if figures.snr_db_min < MIN_SNR_DB:
        figures.problems.append(f"waveform only {figures.snr_db_min:.1f} dB above its difference from torch's "
                                f"(bound {MIN_SNR_DB:g} dB)")
    return figures


# -- exporting ----------------------------------------------------------------------------

def versions(converter: str = TORCH) -> dict[str, str]:
    """Versions of what made and checked an export (torch's only where it made it)."""
    import onnxruntime

    from ..errors import __version__

    found = {"lavanya": __version__, "onnxruntime": onnxruntime.__version__, "opset": str(OPSET)}
    if converter == TORCH:
        found["torch"] = _torch().__version__
        with contextlib.suppress(ModuleNotFoundError):
            import onnx

            found["onnx"] = onnx.__version__
    else:
        found["templates"] = template_version()
    return found


def describe_files(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """A manifest's ``files``: each graph's size and SHA-256."""
    return {name: {"size": (directory / name).stat().st_size, "sha256": store.sha256_file(directory / name)}
            for name in sorted(names)}


def _manifest(kind: str, name: str, weights: str, sources: dict, directory: Path, graph: dict,
              check: dict[str, Any], converter: str = TORCH) -> dict[str, Any]:
    files = describe_files(directory, graph.pop("files"))
    return {
        "format": store.EXPORT_FORMAT,
        "kind": kind,
        "name": name,
        "weights": weights,
        "sources": sources,
        "files": files,
        "graph": graph,
        "converter": converter,
        "versions": versions(converter),
        "check": check,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_export_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """``manifest`` as ``directory``'s export manifest, replaced atomically."""
    import json

    text = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    replace_file(directory / EXPORT_MANIFEST_NAME, lambda handle: handle.write(text))


def _refuse(what: str, figures: CheckFigures) -> LavanyaError:
    return LavanyaError(f"{what}: the ONNX export does not match torch ({'; '.join(figures.problems)}); "
                        "nothing written", EXIT_PROBLEMS)


@dataclass
class ExportOutcome:
    """What ``ensure_exports`` did for one voice: the two exports, which were made now, and how
    (``templates`` or ``torch``, by kind)."""

    acoustic: store.Export
    vocoder: store.Export
    made: list[str] = field(default_factory=list)
    converters: dict[str, str] = field(default_factory=dict)


def ensure_exports(spec: VoiceSpec, cache: Path | None = None, converter: str = AUTO) -> ExportOutcome:
    """The voice's acoustic and vocoder exports in the cache, made where the cache has none for
    the current source files: ``converter`` ``auto`` fills the graph templates where the voice
    fits them (no torch) and exports through torch otherwise; ``templates`` and ``torch`` use
    only that way (a voice outside the templates is then an error naming the torch extra)."""
    cache = store.cache_root(cache)
    spec.require_inside()
    acoustic = _made_by(_intact(store.find_acoustic_export(spec, cache)), converter)
    vocoder = _made_by(_intact(store.find_vocoder_export(spec.vocoder, cache)), converter)
    outcome = ExportOutcome(acoustic, vocoder)
    if acoustic is not None and vocoder is not None:
        return outcome
    _refuse_deployed(spec)
    store.writable_cache(cache)
    # Digests first, then the load: a source changing in between then gives an export whose
    # key no lookup of the new file matches, never a stale graph under the new file's key.
    sources = {store.ACOUSTIC: store.describe_sources(store.acoustic_sources(spec)),
               store.VOCODER: store.describe_sources(store.vocoder_sources(spec.vocoder))}
    reference: list[tuple[TorchReference, list]] = []  # loaded once, where torch makes an export

    def torch_export(kind: str) -> store.Export:
        if not reference:
            voice = TorchReference.load(spec)
            reference.append((voice, _reference_mels(voice, check_sentences(token_list(voice.config, spec.model_dir)
                                                                            or []))))
        voice, references = reference[0]
        make = _export_acoustic if kind == store.ACOUSTIC else _export_vocoder
        return make(voice, cache, sources[kind], references)

    try:
        for kind in (store.ACOUSTIC, store.VOCODER):
            if getattr(outcome, kind) is not None:
                continue
            way = TEMPLATES if converter != TORCH else TORCH
            if way == TEMPLATES:
                try:
                    made = _convert(kind, spec, cache, sources[kind])
                except NotConvertible:
                    if converter == TEMPLATES or not torch_installed():
                        raise
                    way = TORCH
            if way == TORCH:
                made = torch_export(kind)
            setattr(outcome, kind, made)
            outcome.made.append(kind)
            outcome.converters[kind] = way
    except OSError as exc:  # a file where the cache keeps its exports, a full disk
        raise store.unwritable_cache(cache, exc) from None
    return outcome


def _made_by(export: store.Export | None, converter: str) -> store.Export | None:
    """``export``, unless torch's export was asked for and the cache holds the templates' (then
    None: made again, through torch, under the same key)."""
    if export is not None and converter == TORCH and not export.deployed and export.converter != TORCH:
        return None
    return export


def _convert(kind: str, spec: VoiceSpec, cache: Path, sources: dict) -> store.Export:
    """The export of ``kind`` made from the graph templates (``convert``), without torch, and
    run once on the check sentences: every output finite and of the length its durations say."""
    target = cache / kind / store.export_key(kind, sources)
    config = check_voice_files(spec)

    def fill(scratch: Path) -> None:
        if kind == store.ACOUSTIC:
            facts = convert_acoustic(spec, config, scratch)
            check = check_converted_acoustic(spec, config, scratch, facts.duration_offset)
            graph = {"files": [ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME], "opset": OPSET, "eos": facts.eos,
                     "duration_offset": facts.duration_offset, "n_mels": facts.n_mels, "adim": facts.adim,
                     "precision": F32, "templates": list(facts.templates)}
            manifest = _manifest(kind, spec.name, spec.weights_path.name, sources, scratch, graph, check, TEMPLATES)
        else:
            vocoder_config = read_hifigan_config(spec.vocoder.config_path)
            hop, context = int(vocoder_config["hop_size"]), receptive_radius_frames(vocoder_config)
            template = convert_vocoder(spec.vocoder, scratch)
            check = check_converted_vocoder(spec.vocoder.generator_path, scratch, int(vocoder_config["num_mels"]), hop,
                                            context)
            graph = {"files": [GENERATOR_GRAPH_NAME], "opset": OPSET, "n_mels": int(vocoder_config["num_mels"]),
                     "hop": hop, "context_frames": context, "precision": F32, "templates": [template]}
            manifest = _manifest(kind, spec.vocoder.name, VOCODER_WEIGHTS_NAME, sources, scratch, graph, check,
                                 TEMPLATES)
        write_export_manifest(scratch, manifest)

    store.write_atomically(target, fill)
    return store.Export(target, store.read_export_manifest(target), deployed=False)


def check_converted_acoustic(spec: VoiceSpec, config: dict[str, Any], directory: Path,
                             duration_offset: float) -> dict[str, Any]:
    """The converted acoustic graphs run on the check sentences through the engine synthesis
    uses; durations or a mel that are not finite, or durations beyond any sentence's (a
    checkpoint of NaNs, a broken one), refuse the export, naming the weights."""
    tokens = token_list(config, spec.model_dir) or []
    tokenizer = Tokenizer.from_config(config, tokens)
    engine = _acoustic_to_check(directory, config, spec, duration_offset)
    figures: dict[str, Any] = {"sentences": 0, "alphas": [], "tokens": [], "frames": []}
    for sentence, alpha in zip(check_sentences(tokens, CONVERTED_CHECK_LENGTHS), CHECK_ALPHAS):
        ids = tokenizer.ids(sentence)
        try:
            mel = engine.mel(ids, alpha)
        except LavanyaError as exc:  # durations past the frame limit, or not numbers at all
            raise _broken(spec.weights_path, f"the converted acoustic model fails on a check sentence: {exc.message}")
        if not np.all(np.isfinite(mel)):
            raise _broken(spec.weights_path, "the converted acoustic model gives a mel that is not finite")
        figures["sentences"] += 1
        figures["alphas"].append(alpha)
        figures["tokens"].append(int(ids.size))
        figures["frames"].append(int(mel.shape[0]))
    return figures


def check_converted_vocoder(generator_path: Path, directory: Path, n_mels: int, hop: int, context: int
                            ) -> dict[str, Any]:
    """The converted generator run on a short mel as synthesis runs it: finite samples, ``hop``
    per frame, or the export is refused, naming the generator."""
    engine = _vocoder_to_check(directory, hop, context)
    frames = CONVERTED_CHECK_FRAMES
    mel = np.random.default_rng(0).normal(-4.0, 1.0, (frames, n_mels)).astype(np.float32)
    audio = engine.audio(mel)
    if audio.size != frames * hop:
        raise _broken(generator_path, f"the converted vocoder gives {audio.size} samples for {frames} frames, "
                                      f"not {frames * hop}")
    if not np.all(np.isfinite(audio)):
        raise _broken(generator_path, "the converted vocoder gives samples that are not finite")
    return {"sentences": 1, "frames": [frames]}


def _broken(path: Path, reason: str) -> LavanyaError:
    return LavanyaError(f"{path}: {reason}; {RESTORE_WEIGHTS}", EXIT_PROBLEMS)


def _intact(export: store.Export | None) -> store.Export | None:
    """``export`` when its graphs are the ones its manifest lists (hashed, never trusted by
    their stat signature); a cache export that differs is None, so it is made again; one in a
    model tree is not lavanya's to rewrite: an error naming what differs."""
    if export is None:
        return None
    problems = store.manifest_problems(export.directory, export.manifest, export.manifest["files"])
    if not problems:
        return export
    if not export.deployed:
        return None
    raise LavanyaError(f"{export.directory}: {'; '.join(problems[:3])}; export the voice again from its weights")


def _refuse_deployed(spec: VoiceSpec) -> None:
    if is_deployed_voice(spec) or is_deployed_vocoder(spec.vocoder):
        raise LavanyaError(f"{spec.name}: {spec.root} is a deploy root (graphs without weights); "
                           "export from the model tree that has model.pth and generator")


def _export_acoustic(voice: "TorchReference", cache: Path, sources: dict, references) -> store.Export:
    spec = voice.spec
    target = cache / store.ACOUSTIC / store.export_key(store.ACOUSTIC, sources)
    fastspeech2 = voice.backend.acoustic_model.network.tts

    def fill(scratch: Path) -> None:
        export_acoustic_graphs(fastspeech2, scratch)
        figures = check_acoustic(voice, scratch, references)
        if figures.problems:
            raise _refuse(spec.name, figures)
        graph = {"files": [ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME], "opset": OPSET, "eos": int(fastspeech2.eos),
                 "duration_offset": float(fastspeech2.duration_predictor.offset), "n_mels": int(fastspeech2.odim),
                 "adim": int(fastspeech2.feat_out.in_features), "precision": F32}
        write_export_manifest(scratch, _manifest(store.ACOUSTIC, spec.name, spec.weights_path.name, sources, scratch,
                                                 graph, figures.manifest_entry(store.ACOUSTIC)))

    store.write_atomically(target, fill)
    return store.Export(target, store.read_export_manifest(target), deployed=False)


def _export_vocoder(voice: "TorchReference", cache: Path, sources: dict, references) -> store.Export:
    vocoder = voice.spec.vocoder
    target = cache / store.VOCODER / store.export_key(store.VOCODER, sources)
    n_mels = int(voice.backend.vocoder_module.input_conv.in_channels)
    vocoder_config = read_hifigan_config(vocoder.config_path)
    hop, context = int(vocoder_config["hop_size"]), receptive_radius_frames(vocoder_config)

    def fill(scratch: Path) -> None:
        export_generator_graph(voice.backend.vocoder_module, n_mels, scratch)
        figures = check_vocoder(voice, scratch, references, hop, context)
        if figures.problems:
            raise _refuse(str(vocoder.directory), figures)
        graph = {"files": [GENERATOR_GRAPH_NAME], "opset": OPSET, "n_mels": n_mels, "hop": hop,
                 "context_frames": context, "precision": F32}
        write_export_manifest(scratch, _manifest(store.VOCODER, vocoder.name, VOCODER_WEIGHTS_NAME, sources, scratch,
                                                 graph, figures.manifest_entry(store.VOCODER)))

    store.write_atomically(target, fill)
    return store.Export(target, store.read_export_manifest(target), deployed=False)


# -- deploy roots -------------------------------------------------------------------------

def write_deploy_root(specs: list[VoiceSpec], out: Path, cache: Path | None = None,
                      prepare: Callable[[VoiceSpec, Path | None], ExportOutcome] = ensure_exports
                      ) -> list[dict[str, Any]]:
    """Write ``specs`` into the deploy root ``out``: the model tree's layout with the graphs in
    place of ``model.pth`` and ``generator``, plus the front-end files. Each voice and vocoder
    directory is replaced in one rename. Nothing is written outside ``out`` (a symbolic link
    inside it is refused), and a directory is only replaced when it is empty or an earlier
    deploy that holds nothing else (weights or a user's files are never deleted). ``prepare``
    gives the exports to deploy (``quantize.ensure_int8_exports`` for the int8 acoustic model)."""
    out = Path(out)
    written = []
    for spec in specs:
        _refuse_overlap(spec.root, out)
        outcome = prepare(spec, cache)
        model_dir = _inside(out, spec.relative(spec.model_dir))
        vocoder_dir = _inside(out, spec.relative(spec.vocoder.directory))
        names = [*store.copied_sources(outcome.acoustic.manifest), *VOICE_EXTRAS]
        vocoder_names = [*store.copied_sources(outcome.vocoder.manifest), DEMO_MARKER]
        for directory, export, kept in ((model_dir, outcome.acoustic, names),
                                        (vocoder_dir, outcome.vocoder, vocoder_names)):
            _refuse_foreign_files(directory, [*export.manifest["files"], *kept])
        store.write_atomically(model_dir, lambda scratch: _fill_deployed(
            scratch, outcome.acoustic, spec.model_dir, names))
        store.write_atomically(vocoder_dir, lambda scratch: _fill_deployed(
            scratch, outcome.vocoder, spec.vocoder.directory, vocoder_names))
        frontend = _copy_frontend(spec, out)
        written.append({"voice": spec.name, "model_dir": str(model_dir), "vocoder_dir": str(vocoder_dir),
                        "made": outcome.made, "frontend": frontend,
                        "bytes": _directory_bytes(model_dir) + _directory_bytes(vocoder_dir),
                        **acoustic_summary(outcome.acoustic)})
    return written


def acoustic_summary(export: store.Export) -> dict[str, Any]:
    """What a report says of an acoustic export: its precision, its graphs' bytes, and where int8
    was asked for, its guard's figures and the note on a refusal."""
    summary: dict[str, Any] = {"precision": export.precision,
                               "acoustic_bytes": sum(entry["size"] for entry in export.manifest["files"].values())}
    if "guard" in export.manifest:
        summary["guard"] = export.manifest["guard"]
    if export.note:
        summary["note"] = export.note
    return summary


def place_beside_weights(spec: VoiceSpec, cache: Path | None = None) -> list[Path]:
    """Put the voice's graphs and their manifests beside its weights (``model.pth``, the
    ``generator``), for a tree that ships both, as the bundled demo voice does: a light install
    then speaks it without torch. The weights and every other file are left as they are; the
    graphs and manifests are each written atomically. Returns the files written."""
    outcome = ensure_exports(spec, cache)
    return [*_place_export(outcome.acoustic, spec.model_dir), *_place_export(outcome.vocoder, spec.vocoder.directory)]


def _place_export(export: store.Export, directory: Path, manifest: dict[str, Any] | None = None) -> list[Path]:
    """Write ``export``'s graphs (checked against its manifest as they are copied) and then its
    manifest (as found, or ``manifest`` where a deploy root's copied sources differ from the
    cache's; with a guard's refusal where int8 was refused, saying its precision even where an
    older export did not) into ``directory``, each atomically; the files written."""
    manifest = export.manifest if manifest is None else manifest
    written = []
    for name in export.manifest["files"]:
        with export.read_graph(name) as graph:
            replace_file(directory / name, graph.copy_to, mode=0o644)
        written.append(directory / name)
    write_export_manifest(directory, {**manifest, "graph": {**manifest["graph"], "precision": export.precision}})
    return [*written, directory / EXPORT_MANIFEST_NAME]


def _refuse_overlap(root: Path, out: Path) -> None:
    root, target = Path(root).resolve(), out.resolve()
    if target == root or target.is_relative_to(root) or root.is_relative_to(target):
        raise LavanyaError(f"{out}: inside or around the model root {root}; give a separate {option('out')} directory")


def _inside(out: Path, relative: Path) -> Path:
    """``out / relative``, refusing a symbolic link or a file on the way below ``out``: writes and
    the rename of a directory must land inside ``--out``, not where a link points."""
    path = out
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            raise LavanyaError(f"{path}: a symbolic link inside {option('out')}; lavanya writes only inside {out} "
                               f"(remove the link, or give another {option('out')})")
        if path.exists() and not path.is_dir():
            raise LavanyaError(f"{path}: not a directory; remove it or give another {option('out')}")
    return path


def _refuse_foreign_files(directory: Path, deployed_names: list[str]) -> None:
    """Refuse to replace ``directory`` unless it is new, empty, or an earlier deploy: only the
    export manifest and names lavanya deploys there, as regular files (never weights)."""
    if not directory.is_dir():
        return
    entries = sorted(entry.name for entry in directory.iterdir())
    if entries and EXPORT_MANIFEST_NAME not in entries:
        foreign = entries
    else:
        allowed = {EXPORT_MANIFEST_NAME, *deployed_names}
        foreign = [name for name in entries if name not in allowed or not (directory / name).is_file()
                   or (directory / name).is_symlink()]
    weights = [name for name in foreign if name.endswith(".pth") or name == VOCODER_WEIGHTS_NAME]
    if weights:
        raise LavanyaError(f"{directory}: holds weights ({weights[0]}), so it is a model tree, not a deploy root; "
                           f"give another {option('out')}")
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise LavanyaError(f"{directory}: holds files lavanya did not deploy ({shown}); move them away or give "
                           f"another {option('out')}")


def _fill_deployed(scratch: Path, export: store.Export, source_dir: Path, names: list[str]) -> None:
    for name in dict.fromkeys(names):
        if (source_dir / name).is_file():
            copy_regular(source_dir / name, scratch / name, RESOURCE_MAX_BYTES)
    problems = store.manifest_problems(scratch, export.manifest, store.copied_sources(export.manifest))
    if problems:  # a source changed between the export and now
        raise LavanyaError(f"{source_dir}: {'; '.join(problems)} since the export; run lavanya export again")
    _place_export(export, scratch, _with_bare_stats_paths(scratch, export.manifest))
    for path in scratch.iterdir():
        path.chmod(0o644)


def _with_bare_stats_paths(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The deploy root's manifest, once ``directory``'s copy of ``config.yaml`` (already checked
    against ``manifest``) names its statistics by bare file name, as ``fix-config`` would:
    upstream's absolute ``stats_file`` paths point at the authors' machines, and ``lavanya
    verify`` reports them. Only the copy is rewritten, and only where a path is not bare; its
    size and SHA-256 then replace the config's entry under ``sources``, which loads and
    ``verify`` check the copy against (the cache's manifest and the model tree stay as they are)."""
    if CONFIG_NAME not in store.copied_sources(manifest):  # a vocoder: config.json
        return manifest
    path = directory / CONFIG_NAME
    text = read_config_text(path)
    try:
        fixed = fix_stats_paths_text(text)
    except ValueError:  # values the text edit cannot isolate: deployed as they are (verify names them)
        return manifest
    if fixed == text:
        return manifest
    data = fixed.encode("utf-8")
    replace_file(path, lambda handle: handle.write(data), mode=0o644)
    return {**manifest, "sources": {**manifest["sources"], **store.describe_sources({CONFIG_NAME: path})}}


def _copy_frontend(spec: VoiceSpec, out: Path) -> list[str]:
    """The front-end files the voice reads, copied where the tree has them: its phone
    dictionaries (its own, its variant's, English), its number words, the character map."""
    root = ModelRoot(spec.root)
    wanted = [Path("phone_dict") / spec.language, Path("phone_dict") / "english",
              Path("numToText") / f"{spec.language}.csv", *map(Path, FRONTEND_FILES)]
    if spec.variant:
        wanted.append(Path("phone_dict") / f"{spec.language}_{spec.variant.split('-')[0]}")
    copied = []
    for relative in wanted:
        source = require_inside(spec.root, root.resource(*relative.parts))
        if source.is_file():
            limit = PHONE_DICT_MAX_BYTES if relative.parts[0] == "phone_dict" else RESOURCE_MAX_BYTES
            directory = _inside(out, relative.parent)
            directory.mkdir(parents=True, exist_ok=True)
            copy_regular(source, directory / relative.name, limit)  # a link there is replaced, not followed
            copied.append(relative.as_posix())
    return copied


def _directory_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file())


__all__ = ["ensure_exports", "write_deploy_root", "place_beside_weights", "export_acoustic_graphs", "acoustic_summary",
           "describe_files", "write_export_manifest",
           "export_generator_graph", "check_sentences", "ExportOutcome", "MEL_MAX_ABS", "MIN_SNR_DB", "OPSET"]
