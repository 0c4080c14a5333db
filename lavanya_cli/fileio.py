"""Reading and writing files safely: only regular files are read, each kind up to a size bound,
and a file is replaced through a temporary file and a rename so readers never see half of it.

A model tree may be hostile: a ``model.pth`` that is a symlink to ``/dev/zero`` or a FIFO as
``config.yaml`` must give one clear line, not an endless read or a hang. Every read of data from
a tree or a user's input goes through ``open_regular`` or ``read_regular``, and every file hash
(manifests, duplicate weights) through ``digest_regular``, streamed and bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import FileError, LavanyaError, one_line

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

# The largest file of each kind that lavanya reads into memory. Real ones are far smaller
# (configs about 6 KB, statistics 2 KB, the largest phone dictionary about 20 MB); a bound keeps
# a hostile tree from filling memory.
CONFIG_MAX_BYTES = 1 * MIB
VOCODER_CONFIG_MAX_BYTES = 1 * MIB
STATS_MAX_BYTES = 1 * MIB
MANIFEST_MAX_BYTES = 1 * MIB
ATTRIBUTES_MAX_BYTES = 1 * MIB  # .gitattributes
PHONE_DICT_MAX_BYTES = 128 * MIB
RESOURCE_MAX_BYTES = 4 * MIB  # number tables, the character map, lavanya.yaml, token files
# The largest file lavanya hashes (manifests, duplicate weights). Real weights are under 1 GB; a
# sparse file claiming terabytes must not keep verify busy for hours.
HASHED_MAX_BYTES = 4 * GIB


CACHE_ENV = "LAVANYA_CACHE"
# Whether this process writes the caches that only save time: the digest memo, the front-end's
# phone tables, OpenVINO's compiled graphs, the engine ``auto`` measured. ``lavanya serve`` turns
# them off (a server writes nothing it does not need; the exports a voice cannot load without
# are still made).
_time_savers = {"write": True}


def forgo_time_saving_writes() -> None:
    """This process writes none of the caches that only save time (see ``time_saving_writes``)."""
    _time_savers["write"] = False


def time_saving_writes() -> bool:
    """Whether this process may write the caches that only save time."""
    return _time_savers["write"]


def cache_root(given: Path | str | None = None) -> Path:
    """The cache of what lavanya makes (exports, the front-end's tables, engine choices):
    ``given`` where a caller names one (``LoadOptions.cache``, ``--cache``), else
    ``$LAVANYA_CACHE``, else the platform's user cache directory."""
    if given is not None:
        return Path(given)
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lavanya", appauthor=False)) / "onnx"


# The fix for a file that is not what a model tree should hold there.
REPLACE_FIX = "replace it with the real file"


class NotReadable(FileError):
    """A file lavanya will not read as data: not a regular file, or over its size bound (the
    fix, unless said otherwise: replace it with the real file)."""

    def __init__(self, path: Path, reason: str, fix: str = REPLACE_FIX):
        super().__init__(path, reason, fix)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words: ``a FIFO``, ``a directory``, ``a character device`` ..."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading, only if it is (or a symlink leads to) a regular file.

    A FIFO, device, socket or directory raises NotReadable without blocking: the file is checked
    with ``stat`` first and opened non-blocking, then checked again on the open descriptor.
    FileNotFoundError and PermissionError pass through for the caller to word.
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotReadable(path, f"{what} is {file_kind(info.st_mode)}, not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotReadable(path, f"{what} is {file_kind(info.st_mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; NotReadable for anything else."""
    with open_regular(path, what) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise NotReadable(path, f"{what} is larger than {format_size(limit)}, far beyond any real one")
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise NotReadable(path, f"{what} is larger than {format_size(limit)}")
    return data


def read_regular_text(path: Path, limit: int, what: str = "file", encoding: str = "utf-8") -> str:
    """``read_regular`` decoded; a file that is not valid text raises NotReadable."""
    data = read_regular(path, limit, what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise NotReadable(path, f"{what} is not {encoding} text (byte {exc.start})", "save it as UTF-8") from None


def digest_regular(path: Path, algorithms: tuple[str, ...] = ("sha256",), limit: int = HASHED_MAX_BYTES,
                   what: str = "file") -> tuple[dict[str, str], int]:
    """Hex digests (``hashlib`` names) and size of a regular file of at most ``limit`` bytes,
    read once in 1 MiB chunks; NotReadable for anything else. The one place lavanya hashes a
    file (manifests, duplicate weights)."""
    import hashlib

    hashes = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open_regular(path, what) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise NotReadable(path, f"{what} is larger than {format_size(limit)}, far beyond any model file, "
                                    "so lavanya does not hash it")
        while chunk := handle.read(MIB):
            size += len(chunk)
            if size > limit:
                raise NotReadable(path, f"{what} grew past {format_size(limit)} while being read", "")
            for digest in hashes.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in hashes.items()}, size


def stat_signature(info: os.stat_result) -> list[int]:
    """A file's device, inode, size, modification and change times: what a digest memo records
    beside a file's digest, and what the file must still show for that digest to stand."""
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def read_json(path: Path, limit: int, what: str = "file", fix: str = REPLACE_FIX) -> Any:
    """The JSON document in a regular file of at most ``limit`` bytes; NotReadable (with ``fix``)
    for a file that is not valid UTF-8 JSON, as for one lavanya will not read at all. The one way
    lavanya reads JSON from a tree (vocoder configs, the character map, export manifests)."""
    import json

    text = read_regular_text(path, limit, what)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NotReadable(path, f"{what} is not valid JSON ({one_line(exc, 200)})", fix) from None


_BINARY_UNITS = (("GiB", GIB), ("MiB", MIB), ("KiB", KIB))
_DECIMAL_UNITS = ("kB", "MB", "GB", "TB")


def format_size(size: int, *, exact: bool = False) -> str:
    """A number of bytes as lavanya writes it for users, limits and file sizes alike; the one size
    formatter. Under 1000: ``N bytes``. An exact multiple of a binary unit, fewer than 1024 of it:
    that unit (``1 MiB``, ``64 MiB``, ``16 KiB``), as limits are set. Anything else: decimal with
    one decimal place (``148.7 MB``, ``2.3 kB``), as file sizes are listed. ``exact`` adds the byte
    count after a rounded figure (``2.5 MB (2500000 bytes)``), for a size a user compares with
    another tool's."""
    if size < 1000:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    for unit, scale in _BINARY_UNITS:
        if size % scale == 0 and size // scale < 1024:
            return f"{size // scale} {unit}"
    value = float(size)
    for unit in _DECIMAL_UNITS:
        value /= 1000
        if round(value, 1) < 1000 or unit == _DECIMAL_UNITS[-1]:
            break
    shown = f"{value:.1f} {unit}"
    return f"{shown} ({size} bytes)" if exact else shown


def current_umask() -> int:
    """The process umask (read by setting it and putting it back; lavanya creates no files
    from other threads)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_mode(path: Path) -> int:
    """Permission bits for an output lavanya writes (a WAV, a plot): a new file gets 0644 less
    the umask; a file it replaces keeps its bits without group/world write and without set-id
    bits, so a 0666 target (or a symlink to one) never yields a world-writable result."""
    try:
        old = os.stat(path).st_mode
    except OSError:
        return 0o644 & ~current_umask()
    return stat.S_IMODE(old) & 0o755


def refuse_non_regular(path: Path, what: str = "output") -> bool:
    """Raise LavanyaError when ``path`` exists as anything but a regular file (or a symlink to
    one); True when it exists. Writing replaces a regular file through a rename; a device, FIFO,
    socket or directory there must never be replaced (``-o /dev/null`` run as root would
    otherwise put a WAV in place of the device)."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False  # a new path, or a dangling symlink (the link itself is replaced)
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot write the {what} there ({one_line(exc)})") from None
    if not stat.S_ISREG(info.st_mode):
        raise LavanyaError(f"{path}: {what} is {file_kind(info.st_mode)}; lavanya writes only regular files "
                           "(give a new path, or - for standard output)")
    return True


def check_output_target(path: Path, what: str = "output") -> None:
    """What can be known about writing ``path`` without writing anything: it is a regular file or
    a new path, and its directory exists. Each problem is a one-line LavanyaError naming it."""
    path = Path(path)
    refuse_non_regular(path, what)
    directory = path.parent
    if not directory.is_dir():
        state = "is not a directory" if directory.exists() else "does not exist; create it first"
        raise LavanyaError(f"{path}: cannot write the {what}: {directory} {state}")


# Directories lavanya makes (an output directory and its parents): never group- or world-writable,
# whatever the umask (a umask of 000 would give 0777); the umask may take more away.
DIRECTORY_MODE = 0o755


def make_directories(path: Path) -> None:
    """``path`` and whichever of its parents are missing, each made with ``DIRECTORY_MODE``
    (``os.makedirs`` would give the parents 0777 less the umask). FileExistsError when
    something that is not a directory is in the way; OSError otherwise."""
    missing = []
    current = Path(path)
    while not os.path.isdir(current):
        if os.path.lexists(current):
            raise FileExistsError(f"{current} is not a directory")
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise


def check_directory_takes_files(path: Path, what: str = "output") -> None:
    """That a new file can be created beside ``path``, tried with a temporary file removed at
    once (permissions, a read-only file system, no inodes left): the one test that is true."""
    path = Path(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot write the {what} in {path.parent} ({one_line(exc)})") from None
    try:
        os.close(fd)
    finally:
        with contextlib.suppress(FileNotFoundError):  # a batch's clean-up may have taken it already
            os.unlink(probe)


@contextlib.contextmanager
def replacing(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A seekable temporary file beside ``path``; when the block ends normally it is flushed to
    disk and renamed over ``path``, so readers never see half of it. On any way out of the
    block (an error, Ctrl-C, SIGTERM through ``cli.main``) the temporary file is removed and
    ``path`` is untouched.

    The result gets ``mode`` if given, else the old file's permission bits, else 0644 less the
    umask. A target that is not a regular file (or a new path) is refused before and after.
    """
    path = Path(path)
    exists = refuse_non_regular(path, "file")
    if mode is None:
        mode = stat.S_IMODE(os.stat(path).st_mode) if exists else 0o644 & ~current_umask()
    fd, temp_name = _locked_temporary(path)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        refuse_non_regular(path, "file")  # it may have been swapped for a device meanwhile
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _locked_temporary(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, locked (``flock``) for as long as it is open, so a
    batch's clean-up (``remove_stale_temporaries``) tells a live writer's file from one a killed
    writer left: the kernel drops the lock of a process that died."""
    import fcntl

    while True:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with contextlib.suppress(OSError):  # a file system without locks: unlocked, as before
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_nlink:
            return fd, name
        os.close(fd)  # a clean-up took it between its creation and the lock: another name


def replace_file(path: Path, write: Callable[[BinaryIO], None], *, mode: int | None = None) -> None:
    """Write ``path`` through ``write(handle)`` (see ``replacing``: temporary file, then rename)."""
    with replacing(path, mode=mode) as handle:
        write(handle)


def copy_regular(source: Path, target: Path, limit: int, what: str = "file", *, mode: int = 0o644) -> int:
    """Copy the regular file ``source`` (at most ``limit`` bytes) to ``target``; the bytes copied.

    The one bounded copy: a device, FIFO or file over the bound raises NotReadable before a byte
    is written, and one that grows past it while being read (a file still being written) raises
    NotReadable too, read no further than the bound. ``target`` is written through ``replacing``
    (temporary file, fsync, rename, ``mode``), so it is whole or untouched; a symlink there is
    replaced, not written through, and a device or directory there is refused. FileNotFoundError,
    PermissionError and other OSErrors pass through for the caller to word.
    """
    copied = 0
    with open_regular(source, what) as reader:
        if os.fstat(reader.fileno()).st_size > limit:
            raise NotReadable(source, f"{what} is larger than {format_size(limit)}, far beyond any real one")

        def write(writer: BinaryIO) -> None:
            nonlocal copied
            while chunk := reader.read(min(MIB, limit + 1 - copied)):
                copied += len(chunk)
                if copied > limit:
                    raise NotReadable(source, f"{what} grew beyond {format_size(limit)} while being copied",
                                      "copy it again once it is complete")
                writer.write(chunk)

        replace_file(target, write, mode=mode)
    return copied


# A temporary file of ``replacing`` (``mkstemp``: 8 characters) or of an upload to remote storage
# (a uuid4 in hex) beside the file it was to become: ``.<name>.<random>.tmp``.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?:[a-z0-9_]{8}|[0-9a-f]{32})\.tmp", re.DOTALL)


def temporary_of(entry_name: str) -> str | None:
    """The file a temporary file named ``entry_name`` was to become, or None for other names."""
    match = _TEMPORARY.fullmatch(entry_name)
    return match["name"] if match else None


def remove_stale_temporaries(paths: Iterable[str | Path]) -> int:
    """Remove the temporary files left beside ``paths`` by a process killed while writing them
    (SIGKILL, the OOM killer, a lost Ray node), so a later run of the same jobs leaves no litter.
    Only regular files named for one of ``paths`` go, and only when no live writer holds their
    lock (another batch writing the same directory keeps its files); each directory is listed
    once. Returns how many were removed."""
    wanted: dict[Path, set[str]] = {}
    for path in paths:
        wanted.setdefault(Path(path).parent, set()).add(Path(path).name)
    removed = 0
    for directory, names in wanted.items():
        try:
            listing = os.scandir(directory)
        except OSError:
            continue
        with listing:
            for entry in listing:
                if temporary_of(entry.name) in names and entry.is_file(follow_symlinks=False):
                    removed += _remove_if_unlocked(entry.path)
    return removed


def _remove_if_unlocked(path: str) -> bool:
    """Remove the temporary file ``path`` unless a live writer holds its lock; whether it went."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:  # gone meanwhile, a link, not ours to read
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a writer still at work
            return False
        except OSError:  # no locks here: the name alone decides, as before
            pass
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
