"""Where a batch's WAVs go, checked before anything is written: each output once, standard output
at most once and never beside a JSON summary, batch outputs inside the output directory, none in
a model root in use, every directory able to take a file (``check_*``); and the output directory
itself (``OutputTarget``), local or on a pyarrow filesystem for a Ray batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from ..errors import LavanyaError, import_optional, one_line, option
from ..fileio import (NotReadable, check_directory_takes_files, check_output_target, digest_regular, make_directories,
                      remove_stale_temporaries, temporary_of)
from ..speech.audio import STDOUT
from .jobs import Job

# Object stores publish an object only once its upload completes: a direct write is atomic there,
# and a rename would be a second full copy.
OBJECT_STORES = frozenset({"s3", "gcs"})

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

    from ..speech.audio import WavWriter

def check_outputs(jobs: list[Job], *, inside: Path | None = None, extra: dict[str, Path] | None = None,
                  json_summary: bool = False, local: bool = True) -> None:
    """Every output of every job, checked before any voice is loaded (see the module notes).
    ``inside``: the directory batch outputs must stay in, symlinks resolved. ``extra``: other
    files the command writes (``{"--plot": path}``), checked alike. ``local=False``: the outputs
    are names on remote storage (a Ray batch's ``s3://...``), where only the rules about
    standard output and each output once apply."""
    named = [(job.where or "-o", job.output, bool(job.where)) for job in jobs]
    named += [(flag, str(path), False) for flag, path in (extra or {}).items()]
    to_stdout = [where for where, output, _ in named if output == STDOUT]
    if len(to_stdout) > 1:
        raise LavanyaError(f"{to_stdout[1]}: standard output (-) is already the output of {to_stdout[0]}; "
                           "one WAV at most can go there")
    if to_stdout and json_summary:
        raise LavanyaError(f"{to_stdout[0]}: - puts the WAV on standard output, which "
                           f"{option('json_summary', flag='--format json')} needs "
                           "for the summary; write the WAV to a file")
    seen: dict[Path, str] = {}
    boundary = Path(inside).resolve() if inside is not None else None
    for where, output, batch in named:
        if output == STDOUT:
            continue
        location = _location(Path(output)) if local else PurePath(output)
        if location in seen:
            raise LavanyaError(f"{where} ({output}): the same file as the output of {seen[location]}; "
                               "give each output its own name")
        seen[location] = where
        if not local:
            continue
        if batch and boundary is not None and not location.is_relative_to(boundary):
            raise LavanyaError(f"{where} ({output}): leads outside the output directory {inside} "
                               "(through a symlink)")
        try:
            check_output_target(Path(output))
        except LavanyaError as exc:
            raise LavanyaError(f"{where}: {exc.message}" if batch else exc.message, exc.exit_code) from None


def check_directories_take_files(outputs: list[str | Path]) -> None:
    """Each directory the outputs go to takes a new file: the last check, after every other
    one passed, since it briefly creates a file there."""
    tried: set[Path] = set()
    for output in outputs:
        if str(output) != STDOUT and (directory := _location(Path(output)).parent) not in tried:
            check_directory_takes_files(Path(output))
            tried.add(directory)


def check_outside_roots(outputs: list[str | Path], roots: list[Path]) -> None:
    """No output inside a model root in use: a WAV must never replace a voice's files."""
    resolved = [(root, Path(root).resolve()) for root in roots]
    for output in outputs:
        if str(output) == STDOUT:
            continue
        location = _location(Path(output))
        for root, real in resolved:
            if location.is_relative_to(real):
                raise LavanyaError(f"{output}: inside the model root {root} in use; write outputs elsewhere")


def _location(path: Path) -> Path:
    """Where writing ``path`` puts the file: its directory with symlinks resolved, then its name
    (a symlink at ``path`` itself is replaced, never written through)."""
    return Path(os.path.realpath(path.parent)) / path.name


class OutputTarget:
    """The directory the WAVs go to: a local directory (a path, or a ``file://`` URI), or one on
    a pyarrow filesystem named by a URI (``s3://bucket/prefix``, ``hdfs://...``). Names given to
    it are relative (``jobs.batch_output``). Pickled as its location, so each Ray actor opens
    the filesystem with its own node's credentials."""

    def __init__(self, location: str):
        self.location = location
        self.filesystem: FileSystem | None = None  # remote storage only
        if "://" in location:
            filesystem, base = _filesystem_from_uri(location)
            self.local = filesystem.type_name == "local"
            if not self.local:
                self.filesystem = filesystem
        else:
            base, self.local = os.path.abspath(location), True
        self.base = base.rstrip("/") or ("/" if self.local else "")

    def __reduce__(self):
        # A local directory travels as its absolute path (a relative one means nothing on a node).
        return OutputTarget, (self.base if self.local else self.location,)

    def __repr__(self) -> str:
        return f"OutputTarget({self.location!r})"

    def located(self, name: str) -> str:
        """Where ``name`` is, as a job's output and in messages: a path, or a URI on remote storage."""
        return os.path.join(self.base, name) if self.local else f"{self.location.rstrip('/')}/{name}"

    def create(self) -> None:
        """Make the directory (and its parents) if it is not there (one line when that cannot be
        done). A local directory needs no pyarrow."""
        try:
            if self.local:
                make_directories(Path(self.base))
            else:
                self.filesystem.create_dir(self.base, recursive=True)
        except FileExistsError:
            raise LavanyaError(f"{self.location}: {option('output_dir')} is not a directory") from None
        except Exception as exc:
            if not isinstance(exc, OSError) and (self.local or not isinstance(exc, _arrow_error())):
                raise
            raise LavanyaError(f"{self.location}: cannot create {option('output_dir')} ({one_line(exc)})") from None

    def wav(self, name: str, sample_rate: int) -> contextlib.AbstractContextManager["WavWriter"]:
        """A ``WavWriter`` for ``name``: locally ``audio.wav_output`` (a temporary file, then a
        rename); on remote storage the WAV in memory, then ``upload``."""
        from ..speech.audio import wav_output

        if self.local:
            return wav_output(self.located(name), sample_rate)
        return self._remote_wav(name, sample_rate)

    @contextlib.contextmanager
    def _remote_wav(self, name: str, sample_rate: int) -> Iterator["WavWriter"]:
        from ..speech.audio import WavWriter

        buffer = io.BytesIO()
        writer = WavWriter(buffer, sample_rate, self.located(name), seekable=True)
        yield writer
        writer.finish()
        self.upload(name, buffer.getvalue())

    def upload(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name`` on remote storage, atomically where the filesystem allows:
        a direct write on an object store, else a temporary name, then a move."""
        filesystem, final = self.filesystem, posixpath.join(self.base, name)
        try:
            if filesystem.type_name in OBJECT_STORES:
                with filesystem.open_output_stream(final) as stream:
                    stream.write(data)
                return
            parent = posixpath.dirname(final)
            filesystem.create_dir(parent, recursive=True)
            temporary = posixpath.join(parent, f".{posixpath.basename(final)}.{uuid.uuid4().hex}.tmp")
            try:
                with filesystem.open_output_stream(temporary) as stream:
                    stream.write(data)
                filesystem.move(temporary, final)
            except BaseException:
                with contextlib.suppress(OSError, _arrow_error()):
                    filesystem.delete_file(temporary)
                raise
        except (OSError, _arrow_error()) as exc:
            raise LavanyaError(f"{self.located(name)}: cannot write the WAV ({one_line(exc)})") from None

    def sha256(self, name: str) -> str | None:
        """The sha256 of the file ``name``, or None where there is no regular file to read."""
        try:
            if self.local:
                return digest_regular(Path(self.located(name)), what="WAV")[0]["sha256"]
            from pyarrow.fs import FileType

            path = posixpath.join(self.base, name)
            if self.filesystem.get_file_info(path).type != FileType.File:
                return None
            with self.filesystem.open_input_stream(path) as stream:
                return hashlib.file_digest(stream, "sha256").hexdigest()
        except (OSError, NotReadable, _arrow_error()):
            return None


    def remove_temporaries(self, names: Sequence[str]) -> int:
        """Remove the temporary files that writers of ``names`` left when they were killed (a
        lost node, a signal); on an object store there are none. Returns how many went."""
        if self.local:
            return remove_stale_temporaries(self.located(name) for name in names)
        removed = 0
        if self.filesystem.type_name in OBJECT_STORES:
            return removed
        from pyarrow.fs import FileSelector, FileType

        wanted: dict[str, set[str]] = {}
        for name in names:
            final = posixpath.join(self.base, name)
            wanted.setdefault(posixpath.dirname(final), set()).add(posixpath.basename(final))
        for directory, files in wanted.items():
            with contextlib.suppress(OSError, _arrow_error()):
                for info in self.filesystem.get_file_info(FileSelector(directory, allow_not_found=True)):
                    if info.type == FileType.File and temporary_of(info.base_name) in files:
                        self.filesystem.delete_file(info.path)
                        removed += 1
        return removed


def _filesystem_from_uri(uri: str) -> tuple["FileSystem", str]:
    pyarrow_fs = import_optional("pyarrow.fs")
    try:
        return pyarrow_fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise LavanyaError(f"{uri}: not a directory pyarrow can write to ({one_line(exc)}); "
                           "give a local path or a URI such as file:///data/wavs or s3://bucket/wavs") from None


def _arrow_error() -> type[Exception]:
    from pyarrow import ArrowException

    return ArrowException
