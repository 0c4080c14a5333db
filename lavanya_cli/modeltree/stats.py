"""ESPnet normalisation statistics (``*_stats.npz``) read without running a pickle: what the
engines load and what ``verify`` and ``fix-stats`` inspect.

ESPnet's ``GlobalMVN`` reads ``count``, ``sum`` and ``sum_square`` from an npz archive. Copies
that went through other tools sometimes come back pickled: an archive with an object member,
or a whole dict pickled (``pickle.dump``/``np.save``) under the ``.npz`` name. Loading those
would run a pickle from the model repository, so this module never hands them to ``pickle``
or ``np.load(allow_pickle=True)``: it reads npy headers itself and unpickles only through an
allow-list of numpy's own array reconstruction, with every array's shape, size and state
checked before numpy sees them (numpy trusts them, and reads past its buffers when they lie).

Every size is bounded before anything is read or allocated: the file (STATS_MAX_BYTES), the
number of members (STATS_MAX_MEMBERS), each member as its zip header declares it and as its
npy header's shape times item size says (STATS_MAX_BYTES each).
"""

from __future__ import annotations

import codecs
import io
import math
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import one_line
from ..fileio import STATS_MAX_BYTES, NotReadable, read_regular
from .lfs_pointer import FileState, LfsPointer, probe

STATS_KEYS = ("count", "sum", "sum_square")
# Real statistics hold three members of a few hundred floats. Every member, as its zip header
# declares it and as its npy header's shape says, must fit STATS_MAX_BYTES before it is read,
# so a small archive that inflates to gigabytes is refused unread.
STATS_MAX_MEMBERS = 16

# Results of inspect_stats(); the non-ok ones are also the codes verify reports.
OK = "ok"
MISSING = FileState.MISSING.value
LFS_POINTER = FileState.LFS_POINTER.value
OUTSIDE_ROOT = FileState.OUTSIDE_ROOT.value
UNREADABLE = FileState.UNREADABLE.value
PICKLED = "pickled"
BAD_STATS = "bad-stats"

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_PROTOCOL_OPCODE = b"\x80"
# dtype kinds a statistics pickle may build: bool, integers, floats, complex, and object (a box).
_PICKLE_DTYPE_KINDS = "biufcO"


class RefusedPickle(Exception):
    """The pickle asks for something other than numpy's array reconstruction."""


class Pickled(Exception):
    """The file holds a pickle and the caller did not ask to unpickle it."""


class Unreadable(Exception):
    """Truncated, corrupt, oversized or not statistics at all."""


def _array_bytes(shape: Any, dtype: np.dtype) -> int:
    """Bytes an array of ``shape`` and ``dtype`` takes, computed exactly (no int64 overflow);
    Unreadable for a malformed shape or one beyond STATS_MAX_BYTES."""
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Unreadable("array shape is not a tuple of non-negative whole numbers")
    size = math.prod(shape) * dtype.itemsize
    if size > STATS_MAX_BYTES:
        raise Unreadable(f"a {len(shape)}-D array of {size} bytes, far beyond any statistics "
                          f"(limit {STATS_MAX_BYTES} bytes)")
    return size


def _checked_dtype(spec: Any, *args: Any) -> np.dtype:
    """``numpy.dtype`` as a pickle calls it, for plain number and object types only."""
    dtype = np.dtype(spec, *args[:2])
    if dtype.kind not in _PICKLE_DTYPE_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise RefusedPickle(f"refused to unpickle dtype {dtype} (only plain numbers are allowed)")
    return dtype


def _checked_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct``, only for plain ndarrays of a bounded size."""
    if subtype is not np.ndarray:
        raise RefusedPickle("refused to reconstruct anything but a numpy.ndarray")
    try:
        _array_bytes(shape if isinstance(shape, tuple) else (shape,), np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise RefusedPickle(f"refused a malformed array ({exc})") from None
    return _np_core.multiarray._reconstruct(subtype, shape, dtype)


def _latin1(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as old pickles use it: str to latin-1 bytes, nothing else."""
    if not isinstance(text, str) or encoding.replace("-", "") != "latin1":
        raise RefusedPickle(f"refused _codecs.encode with {encoding!r}")
    return codecs.encode(text, "latin1")


_np_core = np._core
# (module, name) pairs a pickled array of numbers needs, for numpy 1.x ("numpy.core") and 2.x
# ("numpy._core") writers alike, mapped straight to the objects so numpy.core is never imported;
# the ones that size or build arrays are checked versions.
_ALLOWED_GLOBALS = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _checked_reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _np_core.multiarray.scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _np_core.numeric._frombuffer for core in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _checked_dtype,
    # protocol 0-2 pickles spell bytes as codecs.encode(str, "latin1"); it only converts data
    ("_codecs", "encode"): _latin1,
    ("collections", "OrderedDict"): OrderedDict,
}


def _check_array_state(state: Any) -> None:
    """An ndarray's ``__setstate__`` argument, checked before numpy sees it: numpy trusts the
    shape, and an object array whose list is shorter than the shape reads past the list (a
    crash, or worse). Shape, size, dtype and data must agree exactly."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise RefusedPickle("refused an array state of an unknown form")
    shape, dtype, _fortran, data = state[-4:]
    if not isinstance(dtype, np.dtype):
        raise RefusedPickle("refused an array state without a dtype")
    try:
        size = _array_bytes(shape, dtype)
    except Unreadable as exc:
        raise RefusedPickle(f"refused an array state: {exc}") from None
    if dtype.hasobject:
        if dtype != np.dtype(object) or not isinstance(data, list) or len(data) != math.prod(shape):
            raise RefusedPickle("refused an object array whose items do not match its shape")
    elif not isinstance(data, (bytes, bytearray)) or len(data) != size:
        raise RefusedPickle("refused an array whose data does not match its shape")


def _check_dtype_state(dtype: np.dtype, state: Any) -> None:
    """A dtype's ``__setstate__`` argument: only a byte order for a plain dtype, nothing that
    would change its size, fields or layout."""
    if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")
            and state[2:5] == (None, None, None) and state[5] in (-1, dtype.itemsize)
            and state[6] in (-1, dtype.alignment) and state[7] == dtype.flags and state[8:] in ((), (None,))):
        raise RefusedPickle("refused a dtype state that changes its layout")


class _ArrayOnlyUnpickler(pickle._Unpickler):
    """An unpickler that can rebuild numpy arrays and dicts of them, and nothing else.

    It is the pure-Python unpickler (at most STATS_MAX_BYTES of input), so the opcodes that
    call or build objects can be checked one by one: only allow-listed functions are called,
    ``numpy.ndarray`` is never called directly (that allocates any size), state is set only on
    arrays and dtypes and only after checking it, and instance-creating opcodes are refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickle(f"refused to unpickle {module}.{name} (only numpy arrays are allowed)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("refused a pickle with persistent references")

    def _load_reduce(self) -> None:
        if self.stack[-2] is np.ndarray:
            raise RefusedPickle("refused to call numpy.ndarray directly")
        pickle._Unpickler.load_reduce(self)

    def _load_build(self) -> None:
        state, target = self.stack[-1], self.stack[-2]
        if type(target) is np.ndarray:
            _check_array_state(state)
        elif isinstance(target, np.dtype):
            _check_dtype_state(target, state)
        else:
            raise RefusedPickle(f"refused to set the state of a {type(target).__name__}")
        pickle._Unpickler.load_build(self)

    def _refuse_instance(self) -> None:
        raise RefusedPickle("refused a pickle that creates class instances")

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.BUILD[0]] = _load_build
    for _opcode in (pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.OBJ, pickle.INST):
        dispatch[_opcode[0]] = _refuse_instance
    del _opcode


def _restricted_load(stream: BinaryIO) -> Any:
    try:
        return _ArrayOnlyUnpickler(stream).load()
    except RefusedPickle:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError, MemoryError, RecursionError) as exc:
        raise Unreadable(f"pickle is truncated or corrupt ({type(exc).__name__})") from None


@dataclass(frozen=True)
class StatsCheck:
    """What ``inspect_stats`` found: ``state`` is one of the module constants, ``detail`` says why,
    ``fix`` what to do where the file itself says (a link out of the root, a FIFO)."""

    state: str
    detail: str = ""
    pointer: LfsPointer | None = None
    fix: str = ""

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
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise Unreadable(f"not a valid npy header ({str(exc)[:200]})") from None


def _read_npy(stream: BinaryIO, *, unpickle: bool) -> np.ndarray:
    """One npy array; an object array is unpickled (restricted) only when ``unpickle`` is set.
    The header's shape and dtype are checked against STATS_MAX_BYTES before any data is read."""
    shape, fortran, dtype = _npy_header(stream)
    count = _array_bytes(shape, dtype)
    if dtype.hasobject:
        if not unpickle:
            raise Pickled("holds pickled Python objects")
        array = _restricted_load(stream)
        if not isinstance(array, np.ndarray):
            raise Unreadable("object member does not hold an array")
        return array
    if dtype.itemsize == 0:
        raise Unreadable(f"array of dtype {dtype} holds no numbers")
    data = stream.read(count)
    if len(data) != count:
        raise Unreadable("array data is truncated")
    try:
        array = np.frombuffer(data, dtype=dtype)
        return array.reshape(shape, order="F" if fortran else "C").copy()
    except (ValueError, TypeError) as exc:
        raise Unreadable(f"array data does not fit its header ({exc})") from None


def read_members(path: Path, *, unpickle: bool) -> dict[str, Any]:
    """The file's statistics by key (values still as unpickled when ``unpickle`` is set).

    Only a regular file of at most STATS_MAX_BYTES is read. Raises Pickled (when not
    ``unpickle``), Unreadable, RefusedPickle, NotReadable or OSError.
    """
    data = read_regular(path, STATS_MAX_BYTES, "statistics file")
    handle = io.BytesIO(data)
    if data.startswith(_ZIP_MAGIC) or data.startswith(_EMPTY_ZIP_MAGIC):
        return _read_npz(handle, unpickle=unpickle)
    if data.startswith(_NPY_MAGIC):
        array = _read_npy(handle, unpickle=unpickle)
        return _unwrap_dict(array, "the .npy array")
    if data.startswith(_PICKLE_PROTOCOL_OPCODE):
        if not unpickle:
            raise Pickled("is a pickled Python object, not an npz archive")
        value = _restricted_load(handle)
        if not isinstance(value, dict):
            raise Unreadable(f"pickle holds a {type(value).__name__}, not a dict of arrays")
        return dict(value)
    if not data:
        raise Unreadable("file is empty")
    raise Unreadable("not an npz archive")


def _read_npz(handle: BinaryIO, *, unpickle: bool) -> dict[str, Any]:
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise Unreadable(f"npz archive is truncated or corrupt ({exc})") from None
    members: dict[str, Any] = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > STATS_MAX_MEMBERS:
            raise Unreadable(f"npz archive has {len(infos)} members; statistics have three "
                              f"(limit {STATS_MAX_MEMBERS})")
        for info in infos:
            key = info.filename.removesuffix(".npy")
            if key in members:
                raise Unreadable(f"npz archive holds member {key!r} twice")
            if info.file_size > STATS_MAX_BYTES:
                raise Unreadable(f"member {key!r} expands to {info.file_size} bytes, far beyond any "
                                  f"statistics (limit {STATS_MAX_BYTES} bytes)")
            try:
                with archive.open(info) as member:
                    raw = member.read(info.file_size + 1)  # reading to the end checks the CRC
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
                raise Unreadable(f"member {key!r} is truncated or corrupt ({exc})") from None
            if len(raw) != info.file_size:
                raise Unreadable(f"member {key!r} does not have the size its header declares")
            try:
                array = _read_npy(io.BytesIO(raw), unpickle=unpickle)
            except Pickled:
                raise Pickled(f"member {key!r} holds pickled Python objects") from None
            except Unreadable as exc:
                raise Unreadable(f"member {key!r}: {exc}") from None
            if len(infos) == 1 and array.dtype.hasobject and array.shape == ():
                # np.savez(path, stats=some_dict): one member wrapping the whole dict
                if isinstance(array.item(), dict):
                    return dict(array.item())
            members[key] = array
    return members


def _unwrap_dict(array: np.ndarray, what: str) -> dict[str, Any]:
    """``np.save`` of a dict stores a 0-d object array holding the dict."""
    if array.dtype.hasobject and array.shape == () and isinstance(array.item(), dict):
        return dict(array.item())
    raise Unreadable(f"{what} is not a dict of statistics")


def as_plain_array(key: str, value: Any) -> np.ndarray:
    """A pickled member's value as a numeric array with the same dtype and bits."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        value = value.item() if value.shape == () else value.tolist()
    if isinstance(value, np.ndarray):
        plain = value
    elif isinstance(value, (np.generic, int, float, list)):
        plain = np.asarray(value)
    else:
        raise Unreadable(f"{key!r} holds a {type(value).__name__}, not numbers")
    if plain.dtype.hasobject or plain.dtype.kind not in "biuf":
        raise Unreadable(f"{key!r} does not hold plain numbers (dtype {plain.dtype})")
    return plain


def shape_problem(arrays: dict[str, np.ndarray], dim: int | None) -> str | None:
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


def inspect_stats(path: Path, dim: int | None = None, root: Path | None = None) -> StatsCheck:
    """Classify a stats file without running any pickle in it.

    ``dim`` is the expected vector length (n_mels for feats, 1 for pitch and energy) or None to
    accept any. Pointers are recognised before anything parses the file; with ``root``, a file
    a symlink leads out of the root is OUTSIDE_ROOT and is not read. A FIFO, device or
    directory is UNREADABLE, never opened for a blocking read.
    """
    found = probe(path, root, "statistics file")
    if found.state is FileState.MISSING:
        return StatsCheck(MISSING, "file is missing")
    if found.state is FileState.LFS_POINTER:
        return StatsCheck(LFS_POINTER, "is a Git LFS pointer", found.pointer)
    if found.state is FileState.OUTSIDE_ROOT:
        return StatsCheck(OUTSIDE_ROOT, found.reason, fix=found.fix)
    if found.state is not FileState.PRESENT:
        return StatsCheck(UNREADABLE, found.reason, fix=found.fix)
    try:
        arrays = read_members(path, unpickle=False)
    except Pickled as exc:
        return StatsCheck(PICKLED, str(exc))
    except Unreadable as exc:
        return StatsCheck(UNREADABLE, str(exc))
    except NotReadable as exc:
        return StatsCheck(UNREADABLE, exc.reason, fix=exc.fix)
    except OSError as exc:
        return StatsCheck(UNREADABLE, f"cannot read ({one_line(exc)})")
    problem = shape_problem(arrays, dim)
    return StatsCheck(BAD_STATS, problem) if problem else StatsCheck(OK)


def load_stats(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a plain stats file; raises ValueError naming the problem for anything else."""
    check = inspect_stats(path)
    if not check.ok:
        raise ValueError(f"{path}: {check.state}: {check.detail}")
    return read_members(path, unpickle=False)
