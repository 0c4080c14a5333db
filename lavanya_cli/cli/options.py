"""The options several commands share, each defined once with one help text, so that ``--lang``
or ``--format`` reads the same in every command's ``--help``. A command that needs another
default (``bench`` speaks Hindi unless told otherwise) passes it; the help stays the same."""

from __future__ import annotations

from typing import Any

import typer

from .output import OutputFormat, PlainFormat

REQUIRED: Any = ...  # typer's marker for an option without a default

MODELS_HELP = "Model root (default: $LAVANYA_MODELS, else ./Fastspeech2_HS, else the bundled tree)."
LANG_HELP = "Voice language, as its directory is named: hindi, tamil, bodo, ..."
GENDER_HELP = "Voice gender: male or female."
VARIANT_HELP = "Voice variant, e.g. latest, bilingual, or the VARIANT of a model_VARIANT/ directory."
TEXT_HELP = "The text itself, on the command line."
INPUT_HELP = "Read the text from FILE (- for standard input)."
THREADS_HELP = "CPU threads for each synthesis (more than the CPUs available are lowered to that number)."
MAX_INPUT_HELP = "Most text to read from a file or stdin: bytes, or with K/M (default: $LAVANYA_MAX_INPUT, else 1M)."
FORMAT_HELP = "text, or json (one JSON document on stdout)."
LOG_FORMAT_HELP = "The log's lines, all on stderr: text, or json (one JSON object per line)."
CHECK_FORMAT_HELP = ("text, json (one JSON document on stdout), or github (a GitHub Actions annotation per "
                     "problem on stdout, the report on stderr).")
CHECK_HELP = "Change nothing; report what is wrong or would change, and exit 1 if anything is."
ENGINE_HELP = ("auto (the faster of onnx and openvino for the voice on this machine, measured the first time "
               "and kept; onnx without lavanya[openvino]; torch for a CUDA device), onnx (ONNX Runtime, the voice's exports), openvino (the vocoder on "
               "OpenVINO, bfloat16 where the CPU has it), or torch (needs lavanya[torch]).")

ModelsOption = typer.Option(None, "--models", help=MODELS_HELP, file_okay=False)
TextOption = typer.Option(None, "--text", help=TEXT_HELP)
InputOption = typer.Option(None, "--input", help=INPUT_HELP, dir_okay=False)
ThreadsOption = typer.Option(None, "--threads", metavar="N", help=THREADS_HELP)
MaxInputOption = typer.Option(None, "--max-input", metavar="SIZE", help=MAX_INPUT_HELP)
FormatOption = typer.Option(PlainFormat.text, "--format", help=FORMAT_HELP)
LogFormatOption = typer.Option(PlainFormat.text, "--format", help=LOG_FORMAT_HELP)  # a server's output is its log
CheckFormatOption = typer.Option(OutputFormat.text, "--format", help=CHECK_FORMAT_HELP)
CheckOption = typer.Option(False, "--check", help=CHECK_HELP)
EngineOption = typer.Option("auto", "--engine", metavar="auto|onnx|openvino|torch", help=ENGINE_HELP)


def lang_option(default: Any = REQUIRED) -> Any:
    return typer.Option(default, "--lang", help=LANG_HELP)


def gender_option(default: Any = REQUIRED) -> Any:
    return typer.Option(default, "--gender", help=GENDER_HELP)


def variant_option(default: Any = None) -> Any:
    return typer.Option(default, "--variant", help=VARIANT_HELP)
