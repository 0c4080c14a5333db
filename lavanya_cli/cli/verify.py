"""``lavanya verify``: check a model root and print each problem with its fix."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_OK, EXIT_PROBLEMS
from .app import ModelsOption, app, pick_root
from .output import echo, error_line, print_json


class VerifyFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


@app.command()
def verify(
    root: Optional[Path] = typer.Argument(None, help="Model root to check.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    deep: bool = typer.Option(False, "--deep", help="Also load weights and compare them with each config "
                              "(imports torch and ESPnet; slow)."),
    write_manifest: bool = typer.Option(False, "--write-manifest", help="First write MD5SUMS (with sha256 "
                                        "and sizes) in every model and vocoder directory."),
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format",
                                        help="text, json, or github (workflow error annotations)."),
) -> None:
    """Check every voice: files present, LFS pointers, stats, config paths, permissions, checksums.

    Exit status 0 when clean, 1 when problems were found, 2 on usage or internal errors.
    """
    from ..checks.verify import verify_root, write_manifests
    from ..modeltree.layout import ModelRoot

    model_root = pick_root(root, models)
    ModelRoot(model_root).require_voices()
    refused = []
    if write_manifest:
        written, refused = write_manifests(model_root)
        echo(f"wrote {len(written)} {'manifest' if len(written) == 1 else 'manifests'}"
             + (f", refused {len(refused)}" if refused else ""), err=True)
        for directory, reason in refused:
            error_line(f"{directory / 'MD5SUMS'}: refused ({reason})")
    problems = verify_root(model_root, deep=deep)
    if format is VerifyFormat.json:
        print_json({"ok": not problems, "problems": [p.as_dict() for p in problems]})
    elif format is VerifyFormat.github:
        for problem in problems:
            echo(github_annotation(model_root, problem))
    else:
        for problem in problems:
            echo(f"{problem.path}: [{problem.code}] {problem.message}")
        files = len({p.path for p in problems})
        echo(f"{model_root}: " + (f"{len(problems)} problem(s) in {files} file(s)" if problems
                                  else "no problems found"))
    raise typer.Exit(EXIT_PROBLEMS if problems or refused else EXIT_OK)


def github_annotation(root: Path, problem) -> str:
    """A GitHub Actions ``::error`` workflow command for one problem.

    GitHub attaches an annotation to a file by its path relative to the repository, which is
    the workspace (``$GITHUB_WORKSPACE``, the job's default working directory).
    """
    base = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    path = os.path.relpath(os.path.abspath(root / problem.path), base)
    if path.startswith(".."):
        path = os.path.abspath(root / problem.path)
    title = f"lavanya verify: {problem.code}"
    return (f"::error file={_escape_property(Path(path).as_posix())},title={_escape_property(title)}"
            f"::{_escape_data(problem.message)}")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
