"""fix-config: only the three stats_file values change, byte for byte everything else stays."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
import yaml

from lavanya_cli.checks.config_fix import fix_config
from lavanya_cli.modeltree.config import (
    STATS_ENTRIES,
    fix_stats_paths_text,
    read_config,
)
from lavanya_cli.modeltree.layout import STATS_NAMES
from lavanya_cli.testing.scaffold import VoiceShape, config_text, fastspeech2_config

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
BARE = {key: STATS_NAMES[kind] for key, kind in STATS_ENTRIES.items()}


def _config(style: str = "espnet", stats_dir: str = "/speech/arun/released_models/tts/male/hindi/fastspeech2_hs") -> str:
    files = {kind: f"{stats_dir}/{name}" for kind, name in STATS_NAMES.items()}
    return config_text(fastspeech2_config(VoiceShape(), files), style=style)


def _assert_only_stats_lines_changed(before: str, after: str) -> None:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(changed) == 3
    for a, b in changed:
        indent = a[: len(a) - len(a.lstrip())]
        assert b.startswith(indent + "stats_file: ") and b.rstrip("\r\n").rsplit(" ", 1)[1] in STATS_NAMES.values()
    expected = yaml.load(before, Loader=_LOADER)
    for key, name in BARE.items():
        expected[key]["stats_file"] = name
    assert yaml.load(after, Loader=_LOADER) == expected


@pytest.mark.parametrize("style", ["espnet", "sorted"])
def test_both_config_styles_keep_everything_but_the_stats_paths(tmp_path, style):
    path = tmp_path / "config.yaml"
    text = _config(style)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o664)

    assert fix_config(path).result == "fixed"

    after = path.read_text(encoding="utf-8")
    _assert_only_stats_lines_changed(text, after)
    for token in ("- $\n", "- .\n", "- ऐ\n", "- ट\n"):
        assert token in after
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert fix_config(path).result == "unchanged"
    assert path.read_text(encoding="utf-8") == after


def test_comments_quotes_spaces_and_crlf_survive(tmp_path):
    text = (
        "# trained on the lab cluster\r\n"
        "token_list:\r\n- <blank>\r\n- '.'\r\n- \"\\u0916\"  # escaped on purpose\r\n"
        "normalize: global_mvn\r\n"
        "normalize_conf:\r\n"
        "  stats_file: '/home/speech/Fastspeech2_latest models/x/feats_stats.npz'   # old box\r\n"
        "pitch_normalize: global_mvn\r\n"
        "pitch_normalize_conf: {stats_file: \"/home/speech/a b/pitch_stats.npz\", norm_vars: true}\r\n"
        "energy_normalize: global_mvn\r\n"
        "energy_normalize_conf:\r\n"
        "    stats_file: /home/speech/Fastspeech2_latest models/x/energy_stats.npz\r\n"
    )
    fixed = fix_stats_paths_text(text)
    assert fixed == (
        text.replace("'/home/speech/Fastspeech2_latest models/x/feats_stats.npz'", "feats_stats.npz")
        .replace("\"/home/speech/a b/pitch_stats.npz\"", "pitch_stats.npz")
        .replace("/home/speech/Fastspeech2_latest models/x/energy_stats.npz", "energy_stats.npz")
    )
    assert fix_stats_paths_text(fixed) == fixed


def test_check_only_leaves_the_file_alone(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(_config(), encoding="utf-8")
    before = path.read_bytes()
    assert fix_config(path, check_only=True).result == "fixed"
    assert path.read_bytes() == before


@pytest.mark.parametrize("text, reason", [
    ("normalize: global_mvn\nnormalize_conf: {}\n", "no stats_file"),
    ("token_list: [a, b\n", "parse"),
    ("- just\n- a list\n", "mapping"),
])
def test_configs_it_cannot_fix_are_refused_untouched(tmp_path, text, reason):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    outcome = fix_config(path)
    assert outcome.result == "refused" and reason in outcome.reason
    assert path.read_text(encoding="utf-8") == text


def test_fix_config_cli_check_then_fix(tmp_path, cli):
    from lavanya_cli.testing.scaffold import build_root

    root = build_root(tmp_path / "models")
    configs = sorted(root.rglob("config.yaml"))
    before = {c: c.read_bytes() for c in configs}

    code, out, _ = cli("fix-config", "--check", root)
    assert code == 1 and out.count(": [stats-path] ") == len(configs) == 2
    assert all(f"{c}: [stats-path] " in out and f"; fix: lavanya fix-config {c}" in out for c in configs)
    assert out.endswith("2 would fix, 0 unchanged, 0 refused\n")
    assert all(c.read_bytes() == before[c] for c in configs)

    code, out, _ = cli("fix-config", "--models", root)
    assert code == 0 and out.count(": fixed") == 2
    for config in configs:
        stats_files = [read_config(config)[key]["stats_file"] for key in BARE]
        assert stats_files == list(BARE.values())

    code, out, _ = cli("fix-config", "--check", *configs)
    assert code == 0 and out.count(": unchanged") == 2


def test_fix_config_cli_exits_1_when_a_config_is_refused(tmp_path, cli):
    path = tmp_path / "config.yaml"
    path.write_text("normalize: global_mvn\nnormalize_conf: {}\n")
    code, out, _ = cli("fix-config", path)
    assert code == 1 and f"{path}: [refused] no stats_file under normalize_conf; fix: add one by hand" in out


@pytest.mark.slow  # every real config in ../shared
def test_every_real_config_changes_only_in_its_stats_paths(shared_tree, tmp_path):
    configs = sorted(shared_tree.rglob("config.yaml"))
    assert len(configs) >= 31 + 40
    assert any(" " in read_config(c)["normalize_conf"]["stats_file"] for c in configs), "paths with spaces covered"
    for index, source in enumerate(configs):
        copy = tmp_path / str(index) / "config.yaml"
        copy.parent.mkdir()
        shutil.copyfile(source, copy)
        outcome = fix_config(copy)
        assert outcome.result == "fixed", (source, outcome)
        _assert_only_stats_lines_changed(source.read_text(encoding="utf-8"), copy.read_text(encoding="utf-8"))
        assert fix_config(copy).result == "unchanged"
