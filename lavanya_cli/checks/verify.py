"""``lavanya verify``: every check of a model root, as a list of problems that each carry a fix.

Everything here is cheap (stat, small reads, YAML, npy headers) so CI can run it on every push;
only ``deep=True`` reads weights, through ``lavanya_cli.checks.deep`` (torch only for a config
outside the graph templates, where it is installed).
"""

from __future__ import annotations

import shlex
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..modeltree import stats as stats_mod
from .stats import RESTORE_STATS
from ..errors import LavanyaError, one_line, option
from ..fileio import VOCODER_CONFIG_MAX_BYTES, NotReadable, digest_regular, format_size, read_json
from ..modeltree.config import STATS_ENTRIES, read_config, stats_file_entries
from ..modeltree.layout import EXPORT_MANIFEST_NAME, STATS_NAMES, ModelRoot, VocoderSpec, VoiceSpec
from ..modeltree.lfs_pointer import FileState, LfsPointer, probe, pull_command
from ..modeltree.paths import (OUTSIDE_FIX, escaping_link, is_directory, is_regular, outside_reason, relative_path,
                               split_listing)
from ..modeltree.walk import walk_tree
from ..speech.vocoder import vocoder_mismatches
from .manifest import CHECKSUMS_NAME, manifest_mismatches, write_manifest
from .permissions import permission_problem
from .problems import REFUSED, Problem
from .leftovers import find_leftovers
from .rewrite import Refused

if TYPE_CHECKING:
    from ..speech.options import LoadOptions

CODES = (
    "missing", "lfs-pointer", "pickled", "unreadable", "bad-stats", "stats-path",
    "checksum", "permissions", "duplicate-weights", "bad-weights", "vocoder-mismatch", "outside-root", "export",
    "speech", "leftover",
)


RESTORE_VOICE = "restore it from the voice's release"
RESTORE_UPSTREAM = "restore it from the upstream release"


@dataclass
class VerifyReport:
    """What ``verify`` found (``problems``, paths relative to the root) and how much it looked
    at: the voices, and the files in their model and vocoder directories."""

    problems: list[Problem] = field(default_factory=list)
    voices: int = 0
    files: int = 0
    spoken: list[dict] = field(default_factory=list)  # with speak: each voice's test sentence and measures


class _Checker:
    """Collects problems for one root; one instance per run so shared files are checked once.

    Nothing outside the root is read: a path a symlink leads out of is an ``outside-root``
    problem; only regular files are opened, and each read is bounded (see lavanya_cli.fileio).
    """

    def __init__(self, root: Path, require_manifests: bool = False):
        self.root = root
        self.require_manifests = require_manifests
        self.problems: list[Problem] = []
        self.files: set[Path] = set()  # every regular file in the directories listed
        self.voice_configs: dict[VoiceSpec, dict] = {}
        self.vocoder_configs: dict[Path, dict] = {}
        self.leaving: set[Path] = set()  # files in listed directories that link out of the root

    def report(self, path: Path, code: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(relative_path(path, self.root), code, message, fix))

    def pointer(self, path: Path, pointer: LfsPointer, what: str, advice: str = "") -> None:
        self.report(path, "lfs-pointer", f"is a Git LFS pointer, not the {what} (content: {format_size(pointer.size, exact=True)}, "
                    f"sha256 {pointer.oid[:12]}…)", f"fetch it with {pull_command(path, self.root)}{advice}")

    def outside(self, path: Path) -> None:
        """Report the symlink that leads ``path`` out of the root (once, however often it is met)."""
        link = escaping_link(self.root, path) or path
        self.report(link, "outside-root", outside_reason(link), OUTSIDE_FIX)

    def unlisted(self, directory: Path, reason: str) -> None:
        self.report(directory, "unreadable", f"{reason}; nothing in it is checked",
                    f"make it readable with lavanya fix-perms (or chmod 755 {_quote(directory)})")

    def tree(self, unreadable: list[tuple[Path, str]]) -> None:
        """Every symlink out of the root and every directory that cannot be listed, anywhere in
        the tree (the walk fix-perms makes, so the two agree), plus ``unreadable`` from the scan;
        and the staging directories a killed add-voice left (one may hide the previous voice)."""
        unreadable = list(unreadable)
        for path, info in walk_tree(self.root, unreadable=unreadable):
            if stat.S_ISLNK(info.st_mode) and escaping_link(self.root, path) is not None:
                self.outside(path)
            elif stat.S_ISDIR(info.st_mode):  # the walk skips hidden directories: look for add-voice's
                for leftover in find_leftovers(path):
                    self.report(leftover.directory, "leftover", *leftover.problem(self.root))
        for directory, reason in unreadable:
            self.unlisted(directory, reason)

    def listing(self, directory: Path) -> list[Path] | None:
        """The regular files in ``directory`` (links out of the root reported, not listed), or
        None after reporting a directory outside the root or one that cannot be listed. Every
        later check of a file in it relies on this listing for containment."""
        if escaping_link(self.root, directory) is not None:
            self.outside(directory)
            return None
        try:
            inside, leaving = split_listing(directory, self.root)
        except OSError as exc:
            self.unlisted(directory, f"cannot list this directory ({one_line(exc)})")
            return None
        for path in leaving:
            self.outside(path)
        self.leaving.update(leaving)
        files = [path for path in inside if is_regular(path)]
        self.files.update(files)
        return files

    def content(self, path: Path, what: str, missing: str, fix: str) -> bool:
        """True when ``path`` (in a directory already listed) holds real content; otherwise
        report what is there instead (``missing`` and ``fix`` when nothing is)."""
        if path in self.leaving:
            return False  # reported by listing()
        found = probe(path, what=path.name)
        if found.state is FileState.PRESENT:
            return True
        if found.state is FileState.MISSING:
            self.report(path, "missing", missing, fix)
        elif found.state is FileState.LFS_POINTER:
            self.pointer(path, found.pointer, what)
        elif found.state is FileState.NOT_REGULAR:
            self.report(path, "unreadable", found.reason, found.fix)
        else:
            self.report(path, "unreadable", found.reason,
                        f"make it readable with lavanya fix-perms (or chmod 644 {_quote(path)})")
        return False

    def permissions(self, paths: Iterable[Path]) -> None:
        for path in paths:
            if found := permission_problem(path):
                self.report(path, "permissions", *found)

    def voice(self, voice: VoiceSpec) -> None:
        model_dir = voice.model_dir
        files = self.listing(model_dir)
        if files is None:
            return
        self.permissions([model_dir, *files])
        config = self.config(voice)
        if config is not None:
            self.voice_configs[voice] = config
        n_mels = _n_mels(config) if config is not None else None
        for kind, path in voice.stats_paths.items():
            self.stats(path, kind, n_mels if kind == "feats" else 1)
        weights = voice.weights_path
        exported = self.export(model_dir, f"lavanya export --lang {voice.language} --gender {voice.gender}")
        if weights is None and not exported:
            self.report(model_dir, "missing", "no weights (model.pth or <N>epoch.pth)", "copy the voice's weights here")
        elif weights is not None:
            self.content(weights, "weights", "model.pth is missing (a dangling link?)", "copy the voice's weights here")
        self.manifest(model_dir)

    def export(self, directory: Path, command: str) -> bool:
        """Whether ``directory`` holds an ONNX export (``lavanya export``); each way its graphs or
        the files they were made from differ from its manifest is an ``export`` problem."""
        from ..speech.export_store import export_problems

        manifest = directory / EXPORT_MANIFEST_NAME
        if manifest in self.leaving or not is_regular(manifest):
            return False
        for problem in export_problems(directory):
            self.report(manifest, "export", f"ONNX export: {problem}",
                        f"export again from the voice's weights ({command}, with --out for a deploy root)")
        return True

    def config(self, voice: VoiceSpec) -> dict | None:
        path = voice.config_path
        if not self.content(path, "config", "config.yaml is missing", RESTORE_VOICE):
            return None
        try:
            config = read_config(path)
        except LavanyaError as exc:
            self.report(path, "unreadable", exc.message.removeprefix(f"{path}: "), RESTORE_VOICE)
            return None
        for key, value in stats_file_entries(config).items():
            expected = STATS_NAMES[STATS_ENTRIES[key]]
            if value is None:
                self.report(path, "stats-path", f"{key} has no stats_file", f"add `stats_file: {expected}`")
            elif not isinstance(value, str) or "/" in value or "\\" in value:
                self.report(path, "stats-path", f"{key}.stats_file is {value!r}, a path outside the model directory",
                            f"point it at {expected} beside config.yaml with lavanya fix-config {_quote(path)}")
            elif value != expected and not is_regular(voice.model_dir / value):
                self.report(path, "stats-path", f"{key}.stats_file names {value!r}, which is not beside config.yaml",
                            f"lavanya fix-config {_quote(path)}")
        return config

    def stats(self, path: Path, kind: str, dim: int | None) -> None:
        if path in self.leaving:
            return  # reported by listing()
        check = stats_mod.inspect_stats(path, dim)
        if check.ok:
            return
        if check.state == stats_mod.LFS_POINTER:
            self.pointer(path, check.pointer, f"{kind} statistics",
                         ", and keep *.npz out of LFS with lavanya lfs-track --write")
            return
        fixes = {
            stats_mod.MISSING: RESTORE_VOICE,
            stats_mod.PICKLED: f"rewrite it as plain arrays with lavanya fix-stats {_quote(path)}",
            stats_mod.UNREADABLE: check.fix or RESTORE_VOICE,
            stats_mod.BAD_STATS: RESTORE_STATS,
        }
        self.report(path, check.state, f"{kind} statistics: {check.detail}", fixes[check.state])

    def vocoder(self, vocoder: VocoderSpec) -> None:
        if escaping_link(self.root, vocoder.directory) is None and not is_directory(vocoder.directory):
            self.report(vocoder.directory, "missing", "vocoder directory is missing",
                        "copy the HiFi-GAN config.json and generator from the upstream release")
            return
        files = self.listing(vocoder.directory)
        if files is None:
            return
        self.permissions([vocoder.directory, *files])
        config_path = vocoder.config_path
        if self.content(config_path, "vocoder config", "vocoder config.json is missing",
                        "copy it from the upstream release"):
            try:
                config = read_json(config_path, VOCODER_CONFIG_MAX_BYTES, "vocoder config.json", RESTORE_UPSTREAM)
            except NotReadable as exc:
                self.report(config_path, "unreadable", exc.reason, exc.fix)
            except OSError as exc:
                self.report(config_path, "unreadable", f"cannot read vocoder config.json ({one_line(exc, 200)})",
                            RESTORE_UPSTREAM)
            else:
                if isinstance(config, dict):
                    self.vocoder_configs[vocoder.directory] = config
        exported = self.export(vocoder.directory, "lavanya export for a voice that uses it")
        if not (exported and not vocoder.generator_path.exists()):  # a deploy root has only the graph
            self.content(vocoder.generator_path, "vocoder generator", "HiFi-GAN generator is missing",
                         "copy it from the upstream release (a plain git file there, several MB)")
        self.manifest(vocoder.directory)

    def vocoder_fit(self, voice: VoiceSpec) -> None:
        """A vocoder trained for another sample rate, mel count or hop turns the voice into noise
        without any error; both configs say what they were trained with, so compare them."""
        config = self.voice_configs.get(voice)
        vocoder = self.vocoder_configs.get(voice.vocoder.directory)
        if config is None or vocoder is None or not isinstance(config.get("feats_extract_conf"), dict):
            return
        if differences := vocoder_mismatches(config, vocoder):
            self.report(voice.config_path, "vocoder-mismatch",
                        f"{voice.name} does not fit its vocoder {relative_path(voice.vocoder.directory, self.root)} "
                        f"({'; '.join(differences)})", "put the vocoder this voice was trained with in that "
                        f"directory, or pick the other family with {option('vocoder')} aryan|dravidian")

    def speak(self, voice: VoiceSpec, options: "LoadOptions | None") -> dict | None:
        """Speak the voice's test sentence (``checks.speak_check``) and report what is wrong with
        the audio as ``speech`` problems. A voice that cannot speak for a reason already reported
        (an LFS pointer, missing weights) is not tried again: None."""
        from ..modeltree.weights import require_speakable
        from .speak_check import speak_voice

        try:
            require_speakable(voice)
        except LavanyaError:
            return None
        check = speak_voice(voice, options=options)
        if check.not_spoken:
            self.report(voice.model_dir, "speech", f"{voice.name}: not spoken: {check.not_spoken}",
                        f"add numToText/{voice.language}.csv (or phone_dict/{voice.language}) to the model root")
        for what, fix in check.problems:
            self.report(voice.model_dir, "speech", f"{voice.name}: {what}", fix)
        return {"voice": voice.name, "sentence": check.sentence, "seconds": round(check.seconds, 3),
                "level_dbfs": None if check.level_dbfs is None else round(check.level_dbfs, 1),
                "clipped_share": round(check.clipped_share, 4), "ok": check.ok, "summary": check.summary()}

    def manifest(self, directory: Path) -> None:
        if self.require_manifests and not (directory / CHECKSUMS_NAME).exists():
            self.report(directory / CHECKSUMS_NAME, "checksum", f"no {CHECKSUMS_NAME} here, so nothing proves these "
                        "are the files that were committed", "write it where the tree is committed (lavanya verify "
                        "--write-manifest) and commit it with the files")
        for path, why in manifest_mismatches(directory, self.root):
            self.report(path, "checksum", why, "restore the file, or if the change is intended "
                        f"rewrite {CHECKSUMS_NAME} with lavanya verify --write-manifest")

    def duplicates(self, voices: list[VoiceSpec]) -> None:
        """Weights shared by two voices: one of them ships the wrong model (same size, then same
        sha256; a pointer's oid is its content's sha256, so pointers and real files compare)."""
        by_size: dict[int, list[tuple[VoiceSpec, Path, LfsPointer | None]]] = defaultdict(list)
        for voice in voices:
            weights = voice.weights_path
            if weights is None or weights in self.leaving or escaping_link(self.root, weights) is not None:
                continue
            found = probe(weights)
            if found.state not in (FileState.PRESENT, FileState.LFS_POINTER):
                continue
            try:
                size = found.pointer.size if found.pointer else weights.stat().st_size
            except OSError:
                continue
            by_size[size].append((voice, weights, found.pointer))
        for group in by_size.values():
            if len(group) < 2:
                continue
            by_digest: dict[str, list[tuple[VoiceSpec, Path]]] = defaultdict(list)
            for voice, weights, pointer in group:
                try:
                    digest = pointer.oid if pointer else digest_regular(weights)[0]["sha256"]
                except (NotReadable, OSError):
                    continue  # a file that cannot be hashed is reported by the checks above
                by_digest[digest].append((voice, weights))
            for digest, same in by_digest.items():
                if len(same) < 2:
                    continue
                for voice, weights in same:
                    others = ", ".join(relative_path(w, self.root) for v, w in same if w != weights)
                    self.report(weights, "duplicate-weights",
                                f"{voice.name} has the same weights as {others} (sha256 {digest[:12]}…); "
                                "one of these voices ships the wrong model", "replace it with its own weights")


def verify_root(root: Path, *, deep: bool = False, speak: bool = False, require_manifests: bool = False,
                vocoder_override: str | None = None) -> list[Problem]:
    """Check every voice under ``root``; ``deep`` also reads the weights against their configs;
    ``speak`` speaks a test sentence through every voice that can speak and checks the audio;
    ``require_manifests``: a model or vocoder directory without ``MD5SUMS`` is a problem."""
    return verify_report(root, deep=deep, speak=speak, require_manifests=require_manifests,
                         vocoder_override=vocoder_override).problems


def verify_report(root: Path, *, deep: bool = False, speak: bool = False, require_manifests: bool = False,
                  options: "LoadOptions | None" = None, vocoder_override: str | None = None) -> VerifyReport:
    """``verify_root``'s problems, and how many voices and files were checked (``options``: how
    ``speak`` loads each voice; default ``auto``)."""
    root = Path(root)
    if not is_directory(root):
        raise LavanyaError(f"{root}: no such directory; pass the model root")
    model_root = ModelRoot(root, vocoder_override)
    voices = model_root.voices()
    checker = _Checker(root, require_manifests)
    checker.tree(model_root.unreadable)
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
            if found := weights_problem(voice):
                checker.report(voice.weights_path, "bad-weights", *found)
        for vocoder in vocoders.values():
            if found := generator_problem(vocoder, root):
                checker.report(vocoder.generator_path, "bad-weights", *found)
    spoken = [checker.speak(voice, options) for voice in voices] if speak else []
    return VerifyReport(sorted(set(checker.problems)), len(voices), len(checker.files),
                        [entry for entry in spoken if entry is not None])


def leftover_problems(root: Path) -> list[Problem]:
    """verify's ``leftover`` problems alone: a tree whose only voice a killed ``add-voice
    --replace`` put aside has no voice to check, and must still be told where it went."""
    checker = _Checker(Path(root))
    checker.tree([])
    return [problem for problem in checker.problems if problem.code == "leftover"]


def write_manifests(root: Path, *, vocoder_override: str | None = None) -> tuple[list[Path], list[Problem]]:
    """Write ``MD5SUMS`` in every model and vocoder directory under ``root``.

    Returns the manifests written and, for each directory refused, a ``refused`` problem about
    its manifest (relative to ``root``, like every problem of verify): a directory outside the root (a symlinked voice directory), a file that cannot
    be listed or read, a read-only directory.
    """
    root = Path(root)
    directories: dict[Path, None] = {}
    for voice in ModelRoot(root, vocoder_override).voices():
        directories[voice.model_dir] = None
        if is_directory(voice.vocoder.directory):
            directories[voice.vocoder.directory] = None
    written, refused = [], []
    for directory in directories:
        try:
            written.append(write_manifest(directory, root))
        except Refused as exc:
            refused.append(Problem(relative_path(directory / CHECKSUMS_NAME, root), REFUSED, exc.reason, exc.fix))
    return written, refused


def _n_mels(config: dict) -> int | None:
    conf = config.get("feats_extract_conf")
    value = conf.get("n_mels") if isinstance(conf, dict) else None
    return int(value) if isinstance(value, int) else None


def _quote(path: Path) -> str:
    return shlex.quote(str(path))

