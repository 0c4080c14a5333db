"""``lavanya verify``: check a model root and report each problem with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, pick_root
from .options import CheckFormatOption, EngineOption, ModelsOption
from .output import Output, OutputFormat, Result


@app.command()
def verify(
    root: Optional[Path] = typer.Argument(None, help="Model root to check.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    deep: bool = typer.Option(False, "--deep", help="Also read the weights (no pickle runs) and compare them, "
                              "tensor by tensor, with each config (no torch for the published architecture)."),
    speak: bool = typer.Option(False, "--speak", help="Also speak a short sentence (the language's words for "
                               "one to five) through every voice and check the audio: not silent, not clipped "
                               "throughout, a duration in line with the text."),
    manifest: bool = typer.Option(False, "--manifest", help="Every model and vocoder directory must hold an "
                                  "MD5SUMS that matches it: proof that the files are the ones committed."),
    engine: str = EngineOption,
    write_manifest: bool = typer.Option(False, "--write-manifest", help="First write MD5SUMS (with sha256 "
                                        "and sizes) in every model and vocoder directory."),
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Check every voice: files present, LFS pointers, stats, config paths, permissions, checksums.

    In a deployed container: lavanya verify --speak --manifest ROOT. Exit status 0 when clean,
    1 when problems were found, 2 on usage or internal errors.
    """
    from ..checks import verify as checks
    from ..modeltree.layout import ModelRoot

    from ..speech.options import LoadOptions

    out = Output(format, "verify")
    options = LoadOptions(engine=engine)  # checked before any voice is looked at
    model_root = pick_root(root, models)
    tree = ModelRoot(model_root)
    if tree.voices() or not checks.leftover_problems(model_root):  # its one voice may be in add-voice's leftover
        tree.require_voices()
    written, refused = checks.write_manifests(model_root) if write_manifest else ([], [])
    with out.own_stdout():  # ESPnet may print notices where --deep imports it (a config outside the templates)
        report = checks.verify_report(model_root, deep=deep, speak=speak, require_manifests=manifest,
                                      options=options)
    problems = refused + report.problems
    files = len({problem.path for problem in problems})
    summary = (f"{len(problems)} problem(s) in {files} file(s)" if problems
               else f"no problems found in {report.voices} voice(s), {report.files} file(s)")
    notes = [f"wrote {len(written)} {'manifest' if len(written) == 1 else 'manifests'}"
             + (f", refused {len(refused)}" if refused else "")] if write_manifest else []
    out.finish(Result(
        data={"ok": not problems, "root": str(model_root), "voices": report.voices, "files": report.files,
              **({"manifests_written": [str(path) for path in written]} if write_manifest else {}),
              **({"spoken": report.spoken} if speak else {})},
        problems=problems, summary=[f"{model_root}: {summary}"], base=model_root,
        notes=notes + [f"lavanya: {entry['voice']}: {entry['summary']}" for entry in report.spoken],
    ))
