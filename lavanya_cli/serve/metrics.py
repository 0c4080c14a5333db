"""The server's Prometheus metrics, in a registry of its own (one per app, so tests and two apps
in one process never share counters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector

# Whole requests take from well under a second (a word on a fast machine) to the time limit.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
FIRST_BYTE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
# A voice loads in a fraction of a second (int8, deploy root) to tens (exported on first use).
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

if TYPE_CHECKING:
    from .voices import VoiceSet


class ServerMetrics:
    """Every label value is a route of the app, a status code, a reason named here or a voice
    name from the model tree: never a client's input."""

    def __init__(self, waiting: Callable[[], int], busy: Callable[[], int], voices: VoiceSet | None = None):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # resident memory, CPU seconds, open files
        self.requests = Counter(
            "lavanya_http_requests", "HTTP requests answered, by route and status code",
            ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "lavanya_tts_seconds", "Speech requests: seconds from arrival to the last byte sent",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_byte = Histogram(
            "lavanya_tts_first_byte_seconds", "Speech requests: seconds from arrival to the first audio byte",
            buckets=FIRST_BYTE_BUCKETS, registry=self.registry)
        self.audio_seconds = Counter(
            "lavanya_audio_seconds", "Seconds of audio sent, by voice", ["voice"], registry=self.registry)
        self.cut = Counter(
            "lavanya_tts_cut", "Speech requests stopped early: disconnect (the client left, at any point), "
            "timeout or error (after the first byte; before it the status says so)",
            ["reason"], registry=self.registry)
        queue_depth = Gauge("lavanya_queue_depth", "Speech requests waiting for a worker", registry=self.registry)
        queue_depth.set_function(waiting)
        workers_busy = Gauge("lavanya_workers_busy", "Workers holding a speech request", registry=self.registry)
        workers_busy.set_function(busy)
        self.loads = Counter("lavanya_voice_loads", "Voices loaded, by voice", ["voice"], registry=self.registry)
        self.load_seconds = Histogram("lavanya_voice_load_seconds", "Seconds each voice load took",
                                      buckets=LOAD_BUCKETS, registry=self.registry)
        self.evictions = Counter("lavanya_voice_evictions", "Voices evicted to make room, by voice", ["voice"],
                                 registry=self.registry)
        if voices is not None:
            resident = Gauge("lavanya_resident_voices", "Voices loaded now", registry=self.registry)
            resident.set_function(voices.resident_count)
            resident_bytes = Gauge("lavanya_resident_bytes", "Bytes the loaded voices are counted for "
                                   "(estimated from their graphs; see docs/serve.md)", registry=self.registry)
            resident_bytes.set_function(voices.resident_bytes)
            budget = Gauge("lavanya_memory_budget_bytes", "The server's memory budget (serve --max-memory; "
                           "0: none)", registry=self.registry)
            budget.set_function(lambda: voices.memory.budget or 0)

    def loaded(self, name: str, seconds: float) -> None:
        self.loads.labels(name).inc()
        self.load_seconds.observe(seconds)

    def evicted(self, name: str) -> None:
        self.evictions.labels(name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
