"""The git part of add-voice: ``.gitattributes`` brought up to date for the new voice (with its
undo), and the git lines that commit it. ``checks.gitattributes``, and GitPython with it, is
imported only when one of these runs."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..errors import LavanyaError, one_line
from ..fileio import CONFIG_MAX_BYTES, read_regular
from ..modeltree.paths import relative_path
from .result import OK, SKIPPED, Step, StepFailed
from .staging import Undo, moved_in


def lfs_step(root: Path, finals: list[Path], undo: Undo) -> Step:
    """``lfs-track --write`` for ROOT when it is in a git working tree (or already has a
    ``.gitattributes``), then the attributes git resolves for the new files checked."""
    from ..checks.gitattributes import ATTRIBUTES_FILE, check, open_git_tree, plan, write_attributes

    path = root / ATTRIBUTES_FILE
    if open_git_tree(root) is None and not path.exists():
        return Step("lfs", SKIPPED, "ROOT is not in a git repository and has no .gitattributes")
    new = [relative_path(final, root) for final in finals]
    try:
        previous = read_regular(path, CONFIG_MAX_BYTES, ATTRIBUTES_FILE) if path.exists() else None
        mode = path.stat().st_mode & 0o7777 if previous is not None else None
        result = plan(root)
        if write_attributes(result):
            undo.record(f"writing {path}", lambda: _restore_attributes(path, previous, mode))
            state = "updated"
        else:
            state = "already had the rules"
        problems = [p for p in check(result) if p.path == ATTRIBUTES_FILE or moved_in(p.path, new)]
    except LavanyaError as exc:
        raise StepFailed(exc.message, "make .gitattributes a readable text file", path) from None
    except OSError as exc:
        raise StepFailed(f"{path}: cannot write ({one_line(exc)})", "run as a user who may write it",
                         path) from None
    except Exception as exc:  # GitPython's GitCommandError: git refused (say, another user's repository)
        if type(exc).__module__.split(".")[0] != "git":
            raise
        raise StepFailed(f"git failed in {root}: {one_line(exc)}",
                         "run as the repository's owner", root) from None
    if problems:
        raise StepFailed("; ".join(p.line() for p in problems),
                         "remove the line or nested .gitattributes that overrides lavanya's rules", path)
    lfs = [rel for rel in result.in_lfs if moved_in(rel, new)]
    return Step("lfs", OK, f".gitattributes {state}: {', '.join(lfs) or 'no new file'} in LFS, the statistics "
                "and configs in plain git")


def _restore_attributes(path: Path, previous: bytes | None, mode: int | None) -> None:
    """Put ``.gitattributes`` back as it was before the step: absent, or these bytes and mode."""
    from ..fileio import replace_file

    if previous is None:
        path.unlink(missing_ok=True)
    else:
        replace_file(path, lambda handle: handle.write(previous), mode=mode)


def commit_commands(root: Path, paths: list[Path], name: str) -> list[str]:
    """The git lines that commit the new voice, run from anywhere (``git -C REPO``); none when
    ROOT is not in a git working tree."""
    from ..checks.gitattributes import ATTRIBUTES_FILE, open_git_tree

    tree = open_git_tree(root)
    if tree is None:
        return []
    repo = Path(tree.repo.working_tree_dir)
    git = f"git -C {shlex.quote(str(repo))}"
    files = [tree.prefix + ATTRIBUTES_FILE] + [tree.prefix + relative_path(path, root) for path in paths]
    return [
        f"{git} lfs install --local",
        f"{git} add -A -- {' '.join(shlex.quote(f) for f in files)}",
        f"{git} lfs status",
        f"{git} commit -m {shlex.quote(f'Add the {name} voice (lavanya add-voice)')}",
    ]
