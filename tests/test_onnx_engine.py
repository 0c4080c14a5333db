"""The torch-free engine (lavanya_cli.speech.onnx_engine) against the torch path: the numpy pieces
against ESPnet's modules, whole mels and waveforms against Voice's, at any length and rate."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("espnet2")
pytest.importorskip("onnxruntime")

from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.modeltree.layout import BUNDLED_ROOT, find_voice  # noqa: E402
from lavanya_cli.speech.espnet_import import quiet_libraries  # noqa: E402
from lavanya_cli.speech.export import MEL_MAX_ABS, MIN_SNR_DB, snr_db  # noqa: E402
from lavanya_cli.modeltree.layout import DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME  # noqa: E402
from lavanya_cli.speech.export_store import find_exports  # noqa: E402
from lavanya_cli.speech.onnx_engine import (MelDenormalizer, OnnxVocoder, OpenVinoRunner, OrtRunner, durations_from_log,  # noqa: E402
                                            load_onnx_engine, openvino_bf16_supported, regulate_lengths,
                                            resolve_precision)
from lavanya_cli.speech.voice import Voice  # noqa: E402
from onnxkit import shared_cache, tiny_spec  # noqa: E402
from synthkit import shared_voice, shared_voice_root  # noqa: E402

pytestmark = pytest.mark.slow  # torch-to-ONNX exports (onnxkit, the demo voice), OpenVINO, fresh processes

REPO = Path(__file__).resolve().parents[1]


def _torch_mel(voice: Voice, model_input: str, alpha: float) -> np.ndarray:
    with torch.inference_mode(), quiet_libraries():
        return voice.backend.acoustic_model(model_input, alpha).numpy()


def _torch_audio(voice: Voice, mel: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return voice.backend.vocoder_module(torch.from_numpy(mel * voice.mel_scale).T.unsqueeze(0)).reshape(-1).numpy()


# -- numpy pieces against ESPnet's modules ------------------------------------------------------

def test_durations_round_and_scale_as_espnet():
    from espnet.nets.pytorch_backend.fastspeech.duration_predictor import DurationPredictor
    from espnet.nets.pytorch_backend.fastspeech.length_regulator import LengthRegulator

    generator = np.random.default_rng(0)
    # log-durations around the rounding points (k + 0.5 after exp - 1), plus ordinary ones
    halves = np.log(np.arange(0, 200) + 1.5).astype(np.float32)
    log_d = np.concatenate([halves, np.nextafter(halves, 0), np.nextafter(halves, 10),
                            generator.normal(1.5, 1.5, 20000).astype(np.float32)])
    # ESPnet's own inference code on these log-durations: no convolutions, an identity output layer
    predictor = DurationPredictor(idim=1)
    predictor.conv = torch.nn.ModuleList()
    predictor.linear = torch.nn.Linear(1, 1)
    with torch.no_grad():
        predictor.linear.weight.fill_(1.0)
        predictor.linear.bias.zero_()
        expected = predictor.inference(torch.from_numpy(log_d)[None, :, None])[0]
    ours = durations_from_log(log_d, predictor.offset)
    assert ours.tolist() == expected.tolist()
    regulator = LengthRegulator()
    hidden = generator.normal(size=(log_d.size, 3)).astype(np.float32)
    for alpha in (1.0, 0.5, 0.77, 1.3, 2.0, 1 / 3):
        with torch.no_grad():
            reference = regulator(torch.from_numpy(hidden)[None], expected[None].clone(), alpha)[0].numpy()
        assert np.array_equal(regulate_lengths(hidden, ours, alpha), reference), alpha


def test_all_zero_durations_give_one_frame_each_as_espnet():
    from espnet.nets.pytorch_backend.fastspeech.length_regulator import LengthRegulator

    hidden = np.arange(12, dtype=np.float32).reshape(4, 3)
    zeros = np.zeros(4, dtype=np.int64)
    with quiet_libraries(), torch.no_grad():
        reference = LengthRegulator()(torch.from_numpy(hidden)[None], torch.from_numpy(zeros)[None].clone())[0]
    assert np.array_equal(regulate_lengths(hidden, zeros), reference.numpy())
    assert regulate_lengths(hidden, np.array([0, 1, 0, 1]), alpha=0.4).shape == (4, 3)  # all round to 0


@pytest.mark.parametrize("options", [{}, {"norm_vars": False}, {"norm_means": False}, {"eps": 1e-3}])
def test_denormalizer_is_global_mvn_inverse(tmp_path, options):
    from espnet2.layers.global_mvn import GlobalMVN

    stats = tmp_path / "feats_stats.npz"
    count = np.array(977, dtype=np.int64)
    total = np.linspace(-5000, 300, 20).astype(np.float32)
    square = (total**2 / count + np.linspace(0, 2, 20) * count).astype(np.float32)
    square[3] = total[3] ** 2 / count  # zero variance: eps decides
    np.savez(stats, count=count, sum=total, sum_square=square)
    frames = np.random.default_rng(1).normal(size=(7, 20)).astype(np.float32)
    mvn = GlobalMVN(stats_file=stats, **options).to(torch.float32)
    expected = mvn.inverse(torch.from_numpy(frames.copy())[None])[0][0].numpy()
    config = {"normalize": "global_mvn", "normalize_conf": {"stats_file": "/elsewhere/x.npz", **options}}
    assert np.array_equal(MelDenormalizer.for_voice(config, stats)(frames), expected)
    assert MelDenormalizer.for_voice({"normalize": None}, stats) is None


# -- whole voices against the torch path --------------------------------------------------------

def _compare(voice: Voice, engines, model_input: str, alpha: float) -> tuple[float, float]:
    expected = _torch_mel(voice, model_input, alpha)
    mel = engines.mel(model_input, alpha)
    assert mel.dtype == np.float32 and mel.shape == expected.shape
    audio, reference = engines.vocoder.audio(mel * voice.mel_scale), _torch_audio(voice, expected)
    assert audio.dtype == np.float32 and audio.shape == reference.shape
    return float(np.abs(mel - expected).max()), snr_db(reference, audio)


@pytest.mark.parametrize("alpha", [1.0, 0.7, 1.45])
def test_tiny_voice_speaks_as_torch(alpha):
    voice = shared_voice("torch")
    engines = load_onnx_engine(tiny_spec(), cache=shared_cache())
    for sentence in ("नमस्ते, आप कैसे हैं?", "ठीक है। चलो, Hello!"):
        for utterance in voice.plan(sentence):
            error, snr = _compare(voice, engines, utterance.model_input, alpha)
            assert error <= MEL_MAX_ABS and snr >= MIN_SNR_DB


def test_inputs_longer_than_any_positional_table():
    """1500 tokens and over 6000 frames: past ESPnet's 5000-position table and any 512 cap (the
    graphs given the whole sentence; synthesis itself cuts one this long into pieces)."""
    voice = shared_voice("torch")
    engines = load_onnx_engine(tiny_spec(), cache=shared_cache())
    engines.acoustic.encoder_tokens = engines.acoustic.decoder_frames = None
    acoustic_export, _ = find_exports(tiny_spec(), shared_cache())  # outside the capped arena: 6000 frames at once
    with acoustic_export.read_graph(ENCODER_GRAPH_NAME) as encoder, acoustic_export.read_graph(DECODER_GRAPH_NAME) as decoder:
        engines.acoustic.encoder = OrtRunner(encoder, shared_arena=False)
        engines.acoustic.decoder = OrtRunner(decoder, shared_arena=False)
    characters = [t for t in voice.config["token_list"] if len(t) == 1]
    text = "".join(characters[i * 7 % len(characters)] for i in range(1500))
    expected = _torch_mel(voice, text, 1.0)
    mel = engines.mel(text, 1.0)
    assert expected.shape[0] > 6000
    assert mel.shape == expected.shape and np.abs(mel - expected).max() <= MEL_MAX_ABS
    assert engines.mel("", 1.0).shape == _torch_mel(voice, "", 1.0).shape  # eos alone, as ESPnet


def test_demo_voice_speaks_as_torch(tmp_path):
    from lavanya_cli.speech.export import ensure_exports

    spec = find_voice("hindi", "male", models=BUNDLED_ROOT)
    outcome = ensure_exports(spec, tmp_path)
    assert outcome.made == []  # the tree ships its exports beside its weights: these are checked here
    assert outcome.acoustic.directory == spec.model_dir and outcome.vocoder.directory == spec.vocoder.directory
    voice = Voice.load(spec, engine="torch")
    engines = load_onnx_engine(spec, cache=tmp_path)
    plan = voice.plan("नमस्ते, आप कैसे हैं? मैं ठीक हूँ।")
    for utterance in plan:
        for alpha in (1.0, 1.25):
            error, snr = _compare(voice, engines, utterance.model_input, alpha)
            assert error <= MEL_MAX_ABS and snr >= MIN_SNR_DB
    # A long input is vocoded in windows: the same samples as one run over it all.
    mel = engines.mel(" ".join(u.model_input for u in plan * 2), 2.0) * voice.mel_scale
    assert mel.shape[0] > 2 * engines.vocoder.window_frames
    windowed = engines.vocoder.audio(mel)
    engines.vocoder.window_frames = None
    whole = engines.vocoder.audio(mel)
    assert windowed.shape == whole.shape and np.abs(windowed - whole).max() <= 1e-5
    engines.vocoder.context_frames, engines.vocoder.window_frames = 0, 64  # no context: the seams show
    assert np.abs(engines.vocoder.audio(mel) - whole).max() > 1e-3


class _LengthsSeen:
    """A vocoder graph's runner that records the input lengths it is given."""

    def __init__(self, runner):
        self.runner, self.lengths = runner, set()

    def __call__(self, mel):
        self.lengths.add(mel.shape[-1])
        return self.runner(mel)


def test_fixed_lengths_give_the_audio_of_unpadded_runs():
    engine = load_onnx_engine(tiny_spec(), cache=shared_cache())
    plain = engine.vocoder
    seen = _LengthsSeen(plain.generator)
    fixed = OnnxVocoder(seen, plain.hop, plain.context_frames, fixed=True)
    assert len(fixed.lengths) <= 8 and fixed.lengths[-1] == plain.window_frames + 2 * plain.context_frames
    voice = shared_voice("onnx")
    plan = voice.plan("नमस्ते, आप कैसे हैं? मैं ठीक हूँ।")
    tail = plain.context_frames * plain.hop
    # Long inputs, windows and a last window of any size: widened with the sentence's own mel,
    # the very samples of unpadded runs; short ones padded: the same but for their last frames.
    for repeat in (1, 3, 5, 7):
        mel = engine.mel(" ".join(u.model_input for u in plan * repeat), 1.0) * voice.mel_scale
        unpadded, padded = plain.audio(mel), fixed.audio(mel)
        assert padded.shape == unpadded.shape
        assert np.abs(padded[:-tail] - unpadded[:-tail]).max() <= 1e-5
        assert snr_db(unpadded, padded) >= MIN_SNR_DB
        if mel.shape[0] > fixed.lengths[-1]:
            assert np.abs(padded - unpadded).max() <= 1e-5
        streamed = np.concatenate(list(fixed.audio_pieces(mel, first=24)))
        assert np.abs(streamed[:-tail] - unpadded[:-tail]).max() <= 1e-5 and snr_db(unpadded, streamed) >= MIN_SNR_DB
    # Only the fixed lengths were ever run, and a stream's first window at its own length.
    first_window = 24 + plain.context_frames
    assert first_window not in fixed.lengths and first_window in seen.lengths
    assert seen.lengths - {first_window} <= set(fixed.lengths) and len(seen.lengths - {first_window}) >= 3
    assert not plain.lengths  # ONNX Runtime runs each input at its own length


def test_openvino_engine_matches_at_f32():
    pytest.importorskip("openvino")
    voice = shared_voice("torch")
    engines = load_onnx_engine(tiny_spec(), engine="openvino", precision="f32", threads=1, cache=shared_cache())
    assert engines.vocoder.lengths  # OpenVINO compiles once per input length: it gets fixed ones
    (utterance,) = voice.plan("नमस्ते, आप कैसे हैं?")
    error, snr = _compare(voice, engines, utterance.model_input, 1.2)
    assert error <= MEL_MAX_ABS and snr >= MIN_SNR_DB


def test_openvino_bf16_keeps_the_acoustic_model_in_f32_on_onnx_runtime():
    pytest.importorskip("openvino")
    if not openvino_bf16_supported():
        pytest.skip("this CPU computes no bfloat16")
    voice = shared_voice("torch")
    assert resolve_precision("openvino") == "bf16"
    engines = load_onnx_engine(tiny_spec(), engine="openvino", threads=1, cache=shared_cache())
    (utterance,) = voice.plan("नमस्ते, आप कैसे हैं?")
    error, snr = _compare(voice, engines, utterance.model_input, 1.2)
    assert engines.precision == "bf16" and error <= MEL_MAX_ABS  # same durations, same mel
    assert isinstance(engines.acoustic.encoder, OrtRunner) and isinstance(engines.vocoder.generator, OpenVinoRunner)
    assert 20.0 <= snr < 200.0  # close to f32's waveform, not bit-equal to it


def test_openvino_keeps_its_compiled_vocoder_in_the_cache(tmp_path):
    pytest.importorskip("openvino")
    from lavanya_cli.speech.onnx_engine import COMPILED_KEPT, compiled_model_cache

    cache = tmp_path / "cache"
    compiled = compiled_model_cache(cache)
    assert compiled == cache / "openvino" and compiled.is_dir()
    _, vocoder_export = find_exports(tiny_spec(), shared_cache())

    def compile_once() -> OnnxVocoder:
        return OnnxVocoder.from_export(vocoder_export, engine="openvino", precision="f32", threads=1,
                                       compiled_cache=compiled_model_cache(cache))

    mel = np.random.default_rng(0).standard_normal((40, 20)).astype(np.float32) - 4
    first = compile_once().audio(mel)
    blobs = sorted(compiled.glob("*.blob"))
    assert len(blobs) == 1 and not blobs[0].stat().st_mode & 0o022
    written = blobs[0].stat().st_mtime_ns
    assert np.array_equal(compile_once().audio(mel), first)  # loaded from the cache: no new blob
    assert sorted(compiled.glob("*.blob")) == blobs and blobs[0].stat().st_mtime_ns == written
    # Bounded: the newest are kept.
    for age in range(COMPILED_KEPT + 2):
        old = compiled / f"{age}.blob"
        old.write_bytes(b"x")
        os.utime(old, ns=(written - (age + 1) * 10**9, written - (age + 1) * 10**9))
    compiled_model_cache(cache)
    assert len(list(compiled.glob("*.blob"))) == COMPILED_KEPT and blobs[0].exists()
    # Not used where others could write into it, nor where it cannot be made.
    compiled.chmod(0o777)
    assert compiled_model_cache(cache) is None
    (tmp_path / "file").write_bytes(b"")
    assert compiled_model_cache(tmp_path / "file") is None


def test_a_graph_the_digest_memo_knows_unchanged_is_not_hashed_again(tmp_path, monkeypatch):
    import hashlib
    import shutil

    from lavanya_cli.errors import FileError
    from lavanya_cli.speech import export_store, graphs

    cache = tmp_path / "cache"
    shutil.copytree(shared_cache(), cache)
    monkeypatch.setattr(export_store, "RACY_SECONDS", 0.0)  # the copies are new: take them as settled
    _, vocoder = find_exports(tiny_spec(), cache)
    with vocoder.read_graph("generator.onnx"):
        pass  # hashed once, and the memo remembers it
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(graphs.hashlib, "sha256", lambda *args: pytest.fail("hashed again"))
    with vocoder.read_graph("generator.onnx") as graph:
        assert graph.summary is not None
    # Changed in place, same size: its change time moves, so it is hashed, and refused.
    monkeypatch.setattr(graphs.hashlib, "sha256", real_sha256)
    path = vocoder.file("generator.onnx")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FileError, match="differs from the graph its export manifest lists"):
        vocoder.read_graph("generator.onnx")


def test_the_onnx_engine_is_onnx_runtime_in_f32():
    assert resolve_precision("onnx") == "f32"
    engine = load_onnx_engine(tiny_spec(), cache=shared_cache())
    assert engine.name == "onnx" and engine.precision == "f32"
    assert isinstance(engine.vocoder.generator, OrtRunner)


def test_onnx_runtime_takes_a_few_more_threads_than_cpus_unless_told():
    from lavanya_cli.limits import available_cpus

    def threads(engines) -> int:
        return engines.vocoder.generator.session.get_session_options().intra_op_num_threads

    cpus = available_cpus()
    assert threads(load_onnx_engine(tiny_spec(), cache=shared_cache())) == cpus + min(cpus, 4)
    assert threads(load_onnx_engine(tiny_spec(), threads=1, cache=shared_cache())) == 1


def test_unknown_engine_and_bad_threads_are_one_line_errors():
    from lavanya_cli.speech.options import LoadOptions

    with pytest.raises(LavanyaError, match="engine 'tensorrt'"):
        load_onnx_engine(tiny_spec(), engine="tensorrt", cache=shared_cache())
    with pytest.raises(LavanyaError, match="engine 'tensorrt': use one of auto, onnx, openvino, torch"):
        LoadOptions(engine="tensorrt")
    with pytest.raises(LavanyaError, match="threads must be 1 or more"):
        LoadOptions(threads=0)
    with pytest.raises(LavanyaError, match="f32 only"):
        load_onnx_engine(tiny_spec(), precision="bf16", cache=shared_cache())


# -- never torch --------------------------------------------------------------------------------

SPEAK_WITHOUT_TORCH = """
import json, sys
from pathlib import Path
from lavanya_cli.modeltree.layout import find_voice
from lavanya_cli.speech.onnx_engine import load_onnx_engine
spec = find_voice("hindi", "male", models=Path(sys.argv[1]))
engines = load_onnx_engine(spec, cache=Path(sys.argv[2]) if sys.argv[2] else None, threads=1)
mel = engines.mel(sys.argv[3], float(sys.argv[4]))
audio = engines.vocoder.audio(mel)
print(json.dumps({"frames": mel.shape[0], "samples": audio.size, "mel": mel.tolist(),
                  "loaded": sorted(m for m, module in sys.modules.items()
                            if module is not None and m.split(".")[0] in ("torch", "espnet", "espnet2"))}))
"""


def speak_in_fresh_process(root: Path, cache: Path | None, model_input: str, alpha: float,
                           block_torch: bool = False) -> dict:
    """Speak in a new interpreter; with ``block_torch`` any import of torch or ESPnet fails."""
    prelude = "import sys\nfor name in ('torch', 'espnet', 'espnet2'):\n    sys.modules[name] = None\n"
    code = (prelude if block_torch else "") + SPEAK_WITHOUT_TORCH
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, str(root), str(cache or ""), model_input, str(alpha)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_engine_never_imports_torch_or_espnet():
    voice = shared_voice("torch")
    (utterance,) = voice.plan("नमस्ते, आप कैसे हैं?")
    result = speak_in_fresh_process(shared_voice_root(), shared_cache(), utterance.model_input, 1.3)
    assert result["loaded"] == []
    expected = _torch_mel(voice, utterance.model_input, 1.3)
    assert result["frames"] == expected.shape[0]
    assert math.isclose(float(np.abs(np.array(result["mel"]) - expected).max()), 0.0, abs_tol=MEL_MAX_ABS)
