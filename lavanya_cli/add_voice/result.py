"""What one run of add-voice reports: the checklist's steps in order, each step's outcome, the
whole run's result, and the failure a step raises. The rest of ``add_voice`` builds on these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks.problems import ERROR, Problem
from ..checks.problems import WARNING as WARNING_LEVEL

# Step outcomes.
OK = "ok"
FAILED = "failed"
WARNING = "warning"
SKIPPED = "skipped"

# The checklist, in the order it runs, with what each step makes sure of.
STEPS = {
    "source": "find the voice's files in SOURCE",
    "destination": "a free place for the voice in ROOT",
    "copy": "copy the files into a staging directory beside it",
    "stats": "statistics are plain arrays (fix-stats)",
    "config": "stats_file entries are bare file names (fix-config)",
    "vocoder": "a vocoder that fits the voice",
    "tokens": "the front-end's characters are in token_list",
    "weights": "weights load with weights_only=True and fit their configs (verify --deep)",
    "speak": "a test sentence comes out as plausible audio",
    "manifest": "MD5SUMS beside the files, where the tree keeps them",
    "permissions": "files 644, directories 755 (fix-perms)",
    "move": "move the voice into ROOT",
    "lfs": ".gitattributes: weights in Git LFS, the rest in plain git (lfs-track --write)",
    "verify": "lavanya verify finds nothing wrong with the new voice",
}


@dataclass
class Step:
    """One checklist item: ``status`` is OK, FAILED, WARNING or SKIPPED; ``fix`` says what to do
    about a failure or warning; ``path`` names the file it is about, where there is one."""

    name: str
    status: str
    detail: str
    fix: str = ""
    path: Path | None = None

    @property
    def title(self) -> str:
        return STEPS[self.name]

    def problem(self) -> Problem | None:
        """A failed step as an error (code: the step's name), a warning as a warning; None for
        a step that passed or was skipped."""
        if self.status not in (FAILED, WARNING):
            return None
        return Problem("" if self.path is None else str(self.path), self.name, self.detail, self.fix,
                       ERROR if self.status == FAILED else WARNING_LEVEL)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "detail": self.detail,
                "fix": self.fix, "path": None if self.path is None else str(self.path)}


@dataclass
class AddVoiceResult:
    """The checklist as it ran. ``added``: the voice is in ROOT and verified."""

    root: Path
    voice: str
    model_dir: Path
    dry_run: bool
    steps: list[Step] = field(default_factory=list)
    git_commands: list[str] = field(default_factory=list)
    added: bool = False
    left_changed: list[str] = field(default_factory=list)  # what the rollback could not undo

    @property
    def ok(self) -> bool:
        return not any(step.status == FAILED for step in self.steps)

    def where_it_stands(self) -> str:
        """Whether the voice is in, in words: what the line printed for a stop adds, since after
        the point of no return the voice stays."""
        if self.added:
            return f"{self.voice} was added to {self.root} and verified before the stop, and stays; commit it as usual"
        if self.left_changed:
            return f"{self.voice} not added, and rolling back left {self.root} changed: {'; '.join(self.left_changed)}"
        return f"{self.voice} not added; {self.root} is as it was"

    @property
    def problems(self) -> list[Problem]:
        """The failed steps and the warnings, as problems."""
        return [problem for step in self.steps if (problem := step.problem()) is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "added": self.added, "dry_run": self.dry_run, "voice": self.voice,
                "root": str(self.root), "model_dir": str(self.model_dir),
                "steps": [step.as_dict() for step in self.steps], "git_commands": self.git_commands}


class StepFailed(Exception):
    """A step's failure: what is wrong and the fix, for its ✗ line."""

    def __init__(self, detail: str, fix: str = "", path: Path | None = None):
        super().__init__(detail)
        self.detail, self.fix, self.path = detail, fix, path
