"""``auto`` on the CPU: both ONNX engines measured on the voice the first time, the choice kept in
the cache under the CPU, the runtimes' versions and the voice's graphs, and made again when one
of them changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lavanya_cli.speech import engine_choice
from lavanya_cli.speech.engine_choice import Choice, choose_engine, decide, measurement_sentences, stored_choice
from lavanya_cli.speech.export_store import find_exports
from lavanya_cli.speech.options import LoadOptions
from onnxkit import shared_cache, tiny_spec


def private_cache(tmp_path: Path) -> Path:
    """The session's exports of the tiny voice in a cache of the test's own."""
    cache = tmp_path / "cache"
    shutil.copytree(shared_cache(), cache, ignore=shutil.ignore_patterns(engine_choice.CHOICE_DIRECTORY, "openvino"))
    return cache


def choose(options: LoadOptions):
    """``auto``'s choice for the tiny voice, as ``load_engine`` asks for it."""
    return choose_engine(tiny_spec(), options, find_exports(tiny_spec(), options.cache))


def kept_choices(cache: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((cache / engine_choice.CHOICE_DIRECTORY).glob("*.json"))]


def test_auto_measures_both_engines_once_and_keeps_the_choice(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)
    options = LoadOptions(cache=private_cache(tmp_path))
    first = choose(options)
    assert first.measured and first.engine in ("onnx", "openvino")
    measured = first.figures["engines"]
    assert set(measured) == {"onnx", "openvino"}
    for figures in measured.values():  # three new sentences each, and the load
        assert len(figures["sentence_seconds"]) == 3 and figures["seconds"] >= figures["load_seconds"] > 0
    assert first.engine == decide(measured["onnx"]["seconds"], measured["openvino"]["seconds"])
    (kept,) = kept_choices(options.cache)
    assert kept["engine"] == first.engine and kept["decided_by"]["cpu"]["model"] == engine_choice.cpu_signature()["model"]
    assert kept["decided_by"]["versions"]["onnxruntime"]

    def not_again(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(engine_choice, "measure", not_again)
    again = choose(options)
    assert (again.engine, again.measured) == (first.engine, False) and again.reason == first.reason


def test_the_choice_is_made_again_for_another_cpu_or_runtime(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)
    measured = []

    def fake_measure(spec, options, exports):
        measured.append(engine_choice.choice_key(spec, options, exports)[1])
        return Choice("openvino" if len(measured) % 2 else "onnx", "measured", {"engines": {}}, measured=True)

    monkeypatch.setattr(engine_choice, "measure", fake_measure)
    options = LoadOptions(cache=private_cache(tmp_path))
    assert choose(options).engine == "openvino"
    assert choose(options).engine == "openvino" and len(measured) == 1  # kept
    monkeypatch.setattr(engine_choice, "cpu_signature", lambda: {"model": "Another CPU", "flags_sha256": "0"})
    assert choose(options).engine == "onnx" and len(measured) == 2
    assert measured[-1]["cpu"]["model"] == "Another CPU"
    versions = engine_choice.runtime_versions()
    monkeypatch.setattr(engine_choice, "runtime_versions", lambda: {**versions, "openvino": "9999.0"})
    assert choose(options).engine == "openvino" and len(measured) == 3
    # Not threads: a server shares its threads out, and finds the choice made at the default.
    assert choose(LoadOptions(cache=options.cache, threads=1)).engine == "openvino" and len(measured) == 3
    assert len(kept_choices(options.cache)) == 3


def test_a_damaged_kept_choice_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)
    monkeypatch.setattr(engine_choice, "measure", lambda spec, options, exports: Choice("onnx", "measured", measured=True))
    options = LoadOptions(cache=private_cache(tmp_path))
    choose(options)
    (path,) = (options.cache / engine_choice.CHOICE_DIRECTORY).glob("*.json")
    for damage in (b"{not json", json.dumps({"format": 1, "engine": "tensorrt"}).encode(), b"[]"):
        path.write_bytes(damage)
        assert stored_choice(options.cache, path.stem) is None
        assert choose(options).measured
    path.unlink()
    path.symlink_to("/dev/zero")
    assert stored_choice(options.cache, path.stem) is None


def test_without_openvino_auto_is_onnx_unmeasured(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: False)
    monkeypatch.setattr(engine_choice, "measure", lambda *args: pytest.fail("measured"))
    options = LoadOptions(cache=private_cache(tmp_path))
    choice = choose(options)
    assert (choice.engine, choice.measured) == ("onnx", False) and not kept_choices(options.cache)


def test_openvino_is_taken_only_where_it_is_clearly_faster():
    assert decide(1.0, 0.5) == "openvino"
    assert decide(1.0, 0.99) == "onnx"  # within the margin: the leaner engine
    assert decide(0.5, 1.0) == "onnx"


def test_the_measured_sentences_are_the_voices_own_tokens_at_different_lengths():
    tokens = ["<blank>", "<unk>", "<space>", "a", "k", "म", "<sos/eos>"]
    sentences = measurement_sentences(tokens)
    assert [len(sentence) for sentence in sentences] == list(engine_choice.SENTENCE_TOKENS)
    assert len(set(sentences)) == 3 and set("".join(sentences)) <= {"a", "k", "म", " "}


def test_a_voice_loaded_through_auto_says_what_was_chosen(tmp_path, monkeypatch):
    from lavanya_cli.speech.voice import Voice

    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)
    monkeypatch.setattr(engine_choice, "measure",
                        lambda spec, options, exports: Choice("onnx", "measured here: onnx faster", measured=True))
    cache = private_cache(tmp_path)
    voice = Voice.load(tiny_spec(), cache=cache)
    assert voice.engine == "onnx" and "engine onnx: measured here: onnx faster" in voice.notes
    assert voice.backend.choice.reason == "measured here: onnx faster"
    again = Voice.load(tiny_spec(), cache=cache)  # kept: no note the second time
    assert again.engine == "onnx" and not any(note.startswith("engine ") for note in again.notes)
    assert Voice.load(tiny_spec(), cache=cache, engine="onnx").backend.choice is None


def test_a_server_measures_nothing_and_keeps_nothing(tmp_path, monkeypatch):
    from lavanya_cli import fileio
    from lavanya_cli.speech.onnx_engine import compiled_model_cache

    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)
    monkeypatch.setattr(engine_choice, "measure", lambda *args: pytest.fail("measured"))
    monkeypatch.setitem(fileio._time_savers, "write", False)  # what lavanya serve sets
    options = LoadOptions(cache=private_cache(tmp_path))
    choice = choose(options)
    assert (choice.engine, choice.measured) == ("onnx", False) and "server does not measure" in choice.reason
    assert not kept_choices(options.cache) and compiled_model_cache(options.cache) is None
    assert not (options.cache / "openvino").exists()


def test_a_failed_measurement_is_onnx_and_kept(tmp_path, monkeypatch):
    from lavanya_cli.errors import LavanyaError

    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)

    def failing(*args):
        raise LavanyaError("generator.onnx: OpenVINO cannot compile this graph")

    monkeypatch.setattr(engine_choice, "measure", failing)
    options = LoadOptions(cache=private_cache(tmp_path))
    choice = choose(options)
    assert choice.engine == "onnx" and "OpenVINO cannot compile" in choice.reason
    monkeypatch.setattr(engine_choice, "measure", lambda *args: pytest.fail("measured again"))
    assert choose(options).engine == "onnx"


def test_an_unwritable_cache_is_not_measured_at_every_start(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "measure", lambda *args: pytest.fail("measured"))
    options = LoadOptions(cache=private_cache(tmp_path))
    (options.cache / engine_choice.CHOICE_DIRECTORY).write_text("in the way")
    choice = choose(options)
    assert (choice.engine, choice.measured) == ("onnx", False) and "cannot be written" in choice.reason


def test_voices_shows_the_choice_kept_for_each_voice(cli, tmp_path, monkeypatch):
    from synthkit import shared_voice_root

    monkeypatch.setattr(engine_choice, "openvino_installed", lambda: True)
    monkeypatch.setattr(engine_choice, "openvino_usable", lambda: True)
    monkeypatch.setattr(engine_choice, "measure",
                        lambda *args: Choice("openvino", "measured: openvino faster", measured=True))
    options = LoadOptions(cache=private_cache(tmp_path))
    monkeypatch.setenv("LAVANYA_CACHE", str(options.cache))
    code, out, err = cli("voices", "--models", shared_voice_root(), "--format", "json")
    assert code == 0, err
    assert {row["auto_engine"] for row in json.loads(out)} == {None}  # nothing measured yet
    choose(options)  # hindi/male
    code, out, err = cli("voices", "--models", shared_voice_root(), "--format", "json")
    chosen = {row["gender"]: row["auto_engine"] for row in json.loads(out)}
    assert chosen == {"male": {"engine": "openvino", "reason": "measured: openvino faster"}, "female": None}
    code, out, _ = cli("voices", "--models", shared_voice_root())
    assert "auto engine" in out and "openvino" in out
