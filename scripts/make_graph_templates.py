#!/usr/bin/env python3
"""Make the graph templates the torch-free converter fills (lavanya_cli/speech/templates/).

Every published Fastspeech2_HS voice has the same FastSpeech2 (one ``tts_conf``; only the token
list and the mel bands, 80 or 160, differ) and one of two HiFi-GAN V1 vocoders. This script
exports each shape with the torch exporter ``lavanya export`` uses, from random weights, and
keeps the graph without its weights: every initializer is traced back to the checkpoint tensor
it is made from (as it is, transposed, or a convolution folded with its batch normalisation),
and the recipe is written to ``templates.json``. A second export from other random weights and
another vocabulary must give the same graph, the same recipes and the same constants, so no
weight and no vocabulary-dependent number is left in a template.

Usage: python scripts/make_graph_templates.py [--out DIR]   (default: the package's templates)
Needs lavanya[torch] and onnx. tests/test_convert.py runs it and compares with what is shipped.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "lavanya_cli" / "speech" / "templates"
TEMPLATE_VERSION = 1
# The published voices' tts_conf (all 82 configs of smtiitm/Fastspeech2_HS hold it).
TTS_CONF = {
    "adim": 384, "aheads": 2, "elayers": 4, "eunits": 1536, "dlayers": 4, "dunits": 1536,
    "positionwise_layer_type": "conv1d", "positionwise_conv_kernel_size": 3,
    "duration_predictor_layers": 2, "duration_predictor_chans": 256, "duration_predictor_kernel_size": 3,
    "postnet_layers": 5, "postnet_filts": 5, "postnet_chans": 256,
    "use_masking": True, "use_scaled_pos_enc": True,
    "encoder_normalize_before": True, "decoder_normalize_before": True, "reduction_factor": 1,
    "init_type": "xavier_uniform", "init_enc_alpha": 1.0, "init_dec_alpha": 1.0,
    "transformer_enc_dropout_rate": 0.2, "transformer_enc_positional_dropout_rate": 0.2,
    "transformer_enc_attn_dropout_rate": 0.2, "transformer_dec_dropout_rate": 0.2,
    "transformer_dec_positional_dropout_rate": 0.2, "transformer_dec_attn_dropout_rate": 0.2,
    "pitch_predictor_layers": 5, "pitch_predictor_chans": 256, "pitch_predictor_kernel_size": 5,
    "pitch_predictor_dropout": 0.5, "pitch_embed_kernel_size": 1, "pitch_embed_dropout": 0.0,
    "stop_gradient_from_pitch_predictor": True,
    "energy_predictor_layers": 2, "energy_predictor_chans": 256, "energy_predictor_kernel_size": 3,
    "energy_predictor_dropout": 0.5, "energy_embed_kernel_size": 1, "energy_embed_dropout": 0.0,
    "stop_gradient_from_energy_predictor": False,
}
# tts_conf keys that only shape training (dropout, initialisation, losses): a voice may differ
# in them and still fit.
TRAINING_ONLY = sorted(key for key in TTS_CONF if "dropout" in key or key.startswith(("init_", "stop_gradient"))
                       or key == "use_masking") + ["use_weighted_masking"]
ACOUSTIC_MELS = (80, 160)
_VOCODER_COMMON = {"resblock": "1", "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
                   "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]}
VOCODERS = {
    "hifigan-v1-8822": {**_VOCODER_COMMON, "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
                        "num_mels": 80},
    "hifigan-v1-8882": {**_VOCODER_COMMON, "upsample_rates": [8, 8, 8, 2], "upsample_kernel_sizes": [16, 16, 8, 4],
                        "num_mels": 160},
}
VOCABULARIES = (53, 78)  # two token-list sizes: what changes with the vocabulary must be a recipe
VOCAB = "vocab"
# ONNX files, but not weights: not named *.onnx, which model repositories (this one included)
# track with Git LFS.
SUFFIX = ".onnx-template"
BINS, DEFAULT_BINS = "bins", 1024 // 2 + 1  # n_fft // 2 + 1 frequency bins; ESPnet's default n_fft is 1024


def acoustic_config(n_mels: int, vocabulary: int) -> dict[str, Any]:
    tokens = ["<blank>", "<unk>", *(f"t{i}" for i in range(vocabulary - 3)), "<sos/eos>"]
    return {"token_list": tokens, "odim": None, "feats_extract": "fbank", "feats_extract_conf": {"n_mels": n_mels},
            "normalize": "global_mvn", "pitch_normalize": "global_mvn", "energy_normalize": "global_mvn",
            "tts": "fastspeech2", "tts_conf": copy.deepcopy(TTS_CONF)}


def randomize(module, seed: int) -> None:
    """Every floating-point parameter and buffer random and distinct, running variances
    positive, so that each initializer can be traced to one tensor by its values."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            values = torch.rand(tensor.shape, generator=generator) * 0.2 - 0.1
            if name.endswith("running_var"):
                values = values + 1.0
            tensor.copy_(values)


def _fused_conv_bn(module, prefix: str) -> dict[str, dict[str, Any]]:
    """For each convolution followed by batch normalisation in a ``Sequential`` of ``module``:
    the recipes of the fused weight and bias the exporter makes of them, and their values."""
    import torch

    found = {}
    for name, sequential in module.named_modules():
        if not isinstance(sequential, torch.nn.Sequential):
            continue
        layers = list(sequential.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(layers, layers[1:]):
            if isinstance(conv, torch.nn.Conv1d) and isinstance(bn, torch.nn.BatchNorm1d):
                conv_key = f"{prefix}{name}.{conv_name}"
                bn_key = f"{prefix}{name}.{bn_name}"
                recipe = {"conv": conv_key, "bn": bn_key, "eps": bn.eps, "conv_bias": conv.bias is not None}
                state = {k: v.detach().numpy() for k, v in [(f"{conv_key}.{n}", p) for n, p in conv.state_dict().items()]
                         + [(f"{bn_key}.{n}", p) for n, p in bn.state_dict().items()]}
                from lavanya_cli.speech.convert import fold_conv_bn

                weight, bias = fold_conv_bn(recipe, state.__getitem__)
                found[f"{conv_key}/weight"] = {"recipe": {"conv_bn": recipe, "part": "weight"}, "value": weight}
                found[f"{conv_key}/bias"] = {"recipe": {"conv_bn": recipe, "part": "bias"}, "value": bias}
    return found


def trace_initializers(model, state: dict[str, np.ndarray], fused: dict[str, dict[str, Any]],
                       eos: int | None) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Each initializer's recipe (in the graph's order), and the initializers that are
    constants (traced to no tensor)."""
    from onnx import numpy_helper

    recipes, constants = [], {}
    for initializer in model.graph.initializer:
        value = numpy_helper.to_array(initializer)
        recipe = _recipe(initializer.name, value, state, fused, eos)
        if recipe is None:
            constants[initializer.name] = value
        else:
            recipes.append({"name": initializer.name, "dims": list(value.shape), "data_type": int(initializer.data_type),
                            "recipe": recipe})
    return recipes, constants


def _recipe(name: str, value: np.ndarray, state, fused, eos) -> dict[str, Any] | None:
    if name == "eos_id":
        if eos is None or value.tolist() != [eos]:
            raise SystemExit(f"eos_id holds {value.tolist()}, not [{eos}]")
        return {"eos": True}
    for key, tensor in state.items():
        if tensor.shape == value.shape and np.array_equal(tensor, value):
            return {"param": key}
        if tensor.ndim == 2 and tensor.T.shape == value.shape and np.array_equal(tensor.T, value):
            return {"param": key, "transpose": True}
    for entry in fused.values():
        if entry["value"].shape == value.shape and np.allclose(entry["value"], value, rtol=1e-5, atol=1e-7):
            return entry["recipe"]
    if value.dtype.kind == "f" and value.size > 64:
        raise SystemExit(f"initializer {name} {value.shape} is traced to no tensor and is too large for a constant")
    return None


def _strip(model, recipes: list[dict[str, Any]]):
    """The model without the initializers the recipes make."""
    names = {entry["name"] for entry in recipes}
    kept = [initializer for initializer in model.graph.initializer if initializer.name not in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def _same(first: tuple, second: tuple, what: str) -> list[dict[str, Any]]:
    """Two traced exports (template bytes, recipes, constants) from other weights and another
    vocabulary agree, or the script stops; the recipes with the dimension that follows the
    vocabulary written as ``vocab``."""
    (bytes_a, recipes_a, constants_a), (bytes_b, recipes_b, constants_b) = first, second
    if bytes_a != bytes_b:
        raise SystemExit(f"{what}: the graph differs between exports from other weights or another vocabulary")
    if constants_a.keys() != constants_b.keys() or any(not np.array_equal(constants_a[k], constants_b[k])
                                                       for k in constants_a):
        raise SystemExit(f"{what}: a constant depends on the weights or the vocabulary")
    if len(recipes_a) != len(recipes_b):
        raise SystemExit(f"{what}: the recipes differ between exports")
    merged = []
    for a, b in zip(recipes_a, recipes_b):
        if {**a, "dims": None} != {**b, "dims": None}:
            raise SystemExit(f"{what}: the recipes differ between exports ({a['name']})")
        merged.append({**a, "dims": vocabulary_dims(a["dims"], b["dims"], f"{what} {a['name']}")})
    return merged


def vocabulary_dims(first: list[int], second: list[int], what: str) -> list[int | str]:
    """A shape from the two vocabularies' exports, the dimension that follows the vocabulary
    written as ``vocab``; any other difference stops the script."""
    if len(first) != len(second):
        raise SystemExit(f"{what}: the rank differs with the vocabulary")
    dims: list[int | str] = []
    for a, b in zip(first, second):
        if a == b:
            dims.append(a)
        elif (a, b) == VOCABULARIES:
            dims.append(VOCAB)
        else:
            raise SystemExit(f"{what}: a dimension changes with the vocabulary but is not its size")
    return dims


def _export_acoustic(n_mels: int, vocabulary: int, seed: int, scratch: Path):
    import onnx

    from lavanya_cli.checks.deep import espnet_shapes
    from lavanya_cli.speech.acoustic import fastspeech2_from_config
    from lavanya_cli.speech.export import export_acoustic_graphs

    config = acoustic_config(n_mels, vocabulary)
    fastspeech2 = fastspeech2_from_config(config)
    randomize(fastspeech2, seed)
    fastspeech2.eval()
    directory = scratch / f"acoustic-{n_mels}-{vocabulary}"
    directory.mkdir()
    export_acoustic_graphs(fastspeech2, directory)
    state = {f"tts.{k}": v.detach().numpy() for k, v in fastspeech2.state_dict().items()}
    fused = _fused_conv_bn(fastspeech2, "tts.")
    traced = {}
    for graph in ("acoustic_encoder.onnx", "acoustic_decoder.onnx"):
        model = onnx.load(directory / graph)
        recipes, constants = trace_initializers(model, state, fused, fastspeech2.eos)
        traced[graph] = (_strip(model, recipes).SerializeToString(), recipes, constants)
    shapes = espnet_shapes(config)
    return traced, shapes, {"n_mels": int(fastspeech2.odim), "adim": int(fastspeech2.feat_out.in_features),
                            "duration_offset": float(fastspeech2.duration_predictor.offset)}


def _export_vocoder(config: dict[str, Any], seed: int, scratch: Path):
    import onnx

    from lavanya_cli.speech.export import export_generator_graph
    from lavanya_cli.speech.vocoder import espnet_to_upstream_state, hifigan_from_config

    generator = hifigan_from_config(config, weight_norm=False)
    randomize(generator, seed)
    generator.eval()
    directory = scratch / f"vocoder-{'-'.join(map(str, config['upsample_rates']))}-{seed}"
    directory.mkdir()
    export_generator_graph(generator, config["num_mels"], directory)
    state = {k: v.detach().numpy() for k, v in generator.state_dict().items()}
    model = onnx.load(directory / "generator.onnx")
    recipes, constants = trace_initializers(model, state, {}, None)
    upstream = {k: list(v.shape) for k, v in espnet_to_upstream_state(generator.state_dict()).items()}
    return (_strip(model, recipes).SerializeToString(), recipes, constants), upstream


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def make_templates(out: Path) -> dict[str, Any]:
    """Write every template and ``templates.json`` into ``out``; the index written."""
    from lavanya_cli.speech.export import OPSET

    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"format": 1, "version": TEMPLATE_VERSION, "opset": OPSET, "graphs": {},
                             "acoustic": {"tts_conf": {k: v for k, v in TTS_CONF.items() if k not in TRAINING_ONLY},
                                          "training_only": TRAINING_ONLY, "n_mels": {}},
                             "vocoders": {}}
    with tempfile.TemporaryDirectory(prefix="lavanya-templates-") as scratch:
        scratch = Path(scratch)
        encoder_file = f"acoustic_encoder{SUFFIX}"
        for n_mels in ACOUSTIC_MELS:
            (first, shapes_a, facts), (second, shapes_b, _) = (_export_acoustic(n_mels, vocabulary, seed, scratch)
                                                               for seed, vocabulary in enumerate(VOCABULARIES, 1))
            decoder_file = f"acoustic_decoder_{n_mels}mel{SUFFIX}"
            for graph, file in (("acoustic_encoder.onnx", encoder_file), ("acoustic_decoder.onnx", decoder_file)):
                recipes = _same(first[graph], second[graph], f"{graph} ({n_mels} mels)")
                template = first[graph][0]
                entry = {"sha256": hashlib.sha256(template).hexdigest(), "initializers": recipes}
                if file in index["graphs"] and index["graphs"][file] != entry:
                    raise SystemExit(f"{file}: the encoder differs between {ACOUSTIC_MELS} mel bands")
                index["graphs"][file] = entry
                _write(out / file, template)
            if shapes_a.keys() != shapes_b.keys():
                raise SystemExit(f"the state dict's keys change with the vocabulary ({n_mels} mels)")
            state = {key: vocabulary_dims(list(shapes_a[key]), list(shapes_b[key]), key) for key in shapes_a}
            # the feature extractor's filter bank follows the config's n_fft (training only)
            state = {key: [BINS if key.startswith("feats_extract.") and d == DEFAULT_BINS else d for d in dims]
                     for key, dims in state.items()}
            index["acoustic"]["n_mels"][str(n_mels)] = {"encoder": encoder_file, "decoder": decoder_file,
                                                         "state": state, **facts}
        for name, config in VOCODERS.items():
            (first, upstream), (second, _) = (_export_vocoder(config, seed, scratch) for seed in (1, 2))
            recipes = _same(first, second, name)
            template = first[0]
            file = f"generator_{name.rsplit('-', 1)[1]}{SUFFIX}"
            index["graphs"][file] = {"sha256": _write(out / file, template), "initializers": recipes}
            index["vocoders"][name] = {"config": config, "graph": file, "state": upstream}
    text = json.dumps(index, sort_keys=True, separators=(",", ":")) + "\n"
    (out / "templates.json").write_text(text, encoding="utf-8")
    return index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write (default: %(default)s)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    index = make_templates(args.out)
    for name, entry in index["graphs"].items():
        size = (args.out / name).stat().st_size
        print(f"{name}: {size / 1024:.0f} KiB, {len(entry['initializers'])} weights filled by recipe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
