"""A new user's first minutes: the README's two commands, the bundled demo voice they speak through,
the serving command, and the hint for a voice the demo does not have."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.modeltree.layout import BUNDLED_ROOT, UPSTREAM_VOICES, ModelRoot

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VENV = "python3 -m venv .venv"
ACTIVATE = ". .venv/bin/activate"


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """The fenced blocks of a Markdown text: (language, non-empty lines)."""
    return [(lang, [line for line in body.splitlines() if line.strip()])
            for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)]


def _first_block() -> list[str]:
    lang, lines = _blocks(README.read_text(encoding="utf-8"))[0]
    assert lang == "sh"
    return lines


def _steps(command: str) -> list[str]:
    return [step.strip() for step in command.split(" && ")]


def test_the_readme_opens_with_two_commands_that_make_and_use_a_virtual_environment():
    lines = _first_block()
    assert len(lines) == 2, lines
    for command in lines:
        steps = _steps(command)
        # a fresh Debian refuses pip outside a virtual environment (externally-managed-environment):
        # each command makes .venv (or reuses it) and activates it before anything else runs
        assert steps[:2] == [VENV, ACTIVATE], command
        assert not any("--break-system-packages" in step or "--user" in step for step in steps)
    run, test = (_steps(command) for command in lines)
    assert run[2] == "python3 -m pip install -e ." and run[-1].startswith("lavanya synth ")
    # pip 25+ refuses ESPnet's ci_sdr: the pip<25 step comes before the test extra
    assert test[2:] == ["python3 -m pip install 'pip<25'", "python3 -m pip install -e '.[test]'", "python3 -m pytest"]


def test_the_readme_commands_are_valid_shell():
    for command in _first_block():
        result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        result = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_the_readme_synth_command_speaks_through_the_bundled_demo_voice(cli, tmp_path, only_bundled):
    synth = _steps(_first_block()[0])[-1]
    args = shlex.split(synth)[1:]
    assert "--models" not in args
    code, _, err = cli(*args)  # in tmp_path, as in a fresh clone: no ./Fastspeech2_HS beside it
    assert code == 0, err
    assert f"hindi/male (bundled demo voice) from {BUNDLED_ROOT}" in err
    output = args[args.index("-o") + 1]
    assert (tmp_path / output).read_bytes()[:4] == b"RIFF"


def test_ci_runs_the_readmes_test_command_as_written():
    """Word for word; under set -e a failure inside an && list goes on, so CI may add `|| exit`."""
    command = _first_block()[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert any(line in (command, f"{command} || exit") for line in ci), command


def test_the_serving_section_starts_with_the_bundled_voice_then_a_real_tree(only_bundled):
    text = README.read_text(encoding="utf-8")
    serving = text[text.index("\n## Serving\n"):]
    lang, lines = _blocks(serving)[0]
    assert lang == "sh" and len(lines) == 2
    first = _steps(lines[0].split("#")[0])
    assert first[:2] == [VENV, ACTIVATE] and first[-1] == "lavanya serve"
    assert "--models Fastspeech2_HS" in lines[1]
    # what `lavanya serve` without --models loads on a fresh clone: the bundled demo voice
    from lavanya_cli.serve.voices import choose_specs

    assert [(spec.name, spec.bundled) for spec in choose_specs([], None)] == [("hindi/male", True)]


# --- the hint for a voice the bundled demo does not have ---------------------------------------

def _bundled_miss(language: str, gender: str) -> str:
    with pytest.raises(LavanyaError) as caught:
        ModelRoot(BUNDLED_ROOT).find(language, gender)
    assert "\n" not in caught.value.message
    return caught.value.message


@pytest.mark.parametrize("language, gender", [("tamil", "female"), ("bodo", "female"), ("Hindi", "Female")])
def test_a_voice_upstream_publishes_gets_the_pull_that_fetches_it(language, gender):
    message = _bundled_miss(language, gender)
    wanted = f"{language.lower()}/{gender.lower()}"
    assert f'git lfs pull --include="{wanted}/**,vocoder/{gender.lower()}/**"' in message
    assert "then add models Fastspeech2_HS" in message  # from Python; the CLI says --models (test_frontend_cli)


@pytest.mark.parametrize("language, gender", [("klingon", "male"), ("bodo", "male"), ("hindhi", "female")])
def test_a_voice_upstream_does_not_publish_gets_the_list_of_those_it_does(language, gender):
    message = _bundled_miss(language, gender)
    assert "git lfs pull" not in message and f"{language}/{gender}" in message
    assert "https://github.com/smtiitm/Fastspeech2_HS" in message
    assert "hindi" in message and "urdu" in message and "bodo (female only)" in message


def test_synth_for_an_unpublished_voice_is_one_line_exit_2(cli, tmp_path, only_bundled):
    code, out, err = cli("synth", "--lang", "klingon", "--gender", "male", "--text", "x", "-o", "x.wav")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("lavanya: error: no voice klingon/male") and "git lfs pull" not in err
    assert not (tmp_path / "x.wav").exists()


def test_the_published_voices_are_upstreams_main_tree(shared_tree):
    """The constant against the copy of upstream's main branch in ../shared (skips without it)."""
    main = shared_tree / "main"
    found = {(voice.language, voice.gender) for voice in ModelRoot(main).voices()}
    assert found == set(UPSTREAM_VOICES) and len(found) == 31
