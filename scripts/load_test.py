#!/usr/bin/env python3
"""Load-test ``lavanya serve`` on loopback: start a server, run N clients for a fixed time, report.

Usage: python scripts/load_test.py --models ROOT [--voice hindi/male] [--clients 4] [--duration 20]
           [--max-requests 500] [--workers N] [--threads N] [--queue N] [--timeout S]
           [--engine auto|onnx|openvino|torch] [--json]

The script starts the server itself on 127.0.0.1 (a free port), waits until it is ready, sends one
warm-up request, then has ``--clients`` clients each send speech requests back to back (a mix of
short, medium and long Hindi texts) until ``--duration`` seconds have passed or ``--max-requests``
have been sent; a 503 is followed by a pause of its Retry-After (at most 2 s). It reports latency
and time to first byte (p50/p95/max, successful requests), throughput in seconds of audio per
second, counts of 503, 504, cut streams and other errors, and the server's resident memory when
ready and at its peak (from /proc). Nothing leaves the machine; everything is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"  # loopback only, by construction: there is no option to aim elsewhere
MAX_CLIENTS = 64
MAX_DURATION = 600.0
MAX_REQUESTS = 10_000
READY_SECONDS = 300.0
RETRY_PAUSE_CAP = 2.0
WAV_HEADER = 44

TEXTS = (
    "नमस्ते, आप कैसे हैं?",
    "आज मौसम बहुत अच्छा है। हम शाम को बाग़ में टहलने जाएँगे। वहाँ बहुत से पेड़ और फूल हैं।",
    "भारत एक विशाल देश है, जहाँ अनेक भाषाएँ बोली जाती हैं। हर राज्य की अपनी संस्कृति और परंपराएँ हैं। "
    "लोग त्योहार मिलकर मनाते हैं और एक दूसरे की मदद करते हैं। गाँवों में खेती मुख्य काम है, "
    "जबकि शहरों में उद्योग और व्यापार फैले हुए हैं। शिक्षा और स्वास्थ्य पर ध्यान देना सबसे ज़रूरी है। "
    "बच्चे हमारे देश का भविष्य हैं।",
)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    sent: int = 0
    busy: int = 0  # 503
    timed_out: int = 0  # 504
    cut: int = 0  # a 200 whose stream ended early
    other: dict[str, int] = field(default_factory=dict)

    def count_other(self, what: str) -> None:
        self.other[what] = self.other.get(what, 0) + 1


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid`` in bytes, from /proc."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, port: int, log) -> subprocess.Popen:
    command = [sys.executable, "-c", "import sys; from lavanya_cli.cli import main; sys.exit(main())", "serve",
               "--host", HOST, "--port", str(port), "--workers", str(args.workers), "--queue", str(args.queue),
               "--timeout", str(args.timeout), "--engine", args.engine]
    if args.models:
        command += ["--models", str(args.models)]
    for voice in args.voice:
        command += ["--voice", voice]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


async def wait_ready(client, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the server was not ready within {READY_SECONDS:g} s")


async def one_request(client, body: dict, tally: Tally | None, timeout: float) -> float:
    """Send one request; returns the pause a 503 asks for (0 otherwise)."""
    import httpx

    started = time.perf_counter()
    try:
        async with client.stream("POST", "/api/tts", json=body, timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                if tally is not None:
                    if response.status_code == 503:
                        tally.busy += 1
                    elif response.status_code == 504:
                        tally.timed_out += 1
                    else:
                        tally.count_other(f"HTTP {response.status_code}")
                retry = response.headers.get("retry-after", "1")
                return min(RETRY_PAUSE_CAP, float(retry)) if response.status_code == 503 and retry.isdigit() else 0.0
            rate = int(response.headers["x-sample-rate"])
            first = None
            size = 0
            try:
                async for chunk in response.aiter_raw():
                    if first is None:
                        first = time.perf_counter() - started
                    size += len(chunk)
            except httpx.RemoteProtocolError:
                if tally is not None:
                    tally.cut += 1
                return 0.0
    except httpx.HTTPError as exc:
        if tally is not None:
            tally.count_other(type(exc).__name__)
        return 0.0
    if tally is not None:
        tally.latencies.append(time.perf_counter() - started)
        tally.first_bytes.append(first if first is not None else math.nan)
        tally.audio_seconds += max(0, size - WAV_HEADER) / 2 / rate
    return 0.0


async def run_clients(args: argparse.Namespace, url: str, server: subprocess.Popen) -> tuple[Tally, float, dict]:
    import httpx

    language, gender = (args.voice[0].split("/") + ["male"])[:2] if args.voice else ("hindi", "male")
    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.timeout + 30) as client:
        await wait_ready(client, server)
        ready_memory = proc_memory(server.pid)
        await one_request(client, {"text": TEXTS[0], "lang": language, "gender": gender}, None, args.timeout + 30)
        tally = Tally()
        started = time.monotonic()
        stop_at = started + args.duration

        async def client_loop(index: int) -> None:
            turn = index
            while time.monotonic() < stop_at and tally.sent < args.max_requests:
                tally.sent += 1
                body = {"text": TEXTS[turn % len(TEXTS)], "lang": language, "gender": gender}
                turn += 1
                pause = await one_request(client, body, tally, args.timeout + 30)
                if pause:
                    await asyncio.sleep(min(pause, max(0.0, stop_at - time.monotonic())))

        await asyncio.gather(*(client_loop(index) for index in range(args.clients)))
        return tally, time.monotonic() - started, ready_memory


def summary(args: argparse.Namespace, tally: Tally, wall: float, ready: dict, peak: dict) -> dict:
    def spread(values: list[float]) -> dict[str, float | None]:
        values = [value for value in values if not math.isnan(value)]
        rounded = lambda value: None if value is None else round(value, 3)  # noqa: E731
        return {"p50": rounded(percentile(values, 0.5)), "p95": rounded(percentile(values, 0.95)),
                "max": rounded(max(values) if values else None)}

    return {
        "clients": args.clients, "workers": args.workers, "threads": args.threads, "queue": args.queue,
        "seconds": round(wall, 2), "requests": tally.sent, "ok": len(tally.latencies),
        "status_503": tally.busy, "status_504": tally.timed_out, "cut_streams": tally.cut, "other_errors": tally.other,
        "latency_seconds": spread(tally.latencies), "first_byte_seconds": spread(tally.first_bytes),
        "audio_seconds": round(tally.audio_seconds, 2),
        "audio_seconds_per_second": round(tally.audio_seconds / wall, 3) if wall else None,
        "server_rss_ready_mb": round(ready.get("VmRSS", 0) / 2**20, 1),
        "server_rss_peak_mb": round(peak.get("VmHWM", 0) / 2**20, 1),
    }


def print_text(report: dict) -> None:
    lat, first = report["latency_seconds"], report["first_byte_seconds"]
    print(f"{report['clients']} clients, {report['workers']} workers, {report['seconds']} s: {report['requests']} requests, "
          f"{report['ok']} ok, {report['status_503']} x 503, {report['status_504']} x 504, "
          f"{report['cut_streams']} cut, other errors {report['other_errors'] or 'none'}")
    print(f"latency      p50 {lat['p50']} s  p95 {lat['p95']} s  max {lat['max']} s")
    print(f"first byte   p50 {first['p50']} s  p95 {first['p95']} s  max {first['max']} s")
    print(f"throughput   {report['audio_seconds_per_second']} s of audio per second ({report['audio_seconds']} s in all)")
    print(f"server RSS   {report['server_rss_ready_mb']} MB when ready, {report['server_rss_peak_mb']} MB peak")


def bounded(kind, low, high):
    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value
    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="model root (default: lavanya's own search)")
    parser.add_argument("--voice", action="append", default=[], help="voice to serve and ask for, e.g. hindi/male")
    parser.add_argument("--clients", type=bounded(int, 1, MAX_CLIENTS), default=4)
    parser.add_argument("--duration", type=bounded(float, 0.1, MAX_DURATION), default=20.0, help="seconds")
    parser.add_argument("--max-requests", type=bounded(int, 1, MAX_REQUESTS), default=500)
    parser.add_argument("--workers", type=bounded(int, 1, 64), default=1)
    parser.add_argument("--threads", type=bounded(int, 1, 256), default=None)
    parser.add_argument("--queue", type=bounded(int, 0, 1000), default=8)
    parser.add_argument("--timeout", type=bounded(float, 1, 600), default=60.0)
    parser.add_argument("--engine", choices=("auto", "onnx", "openvino", "torch"), default="auto")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(args, port, log)
        try:
            tally, wall, ready = asyncio.run(run_clients(args, f"http://{HOST}:{port}", server))
            peak = proc_memory(server.pid)
        except RuntimeError as exc:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
            print(f"load_test: {exc}", file=sys.stderr)
            return 2
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    report = summary(args, tally, wall, ready, peak)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(report)
    return 1 if report["other_errors"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
