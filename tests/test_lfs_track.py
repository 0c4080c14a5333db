"""lavanya lfs-track: the .gitattributes it writes, proven with git check-attr in real repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lavanya_cli.cli import main
from lavanya_cli.errors import LavanyaError
from lavanya_cli.checks.gitattributes import (
    DEFAULT_THRESHOLD,
    escape_pattern,
    merge_attributes,
    parse_size,
    plan,
    write_attributes,
)

SHARED = Path(os.environ.get("LAVANYA_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "iitm-fs2hs"
LFS_LINE_SUFFIX = " filter=lfs diff=lfs merge=lfs -text"
POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
           b"oid sha256:" + b"ab" * 32 + b"\nsize %d\n")


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch, tmp_path_factory):
    """Git with no user or system config (so no git-lfs filter), and an identity for commits."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, input=input, check=True,
                          capture_output=True).stdout.decode()


def make(path: Path, data: bytes = b"\x80weights\r\n\x00") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def filters(repo: Path, paths: list[str]) -> dict[str, str]:
    """What git itself resolves for ``filter`` on each path."""
    out = git(repo, "check-attr", "-z", "--stdin", "filter",
              input=b"".join(p.encode() + b"\0" for p in paths))
    fields = out.split("\0")
    return {fields[i]: fields[i + 2] for i in range(0, len(fields) - 2, 3)}


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """A git repository holding a model tree with awkward names, a demo voice and an ignored venv."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    tree = repo / "Fastspeech2_HS"
    make(tree / "hindi male" / "model" / "model.pth")
    make(tree / "hindi male" / "model" / "feats_stats.npz")
    make(tree / "vocoder" / "male" / "aryan#1" / "hifigan" / "generator")
    make(tree / "hindi" / "male" / "model" / "model.pth")
    make(tree / "hindi" / "male" / "model" / "DEMO", b"")
    make(tree / "vocoder" / "male" / "aryan" / "hifigan" / "generator")
    make(tree / "vocoder" / "male" / "aryan" / "hifigan" / "DEMO", b"")
    make(tree / "samples" / "big take #2 [final].wav", b"\0" * 4000)
    make(tree / "samples" / "huge.npz", b"\0" * 4000)
    make(repo / ".venv" / "lib" / "torch.pth")
    (repo / ".gitignore").write_text(".venv/\n")
    return repo


def test_escaping_follows_git_lfs():
    # git-lfs's trackEscapePatterns: a space becomes [[:space:]], '#' becomes \#;
    # --filename additionally escapes the glob characters.
    assert escape_pattern("my model#2.pth", literal=False) == "my[[:space:]]model\\#2.pth"
    assert escape_pattern("a/take [1]*?.wav", literal=True) == "a/take[[:space:]]\\[1\\]\\*\\?.wav"


def test_written_attributes_resolve_as_planned_in_git(model_repo: Path):
    """The lines, read by git itself: weights and large files in LFS; stats and demo weights out."""
    result = plan(model_repo, threshold=parse_size("1kB"))
    assert write_attributes(result)
    base = "Fastspeech2_HS/"
    in_lfs = [base + p for p in ("hindi male/model/model.pth", "vocoder/male/aryan#1/hifigan/generator",
                                 "samples/big take #2 [final].wav")]
    kept_out = [base + p for p in ("hindi male/model/feats_stats.npz", "samples/huge.npz",
                                   "hindi/male/model/model.pth", "vocoder/male/aryan/hifigan/generator")]
    assert sorted(result.in_lfs) == sorted(in_lfs)
    assert sorted(result.kept_out) == sorted(kept_out)
    resolved = filters(model_repo, in_lfs + kept_out + ["elsewhere/new voice/model.pth"])
    assert {p: resolved[p] for p in in_lfs} == {p: "lfs" for p in in_lfs}
    assert {p: resolved[p] for p in kept_out} == {p: "unset" for p in kept_out}
    # The general rule covers weights that do not exist yet, at any depth.
    assert resolved["elsewhere/new voice/model.pth"] == "lfs"
    # The ignored virtual environment is not part of the tree.
    assert not any(".venv" in line for line in result.lines)


def test_files_kept_out_are_committed_byte_for_byte(model_repo: Path):
    """-text, not text: git must not turn CRLF bytes inside a binary npz or demo weights into LF."""
    write_attributes(plan(model_repo))
    kept = ["Fastspeech2_HS/hindi male/model/feats_stats.npz", "Fastspeech2_HS/hindi/male/model/model.pth"]
    git(model_repo, "add", "--", *kept)
    for rel in kept:
        blob = subprocess.run(["git", "cat-file", "blob", f":{rel}"], cwd=model_repo, check=True,
                              capture_output=True).stdout
        assert blob == (model_repo / rel).read_bytes() and b"\r\n" in blob


def test_rules_for_a_model_root_inside_a_repository(model_repo: Path):
    """ROOT below the top: .gitattributes goes into ROOT and its patterns are relative to it."""
    root = model_repo / "Fastspeech2_HS"
    assert main(["lfs-track", "--write", "--threshold", "1kB", str(root)]) == 0
    assert (root / ".gitattributes").is_file() and not (model_repo / ".gitattributes").exists()
    resolved = filters(model_repo, ["Fastspeech2_HS/samples/big take #2 [final].wav",
                                    "Fastspeech2_HS/hindi/male/model/model.pth", "other/model.pth"])
    assert resolved == {"Fastspeech2_HS/samples/big take #2 [final].wav": "lfs",
                        "Fastspeech2_HS/hindi/male/model/model.pth": "unset",
                        "other/model.pth": "unspecified"}
    assert main(["lfs-track", "--check", "--threshold", "1kB", str(root)]) == 0


def test_check_reports_weights_committed_as_regular_blobs(model_repo: Path, capsys):
    assert main(["lfs-track", "--write", str(model_repo)]) == 0
    git(model_repo, "add", "-A")
    git(model_repo, "commit", "-q", "-m", "weights without git-lfs")
    assert main(["lfs-track", "--check", str(model_repo)]) == 1
    out = capsys.readouterr().out
    assert "Fastspeech2_HS/hindi male/model/model.pth: [regular-blob] committed (or staged) as a regular git " \
           "blob, not an LFS pointer; fix: with git-lfs installed run `git rm --cached" in out
    assert "git lfs migrate import" in out
    # The demo voice's weights are meant to be regular blobs.
    assert "hindi/male/model/model.pth: [regular-blob]" not in out

    # Committed as pointers (what git-lfs's clean filter stores), the same files pass.
    for rel in ("Fastspeech2_HS/hindi male/model/model.pth",
                "Fastspeech2_HS/vocoder/male/aryan#1/hifigan/generator"):
        (model_repo / rel).write_bytes(POINTER % 148_700_000)
    git(model_repo, "add", "-A")
    git(model_repo, "commit", "-q", "-m", "pointers")
    capsys.readouterr()
    assert main(["lfs-track", "--check", str(model_repo)]) == 0, capsys.readouterr().out


def test_check_reports_statistics_committed_as_pointers(model_repo: Path, capsys):
    make(model_repo / "Fastspeech2_HS" / "hindi male" / "model" / "feats_stats.npz", POINTER % 1234)
    assert main(["lfs-track", "--write", str(model_repo)]) == 0
    git(model_repo, "add", "-A")
    git(model_repo, "commit", "-q", "-m", "stats as a pointer")
    assert main(["lfs-track", "--check", str(model_repo)]) == 1
    assert "feats_stats.npz: [lfs-blob] " in capsys.readouterr().out


def test_check_reports_a_missing_rule_and_an_override(model_repo: Path, capsys):
    assert main(["lfs-track", "--check", str(model_repo)]) == 1
    out = capsys.readouterr().out
    assert ".gitattributes: [missing-rule] missing `*.pth" + LFS_LINE_SUFFIX + "` (model weights); " \
           f"fix: lavanya lfs-track --write {model_repo}" in out
    assert main(["lfs-track", "--write", str(model_repo)]) == 0
    assert main(["lfs-track", "--check", str(model_repo)]) == 0
    # A nested .gitattributes that unsets the filter defeats the top-level rule: git says so.
    (model_repo / "Fastspeech2_HS" / "hindi male" / ".gitattributes").write_text("*.pth -filter\n")
    capsys.readouterr()
    assert main(["lfs-track", "--check", str(model_repo)]) == 1
    assert "hindi male/model/model.pth: [not-lfs] " in capsys.readouterr().out


def test_write_keeps_unrelated_lines_and_is_idempotent(tmp_path: Path):
    make(tmp_path / "voice" / "model.pth")
    existing = ("# project attributes\n*.txt text eol=lf\n*.npz filter=lfs diff=lfs merge=lfs -text\n"
                "*.sh text eol=lf\n")
    (tmp_path / ".gitattributes").write_text(existing)
    result = plan(tmp_path)
    assert write_attributes(result)
    first = (tmp_path / ".gitattributes").read_text()
    lines = first.splitlines()
    for unrelated in ("# project attributes", "*.txt text eol=lf", "*.sh text eol=lf"):
        assert lines.count(unrelated) == 1
    # The old rule that put the statistics in LFS is replaced, not kept beside the new one.
    assert [line for line in lines if line.startswith("*.npz")] == ["*.npz -filter -diff -merge -text"]
    assert lines[-len(result.lines):] == result.lines
    assert not write_attributes(plan(tmp_path))
    assert (tmp_path / ".gitattributes").read_text() == first
    assert main(["lfs-track", "--check", str(tmp_path)]) == 0


def test_merge_keeps_crlf_line_endings():
    merged = merge_attributes("*.txt text\r\n", ["*.pth" + LFS_LINE_SUFFIX])
    assert merged == "*.txt text\r\n*.pth" + LFS_LINE_SUFFIX + "\r\n"


def test_pointers_count_as_the_size_they_stand_for(tmp_path: Path):
    make(tmp_path / "samples" / "speech.wav", POINTER % (DEFAULT_THRESHOLD + 1))
    make(tmp_path / "samples" / "short.wav", POINTER % 1000)
    make(tmp_path / "vocoder" / "generator", POINTER % 55_000_000)
    result = plan(tmp_path)
    assert sorted(result.in_lfs) == ["samples/speech.wav", "vocoder/generator"]
    assert "samples/speech.wav" + LFS_LINE_SUFFIX in result.lines


def test_demo_weights_over_the_threshold_go_to_lfs(tmp_path: Path):
    make(tmp_path / "hindi" / "male" / "model" / "model.pth", b"\0" * 3000)
    make(tmp_path / "hindi" / "male" / "model" / "DEMO", b"")
    assert plan(tmp_path, threshold=2000).in_lfs == ["hindi/male/model/model.pth"]
    assert plan(tmp_path, threshold=4000).kept_out == ["hindi/male/model/model.pth"]


def test_outside_git_hidden_and_venv_directories_are_skipped(tmp_path: Path):
    make(tmp_path / "voice" / "model.pth")
    make(tmp_path / ".cache" / "old.pth")
    make(tmp_path / "env" / "pyvenv.cfg", b"home = /usr\n")
    make(tmp_path / "env" / "lib" / "big.bin", b"\0" * 3000)
    assert plan(tmp_path, threshold=1000).in_lfs == ["voice/model.pth"]


def test_top_level_file_rule_is_anchored(tmp_path: Path):
    git(tmp_path, "init", "-q", ".")
    make(tmp_path / "big.bin", b"\0" * 3000)
    write_attributes(plan(tmp_path, threshold=1000))
    assert filters(tmp_path, ["big.bin", "sub/big.bin"]) == {"big.bin": "lfs", "sub/big.bin": "unspecified"}


def test_commands_match_the_lines(tmp_path: Path, capsys):
    make(tmp_path / "take #1.wav", b"\0" * 3000)
    assert main(["lfs-track", "--threshold", "1kB", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "/take[[:space:]]\\#1.wav" + LFS_LINE_SUFFIX in out.splitlines()
    assert "#   git lfs track --filename '/take #1.wav'" in out.splitlines()
    assert "#   git lfs track '*.pth'" in out.splitlines()


@pytest.mark.parametrize("text,size", [("10MB", 10_000_000), ("500kB", 500_000), ("1.5GiB", 3 * 2**29),
                                       ("2048", 2048), ("20 mib", 20 * 2**20)])
def test_parse_size(text: str, size: int):
    assert parse_size(text) == size


def test_bad_usage_exits_2(tmp_path: Path, capsys):
    with pytest.raises(LavanyaError):
        parse_size("ten megabytes")
    assert main(["lfs-track", "--threshold", "lots", str(tmp_path)]) == 2
    assert main(["lfs-track", "--write", "--check", str(tmp_path)]) == 2
    assert not (tmp_path / ".gitattributes").exists()


@pytest.mark.skipif(not (SHARED / "main").is_dir(), reason="shared upstream tree absent")
def test_real_upstream_tree():
    result = plan(SHARED / "main")
    weights = sorted(p.relative_to(SHARED / "main").as_posix() for p in (SHARED / "main").rglob("*.pth"))
    stats = sorted(p.relative_to(SHARED / "main").as_posix() for p in (SHARED / "main").rglob("*.npz"))
    assert len(weights) == 31
    assert result.in_lfs == weights  # every one of them a 134-byte pointer, in LFS by name
    assert result.kept_out == stats
    # Nothing else there (phone dictionaries up to 4 MB) is over the default threshold.
    assert [rule.source for rule in result.rules] == ["*.pth", "generator", "*.onnx", "*.npz"]
