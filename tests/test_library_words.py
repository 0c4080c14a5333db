"""The library speaks in library words: a message names an option by its Python parameter
(``models``) when Python called, and by its flag (``--models``) only while the CLI runs a
command (``errors.flag_wording``, which ``cli.main`` wraps around every command)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from lavanya_cli.errors import LavanyaError, flag_wording

# An option's flag in a message: ``--`` and a word, not ``--include=`` of a quoted git command.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*\b(?!=)")


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(LavanyaError) as caught:
        call()
    return caught.value.message


def _both(call: Callable[[], object]) -> tuple[str, str]:
    """The message from Python, then the same call's message as the CLI words it."""
    python = _message(call)
    with flag_wording():
        cli = _message(call)
    return python, cli


def _assert_words(python: str, cli: str, parameter: str, flag: str) -> None:
    assert parameter in python and not FLAG.search(python), python
    assert flag in cli, cli
    assert cli == python.replace(parameter, flag), (python, cli)  # otherwise the same words


# -- modeltree ----------------------------------------------------------------------------------

def test_find_voice_with_a_models_path_that_is_not_a_directory(tmp_path):
    from lavanya_cli.modeltree.layout import find_voice

    not_a_dir = tmp_path / "models.txt"
    not_a_dir.write_text("x")
    python, cli = _both(lambda: find_voice("hindi", "male", models=not_a_dir))
    assert python.startswith(f"{not_a_dir}: not a directory (models); ")
    assert cli.startswith(f"{not_a_dir}: not a directory (--models); ")
    _assert_words(python, cli, "(models)", "(--models)")


def test_resolve_root_with_a_missing_models_path(tmp_path):
    from lavanya_cli.modeltree.layout import resolve_root

    gone = tmp_path / "gone"
    python, cli = _both(lambda: resolve_root(gone))
    assert python == f"{gone}: no such directory (models); check the path"
    assert cli == f"{gone}: no such directory (--models); check the path"


def test_an_explicit_source_still_names_itself(tmp_path):
    from lavanya_cli.modeltree.layout import resolve_root

    gone = tmp_path / "gone"
    python, cli = _both(lambda: resolve_root(gone, source="ROOT"))
    assert python == cli == f"{gone}: no such directory (ROOT); check the path"


def test_no_model_root_at_all(tmp_path, monkeypatch):
    from lavanya_cli.modeltree import layout

    monkeypatch.delenv(layout.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(layout, "BUNDLED_ROOT", tmp_path / "no-bundled-tree")
    python, cli = _both(lambda: layout.resolve_root())
    assert python.startswith("no model root: pass models PATH or set $LAVANYA_MODELS")
    assert cli.startswith("no model root: pass --models PATH or set $LAVANYA_MODELS")


def test_a_root_without_voices_says_how_to_name_one(tmp_path):
    from lavanya_cli.modeltree.layout import ModelRoot

    python, cli = _both(lambda: ModelRoot(tmp_path).require_voices())
    _assert_words(python, cli, "with models", "with --models")


def test_the_bundled_demo_miss_keeps_the_shell_command_and_words_the_option():
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT, ModelRoot

    python, cli = _both(lambda: ModelRoot(BUNDLED_ROOT).find("tamil", "female"))
    pull = 'git lfs pull --include="tamil/female/**,vocoder/female/**"'
    assert pull in python and pull in cli  # a command for the shell: the same either way
    assert "then add models Fastspeech2_HS" in python and "--models" not in python
    assert "then add --models Fastspeech2_HS" in cli


# -- serve ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, parameter, flag", [
    ({"queue": -1}, "queue must be 0 or more", "--queue must be 0 or more"),
    ({"max_chars": 0}, "max_chars must be 1 or more", "--max-chars must be 1 or more"),
    ({"timeout": 0.0}, "timeout must be a number of seconds", "--timeout must be a number of seconds"),
    ({"workers": 0}, "workers must be 1 or more", "--workers must be 1 or more"),
])
def test_server_limits(kwargs, parameter, flag):
    from lavanya_cli.serve.limits import ServerLimits

    python, cli = _both(lambda: ServerLimits(**kwargs))
    assert python.startswith(parameter) and cli.startswith(flag)
    _assert_words(python, cli, parameter, flag)


def test_a_voice_name_that_does_not_parse():
    from lavanya_cli.serve.voices import VoiceName

    python, cli = _both(lambda: VoiceName.parse("bad"))
    assert python.startswith("voices 'bad': write language/gender")
    assert cli.startswith("--voice 'bad': write language/gender")


# -- checks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["ten", "99999999999999999999GB"])
def test_an_lfs_threshold_that_is_no_size(text):
    from lavanya_cli.checks.gitattributes import parse_size

    python, cli = _both(lambda: parse_size(text))
    assert python.startswith(f"threshold {text!r}: ") and cli.startswith(f"--threshold {text!r}: ")
    _assert_words(python, cli, "threshold", "--threshold")


def test_a_writable_path_that_is_a_file(tmp_path):
    from lavanya_cli.checks.permissions import plan_permissions

    (tmp_path / "root").mkdir()
    afile = tmp_path / "out.wav"
    afile.write_bytes(b"x")
    python, cli = _both(lambda: plan_permissions(tmp_path / "root", [afile]))
    assert python == f"{afile}: writable needs a directory, not a file"
    assert cli == f"{afile}: --writable needs a directory, not a file"


def test_a_private_file_kept_names_the_option_that_loosens_it(tmp_path):
    from lavanya_cli.checks.permissions import plan_permissions

    key = tmp_path / "root" / "model.pth"
    key.parent.mkdir()
    key.write_bytes(b"x")
    key.chmod(0o600)
    (python,) = plan_permissions(tmp_path / "root").kept
    with flag_wording():
        (cli,) = plan_permissions(tmp_path / "root").kept
    assert python.fix == "pass loosen_private to make it 0644"
    assert cli.fix == "pass --loosen-private to make it 0644"


def test_a_vocoder_mismatch_names_the_vocoder_option(clean_root):
    from lavanya_cli.checks.verify import verify_root

    config_path = clean_root / "vocoder" / "male" / "aryan" / "hifigan" / "config.json"
    config = json.loads(config_path.read_text())
    config["hop_size"] = 200
    config_path.write_text(json.dumps(config))

    def fix() -> str:
        (problem,) = [p for p in verify_root(clean_root) if p.code == "vocoder-mismatch"]
        return problem.fix

    python = fix()
    with flag_wording():
        cli = fix()
    assert python.endswith("pick the other family with vocoder aryan|dravidian") and not FLAG.search(python)
    assert cli.endswith("pick the other family with --vocoder aryan|dravidian")


# -- frontend -------------------------------------------------------------------------------------

def test_too_many_pauses_names_sentence_silence():
    from lavanya_cli.frontend.segment import segment_text

    text = " ".join(["Word."] * 400)
    python, cli = _both(lambda: segment_text(text, sentence_silence=10.0))
    _assert_words(python, cli, "sentence_silence", "--sentence-silence")


# -- the wording is the caller's, decided when the message is made -------------------------------

def test_wording_is_decided_at_call_time_not_at_import(tmp_path):
    """A default such as ``source`` is worded when the message is made, so the same function
    object speaks library words after a CLI command has run, and flags during one."""
    from lavanya_cli.modeltree.layout import resolve_root

    gone = tmp_path / "gone"
    with flag_wording():
        assert "(--models)" in _message(lambda: resolve_root(gone))
    assert "(models)" in _message(lambda: resolve_root(gone))


def test_the_cli_still_names_flags(tmp_path, cli):
    gone = tmp_path / "gone"
    code, _out, err = cli("fix-stats", "--models", gone)
    assert code == 2 and f"{gone}: no such directory (--models)" in err
    code, _out, err = cli("lfs-track", "--threshold", "ten", tmp_path)
    assert code == 2 and "--threshold 'ten': not a size" in err


def test_python_callers_get_library_words_again_after_a_command():
    from lavanya_cli.serve.limits import ServerLimits

    with flag_wording():
        assert _message(lambda: ServerLimits(queue=-1)).startswith("--queue must be")
    assert _message(lambda: ServerLimits(queue=-1)).startswith("queue must be")
