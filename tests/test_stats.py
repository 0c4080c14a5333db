"""Stats files: classification without running pickles, and fix-stats."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest

from lavanya_cli.modeltree.config import read_config
from lavanya_cli.testing.scaffold import lfs_pointer_text, stats_arrays, write_stats
from lavanya_cli.checks.problems import FIXED, REFUSED, UNCHANGED
from lavanya_cli.checks.stats import fix_stats
from lavanya_cli.modeltree.stats import BAD_STATS, LFS_POINTER, OK, PICKLED, UNREADABLE, inspect_stats, load_stats

ORIGINAL = stats_arrays(8, seed=3)


def _object_count(path: Path) -> None:
    np.savez(path, count=np.array(ORIGINAL["count"], dtype=object), sum=ORIGINAL["sum"],
             sum_square=ORIGINAL["sum_square"])


def _object_sum(path: Path) -> None:
    boxed = np.empty((), dtype=object)
    boxed[()] = ORIGINAL["sum"]
    np.savez(path, count=ORIGINAL["count"], sum=boxed, sum_square=ORIGINAL["sum_square"])


def _pickled_dict(path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(dict(ORIGINAL), handle)


def _pickled_dict_protocol2(path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(dict(ORIGINAL), handle, protocol=2)


def _np_save_dict(path: Path) -> None:
    with open(path, "wb") as handle:  # a handle, so numpy keeps the .npz name
        np.save(handle, dict(ORIGINAL), allow_pickle=True)


def _savez_wrapped_dict(path: Path) -> None:
    np.savez(path, stats=np.array(dict(ORIGINAL), dtype=object))


PICKLED_WRITERS = [_object_count, _object_sum, _pickled_dict, _pickled_dict_protocol2, _np_save_dict,
                   _savez_wrapped_dict]


def test_plain_stats_are_ok_and_the_dimension_is_checked(tmp_path):
    path = write_stats(tmp_path / "feats_stats.npz", 8)
    assert inspect_stats(path, 8).state == OK
    wrong = inspect_stats(path, 80)
    assert wrong.state == BAD_STATS and "80" in wrong.detail


@pytest.mark.parametrize("writer", PICKLED_WRITERS, ids=lambda w: w.__name__.strip("_"))
def test_pickled_variants_are_detected_and_rewritten_bit_for_bit(tmp_path, writer):
    path = tmp_path / "feats_stats.npz"
    writer(path)
    os.chmod(path, 0o640)
    assert inspect_stats(path).state == PICKLED

    assert fix_stats(path).result == FIXED

    assert inspect_stats(path, 8).state == OK
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    with np.load(path, allow_pickle=False) as fixed:
        assert sorted(fixed.files) == sorted(ORIGINAL)
        for key, value in ORIGINAL.items():
            assert fixed[key].dtype == value.dtype
            assert fixed[key].shape == value.shape
            assert fixed[key].tobytes() == value.tobytes()
    before = path.read_bytes()
    assert fix_stats(path).result == UNCHANGED
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p != path], "no temporary file left behind"


def test_check_only_reports_without_writing(tmp_path):
    path = tmp_path / "pitch_stats.npz"
    _pickled_dict(path)
    before = path.read_bytes()
    assert fix_stats(path, check_only=True).result == FIXED
    assert path.read_bytes() == before


class _Payload:
    """Unpickling this creates a marker file: the proof that a pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _malicious_raw(path: Path, marker: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump({"count": _Payload(marker), "sum": ORIGINAL["sum"]}, handle)


def _malicious_member(path: Path, marker: Path) -> None:
    np.savez(path, count=np.array([_Payload(marker)], dtype=object), sum=ORIGINAL["sum"],
             sum_square=ORIGINAL["sum_square"])


@pytest.mark.parametrize("writer", [_malicious_raw, _malicious_member], ids=["raw", "npz-member"])
def test_a_malicious_pickle_is_refused_and_never_run(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "feats_stats.npz"
    writer(path, marker)
    before = path.read_bytes()

    assert inspect_stats(path).state == PICKLED
    outcome = fix_stats(path)

    assert outcome.result == REFUSED
    assert "pathlib" in outcome.reason and "refused" in outcome.reason
    assert not marker.exists()
    assert path.read_bytes() == before


def test_a_pointer_is_recognised_before_parsing_and_left_alone(tmp_path):
    path = tmp_path / "energy_stats.npz"
    path.write_text(lfs_pointer_text(b"x" * 300))
    before = path.read_bytes()
    check = inspect_stats(path)
    assert check.state == LFS_POINTER and check.pointer.size == 300
    assert fix_stats(path).result == REFUSED
    assert path.read_bytes() == before


def test_truncated_files_are_unreadable_and_left_alone(tmp_path):
    whole = write_stats(tmp_path / "whole.npz", 8).read_bytes()
    for cut in (0, 10, len(whole) // 2, len(whole) - 5):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(whole[:cut])
        assert inspect_stats(path).state == UNREADABLE, cut
        assert fix_stats(path).result == REFUSED
        assert path.read_bytes() == whole[:cut]


def test_a_truncated_pickle_is_refused(tmp_path):
    path = tmp_path / "feats_stats.npz"
    _pickled_dict(path)
    path.write_bytes(path.read_bytes()[:-40])
    outcome = fix_stats(path)
    assert outcome.result == REFUSED and "truncated" in outcome.reason


@pytest.mark.parametrize("arrays, expected_words", [
    ({"count": np.array(5), "sum": np.zeros(8, np.float32)}, "sum_square"),
    ({"count": np.array(0), "sum": np.zeros(8, np.float32), "sum_square": np.ones(8, np.float32)}, "count"),
    ({"count": np.array(5), "sum": np.zeros(8, np.float32), "sum_square": np.ones(7, np.float32)}, "sum_square"),
    ({"count": np.array(5), "sum": np.full(8, np.nan, np.float32), "sum_square": np.ones(8, np.float32)}, "NaN"),
])
def test_wrong_keys_shapes_and_values_are_bad_stats(tmp_path, arrays, expected_words):
    path = tmp_path / "feats_stats.npz"
    np.savez(path, **arrays)
    check = inspect_stats(path, 8)
    assert check.state == BAD_STATS and expected_words in check.detail
    assert fix_stats(path).result == REFUSED


def test_load_stats_refuses_anything_but_plain_stats(tmp_path):
    path = tmp_path / "feats_stats.npz"
    _object_count(path)
    with pytest.raises(ValueError, match="pickled"):
        load_stats(path)
    assert fix_stats(path).result == FIXED
    assert load_stats(path)["count"] == ORIGINAL["count"]


@pytest.mark.slow  # every real stats file in ../shared
def test_every_real_stats_file_is_plain_and_matches_its_config(shared_tree):
    files = sorted(shared_tree.rglob("*_stats.npz"))
    assert len(files) >= 3 * 31
    for path in files:
        n_mels = read_config(path.parent / "config.yaml")["feats_extract_conf"]["n_mels"]
        dim = n_mels if path.name == "feats_stats.npz" else 1
        check = inspect_stats(path, dim)
        assert check.state == OK, (path, check)
        assert load_stats(path)["count"].dtype == np.int64


def test_fix_stats_cli_fixes_refuses_and_checks(tmp_path, cli):
    root = tmp_path / "models"
    from lavanya_cli.testing.scaffold import build_voice

    model_dir = build_voice(root, absolute_stats_paths=False)
    _pickled_dict(model_dir / "feats_stats.npz")

    code, out, _ = cli("fix-stats", "--check", root)
    assert code == 1 and "feats_stats.npz: [pickled] " in out and "; fix: lavanya fix-stats " in out
    assert inspect_stats(model_dir / "feats_stats.npz").state == PICKLED

    code, out, _ = cli("fix-stats", root)
    assert code == 0 and "feats_stats.npz: fixed" in out
    assert cli("fix-stats", "--check", root)[0] == 0

    (model_dir / "pitch_stats.npz").write_text(lfs_pointer_text(b"y" * 900))
    code, out, _ = cli("fix-stats", model_dir / "pitch_stats.npz", model_dir / "energy_stats.npz")
    assert code == 1
    assert "pitch_stats.npz: [refused] is a Git LFS pointer (content of 900 bytes not fetched); fix: fetch it with " \
           "git lfs pull" in out and "energy_stats.npz: unchanged" in out


def test_fix_stats_cli_on_a_missing_path_is_a_usage_error(tmp_path, cli):
    code, _, err = cli("fix-stats", tmp_path / "nowhere.npz")
    assert code == 2 and "nowhere.npz" in err
