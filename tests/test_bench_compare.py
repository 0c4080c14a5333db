"""``lavanya bench --compare`` as a benchmark: interleaved fresh processes recorded in order with
the load around each, medians and spreads from those records, "idle" only at a low load; the
unrepeated mode's sentences; the benchmark voice's speech-like durations.

The comparison's processes are faked here (``start_to_wav``, ``run_process``): the arithmetic,
the order and the labels are what is tested; test_bench.py runs real children."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import tempfile
from pathlib import Path

import pytest

from lavanya_cli.bench import compare
from lavanya_cli.bench.measure import DEFAULT_SENTENCES, ProcessRun, unrepeated_sentences, unrepeated_texts
from synthkit import shared_voice_root


class FakeMachine:
    """Stands in for the children and the load average: every run is logged in the order it
    was started, the load average is a clock that ticks once per reading (or a fixed value),
    and each figure's seconds come from ``seconds(engine, kind, sentences, nth)``."""

    def __init__(self, monkeypatch, seconds=None, load=None, cores=2):
        self.log: list[tuple[str, str, int, float]] = []  # engine, kind, sentences, load when it ran
        self.readings = 0
        self.load = load
        self.seconds = seconds or (lambda engine, kind, sentences, nth: 1.0 + nth)
        self.count: dict[tuple[str, str, int], int] = {}
        monkeypatch.setattr(compare, "start_to_wav", self.start_to_wav)
        monkeypatch.setattr(compare, "run_process", self.run_process)
        monkeypatch.setattr(compare, "unavailable_reason", lambda name: None)
        monkeypatch.setattr(os, "getloadavg", self.getloadavg)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
        monkeypatch.setattr(compare, "BusyCore", FakeSpinner)

    def getloadavg(self):
        self.readings += 1
        value = self.load(self.readings) if self.load is not None else float(self.readings)
        return (value, value / 2, value / 3)

    def _ran(self, engine: str, kind: str, sentences: int) -> float:
        key = (engine, kind, sentences)
        nth = self.count[key] = self.count.get(key, -1) + 1
        self.log.append((engine, kind, sentences, float(self.readings)))
        return self.seconds(engine, kind, sentences, nth)

    def start_to_wav(self, spec, engine, text_file, scratch, threads):
        sentences = int(text_file.name.split("-")[0])
        assert text_file.read_text(encoding="utf-8") == " ".join(DEFAULT_SENTENCES[:sentences])
        seconds = self._ran(engine, "start_to_wav", sentences)
        return ProcessRun(seconds, 900.0 if engine == "upstream" else 300.0 + sentences,
                          {"audio_seconds": 4.0 * sentences}, seconds * 0.9)

    def run_process(self, command, what):
        assert "--unrepeated" in command and command[command.index("--engine") + 1] in what
        engine = command[command.index("--engine") + 1]
        seconds = self._ran(engine, "warm", int(command[command.index("--sentences") + 1]))
        return ProcessRun(seconds, 400.0, {"mode": "unrepeated", "warm_real_time_factor": seconds / 10,
                                           "first_call_seconds": seconds / 5, "notes": []}, seconds)


class FakeSpinner:
    cpu = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def fake_spec():
    from lavanya_cli.modeltree.layout import find_voice

    return find_voice("hindi", "male", None, shared_voice_root())


def test_schedule_interleaves_the_engines_and_turns_their_order_each_round():
    engines = ["upstream", "onnx", "openvino"]
    tasks = compare.schedule(engines, runs=3)
    assert [(task.kind, task.engine) for task in tasks[:3]] == [("prepare", engine) for engine in engines]
    rounds = [[task for task in tasks if task.round == number] for number in (1, 2, 3)]
    expected_orders = [["upstream", "onnx", "openvino"], ["onnx", "openvino", "upstream"],
                       ["openvino", "upstream", "onnx"]]
    for tasks_of_round, order in zip(rounds, expected_orders):
        assert [task.engine for task in tasks_of_round if task.kind == "warm"] == [e for e in order if e != "upstream"]
        for count in compare.SENTENCE_COUNTS:
            assert [task.engine for task in tasks_of_round
                    if task.kind == "start_to_wav" and task.sentences == count] == order
    # Every engine takes every place once in three rounds, and runs of one figure side by side
    # are never of the same engine.
    for place in range(3):
        assert {order[place] for order in expected_orders} == set(engines)
    for first, second in itertools.pairwise(tasks[3:]):
        if (first.kind, first.sentences) == (second.kind, second.sentences):
            assert first.engine != second.engine
    assert [task.engine for task in compare.schedule(["a", "b"], runs=4) if task.sentences == 5] == list("abbaabba")


def test_compare_records_every_run_in_the_order_it_ran_with_the_load_around_it(monkeypatch):
    machine = FakeMachine(monkeypatch)
    report = compare.compare_engines(fake_spec(), ["upstream", "onnx"], runs=2)

    order = report["order"]
    ran = [(run["engine"], "start_to_wav" if run["kind"] == "prepare" else run["kind"], run["sentences"])
           for run in order]
    assert ran == [entry[:3] for entry in machine.log]
    assert [run["index"] for run in order] == list(range(1, len(order) + 1))
    assert [(run["kind"], run["engine"]) for run in order if run["sentences"] == 5] == [
        ("start_to_wav", "upstream"), ("start_to_wav", "onnx"), ("start_to_wav", "onnx"), ("start_to_wav", "upstream")]
    assert [run["measured"] for run in order[:2]] == [False, False]  # the preparing runs are not figures
    for run, (_, _, _, clock) in zip(order, machine.log):
        # the load is read just before the child starts and just after it ends
        assert run["load_before"] == clock and run["load_after"] == clock + 1
        assert run["condition"] == report["conditions"][0]["name"] and run["spinner"] is False
    assert report["load_average"]["before"][0] == 1.0
    assert report["load_average"]["after"][0] == machine.readings
    assert report["conditions"][0]["runs"] == [1, len(order)]


def test_idle_only_at_half_a_load_per_core_all_through(monkeypatch):
    assert compare.condition_label(False, 1.0, 2) == "idle"
    assert compare.condition_label(False, 1.01, 2) == "loaded"
    assert compare.condition_label(True, 2.0, 2) == "busy"  # the spinner's own core left out
    assert compare.condition_label(True, 2.01, 2) == "busy, loaded"

    FakeMachine(monkeypatch, load=lambda reading: 0.9, cores=2)
    assert compare.compare_engines(fake_spec(), ["onnx"], runs=1)["conditions"][0]["name"] == "idle"

    # One reading above 0.5 per core, in the middle of the condition, is enough to refuse idle.
    machine = FakeMachine(monkeypatch, load=lambda reading: 5.0 if reading == 6 else 0.2, cores=2)
    report = compare.compare_engines(fake_spec(), ["onnx"], runs=2, busy=True)
    plain, busy = report["conditions"]
    assert plain["name"] == "loaded" and plain["load_max"] == 5.0 and plain["load_max_per_core"] == 2.5
    assert busy["name"] == "busy" and busy["spinner_cpu"] == 0
    assert [row["condition"] for row in report["rows"]] == ["loaded", "busy"]
    assert {run["condition"] for run in report["order"] if not run["spinner"]} == {"loaded"}
    assert machine.readings > 6


def test_figures_are_medians_and_spreads_of_the_recorded_runs(monkeypatch):
    seconds = {("upstream", 1): [14.0, 12.0, 20.0], ("onnx", 1): [2.0, 3.0, 2.5],
               ("upstream", 5): [30.0, 28.0, 26.0], ("onnx", 5): [9.0, 7.0, 8.0]}
    def fake_seconds(engine, kind, sentences, nth):
        if kind == "warm":
            return 0.3 * (nth + 1)
        prepared = 1 if sentences == 1 else 0  # the preparing run speaks one sentence first
        return 99.0 if nth < prepared else seconds[engine, sentences][nth - prepared]  # 99: never a figure

    FakeMachine(monkeypatch, seconds=fake_seconds)
    report = compare.compare_engines(fake_spec(), ["upstream", "onnx"], runs=3)
    upstream_row, onnx_row = report["rows"]
    measured = [run for run in report["order"] if run["measured"]]
    for row in (upstream_row, onnx_row):
        for count in (1, 5):
            recorded = [run["seconds"] for run in measured if run["engine"] == row["engine"]
                        and run["kind"] == "start_to_wav" and run["sentences"] == count]
            assert recorded == seconds[row["engine"], count]
            figure = row[f"sentences_{count}"]["start_to_wav_seconds"]
            assert figure == {"median": statistics.median(recorded), "min": min(recorded), "max": max(recorded), "n": 3}
    assert onnx_row["warm"]["real_time_factor"] == {"median": 0.06, "min": 0.03, "max": 0.09, "n": 3}
    assert onnx_row["warm_real_time_factor"] == 0.06 and upstream_row["warm"] is None
    ratios = onnx_row["vs_upstream"]
    assert ratios["start_to_wav_1"] == round(14.0 / 2.5, 2) and ratios["start_to_wav_5"] == round(28.0 / 8.0, 2)
    # round by round, side by side: 14/2, 12/3, 20/2.5
    assert ratios["start_to_wav_1_rounds"] == {"min": 4.0, "max": 8.0}
    assert ratios["peak_rss"] == round(900.0 / 305.0, 2)


def test_compare_output_shows_the_order_the_loads_medians_and_spreads(cli, monkeypatch):
    """Done when: ``bench --compare`` output records the order of runs and the loads."""
    FakeMachine(monkeypatch, load=lambda reading: 1.5 + reading / 100, cores=2)
    code, out, err = cli("bench", "--models", shared_voice_root(), "--compare", "upstream,onnx", "--runs", "2")
    assert code == 0, err
    run_lines = [line for line in out.splitlines() if line.startswith("run ")]
    assert [line.split()[1] for line in run_lines] == [str(number) for number in range(1, len(run_lines) + 1)]
    assert [line.split()[4] for line in run_lines if "5 sentence" in line] == ["upstream", "onnx", "onnx", "upstream"]
    assert all(" load " in line and " -> " in line for line in run_lines)
    assert "idle" not in out.replace("idle only at or below", "")  # 0.76 to 0.8 per core: never idle
    table = {line.split()[0]: line for line in out.splitlines() if line.split()[:2] in (["upstream", "loaded"],
                                                                                       ["onnx", "loaded"])}
    assert "(" in table["onnx"] and "x /" in table["onnx"]  # median (least-most), and ratios
    assert "load average 1.51/" in out and "per core" in out

    code, out, err = cli("bench", "--models", shared_voice_root(), "--compare", "upstream,onnx", "--runs", "2",
                         "--format", "json")
    report = json.loads(out)
    assert [run["index"] for run in report["order"]] == list(range(1, len(report["order"]) + 1))
    assert all({"engine", "condition", "sentences", "seconds", "peak_rss_mb", "load_before", "load_after"} <= set(run)
               for run in report["order"])
    assert report["conditions"][0]["name"] == "loaded" and report["cores"] == 2


def test_unrepeated_sentences_never_repeat_and_vary_in_length():
    sentences = list(itertools.islice(unrepeated_sentences(), 2000))
    assert len(set(sentences)) == len(sentences) and not set(sentences) & set(DEFAULT_SENTENCES)
    assert all(sentence.endswith("।") for sentence in sentences)
    first = [len(sentence) for sentence in sentences[:20]]
    assert len(set(first)) >= 12 and max(first) >= 2 * min(first)
    assert list(itertools.islice(unrepeated_sentences(), 50)) == sentences[:50]  # the same for every process
    texts = list(itertools.islice(unrepeated_texts(3), 30))
    spoken = [sentence for text in texts for sentence in text.split("। ")]
    assert len(spoken) == 90 and len(set(spoken)) == 90


def test_bench_unrepeated_speaks_new_sentences_every_call(cli, monkeypatch):
    from lavanya_cli.speech.voice import Voice

    planned = []
    plan = Voice.plan
    monkeypatch.setattr(Voice, "plan", lambda self, text, *args, **kwargs: (
        planned.append(text), plan(self, text, *args, **kwargs))[1])
    code, out, err = cli("bench", "--models", shared_voice_root(), "--unrepeated", "--sentences", "2", "--runs", "3",
                         "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["mode"] == "unrepeated" and len(report["calls"]) == 4 and len(planned) == 4
    assert len(set(planned)) == 4 and all(call["sentences"] == 2 for call in report["calls"])
    assert len({call["audio_seconds"] for call in report["calls"]}) >= 3  # a new length nearly every call
    warm = report["calls"][1:]
    assert report["warm_real_time_factor"] == pytest.approx(
        sum(call["seconds"] for call in warm) / sum(call["audio_seconds"] for call in warm), abs=2e-4)

    planned.clear()
    code, out, err = cli("bench", "--models", shared_voice_root(), "--runs", "2", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["mode"] == "repeated" and planned == [DEFAULT_SENTENCES[0]]  # planned once, spoken thrice


@pytest.mark.parametrize("args", [("--unrepeated", "--text", "नमस्ते"), ("--compare", "onnx", "--unrepeated"),
                                  ("--unrepeated", "--compare-upstream")])
def test_unrepeated_mistakes_give_one_line(cli, args):
    code, out, err = cli("bench", "--models", shared_voice_root(), *args)
    assert code == 2 and out == "" and len(err.splitlines()) == 1


# Two of the built-in sentences as the front-end gives them to the hindi voices.
MODEL_INPUTS = ("$AjsubahsEAsamAnmEqbAdalCAEhuEथEऔrhalkIbAriशhorahIथI.",
                "$baccEskUljAnEsEpahlEapnIkitAbEqऔrखAnEkAडibbAbastEmEqraखrahEथE.")


def test_speech_like_durations_vary_by_kind_of_token_about_the_mean_asked_for():
    import numpy as np
    import torch

    from lavanya_cli.modeltree.config import read_config, write_runtime_config
    from lavanya_cli.speech.espnet_import import quiet_libraries, text2speech_class
    from lavanya_cli.testing.random_weights import speech_like_weights, token_kind
    from lavanya_cli.testing.scaffold import HINDI_TOKENS, VoiceShape, build_voice

    shape = VoiceShape(token_list=HINDI_TOKENS, adim=96, eunits=96, dunits=32, predictor_chans=96, n_mels=20)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = build_voice(Path(scratch), shape=shape, weights="none", vocoder=False)
        config = read_config(model_dir / "config.yaml")
        text2speech_class()
        from espnet2.tasks.tts import TTSTask

        torch.manual_seed(0)
        with quiet_libraries():
            model, _ = TTSTask.build_model_from_file(write_runtime_config(config, model_dir, Path(scratch)), None, "cpu")
    tokens = list(config["token_list"])
    weight, bias = speech_like_weights(model.tts, tokens, 6.5, seed=0)
    again = speech_like_weights(model.tts, tokens, 6.5, seed=0)
    assert torch.equal(weight, again[0]) and bias == again[1]  # seeded: the same voice every time
    linear = model.tts.duration_predictor.linear
    with torch.no_grad():
        linear.weight.copy_(weight.reshape(linear.weight.shape))
        linear.bias.fill_(bias)
    model.eval()
    by_kind: dict[str, list[float]] = {}
    for model_input in MODEL_INPUTS:
        ids = torch.tensor([[tokens.index(token) for token in model_input] + [len(tokens) - 1]])
        with torch.no_grad():
            durations = model.tts.duration_predictor.inference(model.tts.encoder(ids, None)[0], None)[0].tolist()
        for token, frames in zip([*model_input, "<sos/eos>"], durations):
            by_kind.setdefault(token_kind(token), []).append(frames)
    every = [frames for values in by_kind.values() for frames in values]
    assert 5.0 <= np.mean(every) <= 8.0 and np.std(every) >= 0.7 and len(set(every)) >= 5
    mean = {kind: np.mean(values) for kind, values in by_kind.items()}
    assert mean["long"] > mean["short"] and mean["long"] > mean["consonant"] and mean["pause"] > mean["mark"]
