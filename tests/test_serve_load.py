"""scripts/load_test.py, briefly and with small numbers, against a server on the tiny voice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthkit import shared_voice_root

REPO = Path(__file__).resolve().parents[1]


def _load_test(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "load_test.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.slow  # a load test of a few seconds against a server
def test_load_test_reports_latency_throughput_errors_and_memory():
    result = _load_test("--models", str(shared_voice_root()), "--voice", "hindi/male", "--clients", "3",
                        "--duration", "3", "--max-requests", "6", "--queue", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["clients"] == 3 and 1 <= report["requests"] <= 6
    assert report["ok"] >= 1 and report["other_errors"] == {}
    assert report["ok"] + report["status_503"] + report["status_504"] + report["cut_streams"] == report["requests"]
    latency, first = report["latency_seconds"], report["first_byte_seconds"]
    assert 0 < first["p50"] <= latency["p50"] <= latency["p95"] <= latency["max"]
    assert report["audio_seconds"] > 0 and report["audio_seconds_per_second"] > 0
    assert report["server_rss_peak_mb"] >= report["server_rss_ready_mb"] > 0


def test_load_test_refuses_unbounded_runs():
    result = _load_test("--clients", "1000")
    assert result.returncode == 2 and "must be from 1 to 64" in result.stderr
