"""Hostile ONNX graphs in a model tree (issue: the engines under attack): each is refused with one
line before a runtime sees it, or stopped by the arena's cap, a deadline or a signal; none hangs,
fills memory, reads another file or prints the runtime's own lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import graphkit
from lavanya_cli.errors import LavanyaError
from lavanya_cli.speech.graphs import OPERATORS, GraphRefused, check_graph, generator_peak_bytes, summarize
from lavanya_cli.speech.onnx_engine import pieces

pytestmark = pytest.mark.slow  # mostly lavanya in subprocesses on hostile graphs, ONNX exports, deadlines waited out

REPO = Path(__file__).resolve().parents[1]
LAVANYA = [sys.executable, "-c", "from lavanya_cli.cli import run; run()"]  # the console entry point
TEXT = "नमस्ते, आप कैसे हैं? मैं ठीक हूँ।"
ENGINES = ["onnx", pytest.param("openvino", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("openvino") is None, reason="the openvino extra is not installed"))]


def _lavanya(*args: object, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LAVANYA, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _synth(root: Path, tmp_path: Path, engine: str, timeout: float = 120, text: str = TEXT):
    return _lavanya("synth", "--models", root, "--lang", "hindi", "--gender", "male", "--text", text,
                    "-o", tmp_path / "out.wav", "--engine", engine, timeout=timeout)


def _one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr  # no runtime's own lines
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("special, words", [("fifo", "is a FIFO"),
                                            ("zero", "is a symlink to /dev/zero, outside the model root")])
def test_a_graph_that_is_not_a_regular_file_is_one_line_at_once(tmp_path, engine, special, words):
    root = graphkit.hostile_tree(tmp_path / "tree", special=special)
    started = time.monotonic()
    result = _synth(root, tmp_path, engine, timeout=60)
    _one_line(result, "generator.onnx", words)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("build, words", [
    (graphkit.loop_forever, "operators Loop"),
    (graphkit.constant_of_shape, "operators ConstantOfShape"),
    (graphkit.external_data, "external data"),
    (graphkit.huge_range, "Range that is not over a length"),
    (graphkit.wide_stride, "strides beyond 16"),
    (graphkit.wide_channels, "at once for"),
])
def test_a_graph_unlike_an_export_is_refused_before_any_runtime_loads_it(tmp_path, engine, build, words):
    root = graphkit.hostile_tree(tmp_path / "tree", generator=build())
    result = _synth(root, tmp_path, engine, timeout=60)
    _one_line(result, "generator.onnx: not a graph lavanya exports", words, "lavanya export")


def test_the_checks_read_structure_without_running_anything():
    with pytest.raises(GraphRefused, match="operators Loop"):
        check_graph(graphkit.loop_forever(), Path("generator.onnx"))
    with pytest.raises(GraphRefused, match="does not parse as ONNX"):
        check_graph(b"\x0a\xff\xff\xff\xff\x0f" + os.urandom(64), Path("generator.onnx"))
    with pytest.raises(GraphRefused, match="inputs token_ids"):  # an encoder where the generator belongs
        check_graph(graphkit.outer_product_encoder(), Path("generator.onnx"))
    with pytest.raises(LavanyaError, match="reads only"):
        check_graph(graphkit.loop_forever(), Path("notes.onnx"))


def test_the_walker_reads_what_the_onnx_package_reads():
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT

    for path in sorted(BUNDLED_ROOT.rglob("*.onnx")):
        data = path.read_bytes()
        summary = summarize(data)
        loaded = graphkit.onnx.load_from_string(data)
        assert [n.op_type for n in summary.nodes] == [n.op_type for n in loaded.graph.node]
        assert {name: t.dims for name, t in summary.initializers.items()} == {
            t.name: list(t.dims) for t in loaded.graph.initializer}
        assert [v.name for v in summary.inputs] == [v.name for v in loaded.graph.input]
        assert {n.op_type for n in summary.nodes} <= OPERATORS[path.name]
    generator = summarize((BUNDLED_ROOT / graphkit.VOCODER / "generator.onnx").read_bytes())
    assert 0 < generator_peak_bytes(generator, 100) < generator_peak_bytes(generator, 1000)


def test_a_graph_asking_the_arena_for_gigabytes_fails_in_one_line_with_memory_bounded(tmp_path):
    root = graphkit.hostile_tree(tmp_path / "tree", encoder=graphkit.outer_product_encoder())
    measured = [sys.executable, "-c", "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"]
    result = subprocess.run([*measured, *LAVANYA, "synth", "--models", str(root), "--lang", "hindi", "--gender", "male",
                             "--text", "नमस्ते आप कैसे हैं " * 8, "-o", str(tmp_path / "out.wav"), "--engine", "onnx"],
                            capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})  # 160 tokens: 160^4 floats asked for
    peak_mb = int(result.stdout.split()[-1]) / 1024
    result.stdout = result.stdout.rsplit("\n", 2)[0] if result.stdout.count("\n") > 1 else ""
    _one_line(result, "acoustic_encoder.onnx: ONNX Runtime failed running this graph",
              "asked for more memory than the 256 MiB", "export the voice again")
    assert peak_mb < 400  # the tensor it asked for is 2.6 TB; the arena's cap is 256 MiB


def test_a_graph_that_fails_at_run_time_is_one_line(tmp_path):
    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.failing_at_run())
    _one_line(_synth(root, tmp_path, "onnx"), "generator.onnx: ONNX Runtime failed running this graph")


def test_verify_speak_reports_a_failing_graph_as_one_problem_among_the_rest(tmp_path):
    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.failing_at_run())
    result = _lavanya("verify", "--speak", root, "--format", "json")
    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stderr and "failed running this graph" in result.stdout


def test_a_cached_graph_that_differs_from_its_manifest_is_not_spoken_nor_deployed(tmp_path):
    import shutil

    from onnxkit import shared_cache
    from synthkit import shared_voice_root

    cache = Path(shutil.copytree(shared_cache(), tmp_path / "cache"))
    (generator,) = cache.glob("vocoder/*/generator.onnx")
    generator.write_bytes(generator.read_bytes().replace(b"LeakyRelu", b"LeakyRelu", 1) + b"\x00")
    env = {"LAVANYA_CACHE": str(cache)}
    result = _lavanya("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male", "--text", TEXT,
                      "-o", tmp_path / "out.wav", "--engine", "onnx", env=env)
    _one_line(result, str(generator), "differs from the graph its export manifest lists")
    # export sees the damage too: it makes the vocoder's export again rather than copy the wrong one
    result = _lavanya("export", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                      "--out", tmp_path / "deploy", env=env)
    assert result.returncode == 0 and "exported vocoder" in result.stdout, result.stderr
    generator.unlink()
    generator.symlink_to("/dev/zero")  # a cached graph linked to /dev/zero is made again, never copied
    result = _lavanya("export", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                      "--out", tmp_path / "deploy2", env=env, timeout=300)
    assert result.returncode == 0 and "exported vocoder" in result.stdout, result.stderr


# -- stopping a graph that computes ------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_sigterm_stops_a_command_inside_a_long_graph_run(tmp_path, engine):
    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.slow())
    process = subprocess.Popen(
        [*LAVANYA, "synth", "--models", str(root), "--lang", "hindi", "--gender", "male",
         "--text", TEXT * 4, "-o", str(tmp_path / "out.wav"), "--engine", engine],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        time.sleep(8)  # loading, then inside the vocoder's first window
        assert process.poll() is None, process.communicate()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert time.monotonic() - started < 10
    assert process.returncode == 143 and err.strip().endswith("terminated (SIGTERM)"), err
    assert not (tmp_path / "out.wav").exists() and not list(tmp_path.glob(".out.wav.*"))


def test_a_stopped_request_frees_its_worker_at_the_deadline(tmp_path):
    import httpx

    from lavanya_cli.serve.limits import ServerLimits
    from lavanya_cli.speech.voice import Voice
    from servekit import start_server, wait_until

    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.slow())
    voice = Voice.load("hindi", "male", models=root, engine="onnx")
    running = start_server([voice], ServerLimits(timeout=3, queue=0))
    try:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            started = time.monotonic()
            text = "नमस्ते आप कैसे हैं मैं ठीक हूँ " * 8  # one long sentence: the first audio is far off
            response = client.post("/api/tts", json={"text": text, "lang": "hindi", "gender": "male"})
            assert response.status_code == 504 and response.json()["error"] == "timeout"
            wait_until(lambda: "lavanya_workers_busy 0.0" in client.get("/metrics").text, "the worker is free")
            assert time.monotonic() - started < 8  # the running graph was stopped, not waited for
    finally:
        running.stop()


# -- one synthesis in bounded memory -----------------------------------------------------------

def test_pieces_cut_at_the_last_boundary_that_fits():
    assert pieces(10, np.array([3, 7]), None) == [(0, 10)]
    assert pieces(10, np.array([3, 7]), 10) == [(0, 10)]
    assert pieces(10, np.array([3, 7]), 8) == [(0, 7), (7, 10)]
    assert pieces(10, np.array([3, 7]), 4) == [(0, 3), (3, 7), (7, 10)]
    assert pieces(10, np.zeros(0, np.int64), 4, np.array([2, 5])) == [(0, 2), (2, 5), (5, 9), (9, 10)]
    assert pieces(0, np.zeros(0, np.int64), 4) == [(0, 0)]


class _Spy:
    def __init__(self, runner):
        self.runner, self.lengths = runner, []

    def __call__(self, *inputs):
        self.lengths.append(inputs[0].shape[0])
        return self.runner(*inputs)


def test_pieces_end_right_after_a_space_and_keep_every_frame():
    from lavanya_cli.speech.onnx_engine import OnnxAcoustic

    space, eos = 1, 99

    def encoder(ids):  # each token's row holds its id; every token lasts 3 frames (log(3 + 1))
        rows = np.append(ids, eos).astype(np.float32)[:, None]
        return [rows, np.full(rows.shape[0], np.log(4.0), np.float32)]

    decoded = []

    def decoder(frames):
        decoded.append(frames[:, 0].copy())
        return [frames]

    acoustic = OnnxAcoustic(encoder, decoder, None, space_id=space, encoder_tokens=8, decoder_frames=12)
    ids = np.array([5, 5, space, 6, 6, 6, space, 7, space, 8, 8, 8, 8, 8, 8, 8, 8, 8], dtype=np.int64)
    mel = acoustic.mel(ids)
    # encoded as [5 5 _ 6 6 6 _] [7 _] [8 x 8] [8], the sentence's one eos kept: 19 rows of 3 frames
    assert mel.shape[0] == 3 * (len(ids) + 1) and np.concatenate(decoded).tolist() == mel[:, 0].tolist()
    assert mel[:, 0].tolist().count(eos) == 3 and mel[-1, 0] == eos
    # decoded up to 12 frames at once: after a space where one is in reach, else between tokens
    assert [len(piece) for piece in decoded] == [9, 12, 6, 12, 12, 6]
    assert [int(piece[-1]) for piece in decoded[:3]] == [space, space, space]


def test_a_long_sentence_is_computed_in_bounded_pieces():
    pytest.importorskip("torch")
    from synthkit import shared_voice

    voice = shared_voice()
    acoustic = voice.backend.acoustic
    encoder, decoder = _Spy(acoustic.encoder), _Spy(acoustic.decoder)
    acoustic.encoder, acoustic.decoder = encoder, decoder
    try:
        (short,) = [u for u in voice.plan("नमस्ते, आप कैसे हैं?") if u.text]
        whole = acoustic.mel(voice.backend.tokenizer.ids(short.model_input))
        assert decoder.lengths == [whole.shape[0]]  # a sentence under the bounds: one piece, as always
        decoder.lengths.clear()
        mel = acoustic.mel(voice.backend.tokenizer.ids(" ".join([short.model_input] * 60)))
        assert len(encoder.lengths) > 2 and max(encoder.lengths) <= acoustic.encoder_tokens
        assert len(decoder.lengths) > 2 and max(decoder.lengths) <= acoustic.decoder_frames
        assert sum(decoder.lengths) == mel.shape[0]
    finally:
        acoustic.encoder, acoustic.decoder = encoder.runner, decoder.runner


def test_verify_reports_a_graph_unlike_an_export_whose_digest_matches(tmp_path):
    root = graphkit.hostile_tree(tmp_path / "tree", generator=graphkit.loop_forever())
    result = _lavanya("verify", root)
    assert result.returncode == 1, result.stderr
    assert "generator.onnx: not a graph lavanya exports: operators Loop" in result.stdout


@pytest.mark.parametrize("data, words", [
    (graphkit.hidden_behind_a_second_graph(), "repeated"),
    (graphkit.range_over_a_constant_node(), "Range that is not over a length"),
    (b"\x38\x05", "does not parse"),  # a graph field sent as a number
    (b"\x3a\x04\x0a\x02\x20\x05", "does not parse"),  # a node whose operator is a number
    (b"\x08\x01" * 1_100_000, "more than 1000000 fields"),
    (graphkit.model([graphkit.helper.make_node("Add", ["mel", "nowhere"], ["audio"])]), "which nothing before it makes"),
])
def test_the_walk_refuses_what_would_hide_nodes_or_cost_without_bound(data, words):
    started = time.monotonic()
    with pytest.raises(GraphRefused, match=words):
        check_graph(data, Path("generator.onnx"))
    assert time.monotonic() - started < 10


def test_a_deep_maze_of_shape_operators_is_checked_in_linear_time():
    started = time.monotonic()
    with pytest.raises(GraphRefused, match="Range that is not over a length"):  # Concat is not on a length's path
        check_graph(graphkit.concat_maze(), Path("generator.onnx"))
    assert time.monotonic() - started < 5


def test_a_generator_constant_of_unread_size_is_refused(tmp_path):
    from lavanya_cli.speech.graphs import check_generator_memory

    summary = check_graph(graphkit.constant_of_unread_size(), Path("generator.onnx"))
    with pytest.raises(GraphRefused, match="Constant without a tensor value"):
        check_generator_memory(summary, 286, Path("generator.onnx"))


def test_a_graph_folded_while_loading_is_refused_before_it_loads(tmp_path):
    root = graphkit.hostile_tree(tmp_path / "tree", encoder=graphkit.folded_on_load())
    _one_line(_synth(root, tmp_path, "onnx"), "acoustic_encoder.onnx: not a graph lavanya exports",
              "computed from constants alone")


def test_outputs_larger_than_asked_for_are_refused_before_numpy_works_on_them(tmp_path):
    root = graphkit.hostile_tree(tmp_path / "tree", encoder=graphkit.wide_hidden_encoder())
    _one_line(_synth(root, tmp_path, "onnx"), "acoustic_encoder.onnx: gave hidden states of shape",
              "not a graph lavanya exports")
    # a decoder that repeats its mel: the real one with Concats after it
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT

    decoder = graphkit.onnx.load(str(BUNDLED_ROOT / graphkit.MODEL / "acoustic_decoder.onnx"))
    graph = decoder.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = ["mel_once" if name == output else name for name in node.output]
    graph.node.append(graphkit.helper.make_node("Concat", ["mel_once"] * 16, [output], axis=0))
    root = tmp_path / "tree2"
    graphkit.hostile_tree(root)
    graphkit._replace(root / graphkit.MODEL, "acoustic_decoder.onnx", decoder.SerializeToString(), None)
    _one_line(_synth(root, tmp_path, "onnx"), "acoustic_decoder.onnx: gave mel of shape")


def test_a_manifest_of_the_wrong_shape_is_one_line(tmp_path):
    import json

    root = graphkit.hostile_tree(tmp_path / "tree")
    manifest_path = root / graphkit.MODEL / "lavanya-export.json"
    for graph_entry, words in (([1], "lacks its files, sources or graph description"),
                               ({"duration_offset": "abc"}, "duration_offset must be a number")):
        manifest = json.loads(manifest_path.read_text())
        manifest["graph"] = graph_entry
        manifest_path.write_text(json.dumps(manifest))
        _one_line(_synth(root, tmp_path, "onnx"), "lavanya-export.json", words)
        result = _lavanya("verify", "--speak", root)
        assert result.returncode == 1 and "internal error" not in result.stderr and words in result.stdout


def test_front_end_files_behind_links_out_of_the_root_are_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password p a s s\n")
    root = graphkit.hostile_tree(tmp_path / "tree")
    english = root / "phone_dict" / "english"
    english.unlink()
    english.symlink_to(secret)
    (root / "multilingualcharmap.json").symlink_to("/proc/self/environ")
    _one_line(_synth(root, tmp_path, "onnx", text="password"), "phone_dict/english: is a symlink to",
              "outside the model root")
    english.unlink()
    english.write_text("password p a s s\n")
    _one_line(_synth(root, tmp_path, "onnx", text="password"), "multilingualcharmap.json: is a symlink to /proc")


def test_a_cache_that_holds_odd_files_is_named_or_passed_over(tmp_path):
    import shutil

    from onnxkit import shared_cache
    from synthkit import shared_voice_root

    cache = Path(shutil.copytree(shared_cache(), tmp_path / "cache"))
    (cache / "digests.json").unlink(missing_ok=True)
    os.mkfifo(cache / "digests.json")  # the memo is only a speed-up: passed over, never waited on
    result = _lavanya("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "female", "--text",
                      "नमस्ते", "-o", tmp_path / "out.wav", env={"LAVANYA_CACHE": str(cache)}, timeout=300)
    assert result.returncode == 0, result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "acoustic").write_text("not a directory")
    result = _lavanya("export", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                      env={"LAVANYA_CACHE": str(empty)}, timeout=300)
    _one_line(result, f"{empty}: the export cache cannot be written", "$LAVANYA_CACHE")
