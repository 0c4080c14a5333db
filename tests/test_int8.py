"""The int8 acoustic model: made from the f32 export without torch, guarded against f32, served
only where the guard passed (else f32 with a note, the refusal recorded), deployed at int8, its
graphs checked as any other; the torch engine refuses it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.modeltree.layout import (DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME,  # noqa: E402
                                          EXPORT_MANIFEST_NAME, find_voice)
from lavanya_cli.speech import export as exporter  # noqa: E402
from lavanya_cli.speech import export_store as store  # noqa: E402
from lavanya_cli.speech import graphs, quantize  # noqa: E402
from lavanya_cli.speech.onnx_engine import load_onnx_engine  # noqa: E402
from lavanya_cli.speech.options import LoadOptions  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "Fastspeech2_HS"
SENTENCE_IDS = np.array([5, 12, 30, 2, 41, 7, 19, 2, 33, 8, 25, 14], dtype=np.int64)


def _spec(root: Path = DEMO):
    return find_voice("hindi", "male", models=root)


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory) -> Path:
    """A cache holding the bundled demo voice's int8 export (its f32 graphs lie beside its
    weights, so no torch is needed)."""
    cache = tmp_path_factory.mktemp("int8-cache")
    acoustic, vocoder = store.find_exports(_spec(), cache)
    served, made = quantize.ensure_int8(_spec(), acoustic, vocoder, cache, threads=2)
    assert made == [store.ACOUSTIC_INT8] and served.precision == "int8"
    return cache


@pytest.fixture(scope="module")
def outlier_root(tmp_path_factory, int8_cache) -> Path:
    """A deploy root of the demo voice whose f32 graphs hold weights int8 cannot represent: in
    every feed-forward block one hidden unit is silenced (its w_1 row zero, its bias -1, so ReLU
    gives exactly 0) and its w_2 column made 10^4 times the largest weight. f32 speaks as before;
    per-channel int8 gives every w_2 output channel a step so coarse that its other weights
    vanish."""
    out = tmp_path_factory.mktemp("outliers") / "deploy"
    exporter.write_deploy_root([_spec()], out, cache=int8_cache)
    model_dir = _spec(out).model_dir
    manifest = json.loads((model_dir / EXPORT_MANIFEST_NAME).read_text())
    for name in (ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME):
        model = onnx.load(model_dir / name)
        tensors = {tensor.name: tensor for tensor in model.graph.initializer}
        blocks = sorted({tensor_name.rsplit(".w_1.weight", 1)[0] for tensor_name in tensors
                         if tensor_name.endswith("feed_forward.w_1.weight")})
        assert blocks
        for block in blocks:
            w_1, b_1, w_2 = (onnx.numpy_helper.to_array(tensors[f"{block}.{part}"]).copy()
                             for part in ("w_1.weight", "w_1.bias", "w_2.weight"))
            w_1[0], b_1[0] = 0.0, -1.0
            w_2[:, 0] = 1e4 * np.abs(w_2).max()
            for part, value in (("w_1.weight", w_1), ("w_1.bias", b_1), ("w_2.weight", w_2)):
                tensors[f"{block}.{part}"].CopyFrom(onnx.numpy_helper.from_array(value, f"{block}.{part}"))
        onnx.save(model, model_dir / name)
    manifest["files"] = exporter.describe_files(model_dir, list(manifest["files"]))
    exporter.write_export_manifest(model_dir, manifest)
    return out


def _graph_bytes(export: store.Export) -> int:
    return sum(entry["size"] for entry in export.manifest["files"].values())


# -- options ------------------------------------------------------------------------------

def test_precision_is_checked_where_the_options_are_made():
    assert LoadOptions().precision is None and LoadOptions(precision="int8").derived(threads=1).precision == "int8"
    with pytest.raises(LavanyaError, match="precision 'int4': use f32 or int8"):
        LoadOptions(precision="int4")
    with pytest.raises(LavanyaError, match="precision int8 is for the ONNX engines.*torch engine computes in f32"):
        LoadOptions(engine="torch", precision="int8")
    assert LoadOptions(engine="torch", precision="f32").precision == "f32"


def test_torch_engine_with_int8_is_a_usage_error_line(cli):
    code, _, err = cli("synth", "--engine", "torch", "--precision", "int8", "--text", "नमस्ते", "-o", "x.wav")
    assert code == 2 and err.count("\n") == 1
    assert "--precision int8 is for the ONNX engines" in err and "--engine onnx" in err


# -- the int8 export and its guard ---------------------------------------------------------

def test_int8_export_passes_its_guard_and_loads_smaller(int8_cache):
    f32, vocoder = store.find_exports(_spec(), int8_cache, "f32")
    int8, _ = store.find_exports(_spec(), int8_cache, "int8")
    assert f32.precision == "f32" and int8.precision == "int8" and not int8.note
    assert int8.directory.parent == int8_cache / store.ACOUSTIC_INT8
    assert _graph_bytes(int8) < 0.35 * _graph_bytes(f32)
    guard = int8.manifest["guard"]
    assert guard["passed"] is True and guard["sentences"] == len(quantize.GUARD_LENGTHS)
    assert guard["durations_equal"] >= quantize.DURATIONS_EQUAL_MIN
    assert guard["frames_difference"] <= quantize.FRAMES_DIFFERENCE_MAX
    assert 0 < guard["mel_mean_abs_max"] <= quantize.MEL_MEAN_ABS_MAX
    assert guard["snr_db_min"] >= quantize.SNR_DB_MIN
    assert int8.manifest["quantized_from"] == store.int8_sources(f32, vocoder)
    # what speaks: the int8 graphs, close to f32's on a sentence of its own
    engine = load_onnx_engine(_spec(), engine="onnx", threads=2, cache=int8_cache, acoustic_precision="int8")
    reference = load_onnx_engine(_spec(), engine="onnx", threads=2, cache=int8_cache, acoustic_precision="f32")
    assert (engine.acoustic_precision, reference.acoustic_precision, engine.notes) == ("int8", "f32", ())
    assert load_onnx_engine(_spec(), engine="onnx", threads=2, cache=int8_cache).acoustic_precision == "f32"
    mel, expected = engine.acoustic.mel(SENTENCE_IDS), reference.acoustic.mel(SENTENCE_IDS)
    assert abs(len(mel) - len(expected)) <= max(2, 0.03 * len(expected))
    assert np.abs(mel.mean(axis=0) - expected.mean(axis=0)).mean() < quantize.MEL_MEAN_ABS_MAX


def test_int8_graphs_pass_the_graph_checks_and_the_raw_quantizer_output_would_not(int8_cache, tmp_path):
    int8, _ = store.find_exports(_spec(), int8_cache, "int8")
    for name in (ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME):
        with int8.read_graph(name) as graph:
            operators = {node.op_type for node in graph.summary.nodes}
        assert {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"} <= operators
    # Without the folding, the quantizer leaves bias reshapes of constants, which graphs refuses.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    raw = tmp_path / ENCODER_GRAPH_NAME
    with quantize._quiet_quantizer():
        quantize_dynamic(_spec().model_dir / ENCODER_GRAPH_NAME, raw, op_types_to_quantize=["MatMul", "Conv"],
                         per_channel=True, weight_type=QuantType.QUInt8)
    with pytest.raises(graphs.GraphRefused, match="computed from constants alone"):
        graphs.read_graph(raw)


def test_conv_integer_attributes_are_bounded_as_conv_s():
    helper = onnx.helper
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"], kernel_shape=[100_000])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.UINT8, [1, 4, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.INT32, [1, 4, 8])],
                              [helper.make_tensor("w", onnx.TensorProto.UINT8, [4, 4, 3], [1] * 48)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    problems = graphs.graph_problems(graphs.summarize(model.SerializeToString()), ENCODER_GRAPH_NAME)
    assert "a ConvInteger with kernel_shape beyond 64" in problems


def test_the_quantizer_says_nothing_and_leaves_logging_alone(int8_cache, tmp_path, capfd):
    import logging

    handlers = list(logging.getLogger().handlers)
    with store.find_exports(_spec(), int8_cache)[0].read_graph(DECODER_GRAPH_NAME) as graph:
        quantize.quantize_graph(graph.source(), tmp_path / DECODER_GRAPH_NAME)
    assert capfd.readouterr().err == "" and logging.getLogger().handlers == handlers
    graphs.read_graph(tmp_path / DECODER_GRAPH_NAME).close()


def test_a_voice_int8_cannot_hold_is_served_in_f32_with_the_note(outlier_root, tmp_path, monkeypatch):
    spec = _spec(outlier_root)
    cache = tmp_path / "cache"
    from lavanya_cli.speech.voice import Voice

    voice = Voice.load(spec, options=LoadOptions(engine="onnx", threads=2, cache=cache, precision="int8"))
    assert voice.backend.acoustic_precision == "f32"
    made, fallback = voice.notes
    assert made.startswith("quantized hindi/male's acoustic model to int8")
    assert fallback.startswith("int8 acoustic model refused by its guard (") and "f32 acoustic model is served" in fallback
    # the refusal is recorded, holding no graphs, and never measured again
    acoustic, vocoder = store.find_exports(spec, cache)
    refusal = store.find_int8_export(acoustic, vocoder, cache)
    assert refusal.manifest["files"] == {} and refusal.manifest["guard"]["passed"] is False
    assert not list(refusal.directory.glob("*.onnx"))
    assert refusal.manifest["guard"]["failed"] in fallback
    assert refusal.manifest["guard"]["mel_mean_abs_max"] > quantize.MEL_MEAN_ABS_MAX

    def never(*args, **kwargs):
        raise AssertionError("quantized again")

    monkeypatch.setattr(quantize, "quantize_graph", never)
    again = Voice.load(spec, options=LoadOptions(engine="onnx", threads=2, cache=cache, precision="int8"))
    assert again.notes == (fallback,) and again.backend.acoustic_precision == "f32"
    assert len(next(iter(again.synthesize("नमस्ते"))).samples) > 0


@pytest.mark.slow
def test_deploy_root_at_int8(cli, tmp_path):
    out = tmp_path / "deploy"
    code, stdout, err = cli("export", "--models", DEMO, "--lang", "hindi", "--gender", "male", "--precision", "int8",
                            "--out", out, "--format", "json")
    assert code == 0, err
    (entry,) = json.loads(stdout)["voices"]
    assert entry["precision"] == "int8" and entry["guard"]["passed"] is True and "note" not in entry
    deployed = _spec(out)
    manifest = json.loads((deployed.model_dir / EXPORT_MANIFEST_NAME).read_text())
    assert manifest["graph"]["precision"] == "int8" and entry["acoustic_bytes"] == _graph_bytes(
        store.Export(deployed.model_dir, manifest, True))
    assert sorted(p.name for p in deployed.model_dir.glob("*.onnx")) == [DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME]
    assert store.export_problems(deployed.model_dir) == []
    assert load_onnx_engine(deployed, engine="onnx", threads=2, cache=tmp_path / "empty").acoustic_precision == "int8"
    with pytest.raises(LavanyaError, match="holds the int8 acoustic graphs only; export the voice again with "
                                           "--precision f32"):
        load_onnx_engine(deployed, engine="onnx", threads=2, cache=tmp_path / "empty", acoustic_precision="f32")
    code, stdout, err = cli("export", "--models", DEMO, "--lang", "hindi", "--gender", "male", "--precision", "int8")
    assert code == 0 and "export up to date" in stdout and "acoustic model int8" in stdout and "guard against f32" in stdout


def test_deploy_root_of_a_refused_voice_holds_f32_and_the_refusal(outlier_root, tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "deploy"
    (entry,) = exporter.write_deploy_root([_spec(outlier_root)], out, cache,
                                          prepare=quantize.ensure_int8_exports)
    assert entry["precision"] == "f32" and "refused by its guard" in entry["note"]
    deployed = _spec(out)
    manifest = json.loads((deployed.model_dir / EXPORT_MANIFEST_NAME).read_text())
    assert manifest["graph"]["precision"] == "f32" and manifest["guard"]["passed"] is False
    empty = tmp_path / "empty"  # what the deploy root says is enough: nothing is measured or made
    engine = load_onnx_engine(deployed, engine="onnx", threads=2, cache=empty, acoustic_precision="int8")
    assert engine.acoustic_precision == "f32" and engine.notes == (manifest["guard"]["note"],)
    assert not empty.exists()
    assert load_onnx_engine(deployed, engine="onnx", threads=2, cache=empty).notes == ()


def test_int8_without_onnx_is_one_line(int8_cache, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    spec = _spec()
    acoustic, vocoder = store.find_exports(spec, tmp_path)
    with pytest.raises(LavanyaError, match=r"int8 needs the onnx package .*pip install 'onnx>=1.16'"):
        quantize.ensure_int8(spec, acoustic, vocoder, tmp_path)
    assert not (tmp_path / store.ACOUSTIC_INT8).exists()
    served, made = quantize.ensure_int8(spec, acoustic, vocoder, int8_cache)  # made already: no onnx needed
    assert served.precision == "int8" and made == []


def test_export_at_int8_needs_no_torch_where_the_f32_export_exists(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "cache"))
    code, stdout, err = cli("export", "--models", DEMO, "--lang", "hindi", "--gender", "male", "--precision", "int8")
    assert code == 0, err
    assert "exported int8 acoustic" in stdout and "acoustic model int8" in stdout
    code, stdout, err = cli("export", "--models", DEMO, "--lang", "hindi", "--gender", "male")
    assert code == 0 and "export up to date" in stdout  # the demo ships its f32 graphs: nothing to make


@pytest.mark.slow
def test_synth_at_int8_makes_the_int8_export_once(cli, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from onnxkit import shared_cache
    from synthkit import shared_voice_root

    cache = tmp_path / "cache"
    import shutil

    shutil.copytree(shared_cache(), cache)
    monkeypatch.setenv(store.CACHE_ENV, str(cache))
    args = ("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male", "--engine", "onnx",
            "--precision", "int8", "--text", "नमस्ते", "-o", tmp_path / "a.wav")
    code, _, err = cli(*args)
    assert code == 0, err
    assert "quantized hindi/male's acoustic model to int8" in err and (tmp_path / "a.wav").stat().st_size > 44
    assert list((cache / store.ACOUSTIC_INT8).iterdir())
    code, _, err = cli(*args)
    assert code == 0 and "quantized" not in err
