"""``fix-stats``: pickled ESPnet statistics rewritten as plain npz archives with the same keys,
dtypes and bits, read through ``modeltree.stats`` (which never runs a pickle)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import one_line
from ..fileio import NotReadable, format_size
from ..modeltree.lfs_pointer import pull_command
from ..modeltree.stats import (BAD_STATS, OK, PICKLED, STATS_MAX_MEMBERS, RefusedPickle, Unreadable, as_plain_array,
                               inspect_stats, read_members, shape_problem)
from .problems import FIXED, REFUSED, UNCHANGED, FileFix
from .rewrite import Refused, rewrite_file, writable_target

# The fix for statistics that cannot be repaired here.
RESTORE_STATS = "restore the statistics this voice was trained with"


def fix_stats(path: Path, *, check_only: bool = False, root: Path | None = None) -> FileFix:
    """Rewrite a pickled stats file as a plain npz with the same keys, dtypes and bits.

    Plain files are left alone (``unchanged``); pointers, missing, truncated and unknown files,
    pickles that ask for anything but numpy arrays, files outside ``root`` (default: the
    directory ``path`` is named in) and files that cannot be written are ``refused`` and never
    touched.
    """
    try:
        writable_target(path, root)
    except Refused as exc:
        return FileFix(path, REFUSED, exc.reason, exc.fix)
    check = inspect_stats(path)
    if check.state in (OK, BAD_STATS):
        if check.ok:
            return FileFix(path, UNCHANGED)
        return FileFix(path, REFUSED, f"not pickled but wrong: {check.detail}", RESTORE_STATS)
    if check.pointer is not None:
        return FileFix(path, REFUSED, f"{check.detail} (content of {format_size(check.pointer.size)} not fetched)",
                       f"fetch it with {pull_command(path)}")
    if check.state != PICKLED:
        return FileFix(path, REFUSED, check.detail, check.fix or RESTORE_STATS)
    try:
        values = read_members(path, unpickle=True)
        if len(values) > STATS_MAX_MEMBERS:
            raise Unreadable(f"pickle holds {len(values)} entries; statistics have three "
                              f"(limit {STATS_MAX_MEMBERS})")
        arrays: dict[str, np.ndarray] = {}
        for key, value in values.items():
            name = _member_key(key, arrays)
            arrays[name] = as_plain_array(name, value)
    except RefusedPickle as exc:
        return FileFix(path, REFUSED, str(exc), RESTORE_STATS)
    except NotReadable as exc:
        return FileFix(path, REFUSED, exc.reason, exc.fix)
    except (Unreadable, OSError) as exc:
        return FileFix(path, REFUSED, one_line(exc), RESTORE_STATS)
    problem = shape_problem(arrays, None)
    if problem:
        return FileFix(path, REFUSED, f"unpickled, but {problem}", RESTORE_STATS)
    note = ""
    if not check_only:
        try:
            note = rewrite_file(path, lambda handle: write_npz(handle, arrays), root)
        except Refused as exc:
            return FileFix(path, REFUSED, exc.reason, exc.fix)
    return FileFix(path, FIXED, "; ".join(part for part in (check.detail, note) if part))


def _member_key(key: Any, taken: dict[str, Any]) -> str:
    """A pickled dict's key as an npz member name: text that a zip entry keeps exactly, and not
    one already used (``1`` and ``"1"`` would collide)."""
    name = str(key)
    if "\0" in name:
        raise Unreadable(f"key {name!r} holds a NUL character, which an npz member name cannot")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise Unreadable(f"key {name!r} is not valid text") from None
    if name in taken:
        raise Unreadable(f"two keys are both written {name!r}")
    return name


def write_npz(handle: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed npz of ``arrays``, as ``np.savez`` writes it, with the keys taken as data:
    any key (``file``, ``allow_pickle``) becomes a member, none is read as a keyword argument.
    Members carry a fixed timestamp, so the same arrays always give the same bytes."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
