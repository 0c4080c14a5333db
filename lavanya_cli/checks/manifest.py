"""Per-directory checksum manifests: ``MD5SUMS`` that ``md5sum -c`` reads, plus sha256 and size.

A model directory checked out without its Git LFS content holds pointers, whose own md5 says
nothing about the weights. A pointer does carry the content's sha256 and size, so the manifest
records those too, on comment lines that ``md5sum -c`` skips::

    # sha256 <64 hex> size <bytes>  <name>
    <32 hex md5>  <name>

A file recorded while only its pointer was present gets the comment line and no md5 line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import one_line
from ..fileio import MANIFEST_MAX_BYTES, NotReadable, digest_regular, read_regular_text
from ..modeltree.lfs_pointer import read_pointer
from ..modeltree.paths import exists, is_regular, split_listing
from .rewrite import Refused, rewrite_file, writable_target

CHECKSUMS_NAME = "MD5SUMS"
_HEADER = (
    "# Written by `lavanya verify --write-manifest`. Check it with `md5sum -c MD5SUMS`, or with\n"
    "# `lavanya verify`, which also checks Git LFS pointers against the sha256 and size lines.\n"
)
_SHA_LINE = re.compile(r"^# sha256 (?P<sha256>[0-9a-f]{64}) size (?P<size>\d{1,19})  (?P<name>.+)$")
_MD5_LINE = re.compile(r"^(?P<md5>[0-9a-fA-F]{32}) [ *](?P<name>.+)$")
_DIGESTS = ("md5", "sha256")  # both from one read of the file


@dataclass
class ManifestEntry:
    """What the manifest says about one file; any field may be unknown (None)."""

    name: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None


def listed_files(directory: Path, root: Path | None = None) -> list[Path]:
    """The files a directory's manifest covers: its regular, non-hidden files but the manifest,
    without the links that lead out of ``root`` (default: the directory; verify reports them as
    outside-root). OSError when the directory cannot be listed."""
    inside, _ = split_listing(directory, directory if root is None else root)
    return [path for path in inside
            if path.name != CHECKSUMS_NAME and not path.name.startswith(".") and is_regular(path)]


def record(path: Path) -> ManifestEntry:
    """The manifest entry for ``path``: a pointer contributes its content's sha256 and size."""
    pointer = read_pointer(path)
    if pointer is not None:
        return ManifestEntry(path.name, None, pointer.oid, pointer.size)
    digests, size = digest_regular(path, _DIGESTS)
    return ManifestEntry(path.name, digests["md5"], digests["sha256"], size)


def write_manifest(directory: Path, root: Path | None = None) -> Path:
    """Write ``directory/MD5SUMS`` for the files in it now; returns its path.

    Refused (nothing written) when the manifest would land outside ``root`` (default: the
    directory itself), a file name cannot be listed, a file cannot be read, or the directory
    is not writable.
    """
    directory = Path(directory)
    target = directory / CHECKSUMS_NAME
    root = directory if root is None else root
    writable_target(target, root)  # refuse a directory outside the root before reading anything
    lines = [_HEADER]
    try:
        for path in listed_files(directory, root):
            if any(char in path.name for char in "\n\r\\"):
                raise Refused(f"md5sum cannot list {path.name!r}, a name with a newline or backslash", "rename it")
            entry = record(path)
            lines.append(f"# sha256 {entry.sha256} size {entry.size}  {entry.name}\n")
            if entry.md5:
                lines.append(f"{entry.md5}  {entry.name}\n")
        data = "".join(lines).encode("utf-8")
    except NotReadable as exc:
        raise Refused(f"{exc.path}: {exc.reason}", exc.fix) from None
    except OSError as exc:
        raise Refused(f"cannot read {directory} ({one_line(exc)})") from None
    except UnicodeEncodeError:
        raise Refused("a file name there is not valid UTF-8", "rename it") from None
    rewrite_file(target, lambda handle: handle.write(data), root)
    return target


def read_checksums(path: Path) -> dict[str, ManifestEntry]:
    """Entries by file name, from our format or a plain ``md5sum`` output (a regular file of at
    most MANIFEST_MAX_BYTES; NotReadable otherwise)."""
    entries: dict[str, ManifestEntry] = {}
    for line in read_regular_text(path, MANIFEST_MAX_BYTES, CHECKSUMS_NAME).splitlines():
        if match := _SHA_LINE.match(line):
            entry = entries.setdefault(match["name"], ManifestEntry(match["name"]))
            entry.sha256, entry.size = match["sha256"], int(match["size"])
        elif match := _MD5_LINE.match(line):
            entries.setdefault(match["name"], ManifestEntry(match["name"])).md5 = match["md5"].lower()
    return entries


def manifest_mismatches(directory: Path, root: Path | None = None) -> list[tuple[Path, str]]:
    """``(file, why)`` for each file that disagrees with ``directory/MD5SUMS`` (none without one)."""
    manifest = directory / CHECKSUMS_NAME
    if not exists(manifest):
        return []
    try:
        entries = read_checksums(manifest)
        present = {path.name: path for path in listed_files(directory, root)}
    except NotReadable as exc:
        return [(manifest, f"cannot read the manifest: {exc.reason}")]
    except OSError as exc:
        return [(manifest, f"cannot read the manifest ({one_line(exc)})")]
    found: list[tuple[Path, str]] = []
    for name, entry in entries.items():
        path = directory / name
        if name not in present:
            found.append((path, f"listed in {CHECKSUMS_NAME} but missing"))
        elif why := _disagreement(path, entry):
            found.append((path, why))
    for name, path in present.items():
        if name not in entries:
            found.append((path, f"not listed in {CHECKSUMS_NAME}"))
    return found


def _disagreement(path: Path, entry: ManifestEntry) -> str | None:
    pointer = read_pointer(path)
    if pointer is not None:
        if entry.sha256 is None:
            return None  # a plain md5sum manifest says nothing a pointer can be compared with
        if (pointer.oid, pointer.size) != (entry.sha256, entry.size):
            return (f"LFS pointer names sha256 {pointer.oid[:12]}… size {pointer.size}, "
                    f"{CHECKSUMS_NAME} records sha256 {entry.sha256[:12]}… size {entry.size}")
        return None
    try:
        size = path.stat().st_size
        if entry.size is not None and size != entry.size:
            return f"size {size} bytes, {CHECKSUMS_NAME} records {entry.size}"
        digests, _ = digest_regular(path, _DIGESTS)
    except NotReadable as exc:
        return f"cannot be checked: {exc.reason}"
    except OSError as exc:
        return f"cannot be checked ({one_line(exc)})"
    md5, sha256 = digests["md5"], digests["sha256"]
    if entry.sha256 is not None and sha256 != entry.sha256:
        return f"sha256 {sha256[:12]}… differs from {CHECKSUMS_NAME} ({entry.sha256[:12]}…)"
    if entry.md5 is not None and md5 != entry.md5:
        return f"md5 {md5} differs from {CHECKSUMS_NAME} ({entry.md5})"
    return None
