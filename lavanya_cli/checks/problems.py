"""What the checks and repairs report, one shape each: a ``Problem`` (something wrong, and its
fix), and a ``FileFix`` (what a repair did to one file).

Every checking command (``verify``, ``lfs-track --check``, ``fix-* --check``, ``fix-perms``,
``add-voice``) reports ``Problem``s, and the output layer prints them the same way everywhere:
``path: [code] message; fix: ...`` as text, ``{"path", "code", "message", "fix"}`` in JSON, and
a GitHub Actions annotation. The fix is its own field, never pasted into the message, so a
program reading the JSON gets what is wrong and what to do apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ERROR = "error"
WARNING = "warning"  # reported, but the command does not fail for it (GitHub: ::warning)

# What a repair did to a file (``FileFix.result``).
FIXED = "fixed"  # under check_only: would be fixed
UNCHANGED = "unchanged"
REFUSED = "refused"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong: ``path`` as the command names it (verify and lfs-track: relative to the
    root they check), a short ``code`` (``lfs-pointer``, ``pickled`` ...), ``message`` saying
    what is wrong, ``fix`` saying what to do ("" when there is nothing to add)."""

    path: str
    code: str
    message: str
    fix: str = ""
    level: str = ERROR

    def line(self) -> str:
        """The one text line for this problem, the same in every command."""
        where = f"{self.path}: " if self.path else ""
        return f"{where}[{self.code}] {self.message}" + (f"; fix: {self.fix}" if self.fix else "")

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class FileFix:
    """What a repair (``fix-stats``, ``fix-config``) did to one file: ``result`` is FIXED (with
    check_only: would fix), UNCHANGED or REFUSED; ``reason`` what was done or why it was refused;
    ``fix`` what to do about a refusal."""

    path: Path
    result: str
    reason: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "result": self.result, "reason": self.reason, "fix": self.fix}
