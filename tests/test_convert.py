"""The torch-free converter: published-architecture voices (random weights, full size) filled
into the shipped graph templates speak as the torch engine does; the templates are what the
script makes today; voices outside them, and hostile checkpoints, are one line each."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("espnet2")

from _helpers import TouchesMarker  # noqa: E402

from lavanya_cli.bench.bench_voice import real_hindi_shape  # noqa: E402
from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.modeltree.config import read_config  # noqa: E402
from lavanya_cli.modeltree.layout import ModelRoot, VoiceSpec  # noqa: E402
from lavanya_cli.speech import convert  # noqa: E402
from lavanya_cli.speech import export as exporter  # noqa: E402
from lavanya_cli.speech.vocoder import read_hifigan_config  # noqa: E402
from lavanya_cli.testing.random_weights import write_random_acoustic_model, write_random_vocoder  # noqa: E402
from lavanya_cli.testing.scaffold import HINDI_TOKENS, build_voice, hifigan_config  # noqa: E402

pytestmark = pytest.mark.slow  # full-size voices: built, converted and run on torch

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "lavanya_cli" / "speech" / "templates"
MIN_SNR_DB = 60.0
# (language, gender, mel bands, token count, vocoder template): both acoustic templates, both
# vocoder shapes, three vocabularies.
VOICES = {
    "hindi-80": ("hindi", "male", 80, len(HINDI_TOKENS), "hifigan-v1-8822"),
    "tamil-160": ("tamil", "female", 160, 78, "hifigan-v1-8882"),
    "bengali-80": ("bengali", "female", 80, 38, "hifigan-v1-8822"),
}
BLOCK_TORCH = "import sys\nfor name in ('torch', 'espnet', 'espnet2', 'onnx'):\n    sys.modules[name] = None\n"


def _tokens(count: int) -> tuple[str, ...]:
    """A token list of ``count`` entries: the real hindi one, or Devanagari letters between
    ESPnet's special tokens."""
    if count == len(HINDI_TOKENS):
        return HINDI_TOKENS
    return ("<blank>", "<unk>", *(chr(0x0905 + i) for i in range(count - 3)), "<sos/eos>")


def build_published_voice(root: Path, name: str, seed: int = 0) -> VoiceSpec:
    """A voice with the published architecture, random weights, in the published layout (model.pth
    and generator, no exports)."""
    language, gender, n_mels, count, vocoder = VOICES[name]
    base = real_hindi_shape()
    shape = base if n_mels == 80 else dataclasses.replace(base, n_mels=160, fs=48000, hop=1024, n_fft=8192,
                                                          upsample_rates=(8, 8, 8, 2))
    shape = dataclasses.replace(shape, token_list=_tokens(count))
    model_dir = build_voice(root, language, gender, shape=shape, weights="none", vocoder=False)
    write_random_acoustic_model(model_dir, seed=seed)
    spec = next(s for s in ModelRoot(root).voices() if (s.language, s.gender) == (language, gender))
    vocoder_config = {**hifigan_config(shape), **convert.templates()["vocoders"][vocoder]["config"]}
    write_random_vocoder(spec.vocoder.directory, vocoder_config, seed=seed)
    return spec


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> dict[str, VoiceSpec]:
    root = tmp_path_factory.mktemp("published")
    return {name: build_published_voice(root, name, seed) for seed, name in enumerate(VOICES)}


def test_the_shipped_templates_are_what_the_script_makes_today(tmp_path):
    pytest.importorskip("onnx")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "make_graph_templates.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    made = sorted(path.name for path in tmp_path.iterdir())
    assert made == sorted(path.name for path in SHIPPED.iterdir() if path.is_file())
    stale = [name for name in made if (tmp_path / name).read_bytes() != (SHIPPED / name).read_bytes()]
    assert not stale, f"run scripts/make_graph_templates.py: {stale} differ from what it makes"
    index = json.loads((tmp_path / "templates.json").read_text())
    for graph in ("acoustic_encoder.onnx-template", "acoustic_decoder_80mel.onnx-template",
                  "generator_8822.onnx-template"):
        # the templates hold no weights: every large tensor is filled from a recipe
        assert (tmp_path / graph).stat().st_size < 200_000
        assert len(index["graphs"][graph]["initializers"]) > 50


@pytest.mark.parametrize("name", list(VOICES))
def test_a_converted_voice_speaks_as_torch_does(voices, name, tmp_path):
    spec = voices[name]
    outcome = exporter.ensure_exports(spec, tmp_path, converter="templates")
    assert outcome.converters == {"acoustic": "templates", "vocoder": "templates"}
    for export in (outcome.acoustic, outcome.vocoder):
        assert export.manifest["converter"] == "templates"
        assert "torch" not in export.manifest["versions"]
    assert outcome.acoustic.manifest["graph"]["eos"] == len(read_config(spec.config_path)["token_list"]) - 1

    reference = exporter.TorchReference.load(spec)
    tokens = exporter.token_list(reference.config, spec.model_dir)
    references = exporter._reference_mels(reference, exporter.check_sentences(tokens))
    acoustic = exporter.check_acoustic(reference, outcome.acoustic.directory, references)
    assert acoustic.problems == [] and acoustic.sentences == 3
    assert acoustic.mel_max_abs <= exporter.MEL_MAX_ABS
    vocoder_config = read_hifigan_config(spec.vocoder.config_path)
    vocoder = exporter.check_vocoder(reference, outcome.vocoder.directory, references, vocoder_config["hop_size"],
                                     exporter.receptive_radius_frames(vocoder_config))
    assert vocoder.problems == [] and vocoder.snr_db_min >= MIN_SNR_DB


def test_the_whole_voice_sounds_as_on_torch(voices, tmp_path):
    from lavanya_cli.speech.export import snr_db
    from lavanya_cli.speech.voice import Voice

    spec = voices["hindi-80"]
    exporter.ensure_exports(spec, tmp_path, converter="templates")
    text = "नमस्ते, आप कैसे हैं? मैं ठीक हूँ।"
    onnx_voice = Voice.load(spec, engine="onnx", cache=tmp_path)
    torch_voice = Voice.load(spec, engine="torch")
    ours = np.concatenate([chunk.samples for chunk in onnx_voice.render(onnx_voice.plan(text))])
    theirs = np.concatenate([chunk.samples for chunk in torch_voice.render(torch_voice.plan(text))])
    assert ours.shape == theirs.shape and ours.size > 0
    assert snr_db(theirs, ours) >= MIN_SNR_DB


def _run(args: list[str], cache: Path, block_torch: bool) -> subprocess.CompletedProcess:
    code = (BLOCK_TORCH if block_torch else "import sys\n") + (
        "from lavanya_cli.cli import run\nsys.argv = ['lavanya', *sys.argv[1:]]\n"
        "try:\n    run()\nfinally:\n"
        "    loaded = [m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet2') and sys.modules[m]]\n"
        "    print('LOADED', loaded, file=sys.stderr)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAVANYA_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_without_torch_the_published_layout_converts_and_speaks(voices, tmp_path):
    spec = voices["hindi-80"]
    wav = tmp_path / "out.wav"
    done = _run(["synth", "--models", str(spec.root), "--lang", "hindi", "--gender", "male", "--engine", "onnx",
                 "--text", "नमस्ते दुनिया", "-o", str(wav)], tmp_path / "cache", block_torch=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "through the graph templates, without torch" in done.stderr
    assert "LOADED []" in done.stderr
    assert wav.stat().st_size > 10_000
    done = _run(["verify", "--deep", str(spec.root)], tmp_path / "cache", block_torch=True)
    assert "LOADED []" in done.stderr
    assert "model.pth" not in done.stdout  # no problem found in the weights, read without torch


def _hostile_checkpoint(path: Path, marker: Path) -> None:
    """``path`` replaced by a zip laid out as torch's whose pickle runs a shell command."""
    path.unlink()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": TouchesMarker(marker)}, protocol=2))
        archive.writestr("archive/version", "3\n")


def test_a_hostile_checkpoint_runs_nothing_and_is_one_line(voices, tmp_path):
    root = tmp_path / "tree"
    spec = build_published_voice(root, "bengali-80")
    marker = tmp_path / "ran"
    _hostile_checkpoint(spec.weights_path, marker)
    done = _run(["export", "--models", str(root), "--lang", "bengali", "--gender", "female", "--converter", "templates"],
                tmp_path / "cache", block_torch=True)
    assert done.returncode != 0
    assert not marker.exists()
    errors = [line for line in done.stderr.splitlines() if not line.startswith("LOADED")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert str(spec.weights_path) in errors[0] and "system" in errors[0]
    assert not (tmp_path / "cache" / "acoustic").exists() or not any((tmp_path / "cache" / "acoustic").iterdir())


def test_a_voice_outside_the_templates_is_one_line_naming_the_torch_extra(tmp_path):
    from lavanya_cli.testing.scaffold import VoiceShape

    root = tmp_path / "tree"
    model_dir = build_voice(root, "hindi", "male", weights="none", vocoder=False, shape=VoiceShape())
    write_random_acoustic_model(model_dir)
    spec = ModelRoot(root).voices()[0]
    write_random_vocoder(spec.vocoder.directory, hifigan_config(VoiceShape()))
    with pytest.raises(convert.NotConvertible) as refused:
        exporter.ensure_exports(spec, tmp_path / "cache", converter="templates")
    assert "tts_conf" in refused.value.message and "lavanya[torch]" in refused.value.message
    assert "\n" not in refused.value.message
    # auto falls back to the torch export where torch is installed
    outcome = exporter.ensure_exports(spec, tmp_path / "cache")
    assert outcome.converters == {"acoustic": "torch", "vocoder": "torch"}
    # without torch: one line from synth, naming the extra
    done = _run(["synth", "--models", str(root), "--lang", "hindi", "--gender", "male", "--engine", "onnx",
                 "--text", "नमस्ते", "-o", str(tmp_path / "x.wav")], tmp_path / "other-cache", block_torch=True)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if not line.startswith("LOADED")]
    assert len(errors) == 1 and "lavanya[torch]" in errors[0] and "tts_conf" in errors[0]


def test_misshapen_or_missing_tensors_and_other_vocoders_are_refused(voices, tmp_path):
    root = tmp_path / "tree"
    spec = build_published_voice(root, "bengali-80", seed=5)
    state = torch.load(spec.weights_path, weights_only=True)
    state.pop("tts.encoder.embed.0.weight")
    torch.save(state, spec.weights_path)
    with pytest.raises(convert.NotConvertible, match=r"1 missing \(tts.encoder.embed.0.weight\).*lavanya\[torch\]"):
        convert.convert_acoustic(spec, read_config(spec.config_path), tmp_path)
    config = json.loads(spec.vocoder.config_path.read_text())
    config.update(upsample_rates=[8, 8, 4, 1], upsample_kernel_sizes=[16, 16, 8, 2])
    with pytest.raises(convert.NotConvertible, match=r"upsample_rates \[8, 8, 4, 1\].*lavanya\[torch\]"):
        convert.vocoder_template(config, spec.vocoder.config_path)


def test_weight_norm_is_folded_as_torch_folds_it():
    from lavanya_cli.speech.vocoder import _norm_except_dim0

    values = torch.randn(64, 32, 7)
    folded = convert.norm_except_dim0(values.numpy())
    assert np.allclose(folded, _norm_except_dim0(values).numpy(), rtol=1e-6)


def test_conv_batch_norm_folding_matches_torch_in_inference():
    conv = torch.nn.Conv1d(8, 16, 5, padding=2, bias=True)
    bn = torch.nn.BatchNorm1d(16)
    with torch.no_grad():
        for tensor in (bn.weight, bn.bias, bn.running_mean):
            tensor.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    bn.eval()
    state = {f"c.{k}": v.detach().numpy() for k, v in conv.state_dict().items()}
    state.update({f"b.{k}": v.detach().numpy() for k, v in bn.state_dict().items()})
    weight, bias = convert.fold_conv_bn({"conv": "c", "bn": "b", "eps": bn.eps, "conv_bias": True}, state.__getitem__)
    x = torch.randn(1, 8, 40)
    expected = bn(conv(x)).detach().numpy()
    got = torch.nn.functional.conv1d(x, torch.from_numpy(weight), torch.from_numpy(bias), padding=2).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def test_every_published_config_fits_the_templates(shared_tree):
    configs = sorted(shared_tree.glob("**/config.yaml"))
    assert len(configs) >= 82
    for path in configs:
        config = read_config(path)
        convert.acoustic_template(config, path)
    vocoders = sorted(shared_tree.glob("**/vocoder/**/config.json"))
    assert len(vocoders) >= 39
    used = {convert.vocoder_template(read_hifigan_config(path), path)[0] for path in vocoders}
    assert used == set(convert.templates()["vocoders"])


def test_a_training_only_setting_still_fits_but_an_architecture_change_does_not():
    index = convert.templates()["acoustic"]
    config = {"token_list": ["a"] * 10, "token_type": "char", "tts": "fastspeech2", "feats_extract": "fbank",
              "normalize": "global_mvn", "cleaner": None, "feats_extract_conf": {"n_mels": 80},
              "tts_conf": {**index["tts_conf"], "transformer_enc_dropout_rate": 0.1}}
    assert convert.acoustic_template(config, Path("config.yaml"))["n_mels"] == 80
    config["tts_conf"]["adim"] = 256
    with pytest.raises(LavanyaError, match=r"tts_conf differs .* adim 256 \(the templates: 384\)"):
        convert.acoustic_template(config, Path("config.yaml"))
    config["tts_conf"]["adim"] = 384
    config["feats_extract_conf"]["n_mels"] = 100
    with pytest.raises(LavanyaError, match="100 mel bands"):
        convert.acoustic_template(config, Path("config.yaml"))


def test_torch_s_export_is_made_when_asked_for_and_older_templates_are_made_again(voices, tmp_path):
    from lavanya_cli.speech import export_store as store

    spec = voices["bengali-80"]
    made = exporter.ensure_exports(spec, tmp_path, converter="templates")
    assert made.acoustic.converter == "templates"
    # --converter torch replaces the templates' export under the same key with torch's
    again = exporter.ensure_exports(spec, tmp_path, converter="torch")
    assert again.converters == {"acoustic": "torch", "vocoder": "torch"}
    assert again.acoustic.directory == made.acoustic.directory
    assert store.find_acoustic_export(spec, tmp_path).converter == "torch"
    # an export from other graph templates than these is not found: it is made again
    exporter.ensure_exports(spec, tmp_path / "other", converter="templates")
    manifest_path = store.find_acoustic_export(spec, tmp_path / "other").directory / "lavanya-export.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["versions"]["templates"] = "fs2hs-0"
    manifest_path.write_text(json.dumps(manifest))
    assert store.find_acoustic_export(spec, tmp_path / "other") is None
    assert exporter.ensure_exports(spec, tmp_path / "other").made == ["acoustic"]


def test_broken_weights_are_named_with_exit_1_and_files_are_0644(voices, tmp_path):
    root = tmp_path / "tree"
    spec = build_published_voice(root, "bengali-80", seed=7)
    previous = os.umask(0)
    try:
        outcome = exporter.ensure_exports(spec, tmp_path / "cache", converter="templates")
    finally:
        os.umask(previous)
    for export in (outcome.acoustic, outcome.vocoder):
        assert {oct(path.stat().st_mode & 0o777) for path in export.directory.iterdir()} == {"0o644"}
    state = torch.load(spec.weights_path, weights_only=True)
    state["tts.duration_predictor.linear.bias"].fill_(float("nan"))
    torch.save(state, spec.weights_path)
    with pytest.raises(LavanyaError) as refused:
        exporter.ensure_exports(spec, tmp_path / "cache", converter="templates")
    assert refused.value.exit_code == 1 and refused.value.message.startswith(str(spec.weights_path))
    assert "released weights" in refused.value.message


def test_what_only_torch_reads_goes_to_torch(tmp_path):
    from lavanya_cli.checks.deep import _read

    path = tmp_path / "model.pth"
    torch.save({"w": torch.ones(2, 3)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(convert.NotConvertible, match=r"before 1.6.*lavanya\[torch\]"):
        convert._open_checkpoint(path, "the acoustic model")
    content, failure = _read(path, "the acoustic model")  # verify --deep: torch reads it where installed
    assert failure is None and tuple(content["w"].shape) == (2, 3)


def test_odd_config_numbers_and_oversized_graphs_are_one_line(tmp_path):
    index = convert.templates()["acoustic"]
    config = {"token_list": ["a"] * 10, "token_type": "char", "tts": "fastspeech2", "feats_extract": "fbank",
              "normalize": "global_mvn", "cleaner": None, "tts_conf": dict(index["tts_conf"]),
              "feats_extract_conf": {"n_mels": 80, "n_fft": "abc"}}
    with pytest.raises(LavanyaError, match=r"n_fft is 'abc', not a whole number") as refused:
        convert.acoustic_template(config, Path("config.yaml"))
    assert not isinstance(refused.value, convert.NotConvertible)  # a broken config, not a torch matter
    config["feats_extract_conf"] = ["n_mels", 80]
    with pytest.raises(LavanyaError, match="feats_extract_conf is not a mapping"):
        convert.acoustic_template(config, Path("config.yaml"))
    target = tmp_path / "acoustic_encoder.onnx"
    with pytest.raises(LavanyaError, match=r"model.pth: its acoustic_encoder.onnx would be .* 600000 tokens"):
        convert.fill_template("acoustic_encoder.onnx-template", 600_000, lambda recipe: None, target,
                              Path("model.pth"))
    assert not target.exists()
