"""Upstream's HiFi-GAN vocoders (``config.json`` + ``generator``) on ESPnet's generator module.

Upstream stores the published HiFi-GAN V1 generator (jik876/hifi-gan): ``torch.load(generator)``
gives ``{"generator": state_dict}`` with weight-norm parameters under ``conv_pre``, ``ups.{i}``,
``resblocks.{k}.convs{1,2}.{m}`` and ``conv_post``. ESPnet's ``HiFiGANGenerator`` is the same
network (leaky ReLU 0.1 inside, default slope before the output conv, tanh out) under other names;
this module maps the names both ways so that inference and the demo voice's training share one
network definition. Only the transposed convolutions differ: ESPnet insists on kernel = 2 x rate,
while upstream's 48 kHz vocoders use kernel 8 at rate 8, so their geometry is taken from
``config.json`` (padding ``(k - u) // 2``, as upstream builds them).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LavanyaError, one_line
from ..fileio import VOCODER_CONFIG_MAX_BYTES, read_json
from ..modeltree.lfs_pointer import require_content
from .torch_weights import load_weights

if TYPE_CHECKING:
    import torch

RESTORE_VOCODER_CONFIG = "restore the vocoder's config.json from its release"
CONFIG_FIELDS = (
    "resblock",
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "num_mels",
    "hop_size",
    "sampling_rate",
)

# (upstream layer, ESPnet layer) name patterns; each layer holds a weight (plain or weight-norm)
# and a bias.
_UPSTREAM_TO_ESPNET = (
    (r"conv_pre", r"input_conv"),
    (r"ups\.(\d+)", r"upsamples.\1.1"),
    (r"resblocks\.(\d+)\.(convs[12])\.(\d+)", r"blocks.\1.\2.\3.1"),
    (r"conv_post", r"output_conv.1"),
)
_ESPNET_TO_UPSTREAM = (
    (r"input_conv", r"conv_pre"),
    (r"upsamples\.(\d+)\.1", r"ups.\1"),
    (r"blocks\.(\d+)\.(convs[12])\.(\d+)\.1", r"resblocks.\1.\2.\3"),
    (r"output_conv\.1", r"conv_post"),
)
# Parameter names a convolution's weight may be stored under: plain, old-style weight norm
# (torch.nn.utils.weight_norm, what upstream saved) and parametrized weight norm (newer torch).
_PARAM_NAMES = {
    "weight": "weight",
    "weight_g": "g",
    "weight_v": "v",
    "parametrizations.weight.original0": "g",
    "parametrizations.weight.original1": "v",
    "bias": "bias",
}


# Settings a voice and its vocoder must share: (config.yaml feats_extract_conf key, config.json key, name).
SHARED_SETTINGS = (("fs", "sampling_rate", "sample rate"), ("n_mels", "num_mels", "mel bands"),
                   ("hop_length", "hop_size", "hop length"))


def vocoder_mismatches(config: dict[str, Any], vocoder_config: dict[str, Any]) -> list[str]:
    """How a voice's ``config.yaml`` and its vocoder's ``config.json`` disagree, one phrase per
    setting (empty when they fit): the wrong vocoder makes noise without any error."""
    features = config.get("feats_extract_conf") or {}
    return [f"{name} {features[ours]} here, {vocoder_config[theirs]} in the vocoder"
            for ours, theirs, name in SHARED_SETTINGS
            if isinstance(features.get(ours), int) and isinstance(vocoder_config.get(theirs), int)
            and features[ours] != vocoder_config[theirs]]


# Bounds on a vocoder config.json's numbers: far beyond every published HiFi-GAN, and small
# enough that a hostile config cannot make the generator ask for gigabytes.
_INT_BOUNDS = {"upsample_initial_channel": 4096, "num_mels": 512, "hop_size": 4096, "sampling_rate": 192_000}
_LIST_BOUNDS = {"upsample_rates": 64, "upsample_kernel_sizes": 128, "resblock_kernel_sizes": 64}
_MAX_LAYERS = 8
_DILATION_MAX = 64


def read_hifigan_config(path: Path) -> dict[str, Any]:
    """Parse and check a vocoder ``config.json``; every problem is one line naming the file."""
    path = Path(path)
    require_content(path, "HiFi-GAN config")
    try:
        config = read_json(path, VOCODER_CONFIG_MAX_BYTES, "the HiFi-GAN config", RESTORE_VOCODER_CONFIG)
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot read the vocoder config ({one_line(exc)})") from None
    if not isinstance(config, dict):
        raise LavanyaError(f"{path}: vocoder config is not a JSON object")
    missing = [name for name in CONFIG_FIELDS if name not in config]
    if missing:
        raise LavanyaError(f"{path}: vocoder config lacks {', '.join(missing)}")
    if str(config["resblock"]) != "1":
        raise LavanyaError(f"{path}: resblock {config['resblock']!r} is not supported (only \"1\", HiFi-GAN V1)")
    _check_sizes(path, config)
    rates, kernels = config["upsample_rates"], config["upsample_kernel_sizes"]
    if len(rates) != len(kernels) or len(config["resblock_kernel_sizes"]) != len(config["resblock_dilation_sizes"]):
        raise LavanyaError(f"{path}: vocoder config lists of upsampling or residual layers differ in length")
    product = 1
    for rate in rates:
        product *= rate
    if product != config["hop_size"]:
        raise LavanyaError(f"{path}: upsample_rates multiply to {product}, not hop_size {config['hop_size']}")
    return config


def _check_sizes(path: Path, config: dict[str, Any]) -> None:
    """Every size in the config a whole number within its bound; every list 1 to 8 layers."""
    for name, bound in _INT_BOUNDS.items():
        _whole(path, name, config[name], bound)
    for name, bound in _LIST_BOUNDS.items():
        for value in _layers(path, name, config[name]):
            _whole(path, f"an entry of {name}", value, bound)
    for dilations in _layers(path, "resblock_dilation_sizes", config["resblock_dilation_sizes"]):
        for value in _layers(path, "each of resblock_dilation_sizes", dilations):
            _whole(path, "a dilation", value, _DILATION_MAX)


def _layers(path: Path, name: str, value: Any) -> list:
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_LAYERS:
        raise LavanyaError(f"{path}: {name} must be a list of 1 to {_MAX_LAYERS} entries")
    return value


def _whole(path: Path, name: str, value: Any, bound: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= bound):
        raise LavanyaError(f"{path}: {name} must be a whole number from 1 to {bound}, not {str(value)[:40]}")


def hifigan_from_config(config: dict[str, Any], weight_norm: bool = True) -> "torch.nn.Module":
    """ESPnet's ``HiFiGANGenerator`` shaped as ``config`` (a parsed upstream ``config.json``).

    With ``weight_norm`` (for training) the convolutions carry ``weight_g``/``weight_v`` as
    upstream's files do; without it (for inference) they hold plain weights.
    """
    import torch
    from espnet2.gan_tts.hifigan import HiFiGANGenerator

    rates = list(config["upsample_rates"])
    generator = HiFiGANGenerator(
        in_channels=config["num_mels"],
        out_channels=1,
        channels=config["upsample_initial_channel"],
        kernel_size=7,
        upsample_scales=rates,
        upsample_kernel_sizes=[2 * rate for rate in rates],
        resblock_kernel_sizes=list(config["resblock_kernel_sizes"]),
        resblock_dilations=[list(d) for d in config["resblock_dilation_sizes"]],
        use_additional_convs=True,
        bias=True,
        nonlinear_activation="LeakyReLU",
        nonlinear_activation_params={"negative_slope": 0.1},
        use_weight_norm=False,
    )
    channels = config["upsample_initial_channel"]
    for i, (rate, kernel) in enumerate(zip(rates, config["upsample_kernel_sizes"])):
        generator.upsamples[i][1] = torch.nn.ConvTranspose1d(
            channels // 2**i, channels // 2 ** (i + 1), kernel, rate, padding=(kernel - rate) // 2
        )
    generator.reset_parameters()
    if weight_norm:
        with warnings.catch_warnings():  # torch.nn.utils.weight_norm is deprecated, but it is
            warnings.simplefilter("ignore")  # what gives upstream's weight_g / weight_v names
            generator.apply_weight_norm()
    return generator


def upstream_to_espnet_state(state: dict[str, Any], weight_norm: bool = False, norm: Callable | None = None
                             ) -> dict[str, Any]:
    """Upstream generator names -> ``hifigan_from_config(config, weight_norm)`` names. The
    tensors are torch's, or numpy arrays with ``norm`` the numpy norm over every dimension but
    the first (the torch-free converter); weight norm is folded as ``g * v / norm(v)`` for both."""
    return _convert(state, _UPSTREAM_TO_ESPNET, weight_norm, norm or _norm_except_dim0)


def espnet_to_upstream_state(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """ESPnet generator names -> upstream names, always with ``weight_g``/``weight_v`` as upstream
    loads them (its ``Generator`` applies weight norm before ``load_state_dict``)."""
    return _convert(state, _ESPNET_TO_UPSTREAM, True, _norm_except_dim0)


def save_upstream_generator(state: dict[str, "torch.Tensor"], path: Path) -> None:
    """Write an ESPnet generator state as upstream's ``generator`` file, atomically."""
    import torch

    from ..fileio import replace_file

    upstream = {"generator": espnet_to_upstream_state(state)}
    replace_file(Path(path), lambda handle: torch.save(upstream, handle))


def load_hifigan(config_path: Path, generator_path: Path, device: str = "cpu") -> "torch.nn.Module":
    """The vocoder upstream ships, ready for inference: mel ``[B, num_mels, T]`` -> audio
    ``[B, 1, T * hop_size]`` in [-1, 1], weight norm folded into plain weights."""
    config = read_hifigan_config(Path(config_path))
    generator_path = Path(generator_path)
    require_content(generator_path, "HiFi-GAN generator")
    checkpoint = load_weights(generator_path, "the HiFi-GAN generator")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("generator"), dict):
        raise LavanyaError(f'{generator_path}: expected {{"generator": state_dict}} as upstream saves it')
    generator = hifigan_from_config(config, weight_norm=False)
    state = upstream_to_espnet_state(checkpoint["generator"], weight_norm=False)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise LavanyaError(f"{generator_path}: does not match {config_path} ({one_line(exc)})") from None
    return generator.to(device).eval()


def _convert(state: dict[str, Any], patterns, weight_norm: bool, norm: Callable) -> dict[str, Any]:
    layers: dict[str, dict[str, "torch.Tensor"]] = {}
    for key, tensor in state.items():
        layer, role = _split_key(key)
        renamed = None
        for source, target in patterns:
            if re.fullmatch(source, layer):
                renamed = re.sub(f"^{source}$", target, layer)
                break
        if renamed is None:
            raise LavanyaError(f"generator state has a parameter this network lacks: {key}")
        layers.setdefault(renamed, {})[role] = tensor
    converted: dict[str, "torch.Tensor"] = {}
    for layer, params in layers.items():
        for name, tensor in _weight_params(layer, params, weight_norm, norm).items():
            converted[f"{layer}.{name}"] = tensor
    return converted


def _split_key(key: str) -> tuple[str, str]:
    for name, role in _PARAM_NAMES.items():
        if key.endswith("." + name):
            return key[: -len(name) - 1], role
    raise LavanyaError(f"generator state has a parameter of unknown kind: {key}")


def _weight_params(layer: str, params: dict[str, Any], weight_norm: bool, norm: Callable) -> dict[str, Any]:
    """One convolution's parameters in the requested form (weight norm over dim 0, torch's default)."""
    out = {"bias": params["bias"]} if "bias" in params else {}
    if "weight" in params and ("g" in params or "v" in params):
        raise LavanyaError(f"generator state holds layer {layer}'s weight twice: plain and as weight norm's g and v")
    if "g" in params and "v" in params:
        g, v = params["g"], params["v"]
        if weight_norm:
            return {**out, "weight_g": g, "weight_v": v}
        return {**out, "weight": g * v / norm(v)}
    if "weight" in params:
        weight = params["weight"]
        if weight_norm:
            return {**out, "weight_g": norm(weight), "weight_v": weight}
        return {**out, "weight": weight}
    raise LavanyaError(f"generator state has no complete weight for layer {layer}")


def _norm_except_dim0(tensor: "torch.Tensor") -> "torch.Tensor":
    return tensor.norm(dim=tuple(range(1, tensor.dim())), keepdim=True)
