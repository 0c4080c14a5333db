"""PyTorch checkpoints (``torch.save``'s zip format) read without torch and without running a
pickle: what a voice's weights hold, for the machines and checks that have no torch.

``data.pkl`` goes through the C unpickler with ``find_class`` answering only lavanya's inert
stand-ins for the few globals a state dict names (never the real objects, never an import by
name) and ``persistent_load`` answering only storage references; any other global is refused
before anything runs. A pre-scan refuses the opcodes torch never writes: EXT1/2/4 take objects
from ``copyreg``'s process-wide cache without asking ``find_class``, and NEWOBJ, NEWOBJ_EX, INST
and OBJ build instances. Stand-ins take no state (BUILD is refused), so nothing can be rewired
after it was checked. Every tensor is checked against its storage and the storage against its
record's bytes before ``array`` reads them, so ``numpy.lib.stride_tricks.as_strided`` never
reaches outside the bytes it was given.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self

import numpy as np

from ..errors import FileError, one_line
from ..fileio import HASHED_MAX_BYTES, MIB, format_size, open_regular

RESTORE_WEIGHTS = "restore the voice's released weights (git checkout, then git lfs pull)"
# Bounds on a weights file: its size (real ones are under 200 MB), the records of its zip
# archive (a real model.pth has about 230) and the archive's directory of them, its pickle
# (a few tens of kB: about 30 opcodes a tensor), its tensors and their rank, and how deep its
# containers nest (a state dict: 2 or 3).
WEIGHTS_MAX_BYTES = HASHED_MAX_BYTES
CHECKPOINT_RECORDS_MAX = 100_000
CENTRAL_DIRECTORY_MAX_BYTES = 16 * MIB
PICKLE_MAX_BYTES = 64 * MIB
PICKLE_OPS_MAX = 4_000_000
TENSORS_MAX = 100_000
RANK_MAX = 8
NESTING_MAX = 64

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip record's local header, its name and extra lengths last
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch < 1.6: a pickled magic number
_REFUSED_OPS = {"EXT1", "EXT2", "EXT4", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ"}
_STORAGES = {f"torch.{name}Storage": np.dtype(code) for name, code in (
    ("Float", "<f4"), ("Double", "<f8"), ("Half", "<f2"), ("BFloat16", "<u2"), ("Long", "<i8"),
    ("Int", "<i4"), ("Short", "<i2"), ("Char", "i1"), ("Byte", "u1"), ("Bool", "?"), ("Untyped", "u1"))}
_STORAGES["torch.storage.UntypedStorage"] = np.dtype("u1")
_TENSOR_TYPES = {"torch.Tensor", "torch.nn.parameter.Parameter"}


class CheckpointRefused(FileError):
    """A weights file lavanya will not read: unsafe, malformed, or beyond a bound. One line with
    the file's name and, unless said otherwise, the fix (restore the released weights)."""

    def __init__(self, path: Path, reason: str, fix: str = RESTORE_WEIGHTS):
        super().__init__(path, reason, fix)


class LegacyCheckpoint(CheckpointRefused):
    """A checkpoint in torch's format from before 1.6, which only torch reads (the torch export
    and ``verify --deep`` read it where torch is installed)."""


class _Bad(Exception):
    """What is wrong (worded after the file's ``what``) and the fix, if not RESTORE_WEIGHTS;
    CheckpointRefused once the file is known."""


class _Legacy(_Bad):
    """LegacyCheckpoint once the file is known."""


@dataclass(frozen=True)
class TensorRecord:
    """A tensor as the checkpoint describes it, its data not yet read (``Checkpoint.array``)."""

    dtype: np.dtype  # the values as ``array`` returns them: native order, bfloat16 widened to float32
    shape: tuple[int, ...]
    key: str  # the storage record, ``<prefix>/data/<key>``
    storage_dtype: np.dtype  # as stored: byte order included, bfloat16 as uint16
    offset: int  # in elements of the storage
    stride: tuple[int, ...]  # in elements


class _Inert:
    """What the unpickler may hold besides containers: nothing to set, and no state to take."""

    __slots__ = ()
    word = "an object"

    def __setstate__(self, state: Any) -> None:
        raise _Bad(f"is a pickle that sets the state of {self}, which torch never writes")

    def __str__(self) -> str:
        return self.word


class _Global(_Inert):
    """The stand-in for an allowed global: a checked function, a storage type, or a tensor type."""

    __slots__ = ("call", "dtype", "name")

    def __init__(self, name: str, call: Any, dtype: np.dtype | None):
        self.name, self.call, self.dtype = name, call, dtype

    def __call__(self, *args: Any) -> Any:
        if self.call is None:
            raise _Bad(f"is a pickle that calls {self.name}, which torch never writes")
        return self.call(*args)

    def __str__(self) -> str:
        return self.name


class _Storage(_Inert):
    __slots__ = ("dtype", "key", "numel")
    word = "a storage"

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _Tensor(_Inert):
    __slots__ = ("record",)
    word = "a tensor"

    def __init__(self, record: TensorRecord):
        self.record = record


class _StateDict(dict):
    """``collections.OrderedDict`` as the pickle builds it; its ``_metadata`` is dropped."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not set(state) <= {"_metadata"}:
            raise _Bad("is a pickle that sets attributes of a dict other than _metadata")


def _highest(shape: Any, stride: Any, offset: Any) -> int | None:
    """The highest storage element a tensor reaches, None when it has no elements; _Bad unless
    shape and stride are equally long tuples of non-negative ints (rank at most RANK_MAX)."""
    if not (type(shape) is tuple and type(stride) is tuple and len(shape) == len(stride)
            and all(type(n) is int and n >= 0 for n in (*shape, *stride, offset))):
        raise _Bad("has a tensor whose size, stride or offset is not non-negative whole numbers")
    if len(shape) > RANK_MAX:
        raise _Bad(f"has a tensor of rank {len(shape)} (at most {RANK_MAX})")
    return None if 0 in shape else offset + sum((size - 1) * step for size, step in zip(shape, stride))


def _check_extent(shape: tuple[int, ...], stride: tuple[int, ...], offset: int, numel: int, key: str) -> None:
    highest = _highest(shape, stride, offset)
    if highest is not None and highest >= numel:
        raise _Bad(f"has a tensor reaching beyond its storage {key} of {numel} elements")
    if highest is not None and math.prod(shape) > numel:  # its array would be larger than the file
        raise _Bad(f"has a tensor of more elements than its storage {key} holds (an expanded view), which a "
                   "saved state dict never has")


class _Unpickler(pickle.Unpickler):
    """The C unpickler, knowing only torch's tensor reconstruction, storages and dicts."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, order: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.order, self.tensors = archive, prefix, order, 0
        rebuild = {"torch._utils._rebuild_tensor_v2": self._tensor, "torch._utils._rebuild_parameter": self._parameter,
                   "torch._utils._rebuild_parameter_with_state": self._parameter}
        self.calls = {**rebuild, "torch._tensor._rebuild_from_type_v2": self._from_type,
                      "torch._utils._rebuild_from_type_v2": self._from_type, "collections.OrderedDict": self._dict}
        self.rebuild = set(rebuild)

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in self.calls or full in _STORAGES or full in _TENSOR_TYPES:
            return _Global(full, self.calls.get(full), _STORAGES.get(full))
        raise _Bad(f"is a pickle that asks for {full}, not only tensors, so loading it could run code")

    def persistent_load(self, pid: Any) -> Any:
        if not (type(pid) is tuple and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Global)
                and pid[1].dtype is not None and type(pid[2]) is str and type(pid[4]) is int and pid[4] >= 0):
            raise _Bad("is a pickle with a persistent reference other than a storage, which torch never writes")
        key, dtype, numel = pid[2], pid[1].dtype.newbyteorder(self.order), pid[4]
        try:
            size = self.archive.getinfo(f"{self.prefix}/data/{key}").file_size
        except KeyError:
            raise _Bad(f"names a storage {key!r} that is not in the archive") from None
        if numel * dtype.itemsize > size:
            raise _Bad(f"has a storage {key} of {numel} elements in a record of {size} bytes")
        return _Storage(key, dtype, numel)

    def _tensor(self, storage: Any, offset: Any, shape: Any, stride: Any, grad: Any, hooks: Any, *meta: Any) -> _Tensor:
        if type(storage) is not _Storage or not isinstance(hooks, dict) or hooks or len(meta) > 1:
            raise _Bad("is a pickle that rebuilds a tensor from something torch never writes")
        self.tensors += 1
        if self.tensors > TENSORS_MAX:
            raise _Bad(f"holds more than {TENSORS_MAX} tensors, far beyond any voice")
        _check_extent(shape, stride, offset, storage.numel, storage.key)
        bfloat16 = storage.dtype.kind == "u" and storage.dtype.itemsize == 2  # the one uint16 storage
        dtype = np.dtype(np.float32) if bfloat16 else storage.dtype.newbyteorder("=")
        return _Tensor(TensorRecord(dtype, shape, storage.key, storage.dtype, offset, stride))

    def _parameter(self, data: Any, grad: Any, hooks: Any, state: Any = None) -> _Tensor:
        if type(data) is not _Tensor:
            raise _Bad("is a pickle that makes a parameter of something other than a tensor")
        return data

    def _from_type(self, func: Any, kind: Any, args: Any, state: Any) -> _Tensor:
        if not (isinstance(func, _Global) and func.name in self.rebuild and isinstance(kind, _Global)
                and kind.name in _TENSOR_TYPES and type(args) is tuple):
            raise _Bad("is a pickle that rebuilds a tensor type from something torch never writes")
        return func(*args)

    def _dict(self, *args: Any) -> _StateDict:
        if args:
            raise _Bad("is a pickle that calls collections.OrderedDict with arguments")
        return _StateDict()


def _plain(root: Any) -> Any:
    """The unpickled tree with plain dicts and TensorRecord leaves; _Bad for anything else in it
    (a storage or a type on its own, bytes, sets), for nesting beyond NESTING_MAX (a cycle
    included); shared parts are converted once."""
    done: dict[int, Any] = {}

    def walk(value: Any, depth: int) -> Any:
        kind = type(value)
        if value is None or kind in (str, int, float, bool):
            return value
        if id(value) in done:
            return done[id(value)]
        if depth >= NESTING_MAX:
            raise _Bad(f"nests containers deeper than {NESTING_MAX} levels")
        if kind is _Tensor:
            plain = value.record
        elif kind in (dict, _StateDict):
            if not all(key is None or type(key) in (str, int, float, bool) for key in value):
                raise _Bad("holds a dict with keys other than strings and numbers")
            plain = {key: walk(item, depth + 1) for key, item in value.items()}
        elif kind in (list, tuple):
            plain = kind(walk(item, depth + 1) for item in value)
        else:
            raise _Bad(f"holds {value if isinstance(value, _Inert) else 'a ' + kind.__name__} where only tensors, "
                       "dicts, lists, tuples, strings and numbers belong")
        done[id(value)] = plain
        return plain

    return walk(root, 0)


def _scan(data: bytes) -> None:
    """Refuse, before the unpickler sees them, the opcodes torch never writes, a memo index beyond
    the opcodes before it (the C unpickler allocates and zeroes a memo that long: 9 bytes can ask
    for gigabytes), more than PICKLE_OPS_MAX opcodes, and anything ``pickletools`` cannot parse
    (a length beyond the data included)."""
    for count, (op, arg, _position) in enumerate(pickletools.genops(data)):
        if op.name in _REFUSED_OPS:
            raise _Bad(f"is a pickle that uses the opcode {op.name}, which torch never writes, so loading it "
                       "could run code")
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > count:
            raise _Bad(f"is a pickle that memoizes at index {arg}, which only a hostile pickle does")
        if count >= PICKLE_OPS_MAX:
            raise _Bad(f"is a pickle of more than {PICKLE_OPS_MAX} opcodes, far beyond any voice")


def refuse_unsafe_archive(handle: BinaryIO, path: Path, what: str) -> zipfile.ZipFile | None:
    """Refuse weights that would take more memory than their size on disk: PyTorch writes its
    zip records stored, never compressed, so a deflated record (a small file once expanded far
    beyond its size; docs/safety.md) or a central directory larger than any real one is not a
    checkpoint of a voice. Returns the archive open (the caller closes it), or None for a file
    with no zip end record (not in the zip format); the file is left at its start."""
    size = os.fstat(handle.fileno()).st_size
    if size > WEIGHTS_MAX_BYTES:
        raise CheckpointRefused(path, f"{what} is larger than {WEIGHTS_MAX_BYTES >> 30} GiB, far beyond any voice")
    try:
        end = zipfile._EndRecData(handle)
        if end is None:
            return None
        records, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
        if records > CHECKPOINT_RECORDS_MAX or directory > CENTRAL_DIRECTORY_MAX_BYTES:
            raise CheckpointRefused(path, f"{what} lists {records} records in {directory} bytes, far beyond any voice")
        handle.seek(0)
        archive = zipfile.ZipFile(handle)
    except CheckpointRefused:
        raise
    except Exception as exc:  # noqa: BLE001 -- a truncated or damaged zip: zipfile reports it many ways
        raise CheckpointRefused(path, f"{what} is not a PyTorch weights file ({one_line(exc, 160)})") from None
    finally:
        handle.seek(0)
    packed = [info for info in archive.infolist()
              if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size]
    if packed:
        archive.close()
        raise CheckpointRefused(path, f"{what} holds a compressed record ({packed[0].filename}), which PyTorch "
                                      "never writes and which could expand far beyond the file's size")
    return archive


class Checkpoint:
    """An open checkpoint: ``root`` is what its pickle holds (dicts, lists, tuples, strings,
    numbers, None) with TensorRecord leaves, whose values ``array`` reads one tensor at a time
    (its own bytes of its storage record), so memory stays bounded by the largest tensor. A context manager; holds the file open."""

    def __init__(self, path: Path, what: str, handle: BinaryIO):
        self.path, self.what, self._handle = Path(path), what, handle
        self._archive: zipfile.ZipFile | None = None
        self._prefix = ""
        self.root: Any = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
        self._handle.close()

    def _record(self, name: str, limit: int) -> bytes:
        try:
            with self._archive.open(name) as stream:  # zipfile checks the record's header and CRC
                data = stream.read(limit + 1)
        except Exception as exc:  # noqa: BLE001 -- a damaged record: zipfile reports it many ways
            raise _Bad(f"has a damaged record {name} ({one_line(exc, 160)})") from None
        if len(data) > limit:
            raise _Bad(f"has a record {name} larger than {format_size(limit)}, far beyond any voice")
        return data

    def _record_size(self, name: str) -> int:
        try:
            return self._archive.getinfo(name).file_size
        except KeyError:
            raise _Bad(f"names a storage record {name} that is not in the archive") from None

    def _span(self, name: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` of the stored record ``name``: the whole record through
        zipfile, which checks its CRC (a tensor that owns its storage, as in every state dict
        torch saves), else read in place, a view's own bytes only (a file of many views into one
        large storage would otherwise be read once per tensor, each time whole)."""
        info = self._archive.getinfo(name)
        if start == 0 and length == info.file_size:
            return self._record(name, WEIGHTS_MAX_BYTES)
        self._handle.seek(info.header_offset)
        header = self._handle.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise _Bad(f"has a damaged record {name} (no local header where the directory says)")
        name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
        data_start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if start + length > info.file_size or data_start + info.file_size > os.fstat(self._handle.fileno()).st_size:
            raise _Bad(f"has a record {name} that ends beyond the file")
        self._handle.seek(data_start + start)
        data = self._handle.read(length)
        if len(data) != length:
            raise _Bad(f"has a record {name} that ends beyond the file")
        return data

    def _load(self) -> None:
        self._archive = refuse_unsafe_archive(self._handle, self.path, self.what)
        if self._archive is None:
            start = self._handle.read(len(_LEGACY_MAGIC))
            if start == _LEGACY_MAGIC:
                raise _Legacy("is in the format of torch before 1.6, which only torch reads",
                           "install lavanya[torch], which reads it, or save it again with a newer torch")
            if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
                raise _Bad("is a bare pickle, not PyTorch's zip checkpoint format; lavanya never unpickles one, "
                           "as loading it could run code")
            raise _Bad("is not in PyTorch's zip checkpoint format (no zip end record: truncated, or not a checkpoint)")
        pickles = [name for name in self._archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise _Bad(f"is a zip archive but not a PyTorch checkpoint ({len(pickles)} <folder>/data.pkl records)")
        self._prefix = pickles[0].partition("/")[0]
        order = f"{self._prefix}/byteorder"
        order = self._record(order, 16) if order in self._archive.NameToInfo else b"little"
        if order not in (b"little", b"big"):
            raise _Bad(f"has the byte order {order!r}, neither little nor big")
        data = self._record(pickles[0], PICKLE_MAX_BYTES)
        try:
            _scan(data)
            root = _Unpickler(data, self._archive, self._prefix, "<" if order == b"little" else ">").load()
        except _Bad:
            raise
        except Exception as exc:  # noqa: BLE001 -- a malformed pickle: reported many ways
            raise _Bad(f"is not a readable checkpoint: its data.pkl is truncated or corrupt "
                       f"({type(exc).__name__}: {one_line(exc, 120)})") from None
        self.root = _plain(root)

    def array(self, record: TensorRecord) -> np.ndarray:
        """A new, contiguous, writable array of the tensor's values in native byte order, read from
        its storage record alone and checked against that record's bytes again (a TensorRecord
        made elsewhere cannot reach outside them)."""
        try:
            highest = _highest(record.shape, record.stride, record.offset)
            if highest is None:
                return np.empty(record.shape, record.dtype)
            name, itemsize = f"{self._prefix}/data/{record.key}", record.storage_dtype.itemsize
            _check_extent(record.shape, record.stride, record.offset, self._record_size(name) // itemsize, record.key)
            data = self._span(name, record.offset * itemsize, (highest + 1 - record.offset) * itemsize)
        except _Bad as exc:
            raise _refused(self, exc) from None
        base = np.frombuffer(data, record.storage_dtype)
        view = np.lib.stride_tricks.as_strided(base, record.shape, [step * itemsize for step in record.stride],
                                               writeable=False)
        if record.dtype.kind != record.storage_dtype.kind:  # bfloat16: the high half of a float32
            wide = view.astype(np.uint32, order="C")
            wide <<= 16
            return wide.view(np.float32)
        return np.array(view, record.dtype, order="C")


def _refused(checkpoint: Checkpoint, exc: _Bad) -> CheckpointRefused:
    return CheckpointRefused(checkpoint.path, f"{checkpoint.what} {exc.args[0]}", *exc.args[1:])


def open_checkpoint(path: Path, what: str) -> Checkpoint:
    """The checkpoint at ``path`` unpickled without running anything in it (module docstring);
    ``what`` words the file in messages ("the acoustic model"). Every refusal is one line naming
    the file: CheckpointRefused, or NotReadable for a FIFO, device or directory."""
    try:
        checkpoint = Checkpoint(path, what, open_regular(path, what))
    except FileNotFoundError:
        raise CheckpointRefused(path, f"{what} is missing") from None
    except OSError as exc:
        raise CheckpointRefused(path, f"{what} cannot be read ({one_line(exc, 160)})", "") from None
    try:
        checkpoint._load()
    except BaseException as exc:
        checkpoint.close()
        if isinstance(exc, _Legacy):
            raise LegacyCheckpoint(path, f"{what} {exc.args[0]}", exc.args[1]) from None
        if isinstance(exc, _Bad):
            raise _refused(checkpoint, exc) from None
        raise
    return checkpoint


def tensor_dict(value: Any) -> dict[str, TensorRecord] | None:
    """``value`` when it is a non-empty dict of names to tensors (a state dict), else None."""
    if isinstance(value, dict) and value and all(type(key) is str and type(item) is TensorRecord
                                                 for key, item in value.items()):
        return value
    return None
