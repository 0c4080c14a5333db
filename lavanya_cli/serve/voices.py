"""The voices a server speaks with: listed at start-up without reading weights, loaded on first
use, kept within a memory budget.

``--voice hindi/male`` names a voice the way ``lavanya synth --lang hindi --gender male`` finds
it (the candidate roots, a real voice before the bundled demo): the named voices are served,
loaded at start and never evicted (pinned); with ``--on-demand`` the model root's other voices
too, loaded when first asked for. Without ``--voice``, every voice of the model root is served,
each loaded when first asked for. With a budget (``serve --max-memory``), loaded voices are kept by bytes: before a
load, the least recently used voices nobody is speaking with are evicted until the new one fits,
so the peak, not only the steady state, stays within it; a voice that cannot fit because the
others are all in use is refused for now (``VoiceMemoryBusy``: a 503 with Retry-After).
Requests for a voice that is loading wait for that one load. Voices that share a vocoder hold it
once (``speech.onnx_engine.shared_vocoder``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LavanyaError, option
from ..fileio import format_size
from ..modeltree.layout import (
    LANGUAGE_ALIASES,
    ModelRoot,
    VoiceSpec,
    find_voice,
    pick_voice,
    resolve_root,
)
from .memory import (
    Footprint,
    estimate_footprint,
    give_back_memory,
    rss_bytes,
)

if TYPE_CHECKING:
    from ..speech.options import LoadOptions

log = logging.getLogger("lavanya.serve")


@dataclass(frozen=True)
class VoiceName:
    """``language/gender[/variant]`` as a user writes it."""

    language: str
    gender: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> VoiceName:
        parts = [part.strip().lower() for part in text.split("/")]
        if len(parts) not in (2, 3) or not all(parts):
            raise LavanyaError(f"{option('voices', flag='--voice')} {text!r}: write language/gender or "
                               "language/gender/variant, e.g. hindi/male (see lavanya voices)")
        return cls(LANGUAGE_ALIASES.get(parts[0], parts[0]), parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return f"{self.language}/{self.gender}" + (f"/{self.variant}" if self.variant else "")


def choose_specs(names: list[VoiceName], models: Path | None) -> list[VoiceSpec]:
    """The named voices, else every voice of the model root with weights, found without reading
    any weights (fast, so a typo fails at once). Named voices must exist with real weights; of
    the root's, the others (LFS pointers, no ``model.pth``) are logged and passed over."""
    from ..modeltree.weights import require_speakable

    if names:
        specs = [find_voice(name.language, name.gender, name.variant, models, require=require_speakable)
                 for name in names]
        return list(dict.fromkeys(specs))
    root = resolve_root(models)
    specs = []
    for spec in ModelRoot(root).voices():
        try:
            require_speakable(spec)
        except LavanyaError as exc:
            log.warning("passed over %s: %s", spec.name, exc.message)
            continue
        specs.append(spec)
    if not specs:
        raise LavanyaError(f"{root}: no voice with weights to serve (see lavanya voices {root})")
    return specs


def served_specs(names: list[VoiceName], models: Path | None,
                 on_demand: bool = False) -> tuple[list[VoiceSpec], list[VoiceSpec]]:
    """Every voice the server speaks with, and those of them to pin: the named voices, pinned,
    and with ``on_demand`` the model root's other voices too (where there is a root), loaded
    when asked for; with no names, every voice of the root, none pinned."""
    if not names:
        return choose_specs([], models), []
    pinned = choose_specs(names, models)
    others: list[VoiceSpec] = []
    if on_demand:
        try:
            others = choose_specs([], models)
        except LavanyaError:  # no root beside the named voices (the bundled demo voice, say)
            pass
    return list(dict.fromkeys([*pinned, *others])), pinned


class VoiceMemoryBusy(Exception):
    """The voice does not fit in the budget now: the loaded voices are in use or pinned."""

    def __init__(self, name: str, needed: int, free: int):
        super().__init__(f"{name} needs {format_size(needed)} to load; {format_size(free)} of the memory budget "
                         "is free and every loaded voice is in use or pinned")


class VoiceUnavailable(Exception):
    """The voice failed to load (its LavanyaError is in the log): the server's problem, not the
    request's."""

    def __init__(self, name: str):
        super().__init__(f"the voice {name} cannot be loaded on this server; the server's log says why")


class VoicesObserver(Protocol):
    """Told about loads and evictions (the server's metrics)."""

    def loaded(self, name: str, seconds: float) -> None: ...

    def evicted(self, name: str) -> None: ...


@dataclass
class _Served:
    """One voice the server speaks with, and where it stands."""

    spec: VoiceSpec
    pinned: bool
    footprint: Footprint
    voice: Any = None  # the loaded Voice (or a test's stand-in)
    loading: bool = False
    users: int = 0
    last_used: float = 0.0
    failed: LavanyaError | None = None
    sample_rate: int | None = None

    @property
    def state(self) -> str:
        if self.failed is not None:
            return "failed"
        return "resident" if self.voice is not None else "loading" if self.loading else "cold"


@dataclass
class MemoryPlan:
    """The budget (None: unbounded) and the part of it not for voices: the process as it started
    and the working memory of the syntheses that may run at once."""

    budget: int | None = None
    fixed: int = 0
    measured: Callable[[], int] = rss_bytes  # what the process holds now
    from_cgroup: bool = False  # the budget is the cgroup's limit less headroom, not --max-memory


    @property
    def for_voices(self) -> int | None:
        return None if self.budget is None else self.budget - self.fixed

    def measured_from_now(self) -> "MemoryPlan":
        """This plan with what the process holds now (the runtime imported, no voice yet) added
        to its fixed part."""
        return MemoryPlan(self.budget, self.fixed + self.measured(), self.measured, self.from_cgroup)


class VoiceSet:
    """The voices a server speaks with (see the module doc). ``ready`` once the pinned voices
    have loaded. Thread-safe: workers ``acquire`` and ``release`` voices, the event loop reads."""

    def __init__(self, voices: list | None = None):
        self._served: dict[VoiceSpec, _Served] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._options: LoadOptions | None = None
        self.memory = MemoryPlan()
        self.observer: VoicesObserver | None = None
        self.ready = False
        if voices is not None:
            self.add_all(voices)

    # -- setting up ---------------------------------------------------------------------------

    def add_all(self, voices: list) -> None:
        """Serve ``voices``, already loaded, pinned (a server built around loaded voices)."""
        with self._lock:
            for voice in voices:
                self._served[voice.spec] = _Served(voice.spec, True, Footprint(0, 0, ""), voice=voice,
                                                   sample_rate=voice.sample_rate)
        self.ready = True

    def serve(self, specs: list[VoiceSpec], pinned: list[VoiceSpec], options: LoadOptions,
              memory: MemoryPlan | None = None) -> None:
        """Serve ``specs``, none loaded yet, with ``options``; ``pinned`` are loaded by
        ``load_pinned`` and kept. Raises LavanyaError where the budget cannot hold the pinned
        voices together, or some voice even alone (naming the budget it would need)."""
        self._options = options
        self.memory = memory or MemoryPlan()
        with self._lock:
            for spec in specs:
                self._served.setdefault(spec, _Served(spec, spec in pinned, estimate_footprint(spec, options.precision)))
        self._check_budget()
        if not pinned:
            self.ready = True

    def _check_budget(self) -> None:
        room = self.memory.for_voices
        if room is None:
            return
        pinned = [served for served in self._served.values() if served.pinned]
        needed = self._bytes_for(pinned)
        loading = max((served.footprint.loading() for served in self._served.values()), default=0)
        if pinned and needed + loading > room:
            names = ", ".join(served.spec.name for served in pinned)
            raise LavanyaError(self._too_small(f"the pinned voices ({names}) need {format_size(needed)} together",
                                               needed + loading))
        largest = max((served for served in self._served.values() if not served.pinned),
                      key=lambda served: self._bytes_for([*pinned, served]), default=None)
        if largest is not None and self._bytes_for([*pinned, largest]) + loading > room:
            needed = self._bytes_for([*pinned, largest])
            beside = " beside the pinned voices" if pinned else ""
            raise LavanyaError(self._too_small(f"{largest.spec.name} needs {format_size(needed - self._bytes_for(pinned))}"
                                               f"{beside}", needed + loading))

    def _too_small(self, what: str, needed: int) -> str:
        """The start-up error: ``needed`` is what the voices need, loading included."""
        budget = needed + self.memory.fixed
        named = ("the memory budget from the cgroup's limit" if self.memory.from_cgroup
                 else option('max_memory', flag='--max-memory'))
        return (f"{named} {format_size(self.memory.budget)} is too small: {what}, "
                f"and the server itself {format_size(self.memory.fixed)}; give at least {format_size(budget)}"
                " (or export the voices with --precision int8; see docs/serve.md)")

    @staticmethod
    def _bytes_for(served: list[_Served]) -> int:
        """Bytes ``served`` hold together: their acoustic models, and each vocoder once."""
        vocoders = {entry.footprint.vocoder_key: entry.footprint.vocoder for entry in served}
        return sum(entry.footprint.acoustic for entry in served) + sum(vocoders.values())

    def load_pinned(self) -> None:
        """Load the pinned voices (blocking); ``ready`` when they have. A failure is fatal."""
        for served in [entry for entry in self._served.values() if entry.pinned and entry.voice is None]:
            try:
                self.acquire(served.spec)
            except VoiceUnavailable:
                raise served.failed from None  # the LavanyaError: the command stops with it
            self.release(served.spec)
        self.ready = True

    # -- speaking -----------------------------------------------------------------------------

    def find(self, language: str, gender: str, variant: str | None = None) -> VoiceSpec:
        """The served voice asked for; without a variant the plain one is preferred, as on disk.
        Raises LookupError with the voice asked for."""
        spec = pick_voice(list(self._served), language, gender, variant)
        if spec is None:
            raise LookupError(VoiceName(LANGUAGE_ALIASES.get(language.lower(), language.lower()), gender.lower(), variant))
        return spec

    def is_resident(self, spec: VoiceSpec) -> bool:
        return self._served[spec].voice is not None

    def acquire(self, spec: VoiceSpec) -> tuple[Any, bool]:
        """The loaded voice of ``spec``, held until ``release``, and whether this call waited for
        it to load. Blocks while it loads. Raises VoiceMemoryBusy, or VoiceUnavailable where
        the load failed (logged; a voice that failed to load fails again at once)."""
        with self._changed:
            served = self._served[spec]
            waited = False
            while served.loading:
                waited = True
                self._changed.wait()
            if served.failed is not None:
                raise VoiceUnavailable(spec.name)
            if served.voice is not None:
                served.users += 1
                served.last_used = time.monotonic()
                return served.voice, waited
            evicted = self._make_room(served)
            served.loading = True
        loaded = None
        try:
            for name in evicted:
                log.info("evicted %s to load %s", name, spec.name)
                if self.observer is not None:
                    self.observer.evicted(name)
            loaded = self._load(served)
            return loaded, True
        finally:
            if loaded is None:  # whatever stopped the load, the voice is cold again, not loading for ever
                with self._changed:
                    served.loading = False
                    self._changed.notify_all()

    def release(self, spec: VoiceSpec) -> None:
        with self._lock:
            served = self._served[spec]
            served.users = max(0, served.users - 1)
            served.last_used = time.monotonic()

    def _load(self, served: _Served) -> Any:
        """Load ``served`` (marked loading); a LavanyaError is remembered as its failure."""
        from ..speech.cancel import StopSwitch, stoppable
        from ..speech.voice import Voice

        started = time.perf_counter()
        try:
            # Not the request's to stop: a client that leaves, or a deadline, must not leave a
            # half-made voice recorded as broken for the next request.
            with stoppable(StopSwitch()):
                voice = Voice.load(served.spec, options=self._options)
        except LavanyaError as exc:
            with self._changed:
                served.failed = exc
            log.error("cannot load %s: %s", served.spec.name, exc.message)
            raise VoiceUnavailable(served.spec.name) from None
        seconds = time.perf_counter() - started
        # Counted as what was loaded: a voice asked for at int8 whose guard refused it is f32.
        footprint = estimate_footprint(served.spec, getattr(voice.backend, "acoustic_precision", None))
        with self._changed:
            served.voice, served.loading, served.sample_rate = voice, False, voice.sample_rate
            served.footprint = footprint
            served.users += 1
            served.last_used = time.monotonic()
            self._changed.notify_all()
        for note in voice.notes:
            log.info("%s", note)
        log.info("loaded %s%s in %.2f s (%s engine); %s resident", served.spec.name,
                 " (demo voice)" if served.spec.demo else "", seconds, voice.engine, format_size(rss_bytes()))
        if self.observer is not None:
            self.observer.loaded(served.spec.name, seconds)
        return voice

    def _make_room(self, incoming: _Served) -> list[str]:
        """Evict idle voices, least recently used first, until ``incoming`` fits (under the
        lock); the names evicted. Raises VoiceMemoryBusy, evicting nothing, where it cannot fit
        even with every idle voice evicted."""
        room = self.memory.for_voices
        if room is None:
            return []
        holding = [served for served in self._served.values() if served.voice is not None or served.loading]
        kept = [served for served in holding if served.pinned or served.users or served.loading]
        if not self._fits(kept, incoming, room):
            needed = self._bytes_for([*kept, incoming]) - self._bytes_for(kept) + self._loading_bytes(kept, incoming)
            raise VoiceMemoryBusy(incoming.spec.name, needed, max(0, room - self._bytes_for(kept)))
        evicted = []
        while True:
            idle = [served for served in holding if served not in kept]
            needed = self._bytes_for([*holding, incoming]) - self._bytes_for(holding)
            # What the process really holds, too: an estimate that was low is caught here.
            by_measure = (self.memory.measured() + needed + self._loading_bytes(holding, incoming)
                          <= self.memory.budget)
            if self._fits(holding, incoming, room) and (by_measure or not idle):
                return evicted
            victim = min(idle, key=lambda served: served.last_used)
            victim.voice = None
            holding.remove(victim)
            evicted.append(victim.spec.name)
            give_back_memory()

    def _fits(self, holding: list[_Served], incoming: _Served, room: int) -> bool:
        return self._bytes_for([*holding, incoming]) + self._loading_bytes(holding, incoming) <= room

    @staticmethod
    def _loading_bytes(holding: list[_Served], incoming: _Served) -> int:
        """What loads in progress need beyond what they keep: ``incoming``'s (its vocoder's too,
        unless a voice held has it) and those of the voices already loading."""
        vocoder_held = any(served.footprint.vocoder_key == incoming.footprint.vocoder_key for served in holding)
        return (incoming.footprint.loading(with_vocoder=not vocoder_held)
                + sum(served.footprint.loading() for served in holding if served.loading))

    # -- what the server tells ----------------------------------------------------------------

    @property
    def voices(self) -> list:
        return [served.voice for served in self._sorted() if served.voice is not None]

    def names(self) -> list[str]:
        return [served.spec.name for served in self._sorted()]

    def _sorted(self) -> list[_Served]:
        return sorted(self._served.values(), key=lambda s: (s.spec.language, s.spec.gender, s.spec.variant))

    def resident_bytes(self) -> int:
        """Bytes the loaded voices are counted for (estimated from their graphs)."""
        with self._lock:
            return self._bytes_for([served for served in self._served.values() if served.voice is not None])

    def resident_count(self) -> int:
        return sum(1 for served in self._served.values() if served.voice is not None)

    def describe(self) -> list[dict[str, Any]]:
        """What ``GET /api/voices`` lists: no filesystem paths, which are the server's business."""
        return [{
            "name": served.spec.name,
            "language": served.spec.language,
            "gender": served.spec.gender,
            "variant": served.spec.variant or None,
            "sample_rate": served.sample_rate or self._sample_rate(served),
            "demo": served.spec.demo,
            "engine": getattr(served.voice, "engine", None),
            "state": served.state,
            "pinned": served.pinned,
        } for served in self._sorted()]

    @staticmethod
    def _sample_rate(served: _Served) -> int | None:
        from ..modeltree.config import output_rate, read_config

        try:
            served.sample_rate = output_rate(read_config(served.spec.config_path))
        except (LavanyaError, OSError, ValueError):
            return None
        return served.sample_rate

    def describe_memory(self) -> dict[str, int | None]:
        return {"budget_bytes": self.memory.budget, "resident_bytes": self.resident_bytes(),
                "resident_voices": self.resident_count()}
