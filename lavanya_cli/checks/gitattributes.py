"""Which files of a model tree belong in Git LFS, written as the ``.gitattributes`` lines git-lfs writes.

Rules, in the order they are written (later lines win in ``.gitattributes``):

1. weights by name, whatever their size and even when the checkout holds only a pointer:
   ``*.pth``, the vocoder's extension-less ``generator`` and the ``*.onnx`` graphs ``lavanya export`` writes. Bare patterns match at any depth.
2. any other file whose content is larger than the threshold, by its exact path.
3. ``*.npz`` unset from LFS: the statistics are tiny and every command reads them, so they must
   stay readable where git-lfs is missing or the LFS quota is spent.
4. weights in a directory holding a ``DEMO`` file (small demo voices shipped in plain git), by
   exact path, unset from LFS. A demo file over the threshold gets no exception: it is not small.

The "unset" lines use ``-filter -diff -merge -text``: git-lfs lists such patterns as excluded,
and ``-text`` (not ``text``) keeps git from rewriting CRLF bytes inside a binary file.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import stat
import tempfile
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LavanyaError, one_line, option
from ..fileio import ATTRIBUTES_MAX_BYTES, NotReadable, format_size, read_regular_text
from ..modeltree.layout import DEMO_MARKER, VOCODER_WEIGHTS_NAME
from ..modeltree.lfs_pointer import POINTER_MAX_BYTES, parse_pointer, read_pointer
from ..modeltree.paths import (OUTSIDE_FIX, escaping_link, exists, git_toplevel, is_directory, is_regular,
                               outside_reason, real_path, relative_path)
from ..modeltree.walk import walk_tree
from .problems import Problem
from .rewrite import Refused, rewrite_file, writable_target

if TYPE_CHECKING:
    import git

ATTRIBUTES_FILE = ".gitattributes"
LFS_ATTRIBUTES = "filter=lfs diff=lfs merge=lfs -text"
PLAIN_ATTRIBUTES = "-filter -diff -merge -text"
WEIGHT_PATTERNS = ("*.pth", VOCODER_WEIGHTS_NAME, "*.onnx")
PLAIN_PATTERNS = ("*.npz",)
# Below GitHub's 50 MB warning with room to spare: a 10 MB file that changes a few times already
# weighs on every clone. Weights go to LFS by name whatever their size.
DEFAULT_THRESHOLD = 10_000_000

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
          "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE | re.ASCII)


# No file is larger than this (git-lfs reads sizes as signed 64-bit integers).
SIZE_MAX = (1 << 63) - 1


def parse_size(text: str) -> int:
    """Bytes in ``10MB``, ``500k``, ``1.5GiB`` or ``1234`` (kB/MB/GB decimal, KiB/MiB/GiB binary),
    at most SIZE_MAX; computed exactly, so no number can overflow into an internal error."""
    match = _SIZE.match(text) if len(text) <= 64 else None
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise LavanyaError(f"{option('threshold')} {text!r}: not a size; write e.g. 10MB, 500kB or 1GiB")
    size = int(Fraction(match.group(1)) * _UNITS[unit])
    if size > SIZE_MAX:
        raise LavanyaError(f"{option('threshold')} {text!r}: larger than any file can be; write e.g. 10MB")
    return size


def unsafe_name(path: str) -> str | None:
    """Why no ``.gitattributes`` line can name ``path`` safely, or None: a control character
    (a newline would end the line and start a rule of the name's choosing) or bytes that are
    not UTF-8."""
    for char in path:
        category = unicodedata.category(char)
        if category == "Cs":
            return "its name is not valid UTF-8"
        if category == "Cc":
            return f"its name holds the control character {char!r}"
    return None


def escape_pattern(path: str, literal: bool) -> str:
    """A ``.gitattributes`` pattern for ``path``, escaped as git-lfs escapes it.

    Whitespace becomes ``[[:space:]]`` and ``#`` becomes ``\\#`` (what ``git lfs track`` writes);
    with ``literal`` (``git lfs track --filename``) the glob characters are escaped too, plus a
    ``!`` or ``"`` that git would read as negation or quoting. A literal path without a slash is
    anchored with a leading ``/`` so that it matches only at the top, as a path should.
    """
    out = []
    for char in path:
        if char.isspace():
            out.append("[[:space:]]")
        elif char in "#\\" or (literal and char in '*?[]!"'):
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    return "/" + escaped if literal and "/" not in path else escaped


@dataclass(frozen=True)
class Rule:
    """One ``.gitattributes`` line: a glob (or, with ``literal``, one file's path) in or out of LFS."""

    source: str
    lfs: bool
    reason: str
    literal: bool = False

    @property
    def pattern(self) -> str:
        return escape_pattern(self.source, self.literal)

    @property
    def line(self) -> str:
        return f"{self.pattern} {LFS_ATTRIBUTES if self.lfs else PLAIN_ATTRIBUTES}"

    @property
    def command(self) -> str | None:
        """The ``git lfs track`` command that writes this line; None for lines git-lfs cannot write."""
        if not self.lfs:
            return None
        if self.literal:
            anchored = self.source if "/" in self.source else "/" + self.source
            return f"git lfs track --filename {shlex.quote(anchored)}"
        return f"git lfs track {shlex.quote(self.source)}"


@dataclass
class LfsPlan:
    """What ROOT needs: the rules, and which files (ROOT-relative) belong in LFS or stay out.
    ``problems``: what kept the plan from covering everything (a directory that cannot be
    listed, a name no rule can express); every mode reports them."""

    root: Path
    threshold: int
    rules: list[Rule]
    in_lfs: list[str] = field(default_factory=list)
    kept_out: list[str] = field(default_factory=list)
    git: GitTree | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [rule.line for rule in self.rules]


@dataclass
class GitTree:
    """The git working tree that holds ROOT; ``prefix`` is ROOT's path inside it (``""`` at the top)."""

    repo: git.Repo
    prefix: str

    def files(self) -> list[str]:
        """Tracked and untracked-but-not-ignored files under ROOT, relative to ROOT."""
        out = self.repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard",
                                     "--", self.prefix or ".")
        return sorted({path[len(self.prefix):] for path in out.split("\0") if path})

    def filter_attributes(self, paths: list[str]) -> dict[str, str]:
        """The ``filter`` attribute git resolves for each path: one ``git check-attr`` for all."""
        if not paths:
            return {}
        with tempfile.TemporaryFile() as stdin:
            stdin.write(b"".join((self.prefix + p).encode("utf-8", "surrogateescape") + b"\0" for p in paths))
            stdin.seek(0)
            out = self.repo.git.check_attr("-z", "--stdin", "filter", istream=stdin)
        fields = out.split("\0")
        return {fields[i][len(self.prefix):]: fields[i + 2] for i in range(0, len(fields) - 2, 3)}

    def committed_pointers(self, paths: list[str]) -> dict[str, bool]:
        """For each path in the index: is its staged blob an LFS pointer? Untracked paths are absent."""
        entries = {path: entry for (path, stage), entry in self.repo.index.entries.items()
                   if stage in (0, 2)}
        result = {}
        for rel in paths:
            entry = entries.get(self.prefix + rel)
            if entry is None or not stat.S_ISREG(entry.mode):
                continue
            if self.repo.odb.info(entry.binsha).size >= POINTER_MAX_BYTES:
                result[rel] = False
            else:
                result[rel] = parse_pointer(self.repo.odb.stream(entry.binsha).read()) is not None
        return result


def open_git_tree(root: Path) -> GitTree | None:
    """The working tree holding ``root`` (found by ``git_toplevel``, the rule every command
    uses), or None when it is not in one, or git is unavailable or does not take it."""
    top = git_toplevel(root)
    if top is None:
        return None
    try:
        import git
    except ImportError:  # GitPython refuses to import when no git executable is found
        return None
    try:
        repo = git.Repo(top)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    inside = relative_path(real_path(root), real_path(Path(repo.working_tree_dir)))
    if Path(inside).is_absolute() or inside.split("/")[0] == ".git":
        return None
    return GitTree(repo, "" if inside == "." else inside + "/")


def _sizes(root: Path, tree: GitTree | None, problems: list[Problem]) -> dict[str, int]:
    """Content size of every file under ROOT (a pointer counts as the size it stands for).

    In a git working tree the files are the ones git sees (ignored files and ``.git`` left out);
    elsewhere, the walk skips hidden directories and virtual environments. Either way the tree
    is walked for directories that cannot be listed, which go to ``problems``.
    """
    unreadable: list[tuple[Path, str]] = []
    walked = {relative_path(path, root): info
              for path, info in walk_tree(root, unreadable=unreadable) if stat.S_ISREG(info.st_mode)}
    for directory, reason in unreadable:
        problems.append(Problem(relative_path(directory, root), "unreadable",
                                f"{reason}; files in it are not planned", "make it readable (chmod 755), then rerun"))
    if tree is not None:
        infos = {}
        for rel in tree.files():
            try:
                info = (root / rel).lstat()
            except FileNotFoundError:  # in the index but deleted from the working tree
                infos[rel] = None
                continue
            except OSError as exc:
                problems.append(Problem(rel, "unreadable", f"cannot stat ({one_line(exc)}); it is not planned",
                                        "make its directory readable, then rerun"))
                continue
            if stat.S_ISREG(info.st_mode):
                infos[rel] = info
    else:
        infos = walked
    sizes = {}
    for rel, info in infos.items():
        size = info.st_size if info else 0
        if 0 < size < POINTER_MAX_BYTES and (pointer := read_pointer(root / rel)):
            size = pointer.size
        sizes[rel] = size
    return sizes


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def plan(root: Path, threshold: int = DEFAULT_THRESHOLD) -> LfsPlan:
    """The rules ROOT's ``.gitattributes`` needs and the files each side must hold."""
    root = Path(root)
    if not is_directory(root):
        raise LavanyaError(f"{root}: {'not a directory' if exists(root) else 'no such directory'}; "
                           "pass the repository or model root")
    tree = open_git_tree(root)
    rules = [Rule(p, True, "model weights") for p in WEIGHT_PATTERNS]
    large: list[Rule] = []
    demo: list[Rule] = []
    result = LfsPlan(root, threshold, rules, git=tree)
    for rel, size in sorted(_sizes(root, tree, result.problems).items()):
        if _matches(rel, PLAIN_PATTERNS):
            result.kept_out.append(rel)
        elif _matches(rel, WEIGHT_PATTERNS):
            if size <= threshold and is_regular((root / rel).parent / DEMO_MARKER):
                if _expressible(rel, result, "demo weights stay in plain git only by a rule naming them"):
                    demo.append(Rule(rel, False,
                                     f"demo weights ({format_size(size)}) beside {DEMO_MARKER}", True))
                    result.kept_out.append(rel)
            else:
                result.in_lfs.append(rel)
        elif size > threshold:
            if _expressible(rel, result, f"{format_size(size)}, over the threshold, it needs a rule naming it"):
                large.append(Rule(rel, True,
                                  f"{format_size(size)}, over the {format_size(threshold)} threshold", True))
                result.in_lfs.append(rel)
    attributes = root / ATTRIBUTES_FILE
    if (link := escaping_link(root, attributes)) is not None:
        result.problems.append(Problem(ATTRIBUTES_FILE, "outside-root", outside_reason(link), OUTSIDE_FIX))
    plain = [Rule(p, False, "statistics stay in plain git")
             for p in PLAIN_PATTERNS]
    result.rules = rules + large + plain + demo
    return result


def _expressible(rel: str, result: LfsPlan, need: str) -> bool:
    """True when ``rel`` can be named in a rule; otherwise the plan gets an ``unsafe-name`` problem."""
    why = unsafe_name(rel)
    if why is not None:
        result.problems.append(Problem(rel, "unsafe-name", f"{need}, but {why}, which no "
                                       ".gitattributes line can name safely", "rename it, then rerun"))
    return why is None


def _pattern(line: str) -> str | None:
    """The pattern a ``.gitattributes`` line sets attributes for (None for blanks and comments)."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return stripped.split()[0]


def merge_attributes(existing: str, lines: list[str]) -> str:
    """``existing`` with ``lines`` at the end, replacing earlier lines for the same patterns.

    Unrelated lines and comments stay where they are; the rules go last because later lines win
    and the demo exceptions must come after the rules they override. Running it twice changes
    nothing.
    """
    newline = "\r\n" if "\r\n" in existing else "\n"
    ours = {_pattern(line) for line in lines}
    kept = [line for line in existing.splitlines() if _pattern(line) not in ours]
    while kept and not kept[-1].strip():
        kept.pop()
    return newline.join(kept + lines) + newline


def read_attributes(path: Path) -> str:
    """The text of a ``.gitattributes`` ("" when there is none): a regular file of at most
    ATTRIBUTES_MAX_BYTES, else NotReadable."""
    try:
        return read_regular_text(path, ATTRIBUTES_MAX_BYTES, ATTRIBUTES_FILE)
    except FileNotFoundError:
        return ""


def write_attributes(result: LfsPlan) -> bool:
    """Merge the plan's lines into ``ROOT/.gitattributes`` atomically; False when already there.

    Refused when the file cannot be read (not a regular file, too large, not UTF-8), leads out of
    ROOT through a symlink, or cannot be written (a read-only directory)."""
    path = result.root / ATTRIBUTES_FILE
    writable_target(path, result.root)  # nothing is read through a link out of ROOT
    try:
        existing = read_attributes(path)
    except NotReadable as exc:
        raise Refused(exc.reason, "fix or remove it, then rerun") from None
    except OSError as exc:
        raise Refused(f"cannot read it ({one_line(exc)})", "fix or remove it, then rerun") from None
    merged = merge_attributes(existing, result.lines)
    if merged == existing:
        return False
    rewrite_file(path, lambda handle: handle.write(merged.encode("utf-8")), result.root)
    return True


def _present_lines(root: Path) -> set[tuple[str, ...]]:
    path = root / ATTRIBUTES_FILE
    if escaping_link(root, path) is not None:
        return set()  # plan() reports the link; every rule is then missing here
    try:
        text = read_attributes(path)
    except (OSError, NotReadable):  # every rule is then reported missing
        return set()
    return {tuple(line.split()) for line in text.splitlines() if _pattern(line)}


def check(result: LfsPlan) -> list[Problem]:
    """Everything that keeps ROOT from matching the plan: missing rules, overridden attributes,
    weights committed as regular blobs and kept-out files committed as pointers."""
    problems = []
    present = _present_lines(result.root)
    for rule in result.rules:
        if tuple(rule.line.split()) not in present:
            problems.append(Problem(ATTRIBUTES_FILE, "missing-rule", f"missing `{rule.line}` ({rule.reason})",
                                    f"lavanya lfs-track --write {shlex.quote(str(result.root))}"))
    tree = result.git
    if tree is None:
        return problems
    if not problems:  # with a rule missing, every file it covers would only repeat that problem
        resolved = tree.filter_attributes(result.in_lfs + result.kept_out)
        for rel in result.in_lfs:
            if resolved.get(rel) != "lfs":
                problems.append(Problem(
                    rel, "not-lfs", f"git resolves filter={resolved.get(rel)}, not lfs: a later line "
                    f"or a nested {ATTRIBUTES_FILE} overrides the rule", "remove that override"))
        for rel in result.kept_out:
            if resolved.get(rel) == "lfs":
                problems.append(Problem(
                    rel, "in-lfs", "git resolves filter=lfs but this file must stay in plain git",
                    "remove the line that puts it in LFS"))
    committed = tree.committed_pointers(result.in_lfs + result.kept_out)
    for rel in result.in_lfs:
        if committed.get(rel) is False:
            quoted = shlex.quote(tree.prefix + rel)
            problems.append(Problem(
                rel, "regular-blob", "committed (or staged) as a regular git blob, not an LFS pointer",
                f"with git-lfs installed run `git rm --cached -- {quoted} && git add -- {quoted}` (new commits) "
                f"or `git lfs migrate import --include={quoted}` (rewrites history)"))
    for rel in result.kept_out:
        if committed.get(rel) is True:
            quoted = shlex.quote(tree.prefix + rel)
            problems.append(Problem(
                rel, "lfs-blob", "committed (or staged) as an LFS pointer but must be plain git",
                f"run `git lfs pull --include={quoted}`, then `git rm --cached -- {quoted} && git add -- {quoted}`"))
    return problems
