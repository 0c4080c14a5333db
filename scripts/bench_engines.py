#!/usr/bin/env python3
"""Torch vs ONNX Runtime vs OpenVINO on one voice, each run in a fresh process, in the same run.

Usage: PYTHONPATH=. python scripts/bench_engines.py --models DIR [--runs 3] [--threads 2]
                                                      [--engines torch,onnx,openvino,openvino-bf16]
                                                      [--conditions idle,busy] [--ort-matrix] [--json FILE]

The voice must be exported first (``lavanya export --models DIR --lang hindi --gender male``);
build the real-size random voice with ``scripts/make_bench_voice.py``. For each engine and
condition: process start to WAV for 1 and 5 sentences (the median of ``--runs`` fresh
processes) and the child's own peak RSS (``os.wait4``), then the warm real-time factor (the
5 sentences spoken again, after a first time, in one more process). ``busy``: another process
spins on CPU 0 meanwhile. ``--ort-matrix`` adds ONNX Runtime session variants (spin-waiting,
CPU arena, memory patterns), as ``onnx[spinning=1,arena=1,memory_pattern=0]`` and so on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = {"torch": None, "onnx": ("onnxruntime", "f32"), "openvino": ("openvino", "f32"),
           "openvino-bf16": ("openvino", "bf16")}
# Every setting named, so the rows mean the same whatever ORT_SESSION_DEFAULTS says.
ORT_MATRIX = tuple(f"onnx[spinning={spin},arena={arena},memory_pattern={pattern}]"
                   for spin, arena, pattern in ((1, 1, 0), (0, 1, 1), (0, 0, 1), (0, 0, 0)))


def child(engine: str, models: Path, text: str, output: Path, threads: int | None, warm_runs: int) -> dict:
    """One synthesis as ``lavanya synth`` would do it with this engine (and, optionally, warm runs)."""
    started = time.perf_counter()
    import numpy as np

    from lavanya_cli.modeltree.config import read_config
    from lavanya_cli.modeltree.layout import find_voice
    from lavanya_cli.speech.audio import write_wav

    spec = find_voice("hindi", "male", models=models)
    name, _, settings = engine.partition("[")
    if name == "torch":
        from lavanya_cli.speech.voice import Voice

        voice = Voice.load(spec, threads=threads)
        rate, pcm_scale = voice.sample_rate, voice.pcm_scale

        def speak(words: str) -> np.ndarray:
            return np.concatenate([chunk.samples for chunk in voice.synthesize(words)])
    else:
        from lavanya_cli.frontend import Frontend, Silence, segment_text
        from lavanya_cli.speech import onnx_engine
        from lavanya_cli.speech.voice import DEFAULT_MEL_SCALE, DEFAULT_PCM_SCALE, read_voice_settings

        for setting in filter(None, settings.rstrip("]").split(",")):
            key, value = setting.split("=")
            onnx_engine.ORT_SESSION_DEFAULTS[key] = value == "1"
        runtime, precision = ENGINES[name]
        config = read_config(spec.config_path)
        frontend = Frontend.for_voice(spec, config)
        engines = onnx_engine.load_engines(spec, config, runtime=runtime, precision=precision, threads=threads)
        voice_settings = read_voice_settings(spec)
        mel_scale = voice_settings.get("mel_scale", DEFAULT_MEL_SCALE)
        pcm_scale = voice_settings.get("pcm_scale", DEFAULT_PCM_SCALE)
        rate = int(config["feats_extract_conf"]["fs"])

        def speak(words: str) -> np.ndarray:
            pieces = []
            for item in segment_text(words):
                if not isinstance(item, Silence):
                    mel = engines.mel(frontend.prepare(item.text).model_input, item.alpha or 1.0)
                    pieces.append(engines.vocoder.audio(mel * mel_scale))
            return np.concatenate(pieces)
    loaded = time.perf_counter()
    samples = speak(text)
    write_wav(output, np.clip(samples * pcm_scale, -32768, 32767).astype(np.int16), rate)
    spoken = time.perf_counter()
    warm = []
    for _ in range(warm_runs):
        begun = time.perf_counter()
        speak(text)
        warm.append(time.perf_counter() - begun)
    audio_seconds = samples.size / rate
    heavy = sorted(m for m in ("torch", "espnet2", "onnxruntime", "openvino") if m in sys.modules)
    return {"load_s": loaded - started, "first_s": spoken - loaded, "audio_s": audio_seconds,
            "warm_rtf": min(warm) / audio_seconds if warm else None, "modules": heavy}


def run_child(engine: str, models: Path, text: str, threads: int | None, warm_runs: int) -> dict:
    """A fresh interpreter runs ``child``; its wall time from spawn to exit and its peak RSS."""
    with tempfile.TemporaryDirectory(prefix="lavanya-bench-") as scratch:
        text_file = Path(scratch) / "text.txt"
        text_file.write_text(text, encoding="utf-8")
        command = [sys.executable, __file__, "--child", engine, "--models", str(models), "--text-file",
                   str(text_file), "--output", str(Path(scratch) / "out.wav"), "--warm", str(warm_runs)]
        if threads:
            command += ["--threads", str(threads)]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{engine}: child failed: {err.read().decode(errors='replace')[-1500:]}")
            report = json.loads(out.read().decode().strip().splitlines()[-1])
    return {**report, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


class BusyCore:
    """Another process spinning on CPU 0 while the benchmark runs (the ``busy`` condition)."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        os.sched_setaffinity(self.process.pid, {0})
        time.sleep(0.3)
        return self

    def __exit__(self, *exc_info):
        self.process.kill()
        self.process.wait()
        return False


def measure(engine: str, models: Path, runs: int, threads: int | None) -> dict:
    from lavanya_cli.bench.measure import default_text

    row = {"engine": engine}
    for sentences in (1, 5):
        results = [run_child(engine, models, default_text(sentences), threads, 0) for _ in range(runs)]
        row[f"start_to_wav_{sentences}_s"] = statistics.median(r["wall_s"] for r in results)
        row[f"peak_rss_{sentences}_mb"] = max(r["peak_rss_mb"] for r in results)
        row[f"load_{sentences}_s"] = statistics.median(r["load_s"] for r in results)
        row["modules"] = results[0]["modules"]
    warm = run_child(engine, models, default_text(5), threads, 3)
    row["warm_rtf"] = warm["warm_rtf"]
    row["audio_5_s"] = warm["audio_s"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--engines", default="torch,onnx,openvino,openvino-bf16")
    parser.add_argument("--conditions", default="idle,busy")
    parser.add_argument("--ort-matrix", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--text-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        report = child(args.child, args.models, args.text_file.read_text(encoding="utf-8"), args.output,
                       args.threads, args.warm)
        print(json.dumps(report))
        return 0
    engines = args.engines.split(",") + (list(ORT_MATRIX) if args.ort_matrix else [])
    rows = []
    print(f"load average before: {os.getloadavg()}", flush=True)
    for condition in args.conditions.split(","):
        for engine in engines:
            if condition == "busy":
                with BusyCore():
                    row = measure(engine, args.models, args.runs, args.threads)
            else:
                row = measure(engine, args.models, args.runs, args.threads)
            row["condition"] = condition
            row["load_average"] = os.getloadavg()[0]
            rows.append(row)
            print(f"{condition:5} {engine:32} 1 sent {row['start_to_wav_1_s']:5.2f} s  5 sent "
                  f"{row['start_to_wav_5_s']:5.2f} s  peak RSS {row['peak_rss_1_mb']:4.0f}/{row['peak_rss_5_mb']:4.0f} MB"
                  f"  warm RTF {row['warm_rtf']:.3f}  (load {row['load_1_s']:.2f} s, loadavg "
                  f"{row['load_average']:.1f}) {','.join(row['modules'])}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
