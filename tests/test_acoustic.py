"""lavanya_cli.speech.acoustic against ESPnet's Text2Speech: same token ids, same log-mel frames.

Text2Speech is what upstream runs; the lean model must compute exactly what it computes for
every kind of input the front-end makes (spaces become ``<space>``, unknown characters
``<unk>``), on the tiny random voice and on the trained bundled demo.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("espnet2")

from lavanya_cli.speech.acoustic import AcousticModel, unsupported_setting  # noqa: E402
from lavanya_cli.modeltree.config import read_config, write_runtime_config  # noqa: E402
from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.speech.espnet_import import quiet_libraries, text2speech_class  # noqa: E402
from lavanya_cli.modeltree.layout import BUNDLED_ROOT, ModelRoot  # noqa: E402
from synthkit import shared_voice_root  # noqa: E402

INPUTS = ["$namastE. $ApkऐsEhऐq.", "$kyA ApnE khAnA khAyA?", "$ठीक Hello ✓ है.", "a"]


def _text2speech(model_dir: Path):
    config = read_config(model_dir / "config.yaml")
    with tempfile.TemporaryDirectory() as scratch, quiet_libraries():
        tts = text2speech_class()(train_config=write_runtime_config(config, model_dir, Path(scratch)))
    tts.model.load_state_dict(torch.load(model_dir / "model.pth", weights_only=True))
    tts.model.eval()
    return tts


def _acoustic(model_dir: Path) -> AcousticModel:
    model = AcousticModel(read_config(model_dir / "config.yaml"), model_dir / "feats_stats.npz")
    result = model.load_state_dict(torch.load(model_dir / "model.pth", weights_only=True))
    assert not [key for key in result.missing_keys if key.startswith("tts.")]
    return model


@pytest.mark.slow  # loads ESPnet's Text2Speech as the reference
@pytest.mark.parametrize("root", [shared_voice_root, lambda: BUNDLED_ROOT], ids=["tiny", "bundled"])
def test_same_ids_and_frames_as_text2speech(root):
    model_dir = ModelRoot(root()).find("hindi", "male").model_dir
    reference, lean = _text2speech(model_dir), _acoustic(model_dir)
    for text in INPUTS:
        expected_ids = reference.preprocess_fn("<dummy>", {"text": text})["text"]
        assert lean.token_ids(text).tolist() == expected_ids.tolist()
        for alpha in (1.0, 1.3):
            with torch.inference_mode(), quiet_libraries():
                expected = reference(text, decode_conf={"alpha": alpha})["feat_gen_denorm"]
                frames = lean(text, alpha)
            assert frames.shape == expected.shape
            assert torch.allclose(frames, expected, atol=1e-5)


def test_a_space_and_an_unknown_character_are_tokens_as_espnet_makes_them():
    lean = _acoustic(ModelRoot(BUNDLED_ROOT).find("hindi", "male").model_dir)
    tokens = lean.converter.token_list
    ids = lean.token_ids("a ✓")
    assert [tokens[i] for i in ids] == ["a", "<unk>", "<unk>"]  # no <space> in this token list


def test_configs_outside_fastspeech2_hs_are_named():
    config = read_config(ModelRoot(BUNDLED_ROOT).find("hindi", "male").config_path)
    assert unsupported_setting(config) is None
    assert unsupported_setting({**config, "token_type": "phn"}) == "token_type: phn"
    with pytest.raises(LavanyaError, match="tts: tacotron2"):
        AcousticModel({**config, "tts": "tacotron2"}, Path("unused"))


@pytest.mark.slow  # a subprocess
def test_synthesis_never_imports_espnets_task_layer():
    code = ("import sys\n"
            "from lavanya_cli.speech.voice import Voice\n"
            "voice = Voice.load('hindi', 'male')\n"
            "list(voice.synthesize('नमस्ते'))\n"
            "print(sorted(m for m in sys.modules if m.startswith(('espnet2.tasks', 'espnet2.bin', 'nltk'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_upstream_config_is_one_the_lean_model_builds(shared_tree):
    configs = sorted(shared_tree.rglob("config.yaml"))
    assert len(configs) > 50
    assert [str(p) for p in configs if unsupported_setting(read_config(p))] == []
