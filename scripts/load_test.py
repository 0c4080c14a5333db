#!/usr/bin/env python3
"""Load-test ``lavanya serve`` on loopback: start a server, run N clients for a fixed time, report.

Usage: python scripts/load_test.py --models ROOT [--voice hindi/male] [--clients 4] [--duration 20]
           [--max-requests 500] [--workers N] [--threads N] [--queue N] [--timeout S]
           [--engine auto|onnx|openvino|torch] [--json]
       many voices:  ... --models FARM --voices all [--seed 0] [--max-memory 450M] [--serve-arg=--opt=value]
       (``--random-voices`` is ``--voices all``; ``--voices hindi/male,tamil/female`` picks among those)
       warm/cold:    ... --models FARM --warm-voice [hindi/male] [--warm-requests 20] [--cold-requests 10]

The script starts the server itself on 127.0.0.1 (a free port), waits until it is ready, sends one
warm-up request, then has ``--clients`` clients each send speech requests back to back (a mix of
short, medium and long Hindi texts) until ``--duration`` seconds have passed or ``--max-requests``
have been sent; a 503 is followed by a pause of its Retry-After (at most 2 s). It reports latency
and time to first byte (p50/p95/max, successful requests), throughput in seconds of audio per
second, counts of 503, 504, cut streams and other errors, and the server's resident memory when
ready and at its peak (from /proc). Nothing leaves the machine; everything is bounded.

Many voices (``--voices``): no warm-up; each client takes, per request, the next voice of the
server's ``GET /api/voices`` list from a shuffled deck all clients share (so every voice is asked
for once in each round of as many requests as there are voices) and a short sentence in that
voice's language: the language's words for a few numbers from ``ROOT/numToText/<language>.csv``
(the Hindi texts where there is no table or no ``--models``). A request is "cold" when its voice
was not resident when it was sent: the response header ``X-Voice-Loaded: cold|warm`` says so where
the server sends it; until one is seen, the voice's ``state`` in ``/api/voices`` ("resident",
"loading", "cold") is read just before sending, and a server that lists no state (one that loads
every voice at start) counts as all resident. The report adds time to first byte for cold and
warm requests apart, the voices that answered 200 (and those that never did), errors by status,
and, where ``/metrics`` has them, voice loads and evictions during the run
(``lavanya_voice_loads_total``, ``lavanya_voice_evictions_total``) and the resident voices, resident
bytes and memory budget (gauges, sampled each second: the largest seen and the last).
``--max-memory`` and each ``--serve-arg`` are passed to ``lavanya serve`` as they are (write
``--serve-arg=--flag=value`` for a value that starts with a dash).

``--warm-voice [VOICE]`` measures instead of loading the server: one client sends one request to
VOICE (default: the first voice listed) to load it, then ``--warm-requests`` more, one at a time
(time to first byte of a warm voice); then ``--cold-requests`` requests, each to a voice that is not
resident just then (by its state; a server without states offers none, and only the header could
tell), one at a time (time to first byte of a cold voice).

Exit status: 0, or 1 where an error other than 503, 504 or a cut stream happened, 2 where the
server did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
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
MAX_SERVE_ARGS = 16
MONITOR_SECONDS = 1.0  # how often gauges and memory are sampled in the many-voice mode
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
    # Many-voice mode: filled only when one_request is told the voice and its state.
    statuses: dict[str, int] = field(default_factory=dict)  # every answer but 200, by status (or exception)
    first_bytes_cold: list[float] = field(default_factory=list)
    first_bytes_warm: list[float] = field(default_factory=list)
    voices_ok: dict[str, int] = field(default_factory=dict)
    voices_asked: dict[str, int] = field(default_factory=dict)
    sent_cold: int = 0  # requests sent while their voice was not resident, by state or header
    header_seen: bool = False  # the server sends X-Voice-Loaded: states need no polling

    def count_other(self, what: str) -> None:
        self.other[what] = self.other.get(what, 0) + 1

    def count_status(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


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
    if args.max_memory:
        command += ["--max-memory", args.max_memory]
    command += args.serve_arg
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


async def one_request(client, body: dict, tally: Tally | None, timeout: float, *,
                      voice: str | None = None, kind: str | None = None) -> float:
    """Send one request; returns the pause a 503 asks for (0 otherwise). With ``voice`` and
    ``kind`` ("cold"/"warm" as the state said before sending; the response's X-Voice-Loaded
    header overrides it) the many-voice figures are kept too."""
    import httpx

    if tally is not None and voice is not None:
        tally.voices_asked[voice] = tally.voices_asked.get(voice, 0) + 1

    started = time.perf_counter()
    try:
        async with client.stream("POST", "/api/tts", json=body, timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                if tally is not None and voice is not None:
                    tally.count_status(str(response.status_code))
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
            loaded = response.headers.get("x-voice-loaded", "").strip().lower()
            if loaded in ("cold", "warm"):
                kind = loaded
                if tally is not None:
                    tally.header_seen = True
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
                    if voice is not None:
                        tally.count_status("cut")
                return 0.0
    except httpx.HTTPError as exc:
        if tally is not None:
            tally.count_other(type(exc).__name__)
            if voice is not None:
                tally.count_status(type(exc).__name__)
        return 0.0
    if tally is not None:
        tally.latencies.append(time.perf_counter() - started)
        tally.first_bytes.append(first if first is not None else math.nan)
        tally.audio_seconds += max(0, size - WAV_HEADER) / 2 / rate
        if voice is not None:
            tally.voices_ok[voice] = tally.voices_ok.get(voice, 0) + 1
            if kind is not None and first is not None:
                (tally.first_bytes_cold if kind == "cold" else tally.first_bytes_warm).append(first)
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


# -- many voices -----------------------------------------------------------------------------

METRIC_NAMES = ("lavanya_voice_loads_total", "lavanya_voice_evictions_total", "lavanya_resident_voices",
                "lavanya_resident_bytes", "lavanya_memory_budget_bytes", "lavanya_voice_load_seconds_sum",
                "lavanya_voice_load_seconds_count")
_TYPE_LINE = re.compile(r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) counter\s*$")
_METRIC_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(?P<value>\S+)")


@dataclass(frozen=True)
class ServedVoice:
    """A voice of ``/api/voices`` and the request body that asks for it."""

    name: str
    language: str
    gender: str
    variant: str | None

    def body(self, text: str) -> dict:
        body = {"text": text, "lang": self.language, "gender": self.gender}
        if self.variant:
            body["variant"] = self.variant
        return body


async def served_voices(client) -> tuple[list[ServedVoice], dict[str, str]]:
    """The server's voices, and each one's ``state`` where the server lists it."""
    listing = (await client.get("/api/voices")).json()
    voices, states = [], {}
    for entry in listing.get("voices", []):
        voices.append(ServedVoice(entry["name"], entry["language"], entry["gender"], entry.get("variant")))
        if isinstance(entry.get("state"), str):
            states[entry["name"]] = entry["state"]
    return voices, states


async def voice_kind(client, tally: Tally, name: str) -> str:
    """"cold" where ``name`` is not resident just now (state "cold" or "loading"), else "warm";
    no state read once the server's X-Voice-Loaded header has been seen (the header decides)."""
    import httpx

    if tally.header_seen:
        return "warm"
    try:
        _, states = await served_voices(client)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):  # the answer's header decides, if it has one
        return "warm"
    kind = "cold" if states.get(name, "resident") in ("cold", "loading") else "warm"
    if kind == "cold":
        tally.sent_cold += 1
    return kind


def language_texts(models: Path | None, language: str) -> tuple[str, ...]:
    """Short sentences in ``language``: its words for a few numbers, from the tree's numToText
    table (the phone dictionary's words, else the Hindi texts, where that fails)."""
    if models is not None:
        from lavanya_cli.checks.speak_check import sentence_for_language
        from lavanya_cli.errors import LavanyaError
        from lavanya_cli.frontend.numbers import NumberTable

        try:
            table = NumberTable.load(models / "numToText" / f"{language}.csv")
            return tuple(" ".join(table.word(n) for n in numbers)
                         for numbers in (("1", "2", "3"), ("4", "5", "6", "7"), ("8", "9", "10", "20", "30")))
        except (LavanyaError, LookupError, OSError):
            sentence = sentence_for_language(models, language)
            if sentence:
                return (sentence,)
    return TEXTS[:2]


async def read_metrics(client) -> dict[str, float]:
    """The lavanya voice-memory metrics ``/metrics`` has (summed over labels); {} for none."""
    import httpx

    try:
        response = await client.get("/metrics")
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    found: dict[str, float] = {}
    for line in response.text.splitlines():
        declared = _TYPE_LINE.match(line)  # a labelled counter with no sample yet is 0, not absent
        if declared and f"{declared.group('name')}_total" in METRIC_NAMES:
            found.setdefault(f"{declared.group('name')}_total", 0.0)
            continue
        match = _METRIC_LINE.match(line)
        if match and match.group("name") in METRIC_NAMES:
            try:
                found[match.group("name")] = found.get(match.group("name"), 0.0) + float(match.group("value"))
            except ValueError:
                pass
    return found


@dataclass
class Watch:
    """What the monitor saw during the run: metrics at start and end, gauges' largest values."""

    start: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)
    largest: dict[str, float] = field(default_factory=dict)
    rss_largest: int = 0

    def sample(self, metrics: dict[str, float], pid: int) -> None:
        for name, value in metrics.items():
            self.largest[name] = max(value, self.largest.get(name, value))
        self.rss_largest = max(self.rss_largest, proc_memory(pid).get("VmRSS", 0))


async def monitor(client, watch: Watch, pid: int, stop: asyncio.Event) -> None:
    """Sample the gauges and the server's RSS each MONITOR_SECONDS until ``stop``."""
    while not stop.is_set():
        watch.sample(await read_metrics(client), pid)
        try:
            await asyncio.wait_for(stop.wait(), MONITOR_SECONDS)
        except TimeoutError:
            pass


def pick_voices(args: argparse.Namespace, voices: list[ServedVoice]) -> list[ServedVoice]:
    """The served voices the clients choose among: all, or those ``--voices`` names."""
    if args.voices == "all":
        return voices
    wanted = [name.strip().lower() for name in args.voices.split(",") if name.strip()]
    chosen = [voice for voice in voices if voice.name.lower() in wanted
              or f"{voice.language}/{voice.gender}" in wanted]
    if not chosen:
        raise RuntimeError(f"none of --voices {args.voices} is served; the server has "
                           f"{', '.join(v.name for v in voices)}")
    return chosen


async def run_many(args: argparse.Namespace, url: str, server: subprocess.Popen) -> tuple[Tally, float, dict, dict]:
    """The load phase with a random voice per request (see the module doc)."""
    import httpx

    limits = httpx.Limits(max_connections=args.clients + 8)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.timeout + 30) as client:
        await wait_ready(client, server)
        ready_memory = proc_memory(server.pid)
        voices, states = await served_voices(client)
        voices = pick_voices(args, voices)
        texts = {voice.language: language_texts(args.models, voice.language) for voice in voices}
        watch = Watch(start=await read_metrics(client))
        watch.sample(watch.start, server.pid)
        tally = Tally()
        stop = asyncio.Event()
        watcher = asyncio.create_task(monitor(client, watch, server.pid, stop))
        started = time.monotonic()
        stop_at = started + args.duration

        deck: list[ServedVoice] = []
        dealer = random.Random(args.seed)

        def next_voice() -> ServedVoice:
            """Voices dealt from one shuffled deck that all clients share, shuffled again when it
            runs out: random order, yet every voice is asked for once per len(voices) requests."""
            if not deck:
                deck.extend(dealer.sample(voices, len(voices)))
            return deck.pop()

        async def client_loop(index: int) -> None:
            chooser = random.Random(args.seed * 1000 + index)
            while time.monotonic() < stop_at and tally.sent < args.max_requests:
                tally.sent += 1
                voice = next_voice()
                body = voice.body(chooser.choice(texts[voice.language]))
                kind = await voice_kind(client, tally, voice.name)
                pause = await one_request(client, body, tally, args.timeout + 30, voice=voice.name, kind=kind)
                if pause:
                    await asyncio.sleep(min(pause, max(0.0, stop_at - time.monotonic())))

        await asyncio.gather(*(client_loop(index) for index in range(args.clients)))
        wall = time.monotonic() - started
        stop.set()
        await watcher
        watch.end = await read_metrics(client)
        watch.sample(watch.end, server.pid)
        extra = {"voices": [voice.name for voice in voices], "states_listed": bool(states), "watch": watch}
        return tally, wall, ready_memory, extra


async def run_warm_cold(args: argparse.Namespace, url: str, server: subprocess.Popen) -> tuple[dict, dict, dict]:
    """``--warm-voice``: one client; a warm voice's and cold voices' time to first byte."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=args.timeout + 30) as client:
        await wait_ready(client, server)
        ready_memory = proc_memory(server.pid)
        voices, states = await served_voices(client)
        if args.warm_voice == "auto":
            warm = voices[0]
        else:
            matches = [v for v in voices if args.warm_voice.lower() in (v.name.lower(), f"{v.language}/{v.gender}")]
            if not matches:
                raise RuntimeError(f"--warm-voice {args.warm_voice} is not served; the server has "
                                   f"{', '.join(v.name for v in voices)}")
            warm = matches[0]
        texts = {voice.language: language_texts(args.models, voice.language) for voice in voices}
        start_metrics = await read_metrics(client)
        warm_tally, cold_tally = Tally(), Tally()
        first = await voice_kind(client, warm_tally, warm.name)
        await one_request(client, warm.body(texts[warm.language][0]), warm_tally, args.timeout + 30,
                          voice=warm.name, kind=first)
        loading = {"first_request": "cold" if warm_tally.first_bytes_cold else "warm",
                   "first_byte_seconds": round(warm_tally.first_bytes[0], 3) if warm_tally.first_bytes else None}
        warm_tally = Tally(header_seen=warm_tally.header_seen)
        for turn in range(args.warm_requests):
            kind = await voice_kind(client, warm_tally, warm.name)
            await one_request(client, warm.body(texts[warm.language][turn % len(texts[warm.language])]), warm_tally,
                              args.timeout + 30, voice=warm.name, kind=kind)
        chooser = random.Random(args.seed)
        cold_tally.header_seen = warm_tally.header_seen
        skipped = None
        asked: set[str] = {warm.name}
        for _ in range(args.cold_requests):
            _, states = await served_voices(client)
            if states:
                candidates = [v for v in voices if states.get(v.name) == "cold" and v.name != warm.name]
            else:  # no states: voices not asked yet, classified by the header (resident without one)
                candidates = [v for v in voices if v.name not in asked]
            if not candidates:
                skipped = "no voice was cold" if states else "the server lists no voice states"
                break
            voice = chooser.choice(candidates)
            asked.add(voice.name)
            kind = "cold" if states.get(voice.name, "resident") != "resident" else "warm"
            await one_request(client, voice.body(texts[voice.language][0]), cold_tally, args.timeout + 30,
                              voice=voice.name, kind=kind)
        end_metrics = await read_metrics(client)
    report = {
        "warm_voice": warm.name, "warm_voice_loading": loading,
        "warm_requests": args.warm_requests, "warm_ok": len(warm_tally.latencies),
        "warm_first_byte_seconds": spread(warm_tally.first_bytes_warm),
        "warm_requests_that_were_cold": len(warm_tally.first_bytes_cold),
        "cold_requests": sum(cold_tally.voices_asked.values()),
        "cold_ok": len(cold_tally.latencies),
        "cold_first_byte_seconds": spread(cold_tally.first_bytes_cold),
        "cold_requests_that_were_warm": len(cold_tally.first_bytes_warm),
        "cold_stopped_early": skipped,
        "errors_by_status": {**warm_tally.statuses, **{k: v + warm_tally.statuses.get(k, 0)
                                                      for k, v in cold_tally.statuses.items()}},
        "state_source": state_source(cold_tally.header_seen or warm_tally.header_seen, bool(states)),
        **metric_deltas(start_metrics, end_metrics, {}),
    }
    return report, ready_memory, {}


def spread(values: list[float]) -> dict[str, float | None]:
    values = [value for value in values if not math.isnan(value)]
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {"p50": rounded(percentile(values, 0.5)), "p95": rounded(percentile(values, 0.95)),
            "max": rounded(max(values) if values else None), "count": len(values)}


def state_source(header: bool, listed: bool) -> str:
    if header:
        return "X-Voice-Loaded header"
    return "/api/voices state" if listed else "none: the server lists no states (all counted resident)"


def metric_deltas(start: dict[str, float], end: dict[str, float], largest: dict[str, float]) -> dict:
    """Loads and evictions during the run, the gauges at the end (and their largest), MB for bytes."""
    found: dict = {}
    for name, key in (("lavanya_voice_loads_total", "voice_loads"), ("lavanya_voice_evictions_total", "voice_evictions")):
        if name in end:
            found[key] = int(end[name] - start.get(name, 0.0))
    for name, key, scale in (("lavanya_resident_voices", "resident_voices", 1),
                             ("lavanya_resident_bytes", "resident_mb", 2**20),
                             ("lavanya_memory_budget_bytes", "memory_budget_mb", 2**20)):
        if name in end:
            found[key] = round(end[name] / scale, 1) if scale > 1 else int(end[name])
            if name in largest and name != "lavanya_memory_budget_bytes":
                found[f"{key}_max"] = round(largest[name] / scale, 1) if scale > 1 else int(largest[name])
    if "lavanya_voice_load_seconds_count" in end:
        count = end["lavanya_voice_load_seconds_count"] - start.get("lavanya_voice_load_seconds_count", 0.0)
        total = end.get("lavanya_voice_load_seconds_sum", 0.0) - start.get("lavanya_voice_load_seconds_sum", 0.0)
        found["voice_load_seconds_mean"] = round(total / count, 3) if count else None
    if found.get("memory_budget_mb") == 0:
        found["memory_budget_mb"] = None  # the server's 0: no budget
    if not end:
        found["metrics"] = "the server's /metrics has no voice-memory metrics"
    return found


def many_summary(args: argparse.Namespace, tally: Tally, extra: dict) -> dict:
    """The many-voice figures added to ``summary``'s."""
    served = extra["voices"]
    watch: Watch = extra["watch"]
    answered = sorted(name for name in tally.voices_ok)
    return {
        "mode": "many-voices", "seed": args.seed, "max_memory": args.max_memory, "serve_args": args.serve_arg,
        "voices_served": len(served), "voices_answered": len(answered),
        "voices_never_answered": sorted(set(served) - set(answered)),
        "errors_by_status": dict(sorted(tally.statuses.items())),
        "first_byte_cold_seconds": spread(tally.first_bytes_cold),
        "first_byte_warm_seconds": spread(tally.first_bytes_warm),
        "sent_while_not_resident": tally.sent_cold,  # by the state read before sending (0 once the header decides)
        "state_source": state_source(tally.header_seen, extra["states_listed"]),
        "server_rss_sampled_max_mb": round(watch.rss_largest / 2**20, 1),
        **metric_deltas(watch.start, watch.end, watch.largest),
    }


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
    if report.get("mode") == "many-voices":
        print_memory_lines(report)


def print_memory_lines(report: dict) -> None:
    """The many-voice and warm/cold lines (shared by both reports)."""
    for key, label in (("first_byte_warm_seconds", "warm TTFB   "), ("first_byte_cold_seconds", "cold TTFB   "),
                       ("warm_first_byte_seconds", "warm voice  "), ("cold_first_byte_seconds", "cold voices ")):
        if key in report:
            part = report[key]
            print(f"{label} p50 {part['p50']} s  p95 {part['p95']} s  max {part['max']} s  ({part['count']} requests)")
    if "voices_served" in report:
        missing = report["voices_never_answered"]
        print(f"voices       {report['voices_answered']} of {report['voices_served']} answered 200"
              + (f"; never: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}" if missing else ""))
        print(f"errors       {report['errors_by_status'] or 'none'} (by status)")
    if "voice_loads" in report or "resident_voices" in report:
        def most(key: str) -> str:
            return f" (max {report[key]})" if report.get(key) is not None else ""

        print(f"memory       loads {report.get('voice_loads')}, evictions {report.get('voice_evictions')}, resident "
              f"{report.get('resident_voices')} voices{most('resident_voices_max')}, "
              f"{report.get('resident_mb')} MB{most('resident_mb_max')}, budget "
              f"{report.get('memory_budget_mb') or 'none'} MB; a load took {report.get('voice_load_seconds_mean')} s on average")
    elif "metrics" in report:
        print(f"memory       {report['metrics']}")
    print(f"cold/warm by {report['state_source']}")


def print_warm_cold(report: dict) -> None:
    loading = report["warm_voice_loading"]
    print(f"warm voice {report['warm_voice']}: first request {loading['first_request']} "
          f"({loading['first_byte_seconds']} s to first byte), then {report['warm_ok']} of {report['warm_requests']} ok")
    print(f"cold voices: {report['cold_ok']} of {report['cold_requests']} ok"
          + (f", stopped early: {report['cold_stopped_early']}" if report["cold_stopped_early"] else "")
          + (f"; {report['cold_requests_that_were_warm']} were warm after all" if report["cold_requests_that_were_warm"] else ""))
    print_memory_lines(report)
    if report["errors_by_status"]:
        print(f"errors       {report['errors_by_status']} (by status)")
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
    parser.add_argument("--voices", default=None, metavar="all|NAMES",
                        help="many-voice mode: a random voice of /api/voices per request (all, or comma-separated names)")
    parser.add_argument("--random-voices", dest="voices", action="store_const", const="all", help="--voices all")
    parser.add_argument("--seed", type=bounded(int, 0, 2**31), default=0, help="seed of the voice and text choices")
    parser.add_argument("--max-memory", default=None, metavar="SIZE", help="passed to lavanya serve (e.g. 450M)")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                        help=f"an extra lavanya serve argument, as is (repeatable, at most {MAX_SERVE_ARGS}); "
                             "write --serve-arg=--flag=value")
    parser.add_argument("--warm-voice", nargs="?", const="auto", default=None, metavar="VOICE",
                        help="measure instead of loading: a warm voice's and cold voices' time to first byte")
    parser.add_argument("--warm-requests", type=bounded(int, 1, 1000), default=20)
    parser.add_argument("--cold-requests", type=bounded(int, 0, 1000), default=10)
    parser.add_argument("--max-requests", type=bounded(int, 1, MAX_REQUESTS), default=500)
    parser.add_argument("--workers", type=bounded(int, 1, 64), default=1)
    parser.add_argument("--threads", type=bounded(int, 1, 256), default=None)
    parser.add_argument("--queue", type=bounded(int, 0, 1000), default=8)
    parser.add_argument("--timeout", type=bounded(float, 1, 600), default=60.0)
    parser.add_argument("--engine", choices=("auto", "onnx", "openvino", "torch"), default="auto")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if len(args.serve_arg) > MAX_SERVE_ARGS:
        parser.error(f"at most {MAX_SERVE_ARGS} --serve-arg")
    if any(arg in ("--host", "--port") or arg.startswith(("--host=", "--port=")) for arg in args.serve_arg):
        parser.error("--serve-arg cannot set --host or --port: the server stays on loopback, on a port of the script's")

    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(args, port, log)
        try:
            url = f"http://{HOST}:{port}"
            extra = None
            if args.warm_voice:
                measured, ready, _ = asyncio.run(run_warm_cold(args, url, server))
            elif args.voices:
                tally, wall, ready, extra = asyncio.run(run_many(args, url, server))
            else:
                tally, wall, ready = asyncio.run(run_clients(args, url, server))
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
    if args.warm_voice:
        report = {"mode": "warm-cold", "max_memory": args.max_memory, "serve_args": args.serve_arg, **measured,
                  "server_rss_ready_mb": round(ready.get("VmRSS", 0) / 2**20, 1),
                  "server_rss_peak_mb": round(peak.get("VmHWM", 0) / 2**20, 1)}
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            print_warm_cold(report)
        return 1 if set(report["errors_by_status"]) - {"503", "504", "cut"} else 0
    report = summary(args, tally, wall, ready, peak)
    if extra is not None:
        report.update(many_summary(args, tally, extra))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_text(report)
    return 1 if report["other_errors"] else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
