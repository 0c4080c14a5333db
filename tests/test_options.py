"""How a voice is found and loaded: two typed objects checked where they are made, ``auto``
decided in one function that every front door reaches through them, numbers with one range each,
and errors in the words of whoever called (Python parameters, or the command line's flags)."""

from __future__ import annotations

import sys

import pytest

from lavanya_cli.errors import LavanyaError, flag_wording
from lavanya_cli.limits import ALPHA_RANGE, PAUSE_RANGE, available_cpus
from lavanya_cli.modeltree.layout import BUNDLED_ROOT, find_voice
from lavanya_cli.speech import engines
from lavanya_cli.speech.options import FindOptions, LoadOptions


@pytest.fixture
def resolved(monkeypatch):
    """Every LoadOptions the one resolver is asked about, in order."""
    seen: list[LoadOptions] = []
    real = engines.resolve_engine

    def recording(options: LoadOptions) -> str:
        seen.append(options)
        return real(options)

    monkeypatch.setattr(engines, "resolve_engine", recording)
    return seen


def test_options_are_checked_where_they_are_made():
    with pytest.raises(LavanyaError, match="engine 'tensorrt': use one of auto, onnx, openvino, torch"):
        LoadOptions(engine="tensorrt")
    with pytest.raises(LavanyaError, match="device 'tpu' is not a device lavanya runs on"):
        LoadOptions(device="tpu")
    with pytest.raises(LavanyaError, match="the CPU takes no index"):
        LoadOptions(device="cpu:1")
    with pytest.raises(LavanyaError, match="threads must be 1 or more, not 0"):
        LoadOptions(threads=0)
    with pytest.raises(LavanyaError, match="vocoder 'hifigan': use aryan or dravidian"):
        FindOptions(vocoder="hifigan")
    many = LoadOptions(threads=available_cpus() + 5)
    assert many.threads == available_cpus() and "more than the" in many.threads_note
    assert LoadOptions(device=" CPU ").device == "cpu" and LoadOptions().threads_note is None


def test_options_of_the_wrong_type_and_settings_given_twice_are_one_line():
    from lavanya_cli.speech.voice import Voice

    for threads in ("2", 1.5, True):
        with pytest.raises(LavanyaError, match="threads must be a whole number of 1 or more"):
            LoadOptions(threads=threads)
    assert LoadOptions(strict="yes").strict is True
    with pytest.raises(LavanyaError, match="Voice.load got LoadOptions and engine, threads too"):
        Voice.load("hindi", "male", options=LoadOptions(engine="onnx"), engine="torch", threads=2)
    with pytest.raises(LavanyaError, match="Voice.load got FindOptions and models too"):
        Voice.load("hindi", "male", find=FindOptions(), models=BUNDLED_ROOT)


def test_derived_options_keep_what_was_checked():
    options = LoadOptions(engine="auto", strict=True)
    copy = options.derived(engine="onnx", threads=available_cpus() + 3)  # threads for another node's CPUs
    assert (copy.engine, copy.threads, copy.strict) == ("onnx", available_cpus() + 3, True)
    assert options.engine == "auto" and options.threads is None


def test_messages_name_parameters_from_python_and_flags_on_the_command_line():
    with pytest.raises(LavanyaError) as from_python:
        LoadOptions(engine="x")
    assert from_python.value.message.startswith("engine 'x'") and "--" not in from_python.value.message
    with flag_wording(), pytest.raises(LavanyaError) as from_cli:
        LoadOptions(engine="x")
    assert from_cli.value.message.startswith("--engine 'x'")
    with pytest.raises(LavanyaError) as device:
        LoadOptions(device="cpu:2")
    assert "use device cpu and threads N" in device.value.message


def test_a_missing_torch_is_the_install_line_from_python_too(monkeypatch):
    from lavanya_cli.speech.voice import Voice

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(LavanyaError, match=r"torch is not installed\): python3 -m pip install 'lavanya\[torch\]'"):
        Voice.load("hindi", "male", models=BUNDLED_ROOT, engine="torch")


def test_python_and_the_command_line_reach_the_one_resolver_with_the_options_object(resolved, cli, tmp_path):
    from lavanya_cli.speech.voice import Voice

    voice = Voice.load("hindi", "male", models=BUNDLED_ROOT, engine="onnx", threads=1)
    assert resolved == [LoadOptions(engine="onnx", threads=1)] and voice.engine == "onnx"
    resolved.clear()
    code, _, err = cli("synth", "--models", BUNDLED_ROOT, "--engine", "onnx", "--threads", "1", "--text", "नमस्ते",
                       "-o", tmp_path / "a.wav")
    assert code == 0, err
    assert resolved == [LoadOptions(engine="onnx", threads=1)]


def test_the_server_reaches_the_one_resolver_with_the_options_object(resolved):
    pytest.importorskip("fastapi")
    from lavanya_cli.serve.server import ServeConfig
    from lavanya_cli.serve.voices import VoiceSet

    config = ServeConfig(models=BUNDLED_ROOT, options=LoadOptions(engine="onnx", threads=1))
    voices = VoiceSet()
    spec = find_voice("hindi", "male", models=BUNDLED_ROOT)
    voices.serve([spec], [spec], config.load_options)
    voices.load_pinned()
    assert resolved == [LoadOptions(engine="onnx", threads=1)]
    assert [voice["engine"] for voice in voices.describe()] == ["onnx"]


def test_each_quantity_has_one_range_for_every_way_in():
    pytest.importorskip("fastapi")
    from lavanya_cli.limits import checked_alpha, checked_pause
    from lavanya_cli.serve.limits import ServerLimits

    described = ServerLimits().describe()
    assert (described["alpha"]["min"], described["alpha"]["max"]) == ALPHA_RANGE
    assert (described["sentence_silence"]["min"], described["sentence_silence"]["max"]) == PAUSE_RANGE
    assert checked_pause(PAUSE_RANGE[1]) == PAUSE_RANGE[1] and checked_alpha(ALPHA_RANGE[0]) == ALPHA_RANGE[0]
    with pytest.raises(LavanyaError, match="sentence_silence must be a number from 0 to 60 s"):
        checked_pause(PAUSE_RANGE[1] + 1)
