"""fileio.copy_regular, the one bounded copy (add-voice's staging, export's front-end files):
only regular files, never past the bound, the target whole or untouched."""

from __future__ import annotations

import io
import os
import stat

import pytest

from lavanya_cli import fileio
from lavanya_cli.fileio import NotReadable, copy_regular


def test_copies_the_bytes_through_a_temporary_file_with_mode_644(tmp_path):
    source, target = tmp_path / "model.pth", tmp_path / "out" / "model.pth"
    source.write_bytes(b"x" * 3_000_000)
    target.parent.mkdir()
    old_mask = os.umask(0o077)  # the mode is the one asked for, whatever the umask
    try:
        assert copy_regular(source, target, 4_000_000, "weights") == 3_000_000
    finally:
        os.umask(old_mask)
    assert target.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.pth"]  # no temporary file left


def test_a_device_is_refused_before_anything_is_written(tmp_path):
    target = tmp_path / "model.pth"
    with pytest.raises(NotReadable) as error:
        copy_regular(os.devnull, target, 1 << 20, "weights")
    assert "is a character device, not a regular file" in error.value.message
    assert not target.exists()


def test_a_file_over_the_bound_is_refused_and_the_target_left_as_it_was(tmp_path):
    source, target = tmp_path / "big", tmp_path / "kept"
    source.write_bytes(b"x" * 2048)
    target.write_bytes(b"old")
    with pytest.raises(NotReadable) as error:
        copy_regular(source, target, 1024, "weights")
    assert "weights is larger than 1 KiB" in error.value.reason
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["big", "kept"]


def test_a_file_that_grows_while_copied_stops_at_the_bound(tmp_path, monkeypatch):
    """The size checked first says 10 bytes; the reads go on: the copy stops one byte past the
    bound and leaves no target and no temporary file."""
    small, target = tmp_path / "small", tmp_path / "target"
    small.write_bytes(b"y" * 10)
    growing = io.BytesIO(b"y" * 5000)

    class Growing:
        def __init__(self):
            self.fd = os.open(small, os.O_RDONLY)

        def fileno(self):
            return self.fd

        def read(self, size=-1):
            return growing.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            os.close(self.fd)

    monkeypatch.setattr(fileio, "open_regular", lambda path, what="file": Growing())
    with pytest.raises(NotReadable) as error:
        copy_regular(small, target, 1024, "statistics")
    assert "grew beyond 1 KiB while being copied" in error.value.reason and error.value.fix
    assert growing.tell() == 1025
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small"]
