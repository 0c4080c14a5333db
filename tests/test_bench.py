"""``lavanya bench`` and its upstream-way runner on the tiny random-weight voice (see synthkit)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile
import yaml

from lavanya_cli import upstream_way
from lavanya_cli.speech.audio import join_pcm
from lavanya_cli.bench.measure import upstream_copy
from synthkit import shared_voice, shared_voice_root

TEXT = "नमस्ते, आप कैसे हैं? ठीक है।"


def test_bench_reports_load_latency_rtf_and_memory(cli):
    code, out, err = cli("bench", "--models", shared_voice_root(), "--text", TEXT, "--runs", "1", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["sentences"] == 2 and report["audio_seconds"] > 0.5
    # warm_seconds is reported to the millisecond; on this tiny voice that rounding alone can
    # exceed 1 %, so the tolerance covers it as well.
    assert report["warm_real_time_factor"] == pytest.approx(
        report["warm_seconds"] / report["audio_seconds"], rel=1e-2, abs=0.0006 / report["audio_seconds"])
    assert report["first_call_seconds"] > 0 and report["peak_rss_mb"] > 100


def test_upstream_way_says_the_same_on_a_copy_and_leaves_the_voice_alone(tmp_path, capsys):
    voice = shared_voice()
    spec = voice.spec
    before = (spec.config_path.read_bytes(), os.stat(spec.config_path).st_mtime_ns)
    copy = upstream_copy(spec, tmp_path / "model")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    capsys.readouterr()

    upstream_way.main(["--model-dir", str(copy), "--root", str(spec.root), "--language", "hindi",
                       "--gender", "male", "--vocoder-dir", str(spec.vocoder.directory),
                       "--text-file", str(tmp_path / "text.txt"), "--output", str(tmp_path / "up.wav")])

    report = json.loads(capsys.readouterr().out)
    assert report["chunks"] == 2 and len(report["chunk_seconds"]) == 2
    upstream_pcm, _ = soundfile.read(tmp_path / "up.wav", dtype="int16")
    np.testing.assert_array_equal(upstream_pcm, join_pcm(list(voice.synthesize(TEXT))))
    assert (spec.config_path.read_bytes(), os.stat(spec.config_path).st_mtime_ns) == before
    rewritten = yaml.safe_load((copy / "config.yaml").read_text(encoding="utf-8"))
    assert rewritten["normalize_conf"]["stats_file"] == str(copy.resolve() / "feats_stats.npz")
