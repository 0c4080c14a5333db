"""lavanya verify: each check on a scaffolded root, output formats, manifests, the real trees."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.checks.manifest import CHECKSUMS_NAME
from lavanya_cli.testing.scaffold import build_root, build_voice, lfs_pointer_text, write_stats
from lavanya_cli.checks.verify import CODES, verify_root, write_manifests

HINDI = Path("hindi/male/model")
ARYAN = Path("vocoder/male/aryan/hifigan")


def _codes(root: Path) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in verify_root(root)}


def test_a_clean_root_has_no_problems(clean_root, cli):
    assert verify_root(clean_root) == []
    code, out, _ = cli("verify", clean_root)
    assert code == 0 and "no problems" in out


@pytest.mark.parametrize("damage, path, code", [
    (lambda r: (r / HINDI / "pitch_stats.npz").unlink(), HINDI / "pitch_stats.npz", "missing"),
    (lambda r: (r / HINDI / "config.yaml").unlink(), HINDI / "config.yaml", "missing"),
    (lambda r: (r / HINDI / "model.pth").unlink(), HINDI, "missing"),
    (lambda r: (r / ARYAN / "generator").unlink(), ARYAN / "generator", "missing"),
    (lambda r: (r / ARYAN / "config.json").unlink(), ARYAN / "config.json", "missing"),
    (lambda r: (r / ARYAN / "config.json").write_text("{not json"), ARYAN / "config.json", "unreadable"),
    (lambda r: (r / HINDI / "config.yaml").write_text("a: [b\n"), HINDI / "config.yaml", "unreadable"),
    (lambda r: (r / HINDI / "feats_stats.npz").write_bytes(b"PK\x03\x04trunc"), HINDI / "feats_stats.npz",
     "unreadable"),
    (lambda r: pickle.dump({"count": 1}, open(r / HINDI / "energy_stats.npz", "wb")), HINDI / "energy_stats.npz",
     "pickled"),
    (lambda r: write_stats(r / HINDI / "feats_stats.npz", 9), HINDI / "feats_stats.npz", "bad-stats"),
    (lambda r: write_stats(r / HINDI / "pitch_stats.npz", 8), HINDI / "pitch_stats.npz", "bad-stats"),
    (lambda r: os.chmod(r / HINDI / "config.yaml", 0o666), HINDI / "config.yaml", "permissions"),
    (lambda r: os.chmod(r / HINDI, 0o700), HINDI, "permissions"),
])
def test_each_kind_of_damage_is_reported_where_it_is(clean_root, damage, path, code):
    damage(clean_root)
    problems = verify_root(clean_root)
    assert (path.as_posix(), code) in {(p.path, p.code) for p in problems}
    assert all(p.code in CODES for p in problems)


def test_a_weights_pointer_names_the_content_size_and_the_fetch_command(tmp_path):
    root = tmp_path / "models"
    build_voice(root, absolute_stats_paths=False, weights="pointer", weights_content=b"w" * 2_500_000)
    (problem,) = verify_root(root)
    assert (problem.path, problem.code) == ("hindi/male/model/model.pth", "lfs-pointer")
    assert "2500000 bytes" in problem.message
    assert problem.fix == 'fetch it with git lfs pull --include="hindi/male/model/model.pth"'


def test_the_pull_command_names_the_path_inside_the_git_work_tree(tmp_path):
    (tmp_path / ".git").mkdir()
    root = build_root(tmp_path / "Fastspeech2_HS", absolute_stats_paths=False, weights="pointer")
    fixes = [p.fix for p in verify_root(root) if p.code == "lfs-pointer"]
    assert any('--include="Fastspeech2_HS/hindi/male/model/model.pth"' in fix for fix in fixes)


def test_a_stats_pointer_also_says_to_keep_npz_out_of_lfs(clean_root):
    (clean_root / HINDI / "feats_stats.npz").write_text(lfs_pointer_text(b"s" * 700))
    (problem,) = [p for p in verify_root(clean_root) if p.code == "lfs-pointer"]
    assert problem.path == (HINDI / "feats_stats.npz").as_posix() and "*.npz" in problem.fix


def test_absolute_and_foreign_stats_paths_point_at_fix_config(tmp_path):
    root = build_root(tmp_path / "models")  # upstream-style absolute stats_file entries
    problems = [p for p in verify_root(root) if p.code == "stats-path"]
    assert Counter(p.path for p in problems) == {"hindi/male/model/config.yaml": 3,
                                                 "tamil/female/model/config.yaml": 3}
    assert all("lavanya fix-config" in p.fix and "fix-config" not in p.message for p in problems)

    config = root / HINDI / "config.yaml"
    config.write_text(config.read_text().replace("/speech/arun/released_models/tts/male/hindi/fastspeech2_hs/", ""))
    assert [p for p in verify_root(root) if p.path == "hindi/male/model/config.yaml"] == []
    config.write_text(config.read_text().replace("stats_file: pitch_stats.npz", "stats_file: other.npz"))
    (problem,) = [p for p in verify_root(root) if p.path == "hindi/male/model/config.yaml"]
    assert problem.code == "stats-path" and "other.npz" in problem.message


def test_identical_weights_in_two_voices_are_reported_for_both(tmp_path):
    root = tmp_path / "models"
    build_voice(root, "hindi", "male", absolute_stats_paths=False, weights_content=b"same weights")
    build_voice(root, "odia", "female", absolute_stats_paths=False, weights_content=b"same weights")
    build_voice(root, "tamil", "male", absolute_stats_paths=False, weights_content=b"same size!!!")
    dupes = {p.path for p in verify_root(root) if p.code == "duplicate-weights"}
    assert dupes == {"hindi/male/model/model.pth", "odia/female/model/model.pth"}


def test_a_pointer_and_a_real_file_with_the_same_content_are_duplicates(tmp_path):
    root = tmp_path / "models"
    build_voice(root, "hindi", "male", absolute_stats_paths=False, weights_content=b"shared")
    build_voice(root, "odia", "male", absolute_stats_paths=False, weights="pointer", weights_content=b"shared")
    dupes = {p.path for p in verify_root(root) if p.code == "duplicate-weights"}
    assert dupes == {"hindi/male/model/model.pth", "odia/male/model/model.pth"}


def test_a_missing_or_empty_root_is_a_usage_error(tmp_path, cli):
    with pytest.raises(LavanyaError):
        verify_root(tmp_path / "absent")
    code, _, err = cli("verify", tmp_path / "absent")
    assert code == 2 and "absent" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("verify", tmp_path / "empty")
    assert code == 2 and "no voices found" in err and err.count("\n") == 1


def test_json_output_is_one_object_with_relative_paths(tmp_path, cli):
    root = build_root(tmp_path / "models")
    code, out, _ = cli("verify", "--format", "json", root)
    report = json.loads(out)
    assert code == 1 and set(report) == {"ok", "root", "voices", "files", "problems"} and report["ok"] is False
    assert report["problems"] and all(set(p) == {"path", "code", "message", "fix"} for p in report["problems"])
    assert all((root / p["path"]).exists() and not Path(p["path"]).is_absolute() for p in report["problems"])

    code, out, _ = cli("verify", "--format", "json", build_root(tmp_path / "clean", absolute_stats_paths=False))
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["problems"] == []


def test_github_annotations_name_files_relative_to_the_workspace(tmp_path, cli, monkeypatch):
    root = build_root(tmp_path / "repo" / "Fastspeech2_HS")
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path / "repo")
    code, out, _ = cli("verify", "--format", "github", "Fastspeech2_HS")
    lines = out.splitlines()
    assert code == 1 and len(lines) == len(verify_root(root))
    for line in lines:
        assert line.startswith("::error file=Fastspeech2_HS/")
        path = line.split("file=", 1)[1].split(",", 1)[0]
        assert (tmp_path / "repo" / path).exists()
        assert "::" in line[len("::error "):]

    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    code, out, _ = cli("verify", "--format", "github", "Fastspeech2_HS")
    assert out.startswith("::error file=repo/Fastspeech2_HS/")


def test_a_manifest_is_accepted_by_md5sum_and_catches_changes(clean_root, cli):
    if shutil.which("md5sum") is None:
        pytest.skip("md5sum not installed")
    code, _, err = cli("verify", "--write-manifest", clean_root)
    assert code == 0 and "manifests" in err
    for directory in (clean_root / HINDI, clean_root / ARYAN):
        result = subprocess.run(["md5sum", "-c", "--strict", CHECKSUMS_NAME], cwd=directory,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "model.pth: OK" in result.stdout or "generator: OK" in result.stdout

    config = clean_root / HINDI / "config.yaml"
    config.write_text(config.read_text() + "# edited\n")
    (clean_root / HINDI / "notes.txt").write_text("new file")
    (clean_root / ARYAN / "generator").unlink()
    problems = {(p.path, p.code) for p in verify_root(clean_root)}
    assert ("hindi/male/model/config.yaml", "checksum") in problems
    assert ("hindi/male/model/notes.txt", "checksum") in problems
    assert (f"{ARYAN.as_posix()}/generator", "checksum") in problems
    assert subprocess.run(["md5sum", "-c", CHECKSUMS_NAME], cwd=clean_root / HINDI,
                          capture_output=True).returncode != 0


def test_a_pointer_is_checked_against_the_manifest_without_its_content(clean_root):
    weights = clean_root / HINDI / "model.pth"
    content = weights.read_bytes()
    write_manifests(clean_root)

    weights.write_text(lfs_pointer_text(content))  # a checkout without LFS content
    assert ("hindi/male/model/model.pth", "checksum") not in _codes(clean_root)

    weights.write_text(lfs_pointer_text(content + b"changed"))
    assert ("hindi/male/model/model.pth", "checksum") in _codes(clean_root)


def test_a_manifest_written_from_pointers_still_passes_md5sum(tmp_path):
    if shutil.which("md5sum") is None:
        pytest.skip("md5sum not installed")
    root = build_root(tmp_path / "models", absolute_stats_paths=False, weights="pointer")
    write_manifests(root)
    result = subprocess.run(["md5sum", "-c", "--strict", CHECKSUMS_NAME], cwd=root / HINDI,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "model.pth" not in result.stdout
    assert not any(p.code == "checksum" for p in verify_root(root))


def test_the_command_line_does_not_import_torch_or_espnet(clean_root):
    code = (
        "import sys\n"
        "from lavanya_cli.cli import main\n"
        f"assert main(['verify', {str(clean_root)!r}]) == 0\n"
        f"main(['fix-stats', '--check', {str(clean_root)!r}])\n"
        f"main(['fix-config', '--check', {str(clean_root)!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet', 'espnet2'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_real_main_tree(shared_tree, cli):
    root = shared_tree / "main"
    problems = verify_root(root)
    by_code = Counter(p.code for p in problems)
    weights = sorted(root.glob("*/*/model/model.pth"))
    configs = sorted(root.glob("*/*/model/config.yaml"))
    assert len(weights) == len(configs) == 31
    pointers = {p.path for p in problems if p.code == "lfs-pointer"}
    assert pointers == {w.relative_to(root).as_posix() for w in weights}
    stats_paths = Counter(p.path for p in problems if p.code == "stats-path")
    assert stats_paths == {c.relative_to(root).as_posix(): 3 for c in configs}
    generators = {p.path for p in problems if p.code == "missing"}
    assert generators == {f"vocoder/{g}/{f}/hifigan/generator" for g in ("male", "female")
                          for f in ("aryan", "dravidian")}
    assert {p.path for p in problems if p.code == "duplicate-weights"} == {
        "manipuri/male/model/model.pth", "manipuri/female/model/model.pth"}
    assert set(by_code) == {"lfs-pointer", "stats-path", "missing", "duplicate-weights"}
    assert cli("verify", root)[0] == 1


def test_the_real_new_models_tree(shared_tree):
    problems = verify_root(shared_tree / "new-models")
    configs = {p.path for p in problems if p.code == "stats-path"}
    assert "bengali_latest/male/model/config.yaml" in configs  # stats paths with spaces
    assert ("vocoder/male/bodo_latest/config.json", "missing") in {(p.path, p.code) for p in problems}


def _espnet_state_dict(model_dir: Path, config: dict):
    """Weights the way ESPnet saves them: ESPnetTTSModel.state_dict(), built from the components
    TTSTask.build_model assembles (here directly, independent of lavanya's deep check)."""
    from espnet2.layers.global_mvn import GlobalMVN
    from espnet2.tts.espnet_model import ESPnetTTSModel
    from espnet2.tts.fastspeech2 import FastSpeech2
    from espnet2.tts.feats_extract.dio import Dio
    from espnet2.tts.feats_extract.energy import Energy
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    feats = LogMelFbank(**config["feats_extract_conf"])
    model = ESPnetTTSModel(
        feats_extract=feats, pitch_extract=Dio(**config["pitch_extract_conf"]),
        energy_extract=Energy(**config["energy_extract_conf"]),
        normalize=GlobalMVN(model_dir / "feats_stats.npz"),
        pitch_normalize=GlobalMVN(model_dir / "pitch_stats.npz"),
        energy_normalize=GlobalMVN(model_dir / "energy_stats.npz"),
        tts=FastSpeech2(idim=len(config["token_list"]), odim=feats.output_size(), **config["tts_conf"]),
    )
    return model.state_dict()


@pytest.mark.slow  # builds and loads torch weights
def test_deep_loads_weights_and_compares_them_with_the_config(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("espnet2")
    from lavanya_cli.modeltree.config import read_config
    from lavanya_cli.testing.random_weights import write_random_vocoder
    from lavanya_cli.testing.scaffold import VoiceShape

    root = tmp_path / "models"
    model_dir = build_voice(root, shape=VoiceShape(upsample_initial_channel=16), absolute_stats_paths=False)
    config = read_config(model_dir / "config.yaml")
    torch.save(_espnet_state_dict(model_dir, config), model_dir / "model.pth")
    generator = root / ARYAN / "generator"
    vocoder_config = json.loads((root / ARYAN / "config.json").read_text())
    write_random_vocoder(root / ARYAN, vocoder_config)
    assert verify_root(root, deep=True) == []

    wider = write_random_vocoder(tmp_path / "wider", {**vocoder_config, "upsample_initial_channel": 32})
    shutil.copy(wider, generator)
    problem = [p for p in verify_root(root, deep=True) if p.path == f"{ARYAN.as_posix()}/generator"][0]
    assert problem.code == "bad-weights" and "config.json" in problem.message and "wrong shapes" in problem.message

    other = build_voice(tmp_path / "other", shape=VoiceShape(adim=24), absolute_stats_paths=False)
    torch.save(_espnet_state_dict(other, read_config(other / "config.yaml")), model_dir / "model.pth")
    torch.save({"model": {"x": torch.zeros(1)}, "epoch": 3}, generator)
    problems = {p.path: p for p in verify_root(root, deep=True)}
    assert problems["hindi/male/model/model.pth"].code == "bad-weights"
    assert "wrong shapes" in problems["hindi/male/model/model.pth"].message
    assert problems[f"{ARYAN.as_posix()}/generator"].code == "bad-weights"

    state = _espnet_state_dict(model_dir, config)
    del state["normalize.std"]
    torch.save(state, model_dir / "model.pth")
    problem = [p for p in verify_root(root, deep=True) if p.path == "hindi/male/model/model.pth"][0]
    assert "1 missing (normalize.std)" in problem.message

    (model_dir / "model.pth").write_bytes(pickle.dumps({"w": np.zeros(2)}))
    problem = [p for p in verify_root(root, deep=True) if p.path == "hindi/male/model/model.pth"][0]
    assert problem.code == "bad-weights" and "model.pth is a bare pickle" in problem.message
    assert "weights_only" not in problem.message + problem.fix and "released weights" in problem.fix


@pytest.mark.parametrize("key, value, words", [("sampling_rate", 16000, "sample rate 22050 here, 16000"),
                                               ("num_mels", 100, "mel bands 8 here, 100"),
                                               ("hop_size", 200, "hop length 256 here, 200")])
def test_a_vocoder_trained_for_other_features_is_named(clean_root, key, value, words):
    config_path = clean_root / ARYAN / "config.json"
    config = json.loads(config_path.read_text())
    config[key] = value
    config_path.write_text(json.dumps(config))
    problems = [p for p in verify_root(clean_root) if p.code == "vocoder-mismatch"]
    assert [p.path for p in problems] == [(HINDI / "config.yaml").as_posix()]
    assert words in problems[0].message and ARYAN.as_posix() in problems[0].message


@pytest.mark.slow  # a fresh process imports ESPnet
def test_deep_json_output_is_only_json(tmp_path):
    """ESPnet prints a notice on stdout when its transformer layers are first imported; a fresh
    process is the only place that import happens."""
    pytest.importorskip("espnet2")
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT

    result = subprocess.run([sys.executable, "-c", "from lavanya_cli.cli import run; run()",
                             "verify", "--deep", "--format", "json", str(BUNDLED_ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "root": str(BUNDLED_ROOT), "voices": 1, "files": 17,
                                         "problems": []}


@pytest.mark.slow  # speaks with two voices
def test_speak_hears_the_bundled_voice_and_a_silent_one(cli, tmp_path):
    """verify --speak: the trained demo voice passes; a voice whose vocoder gives a constant
    (the tiny random one) is reported as silent, a ``speech`` problem with its fix."""
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT
    from synthkit import shared_voice_root

    code, out, err = cli("verify", "--speak", "--format", "json", BUNDLED_ROOT)
    report = json.loads(out)
    assert code == 0 and report["problems"] == [] and report["spoken"][0]["ok"]
    assert report["spoken"][0]["seconds"] > 0.5 and report["spoken"][0]["sentence"].startswith("एक")
    root = tmp_path / "tiny"
    shutil.copytree(shared_voice_root(), root)
    code, out, _ = cli("verify", "--speak", "--format", "json", root)
    speech = [problem for problem in json.loads(out)["problems"] if problem["code"] == "speech"]
    assert code == 1 and len(speech) == 2 and all("no test sentence" in problem["message"] for problem in speech)
    (root / "numToText").mkdir()
    shutil.copy(BUNDLED_ROOT / "numToText" / "hindi.csv", root / "numToText" / "hindi.csv")
    code, out, _ = cli("verify", "--speak", "--format", "json", root)
    speech = [problem for problem in json.loads(out)["problems"] if problem["code"] == "speech"]
    assert code == 1 and len(speech) == 2 and all("silent" in problem["message"] and problem["fix"] for problem in speech)


def test_manifest_requires_a_matching_md5sums_in_every_directory(cli, clean_root):
    code, out, _ = cli("verify", "--manifest", "--format", "json", clean_root)
    missing = [problem["path"] for problem in json.loads(out)["problems"] if problem["code"] == "checksum"]
    assert code == 1 and "hindi/male/model/MD5SUMS" in missing and len(missing) == 4  # 2 voices, 2 vocoders
    assert cli("verify", "--write-manifest", clean_root)[0] == 0
    assert cli("verify", "--manifest", clean_root)[0] == 0
    (clean_root / "hindi" / "male" / "model" / "feats_type").write_text("changed\n")
    code, out, _ = cli("verify", "--manifest", clean_root)
    assert code == 1 and "hindi/male/model/feats_type: [checksum]" in out
