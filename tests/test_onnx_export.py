"""lavanya export: exports checked against torch (a mismatch writes nothing), never used once a
source changed, deploy roots without weights that speak with torch blocked, the command's lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("espnet2")
pytest.importorskip("onnxruntime")

from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.modeltree.layout import DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME, EXPORT_MANIFEST_NAME, find_voice  # noqa: E402
from lavanya_cli.modeltree.weights import is_deployed_voice  # noqa: E402
from lavanya_cli.speech import export as exporter  # noqa: E402
from lavanya_cli.speech import export_store as store  # noqa: E402
from lavanya_cli.speech.onnx_engine import load_onnx_engine  # noqa: E402
from onnxkit import copy_tree, shared_cache, tiny_spec  # noqa: E402
from synthkit import shared_voice, shared_voice_root  # noqa: E402
from test_onnx_engine import _torch_mel, speak_in_fresh_process  # noqa: E402

pytestmark = pytest.mark.slow  # torch-to-ONNX exports and the checks against torch that follow each


@pytest.fixture
def tree(tmp_path) -> Path:
    return copy_tree(shared_voice_root(), tmp_path / "Fastspeech2_HS")


def _spec(root: Path):
    return find_voice("hindi", "male", models=root)


def test_manifest_records_sources_files_versions_and_check():
    export = store.find_acoustic_export(tiny_spec(), shared_cache())
    manifest = export.manifest
    spec = tiny_spec()
    assert set(manifest["sources"]) == {"config.yaml", "model.pth", "feats_stats.npz", "pitch_stats.npz",
                                        "energy_stats.npz"}
    assert manifest["sources"]["model.pth"]["size"] == spec.weights_path.stat().st_size
    assert manifest["sources"]["model.pth"]["sha256"] == store.sha256_file(spec.weights_path)
    assert set(manifest["files"]) == {ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME}
    assert {"lavanya", "torch", "onnxruntime", "opset"} <= set(manifest["versions"])
    check = manifest["check"]
    assert check["sentences"] == 3 and 0 <= check["mel_max_abs"] <= check["mel_max_abs_bound"] == 1e-3
    assert 1.0 in check["alphas"] and any(alpha != 1.0 for alpha in check["alphas"])
    vocoder = store.find_vocoder_export(spec.vocoder, shared_cache()).manifest
    assert vocoder["check"]["waveform_snr_db_bound"] == 40.0
    assert vocoder["check"]["waveform_snr_db_min"] is None or vocoder["check"]["waveform_snr_db_min"] >= 40.0
    assert not list(spec.model_dir.glob("*.onnx")) and not (spec.model_dir / EXPORT_MANIFEST_NAME).exists()


def test_a_graph_that_differs_from_torch_is_refused_and_nothing_written(tree, tmp_path, monkeypatch):
    exact = exporter.export_acoustic_graphs

    def with_a_corrupted_weight(fastspeech2, directory):
        with torch.no_grad():
            fastspeech2.feat_out.bias += 0.01
            try:
                exact(fastspeech2, directory)
            finally:
                fastspeech2.feat_out.bias -= 0.01

    monkeypatch.setattr(exporter, "export_acoustic_graphs", with_a_corrupted_weight)
    cache = tmp_path / "cache"
    with pytest.raises(LavanyaError, match="does not match torch.*mel differs.*nothing written") as raised:
        exporter.ensure_exports(_spec(tree), cache)
    assert raised.value.exit_code == 1
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.name != store.MEMO_NAME]
    assert not (cache / store.ACOUSTIC).exists() or not any((cache / store.ACOUSTIC).iterdir()), leftovers
    assert not list(tree.rglob("*.onnx"))


def test_a_changed_source_is_never_spoken_through_its_old_export(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "RACY_SECONDS", 0.0)  # let the memo trust every signature it records
    cache = tmp_path / "cache"
    spec = _spec(tree)
    exporter.ensure_exports(spec, cache)
    assert load_onnx_engine(spec, cache=cache) is not None
    memo = json.loads((cache / store.MEMO_NAME).read_text())
    assert str(spec.weights_path.resolve()) in memo  # the next lookup skips hashing model.pth
    # The same size and the old mtime, as a tool that restores times leaves it: only the digest
    # (reached because ctime moved) tells the weights changed.
    weights = spec.weights_path
    before = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_size == before.st_size and weights.stat().st_mtime_ns == before.st_mtime_ns
    assert store.find_acoustic_export(spec, cache) is None
    with pytest.raises(LavanyaError, match="no ONNX export of this voice.*lavanya export"):
        load_onnx_engine(spec, cache=cache)
    assert store.find_vocoder_export(spec.vocoder, cache) is not None  # the vocoder did not change


def test_a_changed_config_is_a_new_key_too(tree, tmp_path):
    cache = tmp_path / "cache"
    spec = _spec(tree)
    exporter.ensure_exports(spec, cache)
    with open(spec.config_path, "a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    assert store.find_acoustic_export(spec, cache) is None
    outcome = exporter.ensure_exports(spec, cache)
    assert outcome.made == ["acoustic"]


def test_deploy_root_has_no_weights_and_speaks_with_torch_blocked(tree, tmp_path):
    out = tmp_path / "deploy"
    (written,) = exporter.write_deploy_root([_spec(tree)], out, cache=shared_cache())
    assert written["made"] == []  # the cache already had both (same sources as the shared tree)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith(".pth") or f.endswith("/generator")]
    assert "hindi/male/model/acoustic_encoder.onnx" in files and "vocoder/male/aryan/hifigan/generator.onnx" in files
    assert {"hindi/male/model/config.yaml", "hindi/male/model/feats_stats.npz",
            "vocoder/male/aryan/hifigan/config.json", "hindi/male/model/lavanya-export.json"} <= set(files)
    assert all(not (p.stat().st_mode & 0o022) for p in out.rglob("*"))
    assert not [p for p in out.rglob(".*")]  # no temporary directories left
    deployed = _spec(out)
    assert is_deployed_voice(deployed) and store.export_problems(deployed.model_dir) == []
    (utterance,) = shared_voice("torch").plan("नमस्ते, आप कैसे हैं?")
    result = speak_in_fresh_process(out, None, utterance.model_input, 0.8, block_torch=True)
    expected = _torch_mel(shared_voice("torch"), utterance.model_input, 0.8)
    assert result["loaded"] == [] and result["frames"] == expected.shape[0]
    assert np.abs(np.array(result["mel"]) - expected).max() <= exporter.MEL_MAX_ABS


def test_deploy_root_refuses_edited_files_and_verify_sees_graphs(tree, tmp_path):
    out = tmp_path / "deploy"
    exporter.write_deploy_root([_spec(tree)], out, cache=shared_cache())
    deployed = _spec(out)
    with open(deployed.model_dir / ENCODER_GRAPH_NAME, "r+b") as handle:
        handle.seek(-10, os.SEEK_END)
        handle.write(b"0123456789")
    assert store.export_problems(deployed.model_dir) == [f"{ENCODER_GRAPH_NAME} differs from the one exported"]
    with open(deployed.config_path, "a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    with pytest.raises(LavanyaError, match="config.yaml differs from the one exported.*export the voice again"):
        load_onnx_engine(deployed)


def test_deploy_root_never_overwrites_a_voice_with_weights(tree, tmp_path):
    with pytest.raises(LavanyaError, match="inside or around the model root"):
        exporter.write_deploy_root([_spec(tree)], tree / "deploy", cache=shared_cache())
    other = copy_tree(tree, tmp_path / "other")
    with pytest.raises(LavanyaError, match="holds weights"):
        exporter.write_deploy_root([_spec(tree)], other, cache=shared_cache())
    assert (other / "hindi/male/model/model.pth").is_file()


def test_export_command(cli, tree, tmp_path, monkeypatch):
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "cache"))
    code, out, err = cli("export", "--models", tree, "--lang", "hindi", "--gender", "male", "--format", "json")
    assert code == 0, err
    (entry,) = json.loads(out)["voices"]
    assert entry["made"] == ["acoustic", "vocoder"] and entry["check"]["acoustic"]["mel_max_abs"] <= 1e-3
    code, out, err = cli("export", "--models", tree, "--lang", "hindi", "--gender", "male")
    assert code == 0 and "export up to date" in out
    code, out, err = cli("export", "--models", tree, "--all", "--out", tmp_path / "deploy")
    assert code == 0, err
    assert "hindi/male: export up to date; deployed to" in out and "hindi/female: exported" in out
    assert (tmp_path / "deploy/hindi/female/model/acoustic_decoder.onnx").is_file()


def test_export_command_usage_errors(cli):
    code, _, err = cli("export", "--all", "--lang", "hindi")
    assert code == 2 and err.strip() == "lavanya: error: give --lang and --gender, or --all"
    code, _, err = cli("export", "--lang", "hindi")
    assert code == 2 and "give both --lang and --gender" in err


def test_export_command_without_torch_says_so(cli, monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "cache"))
    code, _, err = cli("export", "--all", "--converter", "torch")
    assert code == 2 and err.count("\n") == 1 and "needs torch" in err and "lavanya[torch]" in err
    # the tests' tiny voice is smaller than the published architecture: outside the graph templates
    code, _, err = cli("export", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male")
    assert code == 2 and err.count("\n") == 1 and "tts_conf differs" in err and "lavanya[torch]" in err


# -- a deploy root stays inside --out; the cache says what is wrong with it ----------------------

def test_deploy_root_keeps_a_user_s_files_and_refuses_links_out(tree, tmp_path):
    from test_hostile_tree import snapshot

    (tree / "phone_dict").mkdir()
    (tree / "phone_dict/hindi").write_text("नमस्ते न म स् ते\n", encoding="utf-8")
    out = tmp_path / "deploy"
    notes = out / "hindi/male/model/notes.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    with pytest.raises(LavanyaError, match="holds files lavanya did not deploy \\(notes.txt\\)"):
        exporter.write_deploy_root([_spec(tree)], out, cache=shared_cache())
    assert notes.read_text() == "mine"
    notes.unlink()
    (written,) = exporter.write_deploy_root([_spec(tree)], out, cache=shared_cache())
    exporter.write_deploy_root([_spec(tree)], out, cache=shared_cache())  # an earlier deploy is replaced

    outside = tmp_path / "outside"
    outside.mkdir()
    before = snapshot(outside)
    for link in (out / "phone_dict", out / "hindi/male"):
        target = out / f"{link.name}.moved"
        link.rename(target)
        link.symlink_to(outside, target_is_directory=True)
        with pytest.raises(LavanyaError, match="a symbolic link inside out;"):
            exporter.write_deploy_root([_spec(tree)], out, cache=shared_cache())
        link.unlink()
        target.rename(link)
    assert snapshot(outside) == before


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_a_cache_that_cannot_be_written_is_named_with_its_variable(cli, tree, tmp_path, monkeypatch, kind):
    cache = tmp_path / "cache"
    if kind == "file":
        cache.write_text("not a directory")
    else:
        cache.symlink_to(tmp_path / "nowhere")
    monkeypatch.setenv(store.CACHE_ENV, str(cache))
    code, out, err = cli("export", "--models", tree, "--lang", "hindi", "--gender", "male")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"{cache}: the export cache cannot be written" in err and "$LAVANYA_CACHE" in err
    assert "internal error" not in err


def test_a_compressed_checkpoint_is_refused_before_it_expands(cli, tree, tmp_path):
    import io
    import zipfile

    weights = tree / "hindi/male/model/model.pth"
    original = zipfile.ZipFile(io.BytesIO(weights.read_bytes()))
    with zipfile.ZipFile(weights, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in original.infolist():
            packed.writestr(info.filename, original.read(info.filename))
    for command in (("export", "--models", tree, "--lang", "hindi", "--gender", "male"),
                    ("synth", "--models", tree, "--lang", "hindi", "--gender", "male", "--engine", "torch",
                     "--text", "नमस्ते", "-o", tmp_path / "out.wav")):
        code, out, err = cli(*command)
        assert code == 2 and err.count("\n") == 1, err
        assert "model.pth: the acoustic model holds a compressed record" in err and "git lfs pull" in err
