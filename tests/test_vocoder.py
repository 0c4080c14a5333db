"""The vocoder loader against an independent implementation of the published HiFi-GAN V1 generator."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lavanya_cli.errors import LavanyaError
from lavanya_cli.speech.vocoder import hifigan_from_config, load_hifigan, save_upstream_generator

CONFIG_22K = {
    "resblock": "1",
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "num_mels": 80,
    "hop_size": 256,
    "sampling_rate": 22050,
}
# Upstream's 48 kHz vocoders: kernel 8 at rate 8, which ESPnet's own constructor refuses.
CONFIG_48K = {**CONFIG_22K, "upsample_rates": [8, 8, 8, 2], "upsample_kernel_sizes": [16, 16, 8, 4],
              "num_mels": 160, "hop_size": 1024, "sampling_rate": 48000}


def _weight_norm(module: nn.Module, parametrized: bool) -> nn.Module:
    if parametrized:
        return nn.utils.parametrizations.weight_norm(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nn.utils.weight_norm(module)


class PublishedResBlock1(nn.Module):
    """ResBlock1 of the HiFi-GAN paper's code: dilated conv, then undilated conv, per dilation."""

    def __init__(self, channels, kernel, dilations, parametrized):
        super().__init__()
        self.convs1 = nn.ModuleList(
            _weight_norm(nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=(kernel * d - d) // 2),
                         parametrized)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            _weight_norm(nn.Conv1d(channels, channels, kernel, 1, padding=(kernel - 1) // 2), parametrized)
            for _ in dilations
        )

    def forward(self, x):
        for first, second in zip(self.convs1, self.convs2):
            residual = second(F.leaky_relu(first(F.leaky_relu(x, 0.1)), 0.1))
            x = x + residual
        return x


class PublishedGenerator(nn.Module):
    """The published V1 generator, parameter names as upstream's ``generator`` files hold them."""

    def __init__(self, h, parametrized=False):
        super().__init__()
        channels = h["upsample_initial_channel"]
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.conv_pre = _weight_norm(nn.Conv1d(h["num_mels"], channels, 7, 1, padding=3), parametrized)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
            self.ups.append(_weight_norm(
                nn.ConvTranspose1d(channels // 2**i, channels // 2 ** (i + 1), kernel, rate,
                                   padding=(kernel - rate) // 2), parametrized))
            for kernel_size, dilations in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(PublishedResBlock1(channels // 2 ** (i + 1), kernel_size, dilations,
                                                         parametrized))
        self.conv_post = _weight_norm(nn.Conv1d(channels // 2 ** len(self.ups), 1, 7, 1, padding=3), parametrized)

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def _write_vocoder(directory, config, state):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    torch.save({"generator": state}, directory / "generator")
    return directory / "config.json", directory / "generator"


@pytest.mark.parametrize("config", [CONFIG_22K, CONFIG_48K], ids=["22k", "48k"])
@pytest.mark.parametrize("parametrized", [False, True], ids=["weight_g", "parametrizations"])
def test_loader_matches_published_generator(tmp_path, config, parametrized):
    torch.manual_seed(0)
    reference = PublishedGenerator(config, parametrized).eval()
    paths = _write_vocoder(tmp_path, config, reference.state_dict())
    mel = torch.randn(2, config["num_mels"], 4)

    vocoder = load_hifigan(*paths)
    with torch.no_grad():
        expected, audio = reference(mel), vocoder(mel)

    assert audio.shape == (2, 1, 4 * config["hop_size"])
    assert expected.std() > 1e-3  # a varying signal, not a constant
    torch.testing.assert_close(audio, expected, atol=1e-4, rtol=0)
    assert not any("weight_g" in name or "parametrizations" in name for name, _ in vocoder.named_parameters())


def test_training_module_saves_what_the_published_generator_loads(tmp_path):
    torch.manual_seed(1)
    trained = hifigan_from_config(CONFIG_22K, weight_norm=True).eval()
    for parameter in trained.parameters():  # move off ESPnet's tiny init so outputs differ visibly
        parameter.data.normal_(0, 0.3)
    save_upstream_generator(trained.state_dict(), tmp_path / "generator")

    reference = PublishedGenerator(CONFIG_22K).eval()
    reference.load_state_dict(torch.load(tmp_path / "generator", weights_only=True)["generator"], strict=True)
    mel = torch.randn(1, 80, 5)
    with torch.no_grad():
        torch.testing.assert_close(trained(mel), reference(mel), atol=1e-5, rtol=0)


def test_lfs_pointer_generator_names_the_pull_command(tmp_path):
    config_path, generator_path = _write_vocoder(tmp_path, CONFIG_22K, {})
    generator_path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:" + "a" * 64 + "\nsize 55000000\n"
    )
    with pytest.raises(LavanyaError) as error:
        load_hifigan(config_path, generator_path)
    assert "LFS pointer" in error.value.message
    assert 'git lfs pull --include="' in error.value.message
    assert "\n" not in error.value.message


def test_generator_for_another_shape_is_one_line(tmp_path):
    other = {**CONFIG_22K, "upsample_initial_channel": 16}
    config_path, generator_path = _write_vocoder(tmp_path, CONFIG_22K, PublishedGenerator(other).state_dict())
    with pytest.raises(LavanyaError) as error:
        load_hifigan(config_path, generator_path)
    assert str(generator_path) in error.value.message and "\n" not in error.value.message


def test_missing_vocoder_config_names_it(tmp_path):
    with pytest.raises(LavanyaError, match="config.json: HiFi-GAN config is missing"):
        load_hifigan(tmp_path / "config.json", tmp_path / "generator")
