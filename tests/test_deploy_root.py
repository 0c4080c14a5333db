"""A deploy root's config.yaml: upstream's absolute stats_file paths become bare file names there
(the deployed manifest records the rewritten copy), so ``lavanya verify`` passes on the deploy root
of a published voice; the model tree is never written, and a clean config is deployed as it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("espnet2")
pytest.importorskip("onnxruntime")

from _helpers import snapshot  # noqa: E402
from onnxkit import copy_tree, shared_cache  # noqa: E402
from synthkit import shared_voice, shared_voice_root  # noqa: E402
from test_onnx_engine import _torch_mel, speak_in_fresh_process  # noqa: E402

from lavanya_cli.checks.config_fix import fix_config  # noqa: E402
from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.modeltree.config import (  # noqa: E402
    STATS_ENTRIES,
    fix_stats_paths_text,
    read_config,
    stats_file_entries,
)
from lavanya_cli.modeltree.layout import EXPORT_MANIFEST_NAME, STATS_NAMES, find_voice  # noqa: E402
from lavanya_cli.speech import export as exporter  # noqa: E402
from lavanya_cli.speech import export_store as store  # noqa: E402
from lavanya_cli.testing.scaffold import upstream_stats_path  # noqa: E402

pytestmark = pytest.mark.slow  # exports and checks against torch; speaking in a fresh process

BARE = {key: STATS_NAMES[kind] for key, kind in STATS_ENTRIES.items()}


@pytest.fixture
def tree(tmp_path) -> Path:
    return copy_tree(shared_voice_root(), tmp_path / "Fastspeech2_HS")


def _spec(root: Path):
    return find_voice("hindi", "male", models=root)


def _manifest(directory: Path) -> dict:
    return json.loads((directory / EXPORT_MANIFEST_NAME).read_text(encoding="utf-8"))


def test_a_deploy_root_of_a_voice_with_absolute_stats_paths_verifies_and_speaks(cli, tree, tmp_path, monkeypatch):
    monkeypatch.setenv(store.CACHE_ENV, str(shared_cache()))  # both exports are there already
    spec = _spec(tree)
    source_text = spec.config_path.read_bytes()
    assert stats_file_entries(read_config(spec.config_path)) == {
        key: upstream_stats_path("hindi", "male", kind) for key, kind in STATS_ENTRIES.items()}
    before = snapshot(tree)
    out = tmp_path / "deploy"
    code, _, err = cli("export", "--models", tree, "--lang", "hindi", "--gender", "male", "--out", out)
    assert code == 0, err
    assert snapshot(tree) == before  # the model tree, its config.yaml included, is never written
    assert spec.config_path.read_bytes() == source_text

    deployed = _spec(out)
    config_text = deployed.config_path.read_text(encoding="utf-8")
    assert stats_file_entries(read_config(deployed.config_path)) == BARE
    assert config_text == fix_stats_paths_text(source_text.decode("utf-8"))  # those values, nothing else
    assert not deployed.config_path.stat().st_mode & 0o022
    manifest = _manifest(deployed.model_dir)
    assert manifest["sources"]["config.yaml"] == store.describe_sources({"config.yaml": deployed.config_path})[
        "config.yaml"]
    cached = store.find_acoustic_export(spec, shared_cache())  # the cache's manifest: the source config's digest
    assert cached.manifest["sources"]["config.yaml"] == store.describe_sources({"config.yaml": spec.config_path})[
        "config.yaml"]
    assert {k: v for k, v in manifest["sources"].items() if k != "config.yaml"} == {
        k: v for k, v in cached.manifest["sources"].items() if k != "config.yaml"}
    assert store.export_problems(deployed.model_dir) == []

    code, out_text, err = cli("verify", out)
    assert code == 0, out_text + err
    assert fix_config(deployed.config_path, check_only=True).result == "unchanged"

    (utterance,) = shared_voice("torch").plan("नमस्ते, आप कैसे हैं?")
    result = speak_in_fresh_process(out, None, utterance.model_input, 0.8, block_torch=True)
    expected = _torch_mel(shared_voice("torch"), utterance.model_input, 0.8)
    assert result["loaded"] == [] and result["frames"] == expected.shape[0]
    assert np.abs(np.array(result["mel"]) - expected).max() <= exporter.MEL_MAX_ABS

    # Exporting again over the earlier deploy replaces it with the same files.
    deployed_files = {path.name: path.read_bytes() for path in deployed.model_dir.iterdir()
                      if path.name != EXPORT_MANIFEST_NAME}
    code, _, err = cli("export", "--models", tree, "--lang", "hindi", "--gender", "male", "--out", out)
    assert code == 0, err
    assert {path.name: path.read_bytes() for path in deployed.model_dir.iterdir()
            if path.name != EXPORT_MANIFEST_NAME} == deployed_files
    assert _manifest(deployed.model_dir)["sources"] == manifest["sources"]
    assert snapshot(tree) == before
    code, out_text, err = cli("verify", out)
    assert code == 0, out_text + err


def test_a_clean_config_is_deployed_byte_for_byte(tree, tmp_path):
    spec = _spec(tree)
    assert fix_config(spec.config_path).result == "fixed"  # the source itself names its stats bare
    clean = spec.config_path.read_bytes()
    cache = copy_tree(shared_cache(), tmp_path / "cache")  # the vocoder's export is there; the acoustic is made
    out = tmp_path / "deploy"
    exporter.write_deploy_root([spec], out, cache=cache)
    deployed = _spec(out)
    assert deployed.config_path.read_bytes() == clean == spec.config_path.read_bytes()
    cached = store.find_acoustic_export(spec, cache)
    assert _manifest(deployed.model_dir)["sources"] == cached.manifest["sources"]
    assert store.export_problems(deployed.model_dir) == []


def test_a_config_changed_since_the_export_is_refused_before_anything_is_rewritten(tree, tmp_path):
    spec = _spec(tree)
    outcome = exporter.ensure_exports(spec, shared_cache())
    with open(spec.config_path, "a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    out = tmp_path / "deploy"
    with pytest.raises(LavanyaError, match="config.yaml differs from the one exported since the export"):
        exporter.write_deploy_root([spec], out, prepare=lambda spec, cache: outcome)
    assert not (out / "hindi/male/model").exists()
