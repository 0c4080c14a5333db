"""The Typer application every command module registers itself on, and what the commands
share besides their options (``options.py``) and their output (``output.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="lavanya",
    help="Run, check and repair IIT Madras Fastspeech2_HS text-to-speech voices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def voice_origin_line(name: str, root: object, bundled: bool, demo: bool, engine: str | None = None) -> str:
    """The stderr line that says which voice from which root (and through which engine): the
    answer to "was that the demo or the real one?" (``synth``, ``text``, batches on Ray)."""
    tag = " (bundled demo voice)" if bundled and demo else (" (demo voice)" if demo else "")
    return f"lavanya: {name}{tag} from {root}" + (f" ({engine} engine)" if engine else "")


def voice_notes(voices: list[dict], suffix=lambda root: "") -> list[str]:
    """What a run tells about each voice that spoke (``results.voice_origin``'s records): the
    roots passed over and why, the notes of its loading, and its origin line (``suffix(root)``
    ends it)."""
    notes = []
    for voice in voices:
        notes += [f"lavanya: passed over {reason}" for reason in voice["skipped"]]
        notes += [f"lavanya: {note}" for note in voice["notes"]]
        notes.append(voice_origin_line(voice["voice"], voice["root"], voice["bundled"], voice["demo"], voice["engine"])
                     + suffix(voice["root"]))
    return notes


def pick_root(positional: Optional[Path], models: Optional[Path]) -> Path:
    """A command's model root: the positional ROOT, else ``--models``, else the default chain.
    A named root that is no directory is an error saying which of the two named it."""
    from ..modeltree.layout import resolve_root

    if positional is not None:
        return resolve_root(positional, source="ROOT")
    return resolve_root(models)


def _print_version(value: bool) -> None:
    if value:
        from ..errors import __version__

        typer.echo(f"lavanya {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Run, check and repair IIT Madras Fastspeech2_HS text-to-speech voices."""
