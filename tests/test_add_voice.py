"""lavanya add-voice: SOURCE directories built from the real upstream hindi voice (its config.yaml
with the network shrunk, its statistics, its vocoder config.json) with random weights; each run
ends in its exit code with ROOT byte-for-byte as it was, or with a voice verify --deep passes."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lavanya_cli.add_voice import StepFailed, add_voice, choose_weights
from lavanya_cli.add_voice import git as git_mod
from lavanya_cli.add_voice import staging as staging_mod
from lavanya_cli.add_voice import steps as steps_mod
from lavanya_cli.checks.leftovers import ASIDE_NAME
from lavanya_cli.checks.speak_check import audio_problems, sentence_for_language
from lavanya_cli.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_TERMINATED, EXIT_USAGE, LavanyaError, Stopped
from conftest import SHARED
from _helpers import TouchesMarker
from _helpers import snapshot as tree_snapshot

pytest.importorskip("torch")
pytest.importorskip("espnet2")

pytestmark = pytest.mark.slow  # voices built from the real configs, then verify --deep and a spoken check; subprocesses

REAL_VOICE = Path("main/hindi/male/model")
REAL_VOCODER = Path("main/vocoder/male/aryan/hifigan/config.json")
# The real hindi network is 148 MB; these sizes keep every layer and the token list but make
# random weights of a few hundred kB. n_mels (80), the hop and the sample rate stay real, so
# the real statistics and vocoder config fit.
SHRINK = {"adim": 16, "elayers": 1, "eunits": 32, "dlayers": 1, "dunits": 32, "duration_predictor_chans": 16,
          "postnet_layers": 2, "postnet_chans": 16, "pitch_predictor_layers": 2, "pitch_predictor_chans": 16,
          "energy_predictor_chans": 16}
STATS = ("feats_stats.npz", "pitch_stats.npz", "energy_stats.npz")
NEW = Path("hindi/male/model")
ARYAN_MALE = Path("vocoder/male/aryan/hifigan")


def shrink_config(text: str) -> str:
    """The real config.yaml with the network sizes replaced in place (its formatting kept)."""
    for key, value in SHRINK.items():
        text, count = re.subn(rf"^(    {key}: )\d+$", rf"\g<1>{value}", text, flags=re.MULTILINE)
        assert count == 1, key
    return text


def audible_generator(directory: Path, config: dict, gain: float = 1.0, seed: int = 0) -> None:
    """config.json and a random generator that makes audible noise: HiFi-GAN's own
    initialisation (normal, std 0.01) gives a constant offset, which the speak check rightly
    calls silence; weights of std gain/sqrt(fan-in) give noise at about -14 dBFS (gain 1)."""
    import torch

    from lavanya_cli.speech.vocoder import hifigan_from_config, save_upstream_generator

    torch.manual_seed(seed)
    generator = hifigan_from_config(config, weight_norm=False)
    with torch.no_grad():
        for parameter in generator.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, gain / math.sqrt(parameter[0].numel()))
            else:
                parameter.zero_()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    save_upstream_generator(generator.state_dict(), directory / "generator")


@pytest.fixture(scope="module")
def shared() -> Path:
    if not (SHARED / "main").is_dir():
        pytest.skip(f"real upstream trees not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="module")
def kit(shared, tmp_path_factory) -> Path:
    """Built once: ``voice/`` (the real hindi male config shrunk, with upstream's absolute
    stats_file paths, the real statistics, random model.pth), ``female/`` (the same with other
    random weights) and ``vocoder/`` (the real aryan config.json at 32 channels, an audible
    random generator)."""
    from lavanya_cli.testing.random_weights import write_random_acoustic_model

    base = tmp_path_factory.mktemp("kit")
    real = shared / REAL_VOICE
    for seed, name in enumerate(("voice", "female")):
        voice = base / name
        voice.mkdir()
        text = shrink_config((real / "config.yaml").read_text(encoding="utf-8"))
        (voice / "config.yaml").write_text(text, encoding="utf-8")
        for stats in STATS:
            shutil.copyfile(real / stats, voice / stats)
        write_random_acoustic_model(voice, seed=seed, frames_per_token=5)
    vocoder_config = json.loads((shared / REAL_VOCODER).read_text())
    audible_generator(base / "vocoder", {**vocoder_config, "upsample_initial_channel": 32})
    return base


@pytest.fixture
def root(kit, shared, tmp_path) -> Path:
    """A model root in git: hindi/female (bare stats names), both aryan vocoders, and the real
    hindi phone dictionary and number table."""
    root = tmp_path / "models"
    female = root / "hindi/female/model"
    shutil.copytree(kit / "female", female)
    text = (female / "config.yaml").read_text(encoding="utf-8")
    (female / "config.yaml").write_text(re.sub(r"stats_file: .*/", "stats_file: ", text), encoding="utf-8")
    for gender in ("male", "female"):
        shutil.copytree(kit / "vocoder", root / f"vocoder/{gender}/aryan/hifigan")
    for resource in ("phone_dict/hindi", "numToText/hindi.csv"):
        (root / resource).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / "main" / resource, root / resource)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.fixture
def source(kit, tmp_path) -> Path:
    """A plain SOURCE directory: the five files as a training run's release holds them."""
    directory = tmp_path / "source"
    shutil.copytree(kit / "voice", directory)
    return directory


def snapshot(root: Path) -> dict[str, tuple]:
    """Each entry's type, mode and content from ``_helpers.snapshot``: what add-voice promises to
    leave as it was. Times and inodes are not: the staging directory comes and goes beside the
    voice's place, and a rollback writes ``.gitattributes`` back through a new file."""
    return {path: (kind, mode, content) for path, (kind, mode, *_, content) in tree_snapshot(root).items()}


def _steps(result) -> dict[str, str]:
    return {step.name: step.status for step in result.steps}


def _verified(root: Path) -> None:
    from lavanya_cli.checks.verify import verify_root

    assert verify_root(root, deep=True) == []


def test_a_plain_directory_becomes_a_verified_voice(cli, root, source):
    code, out, err = cli("add-voice", source, "--lang", "hindi", "--gender", "male", "--models", root)
    assert code == EXIT_OK, out + err
    model = root / NEW
    assert sorted(p.name for p in model.iterdir()) == sorted(["config.yaml", *STATS, "model.pth"])
    # fix-config rules: only the stats_file characters changed
    before = (source / "config.yaml").read_text(encoding="utf-8").splitlines()
    after = (model / "config.yaml").read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 3
    assert all(b == "    stats_file: " + a.rsplit("/", 1)[1] for a, b in changed)
    assert (model / "model.pth").read_bytes() == (source / "model.pth").read_bytes()
    assert {stat.S_IMODE(p.stat().st_mode) for p in model.iterdir()} == {0o644}
    assert stat.S_IMODE(model.stat().st_mode) == stat.S_IMODE((root / "hindi/male").stat().st_mode) == 0o755
    assert not [p for p in root.rglob(".lavanya-add-voice-*")]
    _verified(root)
    attributes = (root / ".gitattributes").read_text()
    assert "*.pth filter=lfs diff=lfs merge=lfs -text" in attributes
    assert "*.npz -filter -diff -merge -text" in attributes
    lines = out.splitlines()
    assert any(line.startswith("✓ speak") and "एक दो तीन चार पाँच" in line for line in lines)
    assert any(line.startswith("! tokens") and "ऽ (U+093D" in line for line in lines)  # as upstream's hindi
    assert f"git -C {root} add -A -- .gitattributes hindi/male/model" in out
    assert f"git -C {root} commit -m 'Add the hindi/male voice (lavanya add-voice)'" in out


def test_an_espnet_training_directory_with_absolute_stats_paths(cli, root, kit, tmp_path):
    """As a run leaves it: exp/tts_<name>/ with config.yaml whose stats_file entries are
    absolute paths on the training machine into exp/tts_stats_*/train/, several checkpoints."""
    recipe = tmp_path / "egs2/hindi/tts1"
    run = recipe / "exp/tts_train_fastspeech2_raw_char_None"
    stats = recipe / "exp/tts_stats_raw_char_None/train"
    run.mkdir(parents=True)
    stats.mkdir(parents=True)
    text = (kit / "voice/config.yaml").read_text(encoding="utf-8")
    text = re.sub(r"stats_file: .*/", "stats_file: /home/trainer/espnet/egs2/hindi/tts1/exp/tts_stats_raw_char_None"
                  "/train/", text)
    (run / "config.yaml").write_text(text, encoding="utf-8")
    for name in STATS:
        shutil.copyfile(kit / "voice" / name, stats / name)
    weights = (kit / "voice/model.pth").read_bytes()
    (run / "train.loss.ave_5best.pth").write_bytes(weights)
    (run / "train.loss.ave.pth").symlink_to("train.loss.ave_5best.pth")
    (run / "valid.loss.ave_5best.pth").write_bytes(b"another average")
    (run / "valid.loss.ave.pth").symlink_to("valid.loss.ave_5best.pth")
    (run / "99epoch.pth").write_bytes(b"an epoch")
    (run / "checkpoint.pth").write_bytes(b"training state")
    code, out, err = cli("add-voice", run, "--lang", "hindi", "--gender", "male", "--models", root,
                         "--format", "json")
    assert code == EXIT_OK, out + err
    result = json.loads(out)
    source_step = next(step for step in result["steps"] if step["name"] == "source")
    assert "ESPnet training directory" in source_step["detail"]
    assert "train.loss.ave.pth: the averaged checkpoint ESPnet's recipes synthesise with" in source_step["detail"]
    assert "../tts_stats_raw_char_None/train/feats_stats.npz" in source_step["detail"]
    assert (root / NEW / "model.pth").read_bytes() == weights
    assert "stats_file: feats_stats.npz" in (root / NEW / "config.yaml").read_text(encoding="utf-8")
    _verified(root)


def test_stats_outside_the_training_directory_are_not_read(root, kit, tmp_path):
    run = tmp_path / "exp/tts_x"
    shutil.copytree(kit / "voice", run, ignore=shutil.ignore_patterns("*_stats.npz"))
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(kit / "voice", elsewhere)
    text = re.sub(r"stats_file: .*/", f"stats_file: {elsewhere}/", (run / "config.yaml").read_text(encoding="utf-8"))
    (run / "config.yaml").write_text(text, encoding="utf-8")
    before = snapshot(root)
    result = add_voice(run, root, "hindi", "male")
    assert _steps(result)["source"] == "failed" and "statistics not found" in result.steps[0].detail
    assert snapshot(root) == before


@pytest.mark.parametrize("files, chosen, why", [
    (["model.pth", "train.loss.ave.pth", "10epoch.pth"], "model.pth", "the name a model root uses"),
    (["valid.loss.ave_5best.pth", "9epoch.pth", "10epoch.pth"], "valid.loss.ave_5best.pth", "the only averaged"),
    (["9epoch.pth", "10epoch.pth", "checkpoint.pth"], "10epoch.pth", "the highest epoch (10)"),
    (["voice.pth", "checkpoint.pth"], "voice.pth", "the only weights file"),
])
def test_which_weights_file_is_taken_and_why(tmp_path, files, chosen, why):
    for index, name in enumerate(files):
        (tmp_path / name).write_bytes(bytes([index]))
    path, reason = choose_weights(tmp_path)
    assert path.name == chosen and why in reason


@pytest.mark.parametrize("files, words", [
    (["train.acc.ave.pth", "valid.loss.ave.pth"], "several averaged checkpoints"),
    (["checkpoint.pth"], "training state"),
    (["a.pth", "b.pth"], "cannot tell which"),
    ([], "no weights"),
])
def test_an_unclear_choice_of_weights_is_refused(tmp_path, files, words):
    for index, name in enumerate(files):
        (tmp_path / name).write_bytes(bytes([index]))
    with pytest.raises(StepFailed) as failure:
        choose_weights(tmp_path)
    assert words in failure.value.detail
    if files:
        assert "--weights NAME" in failure.value.fix
        assert choose_weights(tmp_path, files[0])[0].name == files[0]


def test_pickled_stats_are_rewritten_as_plain_arrays(root, source):
    arrays = dict(np.load(source / "pitch_stats.npz"))
    with open(source / "pitch_stats.npz", "wb") as handle:
        pickle.dump(arrays, handle)
    result = add_voice(source, root, "hindi", "male")
    assert result.added, [s.as_dict() for s in result.steps if s.status == "failed"]
    stats_step = next(step for step in result.steps if step.name == "stats")
    assert "rewrote pitch_stats.npz from a pickle" in stats_step.detail
    with np.load(root / NEW / "pitch_stats.npz", allow_pickle=False) as plain:
        assert {key: plain[key].tobytes() for key in plain} == {key: value.tobytes() for key, value in arrays.items()}
    assert pickle.loads((source / "pitch_stats.npz").read_bytes()).keys() == arrays.keys()  # SOURCE untouched
    _verified(root)


def test_a_malicious_pickle_is_refused_and_never_run(root, source, tmp_path):
    marker = tmp_path / "pwned"
    with open(source / "energy_stats.npz", "wb") as handle:
        pickle.dump({"count": TouchesMarker(marker)}, handle)
    before = snapshot(root)
    result = add_voice(source, root, "hindi", "male")
    step = next(step for step in result.steps if step.name == "stats")
    assert step.status == "failed" and "refused to unpickle posix.system" in step.detail
    assert str(source / "energy_stats.npz") in step.detail
    assert _steps(result)["move"] == "skipped" and not result.added
    assert not marker.exists()
    assert snapshot(root) == before


def test_an_lfs_pointer_in_place_of_the_weights(cli, root, source):
    (source / "model.pth").write_text("version https://git-lfs.github.com/spec/v1\n"
                                      f"oid sha256:{'ab' * 32}\nsize 148700000\n")
    before = snapshot(root)
    code, out, _ = cli("add-voice", source, "--lang", "hindi", "--gender", "male", "--models", root)
    assert code == EXIT_PROBLEMS
    assert "✗ copy" in out and "is a Git LFS pointer, not the weights (148.7 MB not fetched)" in out
    assert "fix: run git lfs pull" in out and "hindi/male not added: 1 step failed" in out
    assert snapshot(root) == before


def test_a_token_list_without_the_languages_own_characters_fails(root, source):
    """'k' (the क of एक, one) swapped for a character no hindi word produces: same shapes, but
    the voice cannot say the number words; a voice for another language looks like this."""
    text = (source / "config.yaml").read_text(encoding="utf-8")
    (source / "config.yaml").write_text(text.replace("\n- k\n", "\n- ॐ\n", 1), encoding="utf-8")
    before = snapshot(root)
    result = add_voice(source, root, "hindi", "male")
    step = next(step for step in result.steps if step.name == "tokens")
    assert step.status == "failed" and "cannot say the hindi words 'एक दो तीन चार पाँच'" in step.detail
    assert "k (U+006B)" in step.detail and "--lang hindi" in step.fix
    assert _steps(result)["weights"] == "ok"  # the shapes still fit: only the characters are wrong
    assert snapshot(root) == before


def test_rarer_missing_characters_are_a_warning_naming_them(root, source):
    result = add_voice(source, root, "hindi", "male", dry_run=True)
    step = next(step for step in result.steps if step.name == "tokens")
    assert step.status == "warning" and result.ok
    assert "ऽ (U+093D, 8 words of phone_dict/hindi; parser: ऽ)" in step.detail
    assert "ള (U+0D33, 26 words of phone_dict/hindi; parser: ळ)" in step.detail  # the most common gap
    assert "<unk>" in step.fix


def test_an_existing_voice_is_kept_without_replace(cli, root, source):
    before = snapshot(root)
    code, out, _ = cli("add-voice", source, "--lang", "hindi", "--gender", "female", "--models", root)
    assert code == EXIT_PROBLEMS
    assert "✗ destination" in out and "hindi/female/model already holds a voice" in out and "--replace" in out
    assert snapshot(root) == before


def test_replace_swaps_the_voice_and_removes_the_old_one(root, source):
    old = root / "hindi/female/model"
    (old / "95epoch.pth").write_bytes(b"an old checkpoint")
    weights = (source / "model.pth").read_bytes()
    result = add_voice(source, root, "hindi", "female", replace_existing=True)
    assert result.added
    assert sorted(p.name for p in old.iterdir()) == sorted(["config.yaml", *STATS, "model.pth"])
    assert (old / "model.pth").read_bytes() == weights
    assert not list(root.rglob(".lavanya-add-voice-*"))
    _verified(root)


def test_a_failure_after_the_move_rolls_everything_back(root, source, monkeypatch):
    """.gitattributes written, then the step fails: the file and the moved voice go back."""
    (root / ".gitattributes").write_text("*.wav filter=lfs diff=lfs merge=lfs -text\n")
    os.chmod(root / ".gitattributes", 0o640)
    (root / "hindi/female/model/95epoch.pth").write_bytes(b"old")
    before = snapshot(root)
    write = git_mod.lfs_step

    def write_then_fail(root_, finals, undo):
        write(root_, finals, undo)
        raise StepFailed("simulated failure after writing .gitattributes")

    monkeypatch.setattr(git_mod, "lfs_step", write_then_fail)
    result = add_voice(source, root, "hindi", "female", replace_existing=True)
    assert _steps(result)["move"] == "ok" and _steps(result)["lfs"] == "failed" and not result.added
    assert snapshot(root) == before


def test_an_interrupt_after_the_move_rolls_back_too(root, source, monkeypatch):
    before = snapshot(root)

    def interrupted(root_, finals):
        assert (root / NEW / "model.pth").is_file()  # the voice was in
        raise KeyboardInterrupt

    monkeypatch.setattr(steps_mod, "verify_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        add_voice(source, root, "hindi", "male")
    assert snapshot(root) == before


def test_a_vocoder_that_fits_on_paper_but_gives_silence(root, source):
    """HiFi-GAN's own random initialisation: every shape fits (verify --deep passes it), the
    audio is a constant offset. Only listening catches that."""
    from lavanya_cli.checks.deep import generator_problem
    from lavanya_cli.modeltree.layout import VocoderSpec
    from lavanya_cli.testing.random_weights import write_random_vocoder

    vocoder = root / ARYAN_MALE
    write_random_vocoder(vocoder, json.loads((vocoder / "config.json").read_text()))
    assert generator_problem(VocoderSpec(vocoder, "aryan")) is None
    before = snapshot(root)
    result = add_voice(source, root, "hindi", "male")
    step = next(step for step in result.steps if step.name == "speak")
    assert step.status == "failed" and "came out silent" in step.detail and not result.added
    assert snapshot(root) == before


def test_a_read_only_model_root(root, source):
    """The command runs as root without capabilities (setpriv), so permission bits bind it as
    they bind any user. First ROOT is read-only throughout: nothing can even be staged. Then
    the gender directory is writable but the voice in it is not: staging and every check work,
    the kernel refuses the swap, and the tree is left as it was."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the capabilities that override permissions")
    command = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-c",
               "from lavanya_cli.cli import run; run()", "add-voice", str(source), "--lang", "hindi",
               "--gender", "female", "--models", str(root), "--replace"]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)

    def refused_with_tree_unchanged() -> str:
        before = snapshot(root)
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
        assert done.returncode == EXIT_PROBLEMS, done.stdout + done.stderr
        assert snapshot(root) == before
        return done.stdout

    try:
        first = refused_with_tree_unchanged()
        assert "✗ copy" in first and "cannot create a staging directory" in first and "Permission denied" in first
        os.chmod(root / "hindi/female", 0o755)
        second = refused_with_tree_unchanged()
        assert "✓ speak" in second and "✗ move" in second
        assert "cannot move the voice into hindi/female/model (Permission denied)" in second
    finally:
        for path in [root, *root.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


def test_dry_run_checks_everything_and_moves_nothing(cli, root, source):
    before = snapshot(root)
    code, out, _ = cli("add-voice", source, "--lang", "hindi", "--gender", "male", "--models", root, "--dry-run")
    assert code == EXIT_OK
    assert "✓ weights" in out and "✓ speak" in out and "- move" in out and "dry run: nothing moved" in out
    assert "after a real run, commit it with:" in out
    assert snapshot(root) == before


def test_a_new_language_with_its_vocoder_in_a_tree_that_keeps_manifests(root, source, kit, shared):
    """marathi, which the tree lacks, for a gender whose vocoder the tree lacks too, where the
    voices carry MD5SUMS: the language directory and the vocoder come in with one rename each."""
    from lavanya_cli.checks.manifest import manifest_mismatches, write_manifest

    write_manifest(root / "hindi/female/model")
    shutil.rmtree(root / "vocoder/male")
    shutil.copyfile(shared / "main/numToText/marathi.csv", root / "numToText/marathi.csv")
    missing = add_voice(source, root, "marathi", "male", dry_run=True)
    step = next(s for s in missing.steps if s.name == "vocoder")
    assert step.status == "failed" and "vocoder/male/aryan/hifigan is missing" in step.detail
    assert "--vocoder DIR" in step.fix

    # the hindi token list serves: marathi number words come out in the same characters
    result = add_voice(source, root, "marathi", "male", vocoder=kit / "vocoder")
    assert result.added, [s.as_dict() for s in result.steps if s.status not in ("ok", "skipped")]
    assert "एक दोन तीन चार पाच" in next(s.detail for s in result.steps if s.name == "speak")
    for directory in (root / "marathi/male/model", root / "vocoder/male/aryan/hifigan"):
        assert (directory / "MD5SUMS").is_file() and manifest_mismatches(directory) == []
    assert (root / "vocoder/male/aryan/hifigan/generator").read_bytes() == (kit / "vocoder/generator").read_bytes()
    assert {stat.S_IMODE((root / p).stat().st_mode) for p in ("marathi", "marathi/male", "vocoder/male")} == {0o755}
    assert "marathi/male/model vocoder/male/aryan/hifigan" in result.git_commands[1]
    _verified(root)


def test_a_different_vocoder_where_one_is_shared_is_refused(root, source, kit, tmp_path):
    other = tmp_path / "other-vocoder"
    shutil.copytree(kit / "vocoder", other)
    (other / "generator").write_bytes((other / "generator").read_bytes() + b"\0")
    before = snapshot(root)
    result = add_voice(source, root, "hindi", "female", vocoder=other, replace_existing=True)
    step = next(step for step in result.steps if step.name == "vocoder")
    assert step.status == "failed" and "already holds another vocoder (used by hindi/female)" in step.detail
    assert snapshot(root) == before


def test_github_annotations_for_failed_steps(cli, root, source, monkeypatch):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(source.parent))
    (source / "model.pth").write_bytes(b"not torch")
    code, out, _ = cli("add-voice", source, "--lang", "hindi", "--gender", "male", "--models", root,
                       "--format", "github")
    assert code == EXIT_PROBLEMS
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert errors[0].startswith("::error file=source/model.pth,title=lavanya add-voice%3A weights::")
    assert all(line.startswith(("::error", "::warning")) for line in out.splitlines())


@pytest.mark.parametrize("args, words", [
    (["--lang", "../etc", "--gender", "male"], "--lang '../etc'"),
    (["--lang", "hindi", "--gender", "other"], "--gender 'other'"),
    (["--lang", "hindi", "--gender", "male", "--variant", "a/b"], "--variant 'a/b'"),
])
def test_usage_errors_exit_2_and_touch_nothing(cli, root, source, args, words):
    before = snapshot(root)
    code, _, err = cli("add-voice", source, *args, "--models", root)
    assert code == EXIT_USAGE and words in err
    assert snapshot(root) == before
    code, _, err = cli("add-voice", source.parent / "absent", "--lang", "hindi", "--gender", "male", "--models", root)
    assert code == EXIT_USAGE


@pytest.mark.parametrize("name", ["model.pth", "pitch_stats.npz"])
def test_a_source_file_that_leads_to_a_device_is_refused(root, source, name):
    (source / name).unlink()
    (source / name).symlink_to("/dev/zero")
    before = snapshot(root)
    result = add_voice(source, root, "hindi", "male")
    step = next(step for step in result.steps if step.name == "copy")
    assert step.status == "failed" and "is a character device, not a regular file" in step.detail
    assert snapshot(root) == before


def test_a_config_that_is_a_fifo_is_refused_without_hanging(root, source):
    (source / "config.yaml").unlink()
    os.mkfifo(source / "config.yaml")
    result = add_voice(source, root, "hindi", "male")
    assert result.steps[0].status == "failed" and "is a FIFO, not a regular file" in result.steps[0].detail


def test_the_audio_measures():
    rate = 22050
    noise = np.random.default_rng(0).normal(0, 0.1, rate).astype(np.float32)
    assert audio_problems(noise, rate, 20)[2] == []
    assert "silent" in audio_problems(np.full(rate, 0.15, np.float32), rate, 20)[2][0][0]  # a constant offset
    assert "clipped throughout" in audio_problems(np.sign(noise), rate, 20)[2][0][0]
    assert "lasted 1.00 s for 100 characters" in audio_problems(noise, rate, 100)[2][0][0]
    assert "NaN" in audio_problems(np.full(rate, np.nan, np.float32), rate, 20)[2][0][0]


def test_the_test_sentence_is_the_number_words_of_every_upstream_language(shared):
    sentences = {csv.stem: sentence_for_language(shared / "main", csv.stem)
                 for csv in (shared / "main/numToText").glob("*.csv")}
    assert sentences["hindi"] == "एक दो तीन चार पाँच"
    assert sentences["english"] == "one two three four five"
    assert all(sentence and len(sentence.split()) >= 5 for sentence in sentences.values())


def test_add_voice_is_usable_from_python_and_reports_usage_errors(root, source):
    with pytest.raises(LavanyaError) as error:
        add_voice(source, root, "hindi", "neuter")
    assert error.value.exit_code == EXIT_USAGE


# -- names, stops and leftovers ------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--lang", "hindi\n", "--gender", "male"], "--lang 'hindi\\n'"),
    (["--lang", "Hindi\n", "--gender", "male"], "--lang 'hindi\\n'"),
    (["--lang", "hindi", "--gender", "male", "--variant", "x\n"], "--variant 'x\\n'"),
    (["--lang", "hindi", "--gender", "male\n"], "--gender 'male\\n'"),
])
def test_a_name_ending_in_a_newline_is_refused(cli, root, source, args, words):
    """``$`` matches before a final newline: such a name would become a directory named
    ``hindi\\n`` that looks like hindi in every listing."""
    before = snapshot(root)
    code, out, err = cli("add-voice", source, *args, "--models", root)
    assert code == EXIT_USAGE, out + err
    (line,) = err.splitlines()
    assert line.startswith("lavanya: error: ") and words in line
    assert "lower-case letters" in line or "one of male, female" in line
    assert out == ""  # refused before anything was staged or shown
    assert snapshot(root) == before


def test_check_names_accepts_only_whole_names():
    from lavanya_cli.add_voice import check_names

    assert check_names("Hindi", "Male", "v2") == ("hindi", "male", "v2")
    for language, variant in (("hindi\n", ""), ("hindi", "x\n"), ("hi\ndi", ""), ("hindi", "v2\n")):
        with pytest.raises(LavanyaError) as error:
            check_names(language, "male", variant)
        assert error.value.exit_code == EXIT_USAGE and "\n" not in error.value.message


def _stop(*_args, **_kwargs):
    """What cli.main's handler raises when SIGTERM arrives in the middle of a step."""
    raise Stopped(signal.SIGTERM)


def test_sigterm_while_checking_exits_143_and_removes_the_staging_directory(root, source):
    """The real signal in a real process: sent once the staging directory exists (the voice is
    being checked, which takes seconds), with --replace so there is an old voice to keep."""
    command = [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "add-voice", str(source),
               "--lang", "hindi", "--gender", "female", "--models", str(root), "--replace"]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    before = snapshot(root)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        deadline = time.monotonic() + 300
        while not list((root / "hindi/female").glob(".lavanya-add-voice-*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no staging directory appeared"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_TERMINATED, out + err
    lines = [line for line in err.splitlines() if line.startswith("lavanya:")]
    assert len(lines) == 1 and "terminated (SIGTERM)" in lines[0], err
    assert "hindi/female not added" in lines[0] and "as it was" in lines[0]
    assert not list(root.rglob(".lavanya-add-voice-*"))
    assert snapshot(root) == before


def test_a_stop_after_the_move_puts_the_old_voice_back(cli, root, source, monkeypatch):
    before = snapshot(root)
    monkeypatch.setattr(steps_mod, "verify_step", _stop)
    code, out, err = cli("add-voice", source, "--lang", "hindi", "--gender", "female", "--models", root, "--replace")
    assert code == EXIT_TERMINATED, out + err
    (line,) = err.splitlines()
    assert line.startswith("lavanya: error: terminated (SIGTERM): hindi/female not added;") and "as it was" in line
    assert snapshot(root) == before


def test_a_stop_after_the_point_of_no_return_says_the_voice_is_in(cli, root, source, monkeypatch):
    """Once the voice is in and verified nothing is undone: the line says so, and the old voice
    put aside is still removed."""
    monkeypatch.setattr(git_mod, "commit_commands", _stop)
    weights = (source / "model.pth").read_bytes()
    code, out, err = cli("add-voice", source, "--lang", "hindi", "--gender", "female", "--models", root, "--replace")
    assert code == EXIT_TERMINATED, out + err
    (line,) = err.splitlines()
    assert line.startswith("lavanya: error: terminated (SIGTERM): hindi/female was added") and "verified" in line
    assert (root / "hindi/female/model/model.pth").read_bytes() == weights
    assert not list(root.rglob(".lavanya-add-voice-*"))
    _verified(root)


class _Killed(BaseException):
    """SIGKILL: the process is gone, nothing is rolled back or removed."""


def _kill_at(monkeypatch, step: str) -> None:
    """Make add-voice die as SIGKILL would at ``step``: that step raises, and neither the undo
    log nor the removal of the staging directories runs. ``between-renames``: the old voice has
    been put aside, the new one not yet moved in."""
    def killed(*_args, **_kwargs):
        raise _Killed

    def aside_then_killed(root_, stages, undo):
        stage = stages[0]
        os.rename(stage.final, stage.directory / ASIDE_NAME)
        raise _Killed

    monkeypatch.setattr(staging_mod.Undo, "rollback", lambda self: [])
    monkeypatch.setattr(staging_mod.Stage, "discard", lambda self: None)
    if step == "between-renames":
        monkeypatch.setattr(steps_mod, "move_step", aside_then_killed)
    else:
        monkeypatch.setattr(git_mod if step == "lfs" else steps_mod, f"{step}_step", killed)


@pytest.mark.parametrize("step, message, fix", [
    ("lfs", "the previous voice of hindi/female/model, put aside when the new one was moved in",
     "rm -rf {final} && mv {leftover}/previous {final}"),
    ("between-renames", "the previous voice of hindi/female/model, put aside before the new one was moved in",
     "mv {leftover}/previous {final}"),
    ("speak", "a staged copy of hindi/female/model that was never moved in", "rm -rf {leftover}"),
])
def test_verify_reports_what_a_killed_add_voice_left(cli, root, source, monkeypatch, step, message, fix):
    """After SIGKILL nothing rolls back: the staging directory stays in the tree, hidden, with
    the old voice in it after a --replace. verify names it, says what it holds and how to finish,
    and add-voice refuses to run over it."""
    old = (root / "hindi/female/model/model.pth").read_bytes()
    with monkeypatch.context() as patched:
        _kill_at(patched, step)
        with pytest.raises(_Killed):
            add_voice(source, root, "hindi", "female", replace_existing=True)
    (leftover,) = (root / "hindi/female").glob(".lavanya-add-voice-*")
    final = root / "hindi/female/model"
    code, out, err = cli("verify", root)
    assert code == EXIT_PROBLEMS, out + err
    (line,) = [line for line in out.splitlines() if "[leftover]" in line]
    assert line.startswith(f"hindi/female/{leftover.name}: [leftover] an interrupted lavanya add-voice")
    assert message in line and fix.format(leftover=leftover, final=final) in line
    if step != "speak":
        assert (leftover / "previous/model.pth").read_bytes() == old

    before = snapshot(root)
    result = add_voice(source, root, "hindi", "female", replace_existing=True)
    destination = next(s for s in result.steps if s.name == "destination")
    assert destination.status == "failed" and not result.added
    assert "an interrupted lavanya add-voice" in destination.detail and leftover.name in destination.detail
    assert snapshot(root) == before

    # doing what the fix says leaves a tree verify passes, holding a voice add-voice can replace
    fixed = fix.format(leftover=leftover, final=final)
    subprocess.run(fixed + (f" && rm -rf {leftover}" if "rm -rf " + str(leftover) not in fixed else ""),
                   shell=True, check=True)
    assert not list(root.rglob(".lavanya-add-voice-*"))
    _verified(root)
    assert add_voice(source, root, "hindi", "female", replace_existing=True).added


def test_a_rollback_that_cannot_put_the_old_voice_back_keeps_it(cli, root, source, monkeypatch):
    """The last step fails and the old voice cannot be renamed back (here a simulated EBUSY):
    the staging directory holding it is kept, the move step and the summary say ROOT changed,
    and verify tells how to put it back."""
    old = (root / "hindi/female/model/model.pth").read_bytes()
    rename = os.rename

    def busy(src, dst, *args, **kwargs):
        if Path(src).name == ASIDE_NAME:
            raise OSError(16, "Device or resource busy")
        return rename(src, dst, *args, **kwargs)

    def fail(*_args):
        raise StepFailed("simulated failure after the move")

    monkeypatch.setattr(steps_mod, "verify_step", fail)
    with monkeypatch.context() as patched:
        patched.setattr(os, "rename", busy)
        code, out, err = cli("add-voice", source, "--lang", "hindi", "--gender", "female", "--models", root,
                             "--replace")
    assert code == EXIT_PROBLEMS, out + err
    (leftover,) = (root / "hindi/female").glob(".lavanya-add-voice-*")
    assert (leftover / "previous/model.pth").read_bytes() == old
    assert "✗ move" in out and "could not undo putting" in out and "Device or resource busy" in out
    assert "could not be put back as it was" in out and "is unchanged" not in out
    code, out, _ = cli("verify", root)
    assert code == EXIT_PROBLEMS and f"mv {leftover}/previous {root}/hindi/female/model" in out
