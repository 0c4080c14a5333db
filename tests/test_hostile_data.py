"""Hostile file contents and numbers: archives that inflate, headers that lie or overflow,
pickles that would make numpy read past its buffers, YAML that expands, oversized manifests,
numbers no float can hold. Each must give one line and bounded work; memory is asserted with
tracemalloc (sizes, never timings)."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lavanya_cli.checks.config_fix import fix_config
from lavanya_cli.checks.stats import write_npz
from lavanya_cli.modeltree.stats import STATS_MAX_MEMBERS, UNREADABLE, inspect_stats
from lavanya_cli.checks.verify import verify_root
from lavanya_cli.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, LavanyaError
from lavanya_cli.fileio import MIB
from lavanya_cli.modeltree.config import YAML_MAX_DEPTH, read_config
from lavanya_cli.testing.scaffold import build_root, lfs_pointer_text, stats_arrays

HINDI = Path("hindi/male/model")
MEMORY_BOUND = 16 * MIB  # far below what any of these files would take if expanded


def peak_bytes(action) -> tuple[object, int]:
    """``action()``'s result and the peak of Python and numpy allocations while it ran."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))


def npy_header(shape, descr: str = "<f8") -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def deflated_member(path: Path, name: str, shape: tuple[int, ...], zero_bytes: int) -> None:
    """An npz whose one member is an npy header plus ``zero_bytes`` zeros, deflated (a few kB
    on disk per MB inside)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(name, "w") as member:
            member.write(npy_header(shape))
            chunk = bytes(MIB)
            for _ in range(zero_bytes // MIB):
                member.write(chunk)


# --- npz archives -----------------------------------------------------------------------------

@pytest.mark.slow  # compresses 400 MiB into a zip bomb
def test_an_npz_that_inflates_to_hundreds_of_megabytes_is_refused_unread(root, cli):
    stats = root / HINDI / "feats_stats.npz"
    deflated_member(stats, "sum.npy", (50_000_000,), 400 * MIB)
    assert stats.stat().st_size < MIB
    check, peak = peak_bytes(lambda: inspect_stats(stats))
    assert check.state == UNREADABLE and "expands to 419430528 bytes" in check.detail
    assert peak < MEMORY_BOUND
    code, out, _ = cli("fix-stats", stats)
    assert code == EXIT_PROBLEMS and out.startswith(f"{stats}: [refused] member 'sum' expands to")


@pytest.mark.slow  # compresses 300 MiB into a member
def test_a_zip_header_that_understates_a_member_is_still_bounded(root):
    stats = root / HINDI / "feats_stats.npz"
    deflated_member(stats, "sum.npy", (8,), 300 * MIB)
    data = bytearray(stats.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24:central + 28] = (200).to_bytes(4, "little")  # declared size: 200 bytes
    stats.write_bytes(bytes(data))
    check, peak = peak_bytes(lambda: inspect_stats(stats))
    assert check.state == UNREADABLE and "member 'sum'" in check.detail
    assert peak < MEMORY_BOUND


def test_an_npz_with_too_many_members_is_refused(root):
    stats = root / HINDI / "feats_stats.npz"
    with zipfile.ZipFile(stats, "w") as archive:
        for index in range(STATS_MAX_MEMBERS + 1):
            archive.writestr(f"m{index}.npy", npy_header((1,)) + bytes(8))
    check = inspect_stats(stats)
    assert check.state == UNREADABLE and f"{STATS_MAX_MEMBERS + 1} members" in check.detail


@pytest.mark.parametrize("shape, words", [
    ((2**62, 2**62), "a 2-D array of 170141183460469231731687303715884105728 bytes"),
    ((2**40,), "far beyond any statistics"),
    ((-1,), "not a tuple of non-negative whole numbers"),
])
def test_an_npy_header_that_overflows_or_lies_is_unreadable(root, cli, shape, words):
    stats = root / HINDI / "pitch_stats.npz"
    with zipfile.ZipFile(stats, "w") as archive:
        archive.writestr("count.npy", npy_header(shape))
    (problem,) = [p for p in verify_root(root) if p.path.endswith("pitch_stats.npz")]
    assert problem.code == "unreadable" and words in problem.message
    code, out, err = cli("fix-stats", stats)
    assert code == EXIT_PROBLEMS and "internal error" not in err and ": [refused] " in out


# --- pickles -----------------------------------------------------------------------------------

class _Reduce:
    """Pickles as the given ``__reduce__`` value: a way to write a pickle by hand."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return self.value


_RECONSTRUCT = np._core.multiarray._reconstruct


@pytest.mark.slow  # a subprocess per case
@pytest.mark.parametrize("member, words", [
    # numpy trusts an object array's state: a list shorter than the shape is read past its end
    (_Reduce((_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (5,), np.dtype(object), False, [1, 2, 3]))),
     "object array whose items do not match its shape"),
    (_Reduce((_RECONSTRUCT, (np.ndarray, (10**12,), b"b"))), "far beyond any statistics"),
    (_Reduce((np.ndarray, ((10**12,), "i1"))), "refused to call numpy.ndarray directly"),
    (_Reduce((_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (2,), np.dtype("f8"), False, b"x"))),
     "data does not match its shape"),
])
def test_a_pickle_that_would_crash_or_inflate_numpy_is_refused(root, member, words):
    """Run in a child process: should the check ever regress, a crash fails this test only."""
    stats = root / HINDI / "feats_stats.npz"
    with open(stats, "wb") as handle:
        pickle.dump({**stats_arrays(8), "count": member}, handle)
    before = stats.read_bytes()
    result = subprocess.run([sys.executable, "-c", "from lavanya_cli.cli import run; run()", "fix-stats", str(stats)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == EXIT_PROBLEMS, result.stderr
    assert result.stdout.startswith(f"{stats}: [refused] ") and words in result.stdout
    assert stats.read_bytes() == before


def test_keys_are_data_never_keyword_arguments(root, cli):
    stats = root / HINDI / "feats_stats.npz"
    arrays = {**stats_arrays(8), "file": np.array(1.5), "allow_pickle": np.arange(3)}
    with open(stats, "wb") as handle:
        pickle.dump(arrays, handle)
    code, out, _ = cli("fix-stats", stats)
    assert code == EXIT_OK and f"{stats}: fixed" in out
    with np.load(stats, allow_pickle=False) as fixed:
        assert sorted(fixed.files) == sorted(arrays)
        for key, value in arrays.items():
            assert fixed[key].dtype == value.dtype and fixed[key].tobytes() == value.tobytes()


def test_write_npz_gives_the_same_bytes_for_the_same_arrays():
    first, second = io.BytesIO(), io.BytesIO()
    write_npz(first, stats_arrays(4))
    write_npz(second, stats_arrays(4))
    assert first.getvalue() == second.getvalue()


# --- YAML --------------------------------------------------------------------------------------

def alias_bomb(levels: int = 9) -> str:
    text = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, levels + 1):
        text += f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]\n"
    return text + "normalize_conf: {stats_file: /speech/feats_stats.npz}\n"


def test_a_yaml_alias_bomb_is_one_line_and_never_expanded(root, cli):
    config = root / HINDI / "config.yaml"
    config.write_text(alias_bomb())  # 9**10 strings once expanded
    outcome, peak = peak_bytes(lambda: fix_config(config, check_only=True))
    assert outcome.result == "refused" and "anchors or aliases" in outcome.reason
    assert peak < MEMORY_BOUND
    code, out, _ = cli("fix-config", "--check", config)
    assert code == EXIT_PROBLEMS and len(out.splitlines()) == 2
    (problem,) = [p for p in verify_root(root) if p.path == "hindi/male/model/config.yaml"]
    assert problem.code == "unreadable" and "anchors or aliases" in problem.message


@pytest.mark.parametrize("text, words", [
    ("a: " + "[" * (YAML_MAX_DEPTH + 1) + "]" * (YAML_MAX_DEPTH + 1) + "\n", f"nests deeper than {YAML_MAX_DEPTH}"),
    ("feats_extract_conf: {fs: " + "9" * 5000 + "}\n", "does not parse"),
])
def test_yaml_nesting_and_numbers_beyond_bounds_are_one_line(root, text, words):
    config = root / HINDI / "config.yaml"
    config.write_text(text)
    with pytest.raises(LavanyaError, match=words):
        read_config(config)
    (problem,) = [p for p in verify_root(root) if p.path == "hindi/male/model/config.yaml"]
    assert problem.code == "unreadable"


def test_every_yaml_read_goes_through_the_one_loader():
    """No module that reads a model tree loads YAML by itself (lavanya_cli.modeltree.config's
    load_yaml refuses aliases and deep nesting)."""
    owned = [Path("lavanya_cli/modeltree"), Path("lavanya_cli/checks")]
    offenders = [str(path) for top in owned for path in top.rglob("*.py")
                 if path.name != "config.py" and any(call in path.read_text()
                                                     for call in ("yaml.load(", "yaml.safe_load(", "yaml.full_load("))]
    assert offenders == []


# --- numbers -----------------------------------------------------------------------------------

def test_hostile_numbers_in_pointers_configs_and_options_are_one_line(root, cli):
    weights = root / HINDI / "model.pth"
    weights.write_text(lfs_pointer_text(b"w").replace("size 1", "size " + "9" * 30))
    config = root / HINDI / "config.yaml"
    config.write_text(config.read_text().replace("fs: 22050", "fs: twenty-two thousand", 1))
    code, out, err = cli("voices", "--format", "json", root)
    assert code == EXIT_OK, err
    (row,) = json.loads(out)
    assert row["weights"] == "present" and row["sample_rate"] is None  # git-lfs reads no such size either
    config.write_text(config.read_text().replace("feats_extract_conf:", "feats_extract_conf: [1]\nunused:", 1))
    code, out, err = cli("verify", root)  # a list where settings belong: no internal error
    assert code in (EXIT_OK, EXIT_PROBLEMS) and err == "" and "vocoder-mismatch" not in out
    for threshold in ("9" * 400, "99999999999999999999GB", "1e999"):
        code, _, err = cli("lfs-track", "--threshold", threshold, root)
        assert code == EXIT_USAGE and err.count("\n") == 1 and "--threshold" in err


# --- bounded reads of manifests, vocoder configs and .gitattributes -----------------------------

def test_oversized_and_non_regular_small_files_are_one_line_and_never_read(root, cli):
    manifest = root / HINDI / "MD5SUMS"
    with open(manifest, "wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB that takes no disk
    vocoder_config = root / "vocoder/male/aryan/hifigan/config.json"
    vocoder_config.unlink()
    with open(vocoder_config, "wb") as handle:
        handle.truncate(1 << 30)
    problems, peak = peak_bytes(lambda: {(p.path, p.code): p.message for p in verify_root(root)})
    assert peak < MEMORY_BOUND
    assert "MD5SUMS is larger than 1 MiB" in problems[("hindi/male/model/MD5SUMS", "checksum")]
    assert "config.json is larger than 1 MiB" in problems[("vocoder/male/aryan/hifigan/config.json", "unreadable")]
    attributes = root / ".gitattributes"
    os.mkfifo(attributes)
    code, out, _ = cli("lfs-track", "--write", root)
    assert code == EXIT_PROBLEMS
    assert out == ".gitattributes: [refused] it is a FIFO, not a regular file; fix: replace it with the real file\n"
