"""The phone dictionaries as compact tables, kept in the cache so that a start reads one file in
milliseconds instead of parsing megabytes of text (Hindi's 3.9 MB: about 5 ms and 5 MB against
0.11 s and 54 MB; docs/frontend.md has the figures).

A dictionary (``word phones`` per line) is parsed once (``parse_dictionary``: the first entry of
a word wins; with ``fold_case`` each word is also entered case-folded, again first one winning)
into a table of its entries sorted by their UTF-8 bytes, and the table is written to
``<cache>/frontend/`` (``<cache>``: ``fileio.cache_root()`` unless the caller gives one) under a
name made of the SHA-256 of the source's bytes, ``fold_case`` and the format version. A changed
dictionary has another name, so a stale table is never read. Every start hashes the source
(``fileio.digest_regular``, streamed: about 2.5 ms for Hindi), reads the table and looks words up
by bisection, never building a dict.

The format, one file, little-endian; nothing in it is unpickled or evaluated::

    header   magic b"LVPHDICT", version u32, flags u32 (1: fold_case), the source's SHA-256
             (32 bytes), count u64, key bytes u64, value bytes u64, CRC-32 of the rest u32, 4 zero
    body     key offsets u32[count + 1], value offsets u32[count + 1], the keys, the values

The cache is not trusted: only a regular file is read (``fileio.open_regular``: never a FIFO or
a link to a device), its header must name this source, flags and version, its size must be
exactly what the header's counts say and at most what the source can give rise to (read no
further), the offsets must start at 0 and end at their blob's size, and the CRC must match;
anything else, or any error reading it, and the source is parsed and the table written again.
Each pair of offsets is checked again when a lookup reads it, so even a file crafted to pass the
CRC reads nothing outside its blobs and never raises. Writing goes through a temporary file and
a rename (``fileio.replacing``; concurrent writers are fine) with mode 0644 less the umask; a cache
that cannot be written (read-only, something in the way) is silently skipped.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import struct
import sys
import zlib
from array import array
from itertools import accumulate
from pathlib import Path

from ..errors import LavanyaError, one_line
from ..fileio import (
    PHONE_DICT_MAX_BYTES,
    cache_root,
    current_umask,
    digest_regular,
    make_directories,
    open_regular,
    read_regular,
    read_regular_text,
    replace_file,
    time_saving_writes,
)

FORMAT_VERSION = 1
MAGIC = b"LVPHDICT"
CACHE_DIR = "frontend"
FOLD_CASE = 1
_HEADER = struct.Struct("<8sII32sQQQI4x")
# Offsets are 32-bit: a dictionary within PHONE_DICT_MAX_BYTES gives blobs far below 4 GiB.
_U32 = next(code for code in "IL" if array(code).itemsize == 4)
# Case folding makes a key at most three times as many bytes ("ΐ" -> three code points); so the
# keys and values of a table never exceed this many times its source's size (and the count
# never exceeds the source's size: an entry needs a line of three bytes, two with folding).
_GROWTH = 4


class BadTable(ValueError):
    """A cached table that is not what this source and these flags give: parse the source."""


class PhoneTable:
    """Words to phones, read by bisection over one ``bytes`` object. Immutable, so threads may
    share it."""

    __slots__ = ("count", "_data", "_key_offsets", "_value_offsets", "_keys_at", "_values_at",
                 "_keys_size", "_values_size")

    def __init__(self, data: bytes, count: int, key_offsets: memoryview | array, value_offsets: memoryview | array,
                 keys_at: int, keys_size: int, values_size: int):
        self.count = count
        self._data = data
        self._key_offsets = key_offsets
        self._value_offsets = value_offsets
        self._keys_at = keys_at
        self._values_at = keys_at + keys_size
        self._keys_size = keys_size
        self._values_size = values_size

    def __len__(self) -> int:
        return self.count

    def get(self, word: str) -> str | None:
        """The phones of ``word`` exactly as written, or None."""
        key = word.encode("utf-8", "surrogatepass")  # a lone surrogate matches no key
        data, offsets, base, size = self._data, self._key_offsets, self._keys_at, self._keys_size
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            start, end = offsets[middle], offsets[middle + 1]
            if not start <= end <= size:
                return None  # a crafted table: nothing outside the blob is read
            probe = data[base + start:base + end]
            if probe < key:
                low = middle + 1
            elif probe > key:
                high = middle
            else:
                return self._value(middle)
        return None

    def _value(self, index: int) -> str | None:
        start, end = self._value_offsets[index], self._value_offsets[index + 1]
        if not start < end <= self._values_size:
            return None
        return self._data[self._values_at + start:self._values_at + end].decode("utf-8", "replace")

    @classmethod
    def from_bytes(cls, data: bytes, digest: bytes, fold_case: bool, source_size: int) -> "PhoneTable":
        """The table in ``data`` (a whole cache file); BadTable unless it is one written for
        the source with SHA-256 ``digest`` and ``source_size`` bytes, and these flags."""
        count, keys_size, values_size = _check_header(data[:_HEADER.size], digest, fold_case, source_size)
        if len(data) != _file_size(count, keys_size, values_size):
            raise BadTable("size differs from the header's")
        if zlib.crc32(memoryview(data)[_HEADER.size:]) != _HEADER.unpack_from(data)[7]:
            raise BadTable("checksum differs")
        offsets_size = 4 * (count + 1)
        key_offsets = _u32_array(data, _HEADER.size, offsets_size)
        value_offsets = _u32_array(data, _HEADER.size + offsets_size, offsets_size)
        if (key_offsets[0], key_offsets[-1], value_offsets[0], value_offsets[-1]) != (0, keys_size, 0, values_size):
            raise BadTable("offsets do not span their blobs")
        return cls(data, count, key_offsets, value_offsets, _HEADER.size + 2 * offsets_size, keys_size, values_size)


EMPTY = PhoneTable(b"", 0, array(_U32, [0]), array(_U32, [0]), 0, 0, 0)


def parse_dictionary(text: str, fold_case: bool) -> dict[str, str]:
    """The entries of a dictionary's text: ``word phones`` lines, the first entry of a word
    winning; with ``fold_case`` each word is entered case-folded too (first one winning)."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        word, _, phones = line.partition(" ")
        phones = phones.strip()
        if word and phones:
            entries.setdefault(word, phones)
            if fold_case:
                entries.setdefault(word.casefold(), phones)
    return entries


def encode_table(entries: dict[str, str], digest: bytes, fold_case: bool) -> bytes:
    """``entries`` as a cache file for the source with SHA-256 ``digest`` (see the module notes)."""
    words = sorted(entries)  # code point order, which is the order of their UTF-8 bytes
    keys = [word.encode("utf-8") for word in words]
    values = [entries[word].encode("utf-8") for word in words]
    key_offsets = array(_U32, list(accumulate(map(len, keys), initial=0)))
    value_offsets = array(_U32, list(accumulate(map(len, values), initial=0)))
    if sys.byteorder != "little":
        key_offsets.byteswap()
        value_offsets.byteswap()
    keys_blob, values_blob = b"".join(keys), b"".join(values)
    body = b"".join((key_offsets.tobytes(), value_offsets.tobytes(), keys_blob, values_blob))
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, FOLD_CASE if fold_case else 0, digest, len(words),
                          len(keys_blob), len(values_blob), zlib.crc32(body))
    return header + body


def table_path(cache: Path | None, digest: bytes, fold_case: bool) -> Path:
    """Where the table of the source with SHA-256 ``digest`` is cached."""
    folded = "folded" if fold_case else "exact"
    return cache_root(cache) / CACHE_DIR / f"phones-{digest.hex()}-{folded}.v{FORMAT_VERSION}"


@functools.lru_cache(maxsize=4)
def shared_table(path: Path, mtime_ns: int, size: int, fold_case: bool, cache: Path | None) -> PhoneTable:
    """``load_table``, once per file version in a process: two voices of a language share it."""
    return load_table(path, fold_case, cache)


def load_table(path: Path, fold_case: bool, cache: Path | None = None) -> PhoneTable:
    """The table of the dictionary at ``path``: from the cache where a valid one is there, else
    parsed from the source and written to the cache (skipped where the cache cannot be written).
    Only a source that cannot be read raises (LavanyaError naming it)."""
    try:  # streamed in 1 MiB pieces: the source is never held whole on the way to its table
        digests, size = digest_regular(path, ("sha256",), PHONE_DICT_MAX_BYTES, "the phone dictionary")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    digest = bytes.fromhex(digests["sha256"])
    try:
        return read_table(table_path(cache, digest, fold_case), digest, fold_case, size)
    except (OSError, LavanyaError, BadTable):
        pass  # none yet, or not one to trust: made again from the source
    try:
        source = read_regular(path, PHONE_DICT_MAX_BYTES, "the phone dictionary")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:  # the one reader words it (NotReadable), or the file was fixed meanwhile
        text = read_regular_text(path, PHONE_DICT_MAX_BYTES, "the phone dictionary")
        source = text.encode("utf-8")
    digest = hashlib.sha256(source).digest()  # of what is parsed: the file may have changed meanwhile
    data = encode_table(parse_dictionary(text, fold_case), digest, fold_case)
    del text
    where = table_path(cache, digest, fold_case)
    if time_saving_writes():  # not a server's: it parses, and keeps nothing
        with contextlib.suppress(OSError, LavanyaError):  # a read-only cache, something in the way
            make_directories(where.parent)
            replace_file(where, lambda handle: handle.write(data), mode=0o644 & ~current_umask())
    return PhoneTable.from_bytes(data, digest, fold_case, len(source))


def _unreadable(path: Path, exc: OSError) -> LavanyaError:
    return LavanyaError(f"{path}: cannot read the phone dictionary ({one_line(exc)})")


def read_table(where: Path, digest: bytes, fold_case: bool, source_size: int) -> PhoneTable:
    """The cached table at ``where``, checked (see the module notes) before more than its header is
    read; BadTable, NotReadable or OSError for anything else."""
    with open_regular(where, "the cached phone table") as handle:
        count, keys_size, values_size = _check_header(handle.read(_HEADER.size), digest, fold_case, source_size)
        expected = _file_size(count, keys_size, values_size)
        if os.fstat(handle.fileno()).st_size != expected:
            raise BadTable("size differs from the header's")
        handle.seek(0)
        data = handle.read(expected)
    return PhoneTable.from_bytes(data, digest, fold_case, source_size)


def _check_header(header: bytes, digest: bytes, fold_case: bool, source_size: int) -> tuple[int, int, int]:
    """(count, key bytes, value bytes) of a header written for this source and flags; BadTable
    for anything else, and for counts beyond what a source of ``source_size`` bytes gives."""
    if len(header) != _HEADER.size:
        raise BadTable("shorter than a header")
    magic, version, flags, source, count, keys_size, values_size, _ = _HEADER.unpack(header)
    if (magic, version, flags, source) != (MAGIC, FORMAT_VERSION, FOLD_CASE if fold_case else 0, digest):
        raise BadTable("made by another version, for other flags or another source")
    if count > source_size or keys_size + values_size > _GROWTH * source_size or max(keys_size, values_size) >= 1 << 32:
        raise BadTable("counts beyond what the source can give")
    return count, keys_size, values_size


def _file_size(count: int, keys_size: int, values_size: int) -> int:
    return _HEADER.size + 8 * (count + 1) + keys_size + values_size


def _u32_array(data: bytes, start: int, size: int) -> memoryview | array:
    """The little-endian u32s in ``data[start:start + size]``, without a copy where this machine is
    little-endian."""
    view = memoryview(data)[start:start + size]
    if sys.byteorder == "little":
        return view.cast(_U32)
    values = array(_U32, view.tobytes())
    values.byteswap()
    return values
