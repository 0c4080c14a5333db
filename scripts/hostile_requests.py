#!/usr/bin/env python3
"""The memory and time of the worst requests we can construct, each against a fresh server.

Usage: python scripts/hostile_requests.py --models DIR [--engine onnx] [--repo PATH ...]

For each request below, a fresh ``lavanya serve`` (from each ``--repo`` checkout, default this
one, so a baseline is measured in the same run) loads the voice, gets the request once, and is
stopped; each line gives the status, the seconds to the last byte, and the server's resident
memory when ready (and its peak while loading), at its peak (``VmHWM``) and after the request.
Every request is within the server's defaults (2000 characters, alpha 0.25-4).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

REQUESTS = {
    "spelled words (the 2 KB request of the issue)": {"text": "WXYZQ " * 330},
    "20-letter words spelled, rate 1.5 (sentences near the 10,000-frame cap)": {
        "text": "WXYZQWXYZQWXYZQWXYZQ " * 95, "alpha": 1.5},
    "digits read one by one": {"text": "फ़ोन नंबर " + "9876543210 " * 180},
    "an ordinary paragraph": {"text": "नमस्ते, आप कैसे हैं? मैं ठीक हूँ। आज मौसम अच्छा है। " * 5},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def _get(url: str, body: dict | None = None, timeout: float = 600) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def measure(repo: Path, models: Path, engine: str, request: dict) -> dict:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(repo), "MALLOC_ARENA_MAX": "2"}
    server = subprocess.Popen([sys.executable, "-c", "from lavanya_cli.cli import run; run()", "serve", "--models",
                               str(models), "--voice", "hindi/male", "--engine", engine, "--port", str(port),
                               "--timeout", "600"],
                              cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if _get(url + "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server from {repo} did not start")
            time.sleep(0.3)
        ready = _memory_mb(server.pid)
        started = time.perf_counter()
        status, body = _get(url + "/api/tts", {"lang": "hindi", "gender": "male", **request})
        seconds = time.perf_counter() - started
        memory = _memory_mb(server.pid)
        audio = max(0, len(body) - 44) / 2 / 22050 if status == 200 else 0.0
        return {"status": status, "seconds": seconds, "audio_seconds": audio, "ready_mb": ready["VmRSS"],
                "load_peak_mb": ready["VmHWM"], "after_mb": memory["VmRSS"], "peak_mb": memory["VmHWM"]}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--engine", default="onnx")
    parser.add_argument("--repo", type=Path, action="append", help="a checkout to measure (repeat; default: this one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    repos = args.repo or [REPO]
    results = []
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    for name, request in REQUESTS.items():
        for repo in repos:
            figures = measure(repo, args.models, args.engine, request)
            results.append({"request": name, "repo": str(repo), **figures})
            print(f"{name} [{repo.name}]: {figures['status']}, {figures['seconds']:.1f} s for "
                  f"{figures['audio_seconds']:.0f} s of audio, ready {figures['ready_mb']:.0f} MB (load peak "
                  f"{figures['load_peak_mb']:.0f}), peak {figures['peak_mb']:.0f} MB, after {figures['after_mb']:.0f} MB",
                  file=sys.stderr)
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
