"""``lavanya verify``: check a model root and report each problem with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, pick_root
from .options import CheckFormatOption, ModelsOption
from .output import Output, OutputFormat, Result


@app.command()
def verify(
    root: Optional[Path] = typer.Argument(None, help="Model root to check.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    deep: bool = typer.Option(False, "--deep", help="Also load weights and compare them with each config "
                              "(imports torch and ESPnet; slow)."),
    write_manifest: bool = typer.Option(False, "--write-manifest", help="First write MD5SUMS (with sha256 "
                                        "and sizes) in every model and vocoder directory."),
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Check every voice: files present, LFS pointers, stats, config paths, permissions, checksums.

    Exit status 0 when clean, 1 when problems were found, 2 on usage or internal errors.
    """
    from ..checks import verify as checks
    from ..modeltree.layout import ModelRoot

    out = Output(format, "verify")
    model_root = pick_root(root, models)
    ModelRoot(model_root).require_voices()
    written, refused = checks.write_manifests(model_root) if write_manifest else ([], [])
    with out.own_stdout():  # ESPnet may print notices while --deep imports it
        report = checks.verify_report(model_root, deep=deep)
    problems = refused + report.problems
    files = len({problem.path for problem in problems})
    summary = (f"{len(problems)} problem(s) in {files} file(s)" if problems
               else f"no problems found in {report.voices} voice(s), {report.files} file(s)")
    notes = [f"wrote {len(written)} {'manifest' if len(written) == 1 else 'manifests'}"
             + (f", refused {len(refused)}" if refused else "")] if write_manifest else []
    out.finish(Result(
        data={"ok": not problems, "root": str(model_root), "voices": report.voices, "files": report.files,
              **({"manifests_written": [str(path) for path in written]} if write_manifest else {})},
        problems=problems, summary=[f"{model_root}: {summary}"], notes=notes, base=model_root,
    ))
