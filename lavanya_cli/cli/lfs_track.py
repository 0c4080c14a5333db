"""``lavanya lfs-track``: the ``.gitattributes`` a model repository needs, printed, written or checked."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import EXIT_PROBLEMS, LavanyaError
from .app import OutputFormat, app
from .output import echo, error_line, print_json


@app.command("lfs-track")
def lfs_track(
    root: Path = typer.Argument(Path("."), help="Repository or model root; .gitattributes goes here.",
                                file_okay=False),
    threshold: str = typer.Option("10MB", "--threshold",
                                  help="Other files larger than this go to LFS too (10MB, 500kB, 1GiB)."),
    write: bool = typer.Option(False, "--write", help="Merge the lines into ROOT/.gitattributes."),
    check: bool = typer.Option(False, "--check",
                               help="Exit 1 when a rule is missing or a file is committed on the wrong side."),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Which files belong in Git LFS: weights by name, large files by size, statistics kept out.

    Exit 1 when a directory could not be read or a name cannot be written as a rule (in every
    mode), when --write is refused, or when --check finds a problem.
    """
    from ..checks.gitattributes import check as check_plan
    from ..checks.gitattributes import parse_size, plan, write_attributes
    from ..checks.rewrite import Refused

    if write and check:
        raise LavanyaError("--write and --check exclude each other: check first, or write")
    result = plan(root, parse_size(threshold))
    problems = result.problems + (check_plan(result) if check else [])
    written, refused = None, ""
    if write:
        try:
            written = write_attributes(result)
        except Refused as exc:
            refused = exc.reason
    attributes = root / ".gitattributes"
    if format is OutputFormat.json:
        print_json({
            "root": str(root),
            "threshold": result.threshold,
            "lines": result.lines,
            "commands": [rule.command for rule in result.rules if rule.command],
            "rules": [{"line": r.line, "lfs": r.lfs, "reason": r.reason} for r in result.rules],
            "in_lfs": result.in_lfs,
            "kept_out": result.kept_out,
            **({"written": written} if write else {}),
            **({"refused": refused} if refused else {}),
            **({"ok": not problems} if check else {}),
            "problems": [{"path": p.path, "code": p.code, "message": p.message} for p in problems],
        })
    elif check:
        for problem in problems:
            echo(f"{_shown(root, problem.path)}: {problem.code}: {problem.message}")
        if not problems:
            echo(f"{attributes}: every rule present, "
                 f"{len(result.in_lfs)} file(s) in LFS, {len(result.kept_out)} kept in plain git")
    else:
        for problem in problems:  # stdout stays a valid .gitattributes
            error_line(f"{_shown(root, problem.path)}: {problem.code}: {problem.message}")
        if refused:
            echo(f"{attributes}: refused ({refused})")
        elif write:
            state = "updated" if written else "already up to date"
            echo(f"{attributes}: {state} ({len(result.lines)} lavanya rules)")
        else:
            _print_lines(root, result)
    if problems or refused:
        raise typer.Exit(EXIT_PROBLEMS)


def _shown(root: Path, rel: str) -> str:
    return (root / rel).as_posix() if root != Path(".") else rel


def _print_lines(root: Path, result) -> None:
    """The lines as a valid .gitattributes (commands as comments), so stdout can be redirected."""
    for line in result.lines:
        echo(line)
    commands = [rule.command for rule in result.rules if rule.command]
    echo(f"# The same with git-lfs, run in {root}:")
    for command in commands:
        echo(f"#   {command}")
    echo("# git-lfs has no command for the -filter lines: they go after the rules they override.")
