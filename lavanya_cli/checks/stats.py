"""ESPnet normalisation statistics (``*_stats.npz``): checking them and repairing pickled ones.

ESPnet's ``GlobalMVN`` reads ``count``, ``sum`` and ``sum_square`` from an npz archive. Copies
that went through other tools sometimes come back pickled: an archive with an object member,
or a whole dict pickled (``pickle.dump``/``np.save``) under the ``.npz`` name. Loading those
would run a pickle from the model repository, so this module never hands them to ``pickle``
or ``np.load(allow_pickle=True)``: it reads npy headers itself and unpickles only through an
allow-list of numpy's own array reconstruction.
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..fileio import replace_file
from ..modeltree.lfs_pointer import LfsPointer, read_pointer

STATS_KEYS = ("count", "sum", "sum_square")

# Results of inspect_stats(); the non-ok ones are also the codes verify reports.
OK = "ok"
MISSING = "missing"
LFS_POINTER = "lfs-pointer"
PICKLED = "pickled"
UNREADABLE = "unreadable"
BAD_STATS = "bad-stats"

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_PROTOCOL_OPCODE = b"\x80"

_np_core = np._core
# (module, name) pairs a pickled array of numbers needs, for numpy 1.x ("numpy.core") and 2.x
# ("numpy._core") writers alike, mapped straight to the objects so numpy.core is never imported.
_ALLOWED_GLOBALS = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct
       for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _np_core.multiarray.scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _np_core.numeric._frombuffer for core in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # protocol 0-2 pickles spell bytes as codecs.encode(str, "latin1"); it only converts data
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): OrderedDict,
}


class RefusedPickle(Exception):
    """The pickle asks for something other than numpy's array reconstruction."""


class _Pickled(Exception):
    """The file holds a pickle and the caller did not ask to unpickle it."""


class _Unreadable(Exception):
    """Truncated, corrupt or not statistics at all."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and dicts of them, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickle(f"refused to unpickle {module}.{name} (only numpy arrays are allowed)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("refused a pickle with persistent references")


def _restricted_load(stream: BinaryIO) -> Any:
    try:
        return _ArrayOnlyUnpickler(stream).load()
    except RefusedPickle:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _Unreadable(f"pickle is truncated or corrupt ({type(exc).__name__})") from None


@dataclass(frozen=True)
class StatsCheck:
    """What ``inspect_stats`` found: ``state`` is one of the module constants, ``detail`` says why."""

    state: str
    detail: str = ""
    pointer: LfsPointer | None = None

    @property
    def ok(self) -> bool:
        return self.state == OK


def _npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an npy header, read without touching the data."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)
        return np.lib.format.read_array_header_2_0(stream)
    except ValueError as exc:
        raise _Unreadable(f"not a valid npy header ({exc})") from None


def _read_npy(stream: BinaryIO, *, unpickle: bool) -> np.ndarray:
    """One npy array; an object array is unpickled (restricted) only when ``unpickle`` is set."""
    shape, fortran, dtype = _npy_header(stream)
    if dtype.hasobject:
        if not unpickle:
            raise _Pickled("holds pickled Python objects")
        array = _restricted_load(stream)
        if not isinstance(array, np.ndarray):
            raise _Unreadable("object member does not hold an array")
        return array
    count = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data = stream.read(count)
    if len(data) != count:
        raise _Unreadable("array data is truncated")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _read_members(path: Path, *, unpickle: bool) -> dict[str, Any]:
    """The file's statistics by key (values still as unpickled when ``unpickle`` is set).

    Raises _Pickled (when not ``unpickle``), _Unreadable or RefusedPickle.
    """
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(0)
        if head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC):
            return _read_npz(handle, unpickle=unpickle)
        if head.startswith(_NPY_MAGIC):
            array = _read_npy(handle, unpickle=unpickle)
            return _unwrap_dict(array, "the .npy array")
        if head.startswith(_PICKLE_PROTOCOL_OPCODE):
            if not unpickle:
                raise _Pickled("is a pickled Python object, not an npz archive")
            value = _restricted_load(handle)
            if not isinstance(value, dict):
                raise _Unreadable(f"pickle holds a {type(value).__name__}, not a dict of arrays")
            return dict(value)
    if not head:
        raise _Unreadable("file is empty")
    raise _Unreadable("not an npz archive")


def _read_npz(handle: BinaryIO, *, unpickle: bool) -> dict[str, Any]:
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _Unreadable(f"npz archive is truncated or corrupt ({exc})") from None
    members: dict[str, Any] = {}
    with archive:
        for name in archive.namelist():
            key = name.removesuffix(".npy")
            try:
                with archive.open(name) as member:
                    raw = member.read()  # reading to the end checks the CRC
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise _Unreadable(f"member {key!r} is truncated or corrupt ({exc})") from None
            try:
                array = _read_npy(io.BytesIO(raw), unpickle=unpickle)
            except _Pickled:
                raise _Pickled(f"member {key!r} holds pickled Python objects") from None
            except _Unreadable as exc:
                raise _Unreadable(f"member {key!r}: {exc}") from None
            if len(archive.namelist()) == 1 and array.dtype.hasobject and array.shape == ():
                # np.savez(path, stats=some_dict): one member wrapping the whole dict
                if isinstance(array.item(), dict):
                    return dict(array.item())
            members[key] = array
    return members


def _unwrap_dict(array: np.ndarray, what: str) -> dict[str, Any]:
    """``np.save`` of a dict stores a 0-d object array holding the dict."""
    if array.dtype.hasobject and array.shape == () and isinstance(array.item(), dict):
        return dict(array.item())
    raise _Unreadable(f"{what} is not a dict of statistics")


def _as_plain_array(key: str, value: Any) -> np.ndarray:
    """A pickled member's value as a numeric array with the same dtype and bits."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        value = value.item() if value.shape == () else value.tolist()
    if isinstance(value, np.ndarray):
        plain = value
    elif isinstance(value, (np.generic, int, float, list)):
        plain = np.asarray(value)
    else:
        raise _Unreadable(f"{key!r} holds a {type(value).__name__}, not numbers")
    if plain.dtype.hasobject or plain.dtype.kind not in "biuf":
        raise _Unreadable(f"{key!r} does not hold plain numbers (dtype {plain.dtype})")
    return plain


def _shape_problem(arrays: dict[str, np.ndarray], dim: int | None) -> str | None:
    missing = [key for key in STATS_KEYS if key not in arrays]
    if missing:
        return f"missing key(s) {', '.join(missing)}; found {', '.join(sorted(arrays)) or 'none'}"
    count, total, square = (arrays[key] for key in STATS_KEYS)
    for key in STATS_KEYS:
        if arrays[key].dtype.kind not in "biuf":
            return f"{key!r} has dtype {arrays[key].dtype}, not a number type"
    if count.size != 1:
        return f"'count' has shape {count.shape}; it should be a single number"
    if not count.reshape(()) > 0:
        return f"'count' is {count.reshape(()).item()}; statistics from no frames cannot normalise"
    if total.ndim != 1 or square.shape != total.shape:
        return f"'sum' {total.shape} and 'sum_square' {square.shape} should be equal 1-D shapes"
    if dim is not None and total.shape != (dim,):
        return f"'sum' has {total.shape[0]} values, the config expects {dim}"
    if not (np.isfinite(total).all() and np.isfinite(square).all()):
        return "'sum' or 'sum_square' holds NaN or infinity"
    return None


def inspect_stats(path: Path, dim: int | None = None) -> StatsCheck:
    """Classify a stats file without running any pickle in it.

    ``dim`` is the expected vector length (n_mels for feats, 1 for pitch and energy) or None to
    accept any. Pointers are recognised before anything parses the file.
    """
    if not path.is_file():
        return StatsCheck(MISSING, "file is missing")
    pointer = read_pointer(path)
    if pointer is not None:
        return StatsCheck(LFS_POINTER, "is a Git LFS pointer", pointer)
    try:
        arrays = _read_members(path, unpickle=False)
    except _Pickled as exc:
        return StatsCheck(PICKLED, str(exc))
    except _Unreadable as exc:
        return StatsCheck(UNREADABLE, str(exc))
    except OSError as exc:
        return StatsCheck(UNREADABLE, f"cannot read ({exc.strerror})")
    problem = _shape_problem(arrays, dim)
    return StatsCheck(BAD_STATS, problem) if problem else StatsCheck(OK)


def load_stats(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a plain stats file; raises ValueError naming the problem for anything else."""
    check = inspect_stats(path)
    if not check.ok:
        raise ValueError(f"{path}: {check.state}: {check.detail}")
    return _read_members(path, unpickle=False)


# Results of fix_stats()
FIXED = "fixed"
UNCHANGED = "unchanged"
REFUSED = "refused"


@dataclass(frozen=True)
class StatsFix:
    path: Path
    result: str  # FIXED, UNCHANGED or REFUSED (or, with check_only, FIXED meaning "would fix")
    reason: str = ""


def fix_stats(path: Path, *, check_only: bool = False) -> StatsFix:
    """Rewrite a pickled stats file as a plain npz with the same keys, dtypes and bits.

    Plain files are left alone (``unchanged``); pointers, missing, truncated and unknown files,
    and pickles that ask for anything but numpy arrays, are ``refused`` and never touched.
    """
    check = inspect_stats(path)
    if check.state in (OK, BAD_STATS):
        if check.ok:
            return StatsFix(path, UNCHANGED)
        return StatsFix(path, REFUSED, f"not pickled but wrong: {check.detail}")
    if check.state != PICKLED:
        reason = check.detail
        if check.pointer is not None:
            reason += f" (content of {check.pointer.size} bytes not fetched)"
        return StatsFix(path, REFUSED, reason)
    try:
        values = _read_members(path, unpickle=True)
        arrays = {str(key): _as_plain_array(str(key), value) for key, value in values.items()}
    except RefusedPickle as exc:
        return StatsFix(path, REFUSED, str(exc))
    except (_Unreadable, OSError) as exc:
        return StatsFix(path, REFUSED, str(exc))
    problem = _shape_problem(arrays, None)
    if problem:
        return StatsFix(path, REFUSED, f"unpickled, but {problem}")
    if not check_only:
        replace_file(path, lambda handle: np.savez(handle, **arrays))
    return StatsFix(path, FIXED, check.detail)
