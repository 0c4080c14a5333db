"""A voice's checkpoints to ONNX without torch: the graph templates shipped in the package,
filled with the weights read by ``modeltree.checkpoint`` (no pickle runs).

Every published Fastspeech2_HS voice has one FastSpeech2 architecture (its ``tts_conf``; the
token list and the mel bands, 80 or 160, differ) and one of two HiFi-GAN V1 vocoders. A
template is the graph the torch exporter writes for that architecture (``export``), without its
weights; ``templates.json`` says, for each weight, which checkpoint tensor it is made of: as it
is, transposed, or a convolution folded with the batch normalisation after it, as the torch
exporter folds them. ``scripts/make_graph_templates.py`` makes the templates; a test makes them
again and compares.

A graph is written as a stream: the template's bytes, then each weight as an ONNX tensor
record, the acoustic model's read from the checkpoint one tensor at a time, so memory stays near
the largest tensor (the ``onnx`` package would hold every weight twice); the vocoder's 56 MB are
folded at once. A voice outside the templates (another ``tts_conf``, vocoder shape, or tensors
missing, extra or misshapen) is ``NotConvertible``, one line saying what differs;
``lavanya[torch]`` exports such voices.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import EXIT_PROBLEMS, LavanyaError
from ..fileio import format_size
from ..modeltree.checkpoint import (RESTORE_WEIGHTS, Checkpoint, CheckpointRefused, LegacyCheckpoint, open_checkpoint,
                                    tensor_dict)
from ..modeltree.config import STATS_ENTRIES, token_list
from ..modeltree.layout import DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME, GENERATOR_GRAPH_NAME, VocoderSpec, VoiceSpec
from ..modeltree.weights import require_weights
from .acoustic import output_dim, unsupported_setting
from .graphs import GRAPH_MAX_BYTES
from .vocoder import read_hifigan_config, upstream_to_espnet_state

TEMPLATES = Path(__file__).resolve().parent / "templates"
TORCH_EXTRA = "lavanya[torch] exports it: python3 -m pip install 'lavanya[torch]'"
VOCAB, BINS = "vocab", "bins"
# config.json settings that shape the generator's graph.
VOCODER_SHAPE = ("resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
                 "resblock_kernel_sizes", "resblock_dilation_sizes", "num_mels")
_FLOAT, _INT64 = 1, 7  # ONNX element types
_ITEM_BYTES = {_FLOAT: 4, _INT64: 8}
_EXAMPLES = 3
# The largest mel count, FFT size or odim a config may give (published: 80-160 mels, n_fft 8192).
CONFIG_NUMBER_MAX = 65536


class NotConvertible(LavanyaError):
    """A voice the templates do not describe; the message says what differs."""


@functools.cache
def templates() -> dict[str, Any]:
    """The index of the shipped templates (``templates.json``)."""
    return json.loads((TEMPLATES / "templates.json").read_text(encoding="utf-8"))


def template_version() -> str:
    return f"fs2hs-{templates()['version']}"


# -- fitting a voice to a template --------------------------------------------------------

def acoustic_template(config: dict[str, Any], where: Path) -> dict[str, Any]:
    """The acoustic templates' entry for ``config`` (by its mel bands), or NotConvertible."""
    index = templates()["acoustic"]
    if setting := unsupported_setting(config):
        raise NotConvertible(f"{where}: {setting} is outside the graph templates; {TORCH_EXTRA}")
    for key in ("tts_conf", "feats_extract_conf"):
        if not isinstance(config.get(key) or {}, dict):
            raise LavanyaError(f"{where}: {key} is not a mapping; restore the config the voice was trained with")
    ours = {k: v for k, v in (config.get("tts_conf") or {}).items() if k not in index["training_only"]}
    theirs = index["tts_conf"]
    differing = [f"{key} {ours.get(key, 'unset')} (the templates: {theirs.get(key, 'unset')})"
                 for key in sorted(ours.keys() | theirs.keys()) if ours.get(key, "unset") != theirs.get(key, "unset")]
    if differing:
        raise NotConvertible(f"{where}: tts_conf differs from the published voices' in {', '.join(differing[:_EXAMPLES])}"
                             f"{' and more' if len(differing) > _EXAMPLES else ''}; {TORCH_EXTRA}")
    features = config.get("feats_extract_conf") or {}
    for key, value in (("odim", config.get("odim")), ("feats_extract_conf.n_mels", features.get("n_mels")),
                       ("feats_extract_conf.n_fft", features.get("n_fft"))):
        if value is not None and not (type(value) is int and 0 < value <= CONFIG_NUMBER_MAX):
            raise LavanyaError(f"{where}: {key} is {str(value)[:40]!r}, not a whole number from 1 to "
                               f"{CONFIG_NUMBER_MAX}; restore the config the voice was trained with")
    entry = index["n_mels"].get(str(output_dim(config)))
    if entry is None:
        raise NotConvertible(f"{where}: {output_dim(config)} mel bands, the graph templates have "
                             f"{' or '.join(sorted(index['n_mels'], key=int))}; {TORCH_EXTRA}")
    return entry


def vocoder_template(config: dict[str, Any], where: Path) -> tuple[str, dict[str, Any]]:
    """The vocoder template (name, entry) whose shape ``config`` (a parsed config.json) has."""
    for name, entry in templates()["vocoders"].items():
        if all(str(config.get(key)) == str(entry["config"][key]) for key in VOCODER_SHAPE):
            return name, entry
    shapes = " or ".join(f"{e['config']['upsample_rates']} with {e['config']['num_mels']} mels"
                         for e in templates()["vocoders"].values())
    raise NotConvertible(f"{where}: HiFi-GAN upsample_rates {config.get('upsample_rates')} with "
                         f"{config.get('num_mels')} mels and these layers are outside the graph templates ({shapes}); "
                         f"{TORCH_EXTRA}")


def shape_mismatch(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> str | None:
    """How a checkpoint's tensor shapes differ from a model's (missing, unexpected, misshapen
    tensors, a few of each named), or None when they match: the one wording ``convert`` and
    ``verify --deep`` use."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} {tuple(found[k])} vs {tuple(expected[k])}" for k in expected
             if k in found and tuple(found[k]) != tuple(expected[k])]
    parts = [f"{len(items)} {label} ({', '.join(items[:_EXAMPLES])}{', …' if len(items) > _EXAMPLES else ''})"
             for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong)) if items]
    return "; ".join(parts) or None


def expected_state(entry: dict[str, Any], vocabulary: int, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensors (by state-dict key) a checkpoint of this template's architecture holds: the
    template's (made with every normaliser on) less those of normalisers ``config`` turns off."""
    off = tuple(f"{key.removesuffix('_conf')}." for key in STATS_ENTRIES
                if config.get(key.removesuffix("_conf")) != "global_mvn")
    bins = int((config.get("feats_extract_conf") or {}).get("n_fft", 1024)) // 2 + 1
    return {key: _dims(dims, vocabulary, bins) for key, dims in entry["state"].items() if not key.startswith(off)}


def _dims(dims: list[int | str], vocabulary: int, bins: int = 0) -> tuple[int, ...]:
    """A template's shape with its ``vocab`` (token list) and ``bins`` (the feature extractor's
    frequency bins) dimensions given."""
    return tuple(vocabulary if d == VOCAB else bins if d == BINS else int(d) for d in dims)


def acoustic_fit(config: dict[str, Any], config_path: Path) -> tuple[dict[str, Any], int, dict[str, tuple[int, ...]]]:
    """For a config the acoustic templates describe: their entry, the vocabulary's size and the
    tensors its checkpoint must hold (what ``convert`` fills and ``verify --deep`` compares);
    NotConvertible otherwise."""
    entry = acoustic_template(config, config_path)
    tokens = token_list(config, config_path.parent)
    if not tokens:
        raise NotConvertible(f"{config_path}: no token_list; {TORCH_EXTRA}")
    return entry, len(tokens), expected_state(entry, len(tokens), config)


def generator_state(entry: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensors a generator of this vocoder template holds, named as upstream saves them."""
    return {key: tuple(shape) for key, shape in entry["state"].items()}


# -- writing a graph ----------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if byte < 0x80:
            return value, position


def _tensor_header(name: str, dims: tuple[int, ...], data_type: int, nbytes: int) -> bytes:
    """A TensorProto up to its raw data's bytes: dims (1), data_type (2), name (8), raw_data (9)."""
    encoded = name.encode("utf-8")
    return (b"".join(b"\x08" + _varint(d) for d in dims) + b"\x10" + _varint(data_type)
            + b"\x42" + _varint(len(encoded)) + encoded + b"\x4a" + _varint(nbytes))


def _raw_bytes(dims: tuple[int, ...], data_type: int) -> int:
    """The bytes of a weight's raw data: its elements times their size."""
    return int(np.prod(dims, dtype=np.int64)) * _ITEM_BYTES[data_type]


def write_filled_graph(template: bytes, weights: list[tuple[str, tuple[int, ...], int]],
                       values: Callable[[int], np.ndarray], handle: BinaryIO) -> None:
    """The template ModelProto with each weight (name, dims, element type) appended to its
    graph as an initializer; ``values(i)`` gives weight i's array, asked for one at a time."""
    nbytes = [_raw_bytes(dims, data_type) for _, dims, data_type in weights]
    headers = [_tensor_header(name, dims, data_type, size) for (name, dims, data_type), size in zip(weights, nbytes)]
    sizes = [len(header) + size for header, size in zip(headers, nbytes)]
    position = 0
    while position < len(template):
        start = position
        key, position = _read_varint(template, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _read_varint(template, position)
        elif wire == 2:
            length, position = _read_varint(template, position)
            if number == 7:  # the graph
                body = template[position:position + length]
                added = sum(1 + len(_varint(size)) + size for size in sizes)
                handle.write(b"\x3a" + _varint(length + added) + body)
                for index, (header, size) in enumerate(zip(headers, sizes)):
                    handle.write(b"\x2a" + _varint(size) + header)
                    handle.write(memoryview(values(index)).cast("B"))  # the array's bytes, not a copy
                position += length
                continue
            position += length
        else:
            raise LavanyaError(f"graph template: unexpected protobuf wire type {wire}")
        handle.write(template[start:position])


def fill_template(graph_file: str, vocabulary: int | None, source: Callable[[dict[str, Any]], np.ndarray],
                  target: Path, where: Path) -> None:
    """Write ``target`` from template ``graph_file``: each weight from ``source(recipe)`` (an
    array of the recipe's dims, checked), the eos id from the vocabulary. A graph larger than
    lavanya reads (a token list of hundreds of thousands) is refused before anything is read,
    naming ``where``, the file it would be made from."""
    entry = templates()["graphs"][graph_file]
    initializers = entry["initializers"]
    weights = [(item["name"], _dims(item["dims"], vocabulary or 0), item["data_type"]) for item in initializers]
    template = (TEMPLATES / graph_file).read_bytes()
    size = len(template) + sum(_raw_bytes(dims, data_type) for _, dims, data_type in weights)
    if size > GRAPH_MAX_BYTES:
        raise LavanyaError(f"{where}: its {target.name} would be {format_size(size)} (a token list of {vocabulary} "
                           f"tokens?), more than the {format_size(GRAPH_MAX_BYTES)} lavanya reads; no published "
                           "voice comes near", EXIT_PROBLEMS)

    def values(index: int) -> np.ndarray:
        recipe, (name, dims, data_type) = initializers[index]["recipe"], weights[index]
        if recipe.get("eos"):
            value = np.array([vocabulary - 1], dtype=np.int64)
        else:
            value = source(recipe)
        if tuple(value.shape) != dims:
            raise NotConvertible(f"weight {name}: shape {tuple(value.shape)} where the template has {dims}; "
                                 f"{TORCH_EXTRA}")
        return np.ascontiguousarray(value, dtype="<i8" if data_type == _INT64 else "<f4")  # ONNX's raw data: little-endian

    with open(target, "wb") as handle:
        write_filled_graph(template, weights, values, handle)


# -- recipes ------------------------------------------------------------------------------

def fold_conv_bn(recipe: dict[str, Any], tensor: Callable[[str], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A convolution and the batch normalisation after it as one convolution, the way torch's
    ONNX exporter folds them in inference mode: scale = gamma / sqrt(var + eps), weight times
    scale per output channel, bias = beta - mean * scale (plus the convolution's own bias,
    scaled, where it has one)."""
    conv, bn = recipe["conv"], recipe["bn"]
    scale = tensor(f"{bn}.weight") / np.sqrt(tensor(f"{bn}.running_var") + np.float32(recipe["eps"]))
    weight = tensor(f"{conv}.weight")
    weight = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    bias = tensor(f"{bn}.bias") - tensor(f"{bn}.running_mean") * scale
    if recipe.get("conv_bias"):
        bias = bias + tensor(f"{conv}.bias") * scale
    return weight.astype(np.float32), bias.astype(np.float32)


def make_weight(recipe: dict[str, Any], tensor: Callable[[str], np.ndarray]) -> np.ndarray:
    """One weight of a graph from its recipe and the checkpoint's tensors (by key)."""
    if "conv_bn" in recipe:
        weight, bias = fold_conv_bn(recipe["conv_bn"], tensor)
        return weight if recipe["part"] == "weight" else bias
    value = tensor(recipe["param"])
    return value.T if recipe.get("transpose") else value


# -- the acoustic model and the vocoder ---------------------------------------------------

@dataclass(frozen=True)
class ConvertedAcoustic:
    """What the manifest says of a converted acoustic model."""

    eos: int
    duration_offset: float
    n_mels: int
    adim: int
    templates: tuple[str, str]  # the encoder's and the decoder's


def convert_acoustic(spec: VoiceSpec, config: dict[str, Any], directory: Path) -> ConvertedAcoustic:
    """Write the voice's encoder and decoder graphs into ``directory`` from ``model.pth``."""
    entry, vocabulary, expected = acoustic_fit(config, spec.config_path)
    weights = require_weights(spec)
    with _open_checkpoint(weights, "the acoustic model") as checkpoint:
        records = tensor_dict(checkpoint.root)
        if records is None:
            raise NotConvertible(f"{weights}: not a state dict of tensors (a training checkpoint?); {TORCH_EXTRA}")
        found = {key: record.shape for key, record in records.items()}
        if why := shape_mismatch(found, expected):
            raise NotConvertible(f"{weights}: does not match the published architecture: {why}; {TORCH_EXTRA}")

        def tensor(key: str) -> np.ndarray:
            return _float32(checkpoint.array(records[key]))

        for graph_file, name in ((entry["encoder"], ENCODER_GRAPH_NAME), (entry["decoder"], DECODER_GRAPH_NAME)):
            fill_template(graph_file, vocabulary, lambda recipe: make_weight(recipe, tensor), directory / name, weights)
    return ConvertedAcoustic(eos=vocabulary - 1, duration_offset=entry["duration_offset"], n_mels=entry["n_mels"],
                             adim=entry["adim"], templates=(entry["encoder"], entry["decoder"]))


def convert_vocoder(vocoder: VocoderSpec, directory: Path) -> str:
    """Write the vocoder's generator graph into ``directory`` from upstream's ``generator``
    (weight normalisation folded as the torch engine folds it, on the whole state at once: a
    published generator is 56 MB); the template's name."""
    config = read_hifigan_config(vocoder.config_path)
    name, entry = vocoder_template(config, vocoder.config_path)
    with _open_checkpoint(vocoder.generator_path, "the HiFi-GAN generator") as checkpoint:
        root = checkpoint.root
        records = tensor_dict(root.get("generator")) if isinstance(root, dict) else None
        if records is None:
            raise NotConvertible(f"{vocoder.generator_path}: not a HiFi-GAN generator checkpoint (a dict with a "
                                 f"'generator' state dict); {TORCH_EXTRA}")
        found = {key: record.shape for key, record in records.items()}
        upstream = generator_state(entry)
        if why := shape_mismatch(upstream_names(found, upstream), upstream):
            raise NotConvertible(f"{vocoder.generator_path}: does not match {vocoder.config_path}: {why}; {TORCH_EXTRA}")
        try:
            state = upstream_to_espnet_state({key: _float32(checkpoint.array(record))
                                              for key, record in records.items()}, norm=norm_except_dim0)
        except CheckpointRefused:
            raise
        except LavanyaError as exc:  # a layer's weight given twice, or incomplete
            raise LavanyaError(f"{vocoder.generator_path}: {exc.message}; {RESTORE_WEIGHTS}", EXIT_PROBLEMS) from None
    fill_template(entry["graph"], None, lambda recipe: make_weight(recipe, state.__getitem__),
                  directory / GENERATOR_GRAPH_NAME, vocoder.generator_path)
    return name


def _open_checkpoint(path: Path, what: str) -> Checkpoint:
    """``open_checkpoint``, with torch's pre-1.6 format NotConvertible: the torch export reads it."""
    try:
        return open_checkpoint(path, what)
    except LegacyCheckpoint as exc:
        raise NotConvertible(f"{path}: {exc.reason}; {TORCH_EXTRA}") from None


def upstream_names(found: dict[str, tuple[int, ...]],
                   upstream: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """A generator's tensor shapes named as upstream saves them (weight norm's ``weight_g`` and
    ``weight_v``, the names ``expected`` has): a plain ``weight`` (already folded) or torch's
    parametrized names stand for them."""
    named = {}
    for key, shape in found.items():
        layer, _, role = key.rpartition(".")
        if key.endswith(".parametrizations.weight.original0"):
            named[key.removesuffix(".parametrizations.weight.original0") + ".weight_g"] = shape
        elif key.endswith(".parametrizations.weight.original1"):
            named[key.removesuffix(".parametrizations.weight.original1") + ".weight_v"] = shape
        elif role == "weight" and f"{layer}.weight_v" in upstream:
            named[f"{layer}.weight_v"] = shape
            named[f"{layer}.weight_g"] = upstream[f"{layer}.weight_g"]
        else:
            named[key] = shape
    return named


def norm_except_dim0(value: np.ndarray) -> np.ndarray:
    """Weight normalisation's norm over every dimension but the first, in float64 then float32
    (torch reduces in float32; the two differ by rounding only)."""
    axes = tuple(range(1, value.ndim))
    return np.sqrt(np.sum(np.square(value, dtype=np.float64), axis=axes, keepdims=True)).astype(np.float32)


def _float32(value: np.ndarray) -> np.ndarray:
    return value if value.dtype == np.float32 else value.astype(np.float32)


__all__ = ["NotConvertible", "convert_acoustic", "convert_vocoder", "acoustic_template", "vocoder_template",
           "shape_mismatch", "upstream_names", "expected_state", "acoustic_fit", "generator_state", "fold_conv_bn", "template_version", "templates", "TORCH_EXTRA"]
