"""``lavanya lfs-track``: the ``.gitattributes`` a model repository needs, printed, written or checked."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import LavanyaError
from .app import app
from .options import CheckFormatOption, CheckOption
from .output import Output, OutputFormat, Result


@app.command("lfs-track")
def lfs_track(
    root: Path = typer.Argument(Path("."), help="Repository or model root; .gitattributes goes here.",
                                file_okay=False),
    threshold: str = typer.Option("10MB", "--threshold",
                                  help="Other files larger than this go to LFS too (10MB, 500kB, 1GiB)."),
    write: bool = typer.Option(False, "--write", help="Merge the lines into ROOT/.gitattributes."),
    check: bool = CheckOption,
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Which files belong in Git LFS: weights by name, large files by size, statistics kept out.

    Without --write or --check, stdout is a valid .gitattributes (problems go to stderr). Exit 1
    when a directory could not be read or a name cannot be written as a rule (in every mode),
    when --write is refused, or when --check finds a rule missing or a file committed on the
    wrong side. Problem paths are relative to ROOT.
    """
    from ..checks.gitattributes import ATTRIBUTES_FILE, parse_size, plan, write_attributes
    from ..checks.gitattributes import check as check_plan
    from ..checks.problems import REFUSED, Problem
    from ..checks.rewrite import Refused

    if write and check:
        raise LavanyaError("--write and --check exclude each other: check first, or write")
    result = plan(root, parse_size(threshold))
    problems = result.problems + (check_plan(result) if check else [])
    attributes = root / ATTRIBUTES_FILE
    written = None
    lines, summary = [], []
    if write:
        try:
            written = write_attributes(result)
            lines = [f"{attributes}: {'updated' if written else 'already up to date'} "
                     f"({len(result.lines)} lavanya rules)"]
        except Refused as exc:
            problems.append(Problem(ATTRIBUTES_FILE, REFUSED, exc.reason, exc.fix))
    elif check:
        if not problems:
            summary = [f"{attributes}: every rule present, {len(result.in_lfs)} file(s) in LFS, "
                       f"{len(result.kept_out)} kept in plain git"]
    else:
        lines = _attribute_lines(root, result)
    Output(format, "lfs-track").finish(Result(
        data={
            "root": str(root),
            "threshold": result.threshold,
            "lines": result.lines,
            "commands": [rule.command for rule in result.rules if rule.command],
            "rules": [{"line": r.line, "lfs": r.lfs, "reason": r.reason} for r in result.rules],
            "in_lfs": result.in_lfs,
            "kept_out": result.kept_out,
            **({"written": written} if write else {}),
            **({"ok": not problems} if check else {}),
        },
        lines=lines, problems=problems, summary=summary, base=root,
        problems_to_stderr=not (write or check),
    ))


def _attribute_lines(root: Path, result) -> list[str]:
    """The lines as a valid .gitattributes (commands as comments), so stdout can be redirected."""
    return [
        *result.lines,
        f"# The same with git-lfs, run in {root}:",
        *(f"#   {rule.command}" for rule in result.rules if rule.command),
        "# git-lfs has no command for the -filter lines: they go after the rules they override.",
    ]
