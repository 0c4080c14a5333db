"""Where a voice's ONNX export lives, and whether it still belongs to the voice's files.

An export is a directory holding the graphs and ``lavanya-export.json``: the names, sizes and
SHA-256 digests of the source files it was made from (``config.yaml``, the weights, the
statistics; ``config.json`` and ``generator`` for a vocoder), of the files it holds, the
versions that made it and the figures of the check against torch. It lives in one of two places:

* the user cache (``$LAVANYA_CACHE``, else the platform's user cache directory), under a key
  that is a digest of the source digests: a changed source gives another key, so a stale export
  is never found, whatever its modification time says;
* a deploy root written by ``lavanya export --out``: the model tree without ``model.pth`` and
  ``generator``, the graphs beside ``config.yaml``. There the graphs are the voice.

An acoustic export's manifest says its ``graph.precision`` (``f32`` where it does not say). An
int8 acoustic export (``speech.quantize``) is made from an f32 one and lives in the cache under
``acoustic-int8``, keyed by the f32 export's sources and graphs and the vocoder graph its guard
heard; where its guard refused int8, the same place holds a manifest without graphs recording
the refusal, and the f32 export is served with a note. A deploy root holds the graphs of the
precision it was written at.

Hashing a real ``model.pth`` on every load is a cost worth avoiding (docs/engines.md has the
time). ``DigestMemo`` skips it for a file whose stat signature (device, inode, size, mtime and
ctime in nanoseconds) is the one recorded when it was last hashed. ctime cannot be set by a user (``touch -d``, ``cp -p``, ``rsync -t`` and
``tar`` restore mtime, not ctime), a rewrite in place moves it, a replacement by rename changes
the inode. The signature is only recorded when both times were already 2 s old at hashing, so
a write landing in the same timestamp tick as the hash (coarse clocks, a write racing the hash)
cannot leave a matching signature behind (git's "racy clean" rule). Left trusted: a filesystem
that does not keep ctime, and whoever can change the system clock.

Nothing here imports torch: the torch-free synthesis path looks exports up through this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LavanyaError, one_line
from ..fileio import (CACHE_ENV, MANIFEST_MAX_BYTES, NotReadable, cache_root, digest_regular, read_json, replace_file,
                      stat_signature, time_saving_writes)
from ..modeltree.config import STATS_ENTRIES, read_config, stats_file_entries
from ..modeltree.layout import (CONFIG_NAME, EXPORT_MANIFEST_NAME,
                                VOCODER_CONFIG_NAME, VOCODER_WEIGHTS_NAME, VocoderSpec, VoiceSpec)
from ..modeltree.weights import is_deployed_vocoder, is_deployed_voice
from .options import F32, INT8, TEMPLATES, TORCH

if TYPE_CHECKING:
    from .graphs import Graph

# Bump when what the graphs take or give, or the layout of an export, changes: old exports
# then no longer match any key.
EXPORT_FORMAT = 1
MEMO_NAME = "digests.json"
# A file's times must be this old when it is hashed for its stat signature to be remembered.
RACY_SECONDS = 2.0
ACOUSTIC = "acoustic"
VOCODER = "vocoder"
ACOUSTIC_INT8 = "acoustic-int8"  # the cache's directory of int8 acoustic exports and guard refusals


def writable_cache(cache: Path) -> Path:
    """``cache``, created where it is missing, ready for an export; ``unwritable_cache`` where it
    cannot be (a file, a dangling link, a read-only place)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=cache, prefix=".lavanya-probe-")
        probe.close()
    except OSError as exc:
        raise unwritable_cache(cache, exc) from None
    return cache


def unwritable_cache(cache: Path, exc: OSError) -> LavanyaError:
    """The one line for an export cache that cannot take an export, naming ``$LAVANYA_CACHE``."""
    return LavanyaError(f"{cache}: the export cache cannot be written ({one_line(exc)}); set ${CACHE_ENV} to a "
                        "writable directory")


class MissingExport(LavanyaError):
    """No export was made from the voice's current files (the message names the command)."""


class MissingInt8Export(MissingExport):
    """The voice's f32 exports exist, their int8 acoustic export (or its guard's refusal) not yet:
    ``speech.quantize.ensure_int8`` makes it from ``acoustic`` and ``vocoder``, without torch."""

    def __init__(self, message: str, acoustic: Export, vocoder: Export):
        super().__init__(message)
        self.acoustic = acoustic
        self.vocoder = vocoder


def sha256_file(path: Path) -> str:
    """SHA-256 of a regular file (``fileio.digest_regular``: never a FIFO or device)."""
    return digest_regular(path, what="source file")[0]["sha256"]


class DigestMemo:
    """File digests remembered by stat signature in ``<cache>/digests.json`` (see the module
    doc for why a signature match is safe). Unreadable or unwritable memos are ignored."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        self.changed = False
        if path is not None:
            try:
                loaded = read_json(path, MANIFEST_MAX_BYTES * 8, "digest memo")
                if isinstance(loaded, dict):
                    self.entries = loaded
            except (OSError, LavanyaError, ValueError):
                pass

    def digest(self, path: Path) -> tuple[int, str]:
        """(size, sha256) of ``path``, from the memo where its stat signature matches."""
        before = stat_signature(os.stat(path))
        remembered = self.remembered(path)
        if remembered is not None and remembered[0] == before:
            return before[2], remembered[1]
        digest = sha256_file(path)
        after = stat_signature(os.stat(path))
        if after == before:
            self.record(path, after, digest)
        return after[2], digest

    def remembered(self, path: Path) -> tuple[list[int], str] | None:
        """The stat signature and SHA-256 recorded for ``path``, or None."""
        remembered = self.entries.get(os.path.realpath(path))
        if isinstance(remembered, list) and len(remembered) == 2 and isinstance(remembered[0], list):
            return remembered[0], remembered[1]
        return None

    def record(self, path: Path, signature: list[int], digest: str) -> None:
        """Remember that the file at ``path`` with stat ``signature`` has ``digest``: only where
        both its times are ``RACY_SECONDS`` old (a write in the same clock tick as the hash would
        leave the same signature on other bytes)."""
        settled = time.time_ns() - max(signature[3], signature[4]) >= RACY_SECONDS * 1e9
        key = os.path.realpath(path)
        if settled and self.path is not None and self.entries.get(key) != [signature, digest]:
            self.entries[key] = [signature, digest]
            self.changed = True

    def save(self) -> None:
        if not self.changed or self.path is None or not time_saving_writes():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.entries).encode("utf-8")
            replace_file(self.path, lambda handle: handle.write(text), mode=0o600)
            self.changed = False
        except (OSError, LavanyaError):
            pass  # a read-only cache, or something not a file where the memo goes: the next start hashes again


# -- sources ------------------------------------------------------------------------------

def acoustic_sources(spec: VoiceSpec, config: dict[str, Any] | None = None) -> dict[str, Path]:
    """The files an acoustic export is made from, by name: config, weights, every statistics
    file the config switches on."""
    from ..modeltree.layout import STATS_NAMES

    config = read_config(spec.config_path) if config is None else config
    sources = {CONFIG_NAME: spec.config_path}
    weights = spec.weights_path
    if weights is not None:
        sources[weights.name] = weights
    for key in stats_file_entries(config):
        name = STATS_NAMES[STATS_ENTRIES[key]]
        sources[name] = spec.model_dir / name
    return sources


def vocoder_sources(vocoder: VocoderSpec) -> dict[str, Path]:
    return {VOCODER_CONFIG_NAME: vocoder.config_path, VOCODER_WEIGHTS_NAME: vocoder.generator_path}


def describe_sources(sources: dict[str, Path], memo: DigestMemo | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"size": bytes, "sha256": hex}}`` for each source file."""
    memo = memo or DigestMemo(None)
    described = {}
    for name, path in sources.items():
        try:
            size, digest = memo.digest(path)
        except FileNotFoundError:
            raise LavanyaError(f"{path}: missing") from None
        except PermissionError:
            raise LavanyaError(f"{path}: not readable (permission denied)") from None
        described[name] = {"size": size, "sha256": digest}
    return described


def export_key(kind: str, sources: dict[str, dict[str, Any]]) -> str:
    """The cache key of an export: a digest of its kind, the export format and its sources."""
    canonical = json.dumps({"format": EXPORT_FORMAT, "kind": kind,
                            "sources": {name: entry["sha256"] for name, entry in sorted(sources.items())}},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


# -- manifests ----------------------------------------------------------------------------

def read_export_manifest(directory: Path) -> dict[str, Any]:
    """An export's manifest; a broken one is a one-line error naming it."""
    path = Path(directory) / EXPORT_MANIFEST_NAME
    try:
        manifest = read_json(path, MANIFEST_MAX_BYTES, "export manifest", "export the voice again")
    except FileNotFoundError:
        raise LavanyaError(f"{path}: missing; export the voice again (lavanya export)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise LavanyaError(f"{path}: not an export of format {EXPORT_FORMAT}; export the voice again "
                           "with this lavanya")
    if not all(isinstance(manifest.get(key), dict) for key in ("files", "sources", "graph")):
        raise LavanyaError(f"{path}: lacks its files, sources or graph description; export the voice again")
    return manifest


def manifest_problems(directory: Path, manifest: dict[str, Any], names: dict[str, dict[str, Any]],
                      memo: DigestMemo | None = None) -> list[str]:
    """How the files ``names`` (manifest entries) under ``directory`` differ from their entries."""
    problems = []
    for name, entry in names.items():
        path = Path(directory) / name
        try:
            size, digest = (memo or DigestMemo(None)).digest(path)
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        except (OSError, NotReadable) as exc:
            problems.append(f"{name}: {getattr(exc, 'reason', None) or exc}")
            continue
        if size != entry.get("size") or digest != entry.get("sha256"):
            problems.append(f"{name} differs from the one exported")
    return problems


# -- finding an export --------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    """A usable export: its directory and manifest. ``deployed``: found in a deploy root.
    ``note``: why it is not the precision asked for (int8 refused by its guard), else empty.
    ``memo``: the cache's digest memo, which spares hashing a graph the memo knows unchanged."""

    directory: Path
    manifest: dict[str, Any]
    deployed: bool
    note: str = ""
    memo: Path | None = None  # the digest memo that may vouch for its graphs (``read_graph``)

    @property
    def precision(self) -> str:
        """``f32`` or ``int8``: what its graphs compute in (a manifest that does not say: f32)."""
        return self.manifest["graph"].get("precision", F32)

    @property
    def converter(self) -> str:
        """How its graphs were made: ``templates`` or ``torch`` (a manifest that does not say: torch)."""
        return self.manifest.get("converter", TORCH)

    def file(self, name: str) -> Path:
        return self.directory / name

    def read_graph(self, name: str) -> "Graph":
        """The graph ``name``, checked and open: the one the manifest lists, by size and SHA-256,
        and a graph lavanya exports (``graphs.read_graph``)."""
        from .graphs import read_graph

        expected = self.manifest["files"].get(name)
        if not isinstance(expected, dict):
            raise LavanyaError(f"{self.directory / EXPORT_MANIFEST_NAME}: does not list {name}; export the voice again")
        memo = DigestMemo(self.memo) if self.memo is not None else None
        remembered = memo.remembered(self.file(name)) if memo is not None else None
        graph = read_graph(self.file(name), expected, remembered)  # hashed unless the memo vouches for it
        if memo is not None:
            memo.record(self.file(name), graph.stat_signature(), expected["sha256"])
            memo.save()
        return graph


def find_acoustic_export(spec: VoiceSpec, cache: Path | None = None) -> Export | None:
    """The acoustic export for ``spec``, or None where there is none for its current files: in
    the model directory (a deploy root, or a tree that ships its graphs beside its weights, as
    the bundled demo does), else in the cache."""
    if is_deployed_voice(spec):
        return _deployed(spec.model_dir, ACOUSTIC, spec.name)
    sources = acoustic_sources(spec)
    return _beside_sources(spec.model_dir, ACOUSTIC, sources, cache) or _cached(ACOUSTIC, sources, cache)


def find_vocoder_export(vocoder: VocoderSpec, cache: Path | None = None) -> Export | None:
    """The vocoder export for ``vocoder``, or None where there is none for its current files."""
    if is_deployed_vocoder(vocoder):
        return _deployed(vocoder.directory, VOCODER, str(vocoder.directory))
    sources = vocoder_sources(vocoder)
    return _beside_sources(vocoder.directory, VOCODER, sources, cache) or _cached(VOCODER, sources, cache)


def find_exports(spec: VoiceSpec, cache: Path | None = None, precision: str | None = None) -> tuple[Export, Export]:
    """The voice's acoustic and vocoder exports for their current files, the acoustic one at
    ``precision``: None, the export as it is (a deploy root's graphs as deployed, the cache's
    f32); ``f32``; ``int8``, the int8 export where its guard passed, else the f32 one with its
    ``note``. MissingExport, naming the command that makes them, where either is missing
    (MissingInt8Export where only the int8 export is)."""
    acoustic = find_acoustic_export(spec, cache)
    vocoder = find_vocoder_export(spec.vocoder, cache)
    if acoustic is None or vocoder is None:
        what = "voice" if acoustic is None else "vocoder"
        raise MissingExport(f"{spec.name}: no ONNX export of this {what} for its current files; run: "
                            + export_command(spec))
    if precision is None or precision == acoustic.precision == F32:
        return acoustic, vocoder
    if acoustic.precision == INT8:
        if precision == F32:
            raise LavanyaError(f"{acoustic.directory}: holds the int8 acoustic graphs only; export the voice again "
                               f"with --precision {F32} for f32 graphs")
        return acoustic, vocoder
    if acoustic.manifest.get("guard"):  # a deploy root written at int8 whose guard refused it
        return refused_int8(acoustic, acoustic.manifest["guard"]), vocoder
    int8 = find_int8_export(acoustic, vocoder, cache)
    if int8 is None:
        raise MissingInt8Export(f"{spec.name}: no int8 export of this voice yet; run: "
                                + export_command(spec, precision), acoustic, vocoder)
    if int8.manifest["guard"].get("passed") is not True:
        return refused_int8(acoustic, int8.manifest["guard"]), vocoder
    return int8, vocoder


def export_command(spec: VoiceSpec, precision: str | None = None) -> str:
    """The ``lavanya export`` line that makes the voice's exports (at ``precision``)."""
    return (f"lavanya export --models {spec.root} --lang {spec.language} --gender {spec.gender}"
            + (f" --variant {spec.variant}" if spec.variant else "")
            + (f" --precision {precision}" if precision and precision != F32 else ""))


def refused_int8(acoustic: Export, guard: dict[str, Any]) -> Export:
    """The f32 ``acoustic`` export served where int8's ``guard`` refused it: its manifest with
    the refusal recorded (as a deploy root keeps it), its note the guard's own words."""
    note = guard.get("note") if isinstance(guard, dict) else None
    return Export(acoustic.directory, {**acoustic.manifest, "guard": guard}, acoustic.deployed,
                  note=str(note or f"int8 was refused by its guard; the {F32} acoustic model is served"))


def int8_sources(acoustic: Export, vocoder: Export) -> dict[str, dict[str, Any]]:
    """What an int8 export is made and checked from, as ``export_key`` takes it: the f32
    export's sources and graphs, and the vocoder graph its guard listened through."""
    return {**acoustic.manifest["sources"], **acoustic.manifest["files"],
            **{f"{VOCODER}/{name}": entry for name, entry in vocoder.manifest["files"].items()}}


def int8_directory(acoustic: Export, vocoder: Export, cache: Path | None = None) -> Path:
    """Where the cache keeps the int8 export (or refusal) of ``acoustic`` heard through ``vocoder``."""
    cache = cache_root(cache)
    return cache / ACOUSTIC_INT8 / export_key(ACOUSTIC_INT8, int8_sources(acoustic, vocoder))


def find_int8_export(acoustic: Export, vocoder: Export, cache: Path | None = None) -> Export | None:
    """The cache's int8 export of the f32 ``acoustic`` (its manifest's ``guard`` says whether
    it passed; a refusal holds no graphs), or None where none was made from these files."""
    directory = int8_directory(acoustic, vocoder, cache)
    if not (directory / EXPORT_MANIFEST_NAME).is_file():
        return None
    manifest = read_export_manifest(directory)
    if (manifest.get("kind") != ACOUSTIC or manifest["graph"].get("precision") != INT8
            or manifest.get("quantized_from") != int8_sources(acoustic, vocoder)
            or not isinstance(manifest.get("guard"), dict)):
        return None
    return Export(directory, manifest, deployed=False)


def copied_sources(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sources a deploy root holds as they are: all but the weights the graphs replace."""
    return {name: entry for name, entry in manifest["sources"].items() if name != manifest.get("weights")}


def _described(sources: dict[str, Path], cache: Path | None) -> dict[str, dict[str, Any]]:
    """``describe_sources`` through the cache's digest memo."""
    memo = DigestMemo(_memo_path(cache))
    try:
        return describe_sources(sources, memo)
    finally:
        memo.save()


def _beside_sources(directory: Path, kind: str, sources: dict[str, Path], cache: Path | None) -> Export | None:
    """An export whose manifest sits in ``directory`` beside the files it was made from, when
    it was made from them as they are now (a changed weights file makes it stale: None)."""
    if not (directory / EXPORT_MANIFEST_NAME).is_file():
        return None
    manifest = read_export_manifest(directory)
    if manifest.get("kind") != kind or manifest.get("sources") != _described(sources, cache):
        return None
    return Export(directory, manifest, deployed=True, memo=_memo_path(cache))


def _memo_path(cache: Path | None) -> Path:
    return cache_root(cache) / MEMO_NAME


def _cached(kind: str, sources: dict[str, Path], cache: Path | None) -> Export | None:
    cache = cache_root(cache)
    described = _described(sources, cache)
    directory = cache / kind / export_key(kind, described)
    if not (directory / EXPORT_MANIFEST_NAME).is_file():
        return None
    manifest = read_export_manifest(directory)
    if manifest.get("kind") != kind or manifest.get("sources") != described or _older_templates(manifest):
        return None
    return Export(directory, manifest, deployed=False, memo=_memo_path(cache))


def _older_templates(manifest: dict[str, Any]) -> bool:
    """Whether a cache export was filled from other graph templates than this lavanya ships: it
    is made again (a deploy root's graphs are the user's, and stay)."""
    if manifest.get("converter") != TEMPLATES:
        return False
    from .convert import template_version

    return (manifest.get("versions") or {}).get("templates") != template_version()


def _deployed(directory: Path, kind: str, name: str) -> Export:
    """A deploy root's export. Its small copied files (config, statistics) are checked against
    the manifest on every load, as hashing them costs nothing; the graphs by ``lavanya verify``
    (``export_problems``)."""
    manifest = read_export_manifest(directory)
    if manifest.get("kind") != kind:
        raise LavanyaError(f"{directory / EXPORT_MANIFEST_NAME}: describes a {manifest.get('kind')} export, not {kind}")
    problems = manifest_problems(directory, manifest, copied_sources(manifest))
    if problems:
        raise LavanyaError(f"{name}: {'; '.join(problems)} (in {directory}); the graphs were exported from "
                           "other files: export the voice again")
    return Export(directory, manifest, deployed=True)


def export_problems(directory: Path) -> list[str]:
    """Every way the export in ``directory`` differs from its manifest (for ``lavanya verify``):
    its graphs (and each graph's shape, as synthesis checks it), and the files it was made from
    that lie beside it. In a deploy root the weights
    are absent by design; beside weights (a tree that ships its graphs, like the bundled demo)
    they must be the ones exported, or the graphs speak another model."""
    try:
        manifest = read_export_manifest(directory)
    except LavanyaError as exc:
        return [exc.message.removeprefix(f"{Path(directory) / EXPORT_MANIFEST_NAME}: ")]
    weights = manifest.get("weights")
    sources = manifest["sources"] if weights and (Path(directory) / weights).exists() else copied_sources(manifest)
    problems = manifest_problems(directory, manifest, {**sources, **manifest["files"]})
    export = Export(Path(directory), manifest, deployed=True)
    for name in manifest["files"]:
        if not any(problem.startswith(name) for problem in problems):
            try:
                export.read_graph(name).close()  # what synthesis would refuse: a graph unlike lavanya's exports
            except LavanyaError as exc:
                problems.append(f"{name}: {getattr(exc, 'reason', exc.message)}")
    return problems


# -- writing ------------------------------------------------------------------------------

def write_atomically(target: Path, fill: Callable[[Path], None]) -> Path:
    """Make directory ``target`` by ``fill(temporary directory)`` then one rename: readers see
    the whole export or none. An existing ``target`` is replaced; on failure nothing is left."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        fill(scratch)
        for path in scratch.iterdir():  # written 0666 less the umask (torch.onnx.export, the converter):
            if path.is_file() and not path.is_symlink():  # 0644 less the umask, as every new file
                path.chmod(path.stat().st_mode & 0o644)
        os.chmod(scratch, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(scratch, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target
