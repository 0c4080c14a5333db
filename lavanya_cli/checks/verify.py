"""``lavanya verify``: every check of a model root, as a list of problems that each name a fix.

Everything here is cheap (stat, small reads, YAML, npy headers) so CI can run it on every push;
only ``deep=True`` loads weights, through ``lavanya_cli.checks.deep`` which imports torch and ESPnet.
"""

from __future__ import annotations

import json
import os
import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import stats as stats_mod
from ..modeltree.config import STATS_ENTRIES, read_config, stats_file_entries
from ..errors import LavanyaError
from ..modeltree.lfs_pointer import LfsPointer, pull_command, read_pointer
from .manifest import MANIFEST_NAME, manifest_mismatches, sha256_of, write_manifest
from .permissions import mode_problem
from ..modeltree.layout import STATS_NAMES, ModelRoot, VocoderSpec, VoiceSpec
from ..speech.vocoder import vocoder_mismatches

CODES = (
    "missing", "lfs-pointer", "pickled", "unreadable", "bad-stats", "stats-path",
    "checksum", "permissions", "duplicate-weights", "bad-weights", "vocoder-mismatch",
)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong under a model root. ``path`` is relative to the root; ``message`` says the fix."""

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}


class _Checker:
    """Collects problems for one root; one instance per run so shared files are checked once."""

    def __init__(self, root: Path):
        self.root = root
        self.repo_root = _git_toplevel(root)
        self.problems: list[Problem] = []
        self.voice_configs: dict[VoiceSpec, dict] = {}
        self.vocoder_configs: dict[Path, dict] = {}

    def report(self, path: Path, code: str, message: str) -> None:
        self.problems.append(Problem(self._relative(path), code, message))

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def pull(self, path: Path) -> str:
        return pull_command(path.absolute(), self.repo_root.absolute() if self.repo_root else self.root.absolute())

    def pointer(self, path: Path, pointer: LfsPointer, what: str, advice: str = "") -> None:
        self.report(path, "lfs-pointer",
                    f"is a Git LFS pointer, not the {what} (content: {_size(pointer.size)}, "
                    f"sha256 {pointer.oid[:12]}…); fetch it with: {self.pull(path)}{advice}")

    def permissions(self, paths: Iterable[Path]) -> None:
        for path in paths:
            if problem := mode_problem(path):
                fix = "chmod 755" if path.is_dir() else "chmod 644"
                self.report(path, "permissions", f"{problem}; fix with: lavanya fix-perms (or {fix})")

    def voice(self, voice: VoiceSpec) -> None:
        model_dir = voice.model_dir
        self.permissions([model_dir, *_files_in(model_dir)])
        config = self.config(voice)
        if config is not None:
            self.voice_configs[voice] = config
        n_mels = _n_mels(config) if config is not None else None
        for kind, path in voice.stats_paths.items():
            self.stats(path, kind, n_mels if kind == "feats" else 1)
        weights = voice.weights_path
        if weights is None:
            self.report(model_dir, "missing",
                        "no weights (model.pth or <N>epoch.pth); copy the voice's weights here")
        elif pointer := read_pointer(weights):
            self.pointer(weights, pointer, "weights")
        self.manifest(model_dir)

    def config(self, voice: VoiceSpec) -> dict | None:
        path = voice.config_path
        if not path.is_file():
            self.report(path, "missing", "config.yaml is missing; restore it from the voice's release")
            return None
        if pointer := read_pointer(path):
            self.pointer(path, pointer, "config")
            return None
        try:
            config = read_config(path)
        except LavanyaError as exc:
            self.report(path, "unreadable", f"{exc.message.removeprefix(f'{path}: ')}; restore it from the voice's release")
            return None
        for key, value in stats_file_entries(config).items():
            expected = STATS_NAMES[STATS_ENTRIES[key]]
            if value is None:
                self.report(path, "stats-path", f"{key} has no stats_file; add `stats_file: {expected}`")
            elif not isinstance(value, str) or "/" in value or "\\" in value:
                self.report(path, "stats-path",
                            f"{key}.stats_file is {value!r}, a path outside the model directory; "
                            f"point it at {expected} beside config.yaml with: lavanya fix-config {_quote(path)}")
            elif value != expected and not (voice.model_dir / value).is_file():
                self.report(path, "stats-path",
                            f"{key}.stats_file names {value}, which is not beside config.yaml; "
                            f"fix with: lavanya fix-config {_quote(path)}")
        return config

    def stats(self, path: Path, kind: str, dim: int | None) -> None:
        check = stats_mod.inspect_stats(path, dim)
        if check.ok:
            return
        if check.state == stats_mod.LFS_POINTER:
            self.pointer(path, check.pointer, f"{kind} statistics",
                         "; keep *.npz out of LFS (lavanya lfs-track --write)")
            return
        fixes = {
            stats_mod.MISSING: "restore it from the voice's release",
            stats_mod.PICKLED: f"rewrite it as plain arrays with: lavanya fix-stats {_quote(path)}",
            stats_mod.UNREADABLE: "restore it from the voice's release",
            stats_mod.BAD_STATS: "restore the statistics this voice was trained with",
        }
        self.report(path, check.state, f"{kind} statistics: {check.detail}; {fixes[check.state]}")

    def vocoder(self, vocoder: VocoderSpec) -> None:
        if not vocoder.directory.is_dir():
            self.report(vocoder.directory, "missing", "vocoder directory is missing; copy the HiFi-GAN "
                        "config.json and generator from the upstream release")
            return
        self.permissions([vocoder.directory, *_files_in(vocoder.directory)])
        config_path = vocoder.config_path
        if not config_path.is_file():
            self.report(config_path, "missing", "vocoder config.json is missing; copy it from the upstream release")
        elif pointer := read_pointer(config_path):
            self.pointer(config_path, pointer, "vocoder config")
        else:
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self.report(config_path, "unreadable", f"vocoder config.json does not parse ({exc}); "
                            "restore it from the upstream release")
            else:
                if isinstance(config, dict):
                    self.vocoder_configs[vocoder.directory] = config
        generator = vocoder.generator_path
        if not generator.is_file():
            self.report(generator, "missing", "HiFi-GAN generator is missing; copy it from the upstream "
                        "release (a plain git file there, several MB)")
        elif pointer := read_pointer(generator):
            self.pointer(generator, pointer, "vocoder generator")
        self.manifest(vocoder.directory)

    def vocoder_fit(self, voice: VoiceSpec) -> None:
        """A vocoder trained for another sample rate, mel count or hop turns the voice into noise
        without any error; both configs say what they were trained with, so compare them."""
        config = self.voice_configs.get(voice)
        vocoder = self.vocoder_configs.get(voice.vocoder.directory)
        if config is None or vocoder is None:
            return
        if differences := vocoder_mismatches(config, vocoder):
            self.report(voice.config_path, "vocoder-mismatch",
                        f"{voice.name} does not fit its vocoder {self._relative(voice.vocoder.directory)} "
                        f"({'; '.join(differences)}); put the vocoder this voice was trained with in that "
                        "directory, or pick the other family with --vocoder aryan|dravidian")

    def manifest(self, directory: Path) -> None:
        for path, why in manifest_mismatches(directory):
            self.report(path, "checksum", f"{why}; restore the file, or if the change is intended "
                        f"rewrite {MANIFEST_NAME} with: lavanya verify --write-manifest")

    def duplicates(self, voices: list[VoiceSpec]) -> None:
        """Weights shared by two voices: one of them ships the wrong model (same size, then same
        sha256; a pointer's oid is its content's sha256, so pointers and real files compare)."""
        by_size: dict[int, list[tuple[VoiceSpec, Path, LfsPointer | None]]] = defaultdict(list)
        for voice in voices:
            weights = voice.weights_path
            if weights is None:
                continue
            pointer = read_pointer(weights)
            try:
                size = pointer.size if pointer else weights.stat().st_size
            except OSError:
                continue
            by_size[size].append((voice, weights, pointer))
        for group in by_size.values():
            if len(group) < 2:
                continue
            by_digest: dict[str, list[tuple[VoiceSpec, Path]]] = defaultdict(list)
            for voice, weights, pointer in group:
                by_digest[pointer.oid if pointer else sha256_of(weights)].append((voice, weights))
            for digest, same in by_digest.items():
                if len(same) < 2:
                    continue
                for voice, weights in same:
                    others = ", ".join(self._relative(w) for v, w in same if w != weights)
                    self.report(weights, "duplicate-weights",
                                f"{voice.name} has the same weights as {others} (sha256 {digest[:12]}…); "
                                "one of these voices ships the wrong model: replace it with its own weights")


def verify_root(root: Path, *, deep: bool = False, vocoder_override: str | None = None) -> list[Problem]:
    """Check every voice under ``root``; ``deep`` also loads weights (imports torch and ESPnet)."""
    root = Path(root)
    if not root.is_dir():
        raise LavanyaError(f"{root}: model root is not a directory; pass --models PATH")
    voices = ModelRoot(root, vocoder_override).voices()
    checker = _Checker(root)
    vocoders: dict[Path, VocoderSpec] = {}
    for voice in voices:
        checker.voice(voice)
        vocoders.setdefault(voice.vocoder.directory, voice.vocoder)
    for vocoder in vocoders.values():
        checker.vocoder(vocoder)
    for voice in voices:
        checker.vocoder_fit(voice)
    checker.duplicates(voices)
    if deep:
        from .deep import generator_problem, weights_problem

        for voice in voices:
            if message := weights_problem(voice):
                checker.report(voice.weights_path, "bad-weights", message)
        for vocoder in vocoders.values():
            if message := generator_problem(vocoder):
                checker.report(vocoder.generator_path, "bad-weights", message)
    return sorted(set(checker.problems))


def write_manifests(root: Path, *, vocoder_override: str | None = None) -> list[Path]:
    """Write ``MD5SUMS`` in every model and vocoder directory under ``root``."""
    directories: dict[Path, None] = {}
    for voice in ModelRoot(Path(root), vocoder_override).voices():
        directories[voice.model_dir] = None
        if voice.vocoder.directory.is_dir():
            directories[voice.vocoder.directory] = None
    return [write_manifest(directory) for directory in directories]


def _files_in(directory: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(directory) if entry.is_file()]
    except OSError:
        return []


def _n_mels(config: dict) -> int | None:
    conf = config.get("feats_extract_conf")
    value = conf.get("n_mels") if isinstance(conf, dict) else None
    return int(value) if isinstance(value, int) else None


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB ({size} bytes)" if size >= 1e6 else f"{size} bytes"


def _quote(path: Path) -> str:
    return shlex.quote(str(path))


def _git_toplevel(start: Path) -> Path | None:
    """The enclosing git work tree, so pull commands name paths the way ``git lfs`` wants."""
    for directory in [start.absolute(), *start.absolute().parents]:
        if (directory / ".git").exists():
            return directory
    return None
