"""``lavanya text``: what the acoustic model would be given, one line per sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, voice_origin_line
from .options import (FormatOption, InputOption, MaxInputOption, ModelsOption, TextOption, gender_option,
                      lang_option, variant_option)
from .output import Output, PlainFormat, Result


@app.command("text")
def text_command(
    text: Optional[str] = typer.Argument(None, help="Text to prepare (default: --text, --input or stdin)."),
    lang: str = lang_option(),
    gender: str = gender_option(),
    models: Optional[Path] = ModelsOption,
    variant: Optional[str] = variant_option(),
    text_option: Optional[str] = TextOption,
    input_file: Optional[Path] = InputOption,
    format: PlainFormat = FormatOption,
    strict: bool = typer.Option(False, "--strict", help="Fail on a word that cannot be pronounced."),
    max_input: Optional[str] = MaxInputOption,
) -> None:
    """Print exactly the string the acoustic model would get for each sentence (no weights needed)."""
    from ..frontend import Frontend, Speech, segment_text
    from ..limits import input_limit
    from ..modeltree.config import read_config
    from ..modeltree.layout import find_voice
    from .textinput import read_text_source

    source = read_text_source(text_option, text, input_file, limit=input_limit(max_input))
    items = segment_text(source)
    voice = find_voice(lang, gender, variant, models)
    frontend = Frontend.for_voice(voice, read_config(voice.config_path), strict=strict)
    speech = [item for item in items if isinstance(item, Speech)]
    sentences = [
        {
            "text": item.text,
            "model_input": prepared.model_input,  # empty: nothing in the sentence can be spoken
            "alpha": item.alpha,
            "unpronounced": prepared.unpronounced,
            "incomplete": prepared.incomplete,
            "spelled": prepared.spelled,
            "problems": prepared.problems,
        }
        for item, prepared in zip(speech, frontend.prepare_all(item.text for item in speech))
    ]
    Output(format, "text").finish(Result(
        data={"voice": voice.name, "root": str(voice.root), "frontend": frontend.kind.value, "sentences": sentences},
        lines=[sentence["model_input"] for sentence in sentences if sentence["model_input"]],
        warnings=[problem for sentence in sentences for problem in sentence["problems"]],
        notes=[voice_origin_line(voice.name, voice.root, voice.bundled, voice.demo)],
    ))
