"""Batch synthesis on Ray: the jobs of ``synth --lines/--jsonl`` spread over a laptop's cores or a cluster.

The driver does what a single-process batch does before any audio is made, with the same
functions (``batch.jobs``, ``batch.outputs``): each job's output checked (``batch_output``, ``check_outputs``),
each voice found (``VoiceCache``) and its ONNX export made once where it is missing
(``engines.prepare_exports``), each text segmented. A job whose voice or text fails is recorded
as failed; the others go, one at a time, to a pool of Ray actors (``SynthesisWorker``), each
holding at most ``IN_FLIGHT_PER_ACTOR`` jobs so none waits idle. Each actor loads a voice once,
on its first job for it, through the engine asked for (default ``auto``: an ONNX engine, so an
actor never imports torch unless told to), and writes each WAV itself with the one WAV writer
(``results.render_job``) into the output directory: a local path, or a URI that ``pyarrow.fs``
understands, so a cluster can write to shared or object storage.

The driver appends each job's result to a JSONL manifest the moment it arrives, so a stopped run
resumes where it stopped: a job whose WAV is present with the sha256 the manifest recorded, made
from the same job (text, voice, rate, engine), is skipped. A worker that is lost (its node left
the cluster, its process was killed) hands its jobs to the workers left; the run ends early only
when none is left. Temporary files of killed writers are removed at the start and the end of a
run. Ray's own messages go to its session's log directory, never to lavanya's output.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (EXIT_USAGE, LavanyaError, Stopped, flag_wording, flag_wording_in_use, import_optional, one_line,
                      option)
from ..fileio import KIB, check_output_target
from ..frontend import segment_text
from ..limits import available_cpus, checked_pause
from ..speech.audio import STDOUT
from ..speech.engines import prepare_exports, resolve_engine
from ..speech.options import TORCH, FindOptions, LoadOptions
from ..speech.voice import find_usable_voice
from ..speech.voice_cache import VoiceCache
from .jobs import Job, PlannedJob, batch_output, segment_jobs
from .outputs import OutputTarget, check_directories_take_files, check_outputs, check_outside_roots
from .results import RESULTS_NAME, ResultsWriter, job_result, read_results, render_job, voice_origin

if TYPE_CHECKING:
    from ..modeltree.layout import VoiceSpec

# Jobs go to actors one at a time and each result is recorded as it arrives, so a stopped run or
# a lost node costs at most the jobs in flight; two per actor keep it busy between results.
IN_FLIGHT_PER_ACTOR = 2
# A job whose worker died under it this many times (it may be the job: out of memory) fails.
MAX_ATTEMPTS = 3
# How long the driver waits for a result before it looks at signals and lost workers again.
WAIT_SECONDS = 0.5
# With nothing running, how long the driver waits for an actor to start (a busy cluster, an
# actor no node has room for) before it stops the run.
START_SECONDS = 120.0
# Ray binds its servers to loopback only where it believes clusters are off (Windows, macOS):
# set before Ray is imported, for ``--ray local`` only.
LOOPBACK_ONLY_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Ray's C++ failure signal handler, off in the driver (see ``_ray_settings``).
NO_FAILURE_HANDLER_VARIABLE = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"
# Words in Ray's output when a cluster refused the token (Ray 2.60: ``InvalidAuthToken``).
AUTH_FAILURE_WORDS = ("InvalidAuthToken", "Unauthenticated")
CONNECT_TIMEOUT_SECONDS = 5
# Thread settings of the libraries under torch; ONNX Runtime takes its threads from Voice.load.
TORCH_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class RaySettings:
    """Where Ray runs and how the work is cut: ``address`` is ``local`` (a private Ray on this
    machine), ``auto`` (the cluster ``ray start`` made here) or a cluster address. ``threads`` is
    each actor's engine threads; actors default to the cluster's CPUs divided by it, so actors
    never share cores."""

    address: str = "local"
    num_cpus: int | None = None  # local only: CPUs the private Ray may use (default: all usable here)
    threads: int = 1
    actors: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_cpus", "threads", "actors"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise LavanyaError(f"Ray {name.replace('_', ' ')} must be a whole number of 1 or more, not {value!r}")
        if not self.address.strip():
            raise LavanyaError(f"{option('address', flag='--ray')} needs local, auto or a cluster address (host:port)")
        if self.num_cpus is not None and self.address != "local":
            raise LavanyaError(f"a CPU count is for {option('address', flag='--ray')} local; a cluster has the CPUs its nodes offer")

    def plan(self, node_cpus: Sequence[float], jobs: int) -> tuple[int, int]:
        """``(actors, threads per actor)`` for ``jobs`` jobs on nodes offering ``node_cpus``: an
        actor runs on one node, so a node of C CPUs holds C // threads of them (an actor asking
        for more CPUs than any node has would never be scheduled); at least one actor, never
        more than jobs or than asked for."""
        cpus = [max(0, int(count)) for count in node_cpus] or [1]
        threads = max(1, min(self.threads, max(cpus)))
        room = max(1, sum(count // threads for count in cpus))
        return max(1, min(self.actors or room, room, jobs)), threads


def job_fingerprint(job: Job, spec: "VoiceSpec", engine: str, sentence_silence: float) -> str:
    """The sha256 of what decides a job's audio (text, rate, the voice's files and the engine):
    a job whose fingerprint changed since the manifest recorded it is made again."""
    material = {
        "text": job.text, "alpha": job.alpha, "sentence_silence": sentence_silence, "voice": spec.name,
        "model_dir": str(spec.model_dir), "vocoder": str(spec.vocoder.directory), "engine": engine,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class SynthesisWorker:
    """A Ray actor: voices loaded on first use and kept for its lifetime, each job's WAV written
    by the actor itself. A failing job becomes an error in its result; the others go on."""

    def __init__(self, target: OutputTarget, specs: dict[str, "VoiceSpec"], options: LoadOptions,
                 sentence_silence: float, flags: bool = False):
        self.flags = flags  # the driver's wording: its messages name flags where it is the command line
        self.target = target
        self.specs = specs
        self.voices = VoiceCache(options=options)  # a voice that failed to load fails its jobs at once
        self.sentence_silence = sentence_silence
        self.name = f"{socket.gethostname()}:{os.getpid()}"  # which node and process made a WAV

    def place(self) -> dict[str, str]:
        """Where this actor runs: its node (address and Ray id) and its ``host:pid``, so a lost
        node can be named."""
        import ray

        return {"node": ray.util.get_node_ip_address(), "node_id": ray.get_runtime_context().get_node_id(),
                "worker": self.name}

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        with flag_wording(self.flags):
            return self._run(task)

    def _run(self, task: dict[str, Any]) -> dict[str, Any]:
        result = job_result(task["id"], task["name"], worker=self.name)
        job = Job(task["text"], task["output"], task["lang"], task["gender"], task["alpha"], where=task["where"])
        started = time.perf_counter()
        try:
            voice = self.voices.load(self.specs[task["voice"]])
            result["load_seconds"] = round(time.perf_counter() - started, 3)
            plan = voice.plan_segments(segment_text(job.text, sentence_silence=self.sentence_silence), job.alpha)
            spoken = render_job(PlannedJob(job, voice, plan), output=self.target.wav(task["name"], voice.sample_rate))
            result.update(spoken, output=task["name"], sha256=self.target.sha256(task["name"]))
        except LavanyaError as exc:
            result["error"] = job.failed(exc).message
        except Exception as exc:  # a job must not take the actor (and the batch) down with it
            result["error"] = job.failed(LavanyaError(f"{type(exc).__name__}: {one_line(exc)}")).message
        return result


@dataclass
class BatchReport:
    """What a run did, for the summary line and ``--format json``; a run that stops early
    (a signal, every worker lost, a failing manifest) carries it on its exception as
    ``report``, with what was recorded until then."""

    output_dir: str
    manifest: str
    jobs: int
    engine: str = ""
    already_done: int = 0  # jobs a previous run finished, left as they are
    results: list[dict[str, Any]] = field(default_factory=list)
    voices: list[dict[str, Any]] = field(default_factory=list)
    cluster_cpus: float = 0.0
    actors: int = 0
    threads: int = 0
    lost: list[dict[str, Any]] = field(default_factory=list)  # workers lost: node, worker, why, jobs handed on
    temporaries_removed: int = 0
    ray_log: str | None = None  # where Ray's own messages of this run were kept
    wall_seconds: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [result for result in self.results if result["error"]]

    @property
    def done(self) -> int:
        return len(self.results) - len(self.failed)

    @property
    def audio_seconds(self) -> float:
        return sum(result["audio_seconds"] or 0.0 for result in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "output_dir": self.output_dir, "manifest": self.manifest, "jobs": self.jobs, "done": self.done,
            "skipped": self.already_done, "failed": len(self.failed), "audio_seconds": round(self.audio_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3), "engine": self.engine, "cluster_cpus": self.cluster_cpus,
            "actors": self.actors, "threads_per_actor": self.threads, "lost_workers": self.lost,
            "temporaries_removed": self.temporaries_removed, "ray_log": self.ray_log, "voices": self.voices,
            "failures": [{"id": r["id"], "output": r["output"], "error": r["error"]} for r in self.failed],
        }


def run_batch(jobs: list[Job], output_dir: str, *, settings: RaySettings = RaySettings(),
              find: FindOptions = FindOptions(), options: LoadOptions = LoadOptions(),
              sentence_silence: float = 0.0,
              manifest: Path | None = None, inputs: Sequence[Path] = (),
              on_start: Callable[[int, int], None] | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> BatchReport:
    """Synthesize ``jobs`` on Ray into ``output_dir`` (a path or URI), skipping those a previous
    run finished. Each job's output is a name relative to ``output_dir``, as
    ``jobs_from_lines``/``jobs_from_jsonl`` make it for ``Path()``. ``find`` and ``options``:
    which voices and how they load (``device`` only ``cpu``); ``sentence_silence`` already
    checked. ``inputs``: the files the jobs came from, which the manifest must
    not be. ``on_start(pending, total)`` and ``on_result(entry)`` feed a progress bar. A job
    that fails is an entry with an error; a problem with the whole run (an output, the
    manifest, the cluster, a signal) raises, with the ``BatchReport`` of what was recorded as
    the exception's ``report`` once anything was written."""
    started = time.perf_counter()
    import_optional("ray")
    if options.device != "cpu":
        raise LavanyaError(f"{option('address', flag='--ray')} runs voices on CPUs; {option('device')} "
                           f"{options.device} is for a single process")
    sentence_silence = checked_pause(sentence_silence)
    engine = resolve_engine(options)
    options = options.derived(engine=engine)  # every actor speaks what auto came to here
    target = OutputTarget(output_dir)
    names, placed = _place(jobs, target)
    manifest_path = _manifest_path(target, manifest)
    _refuse_input_as_manifest(manifest_path, inputs)
    report: BatchReport | None = None
    ray_output = RayOutputApart()
    try:
        with contextlib.ExitStack() as stack:
            session = _Session(settings, stack, ray_output)
            if settings.address != "local":
                session.open()  # a cluster that cannot be reached or refuses us: before anything is made

            specs, passed_over, voice_errors = {}, {}, {}
            for job in jobs:
                key = _voice_key(job)
                if key not in specs and key not in voice_errors:
                    try:
                        specs[key], passed_over[key] = find_usable_voice(job.language, job.gender, find)
                    except LavanyaError as exc:
                        voice_errors[key] = exc
            _check_outputs(placed, target, manifest_path, [spec.root for spec in specs.values()])

            # Each voice's export made here, once, before any actor needs it.
            described = []
            for key, spec in list(specs.items()):
                try:
                    notes = prepare_exports(spec, options)
                except LavanyaError as exc:
                    voice_errors[key] = exc
                    del specs[key]
                    continue
                described.append(voice_origin(spec, engine, passed_over[key], notes))

            previous = read_results(manifest_path, set(names))
            kept, tasks, failed_here, fingerprints = [], [], [], {}
            for number, (job, name) in enumerate(zip(placed, names), start=1):
                key = _voice_key(job)
                job_id = job.id if job.id is not None else number
                try:
                    if key in voice_errors:
                        raise job.failed(voice_errors[key])
                    segment_jobs([job], sentence_silence)  # a malformed tag, a number out of range: names the job
                except LavanyaError as exc:
                    failed_here.append({**job_result(job_id, name, error=exc.message), "job_sha256": None})
                    continue
                fingerprints[name] = job_fingerprint(job, specs[key], engine, sentence_silence)
                entry = previous.get(name)
                if (entry and not entry.get("error") and entry.get("job_sha256") == fingerprints[name]
                        and entry.get("sha256") and target.sha256(name) == entry["sha256"]):
                    kept.append({**entry, "id": job_id})
                    continue
                tasks.append({"id": job_id, "name": name, "output": job.output, "where": job.where, "text": job.text,
                              "lang": job.language, "gender": job.gender, "alpha": job.alpha, "voice": key})

            report = BatchReport(output_dir=output_dir, manifest=str(manifest_path), jobs=len(jobs), engine=engine,
                                 already_done=len(kept), voices=described)
            report.temporaries_removed = target.remove_temporaries([task["name"] for task in tasks])
            if on_start is not None:
                on_start(len(tasks) + len(failed_here), len(jobs))
            with ResultsWriter(manifest_path, kept) as writer:
                def record(entry: dict[str, Any]) -> None:
                    writer.append(entry)
                    report.results.append(entry)
                    if on_result is not None:
                        on_result(entry)

                for entry in failed_here:
                    record(entry)
                if tasks:
                    node_cpus = session.open()
                    report.cluster_cpus = float(sum(node_cpus))
                    report.actors, report.threads = settings.plan(node_cpus, len(tasks))
                    worker = {"target": target, "specs": specs, "sentence_silence": sentence_silence,
                              "options": options.derived(threads=report.threads), "flags": flag_wording_in_use()}
                    with contextlib.closing(_run_on_actors(tasks, worker, engine, report)) as results:
                        for result in results:  # closed at once on any way out: actors stopped, signals back
                            result["job_sha256"] = fingerprints[result["output"]]
                            record(result)
    except (LavanyaError, Stopped) as exc:
        if report is not None:
            exc.report = report  # type: ignore[attr-defined]
        raise
    finally:
        if report is not None:
            report.temporaries_removed += target.remove_temporaries(names)  # of writers killed in this run
            report.ray_log = ray_output.kept
            order = {name: index for index, name in enumerate(names)}
            report.results.sort(key=lambda entry: order.get(entry["output"], len(order)))
            report.wall_seconds = time.perf_counter() - started
    return report


def _run_on_actors(tasks: list[dict[str, Any]], worker: dict[str, Any], engine: str,
                   report: BatchReport) -> Iterator[dict[str, Any]]:
    """Each task's result as it finishes (in no particular order), from ``report.actors``
    actors. A worker lost under its jobs (its node left the cluster, its process died) is
    noted in ``report.lost`` and its jobs go to the others; a job whose worker died under it
    ``MAX_ATTEMPTS`` times fails; with no worker left, the run stops here."""
    import ray


    options: dict[str, Any] = {"num_cpus": report.threads, "max_restarts": 0, "max_task_retries": 0}
    if engine == TORCH:  # torch's libraries read their threads from the environment
        options["runtime_env"] = {"env_vars": {name: str(report.threads) for name in TORCH_THREAD_VARIABLES}}
    actor_class = ray.remote(SynthesisWorker).options(**options)
    actors = {number: actor_class.remote(**worker) for number in range(report.actors)}
    try:
        with held_signals() as check_signals:
            yield from _dispatch(ray, actors, tasks, report, check_signals)
    finally:
        with held_signals():
            for actor in actors.values():
                _retire(ray, actor)


def _dispatch(ray: Any, actors: dict[int, Any], tasks: list[dict[str, Any]], report: BatchReport,
              check_signals: Callable[[], None]) -> Iterator[dict[str, Any]]:
    """``_run_on_actors``' loop. Jobs go only to actors that have started (``place`` answered),
    at most ``IN_FLIGHT_PER_ACTOR`` each; results are yielded as they come. An actor lost
    under its jobs is retired and its jobs go back to the front of the line: an actor runs its
    jobs in order, so only the oldest was running and counts an attempt. With nothing running
    and no actor starting for ``START_SECONDS``, the run stops; a signal is taken between
    Ray's calls."""
    from ray.exceptions import RayActorError, RayError

    asked_where = {actors[number].place.remote(): number for number in actors}
    places: dict[int, dict[str, str]] = {}
    pending, attempts = deque(tasks), Counter()
    queued: dict[int, deque[Any]] = {number: deque() for number in actors}  # refs in flight, oldest first
    running: dict[Any, tuple[int, dict[str, Any]]] = {}
    last_progress = time.monotonic()

    def lose(number: int, exc: Exception) -> Iterator[dict[str, Any]]:
        """Retire actor ``number`` and put its jobs back; yields a job that failed for good."""
        _retire(ray, actors.pop(number))
        place = places.get(number) or {"node": None, "node_id": None, "worker": None}
        error = one_line(exc, 200)
        lost = {**place, "error": error, "why": _why_lost(place["node_id"], type(exc).__name__, error), "jobs": 0}
        report.lost.append(lost)
        again = []
        for position, ref in enumerate(queued.pop(number)):
            task = running.pop(ref)[1]
            attempts[task["name"]] += position == 0
            if attempts[task["name"]] >= MAX_ATTEMPTS:
                yield job_result(task["id"], task["name"], error=(
                    f"{task['where']} ({task['output']}): its worker was lost {MAX_ATTEMPTS} times while "
                    "speaking it (out of memory?); split the text or give the workers more memory"))
                continue
            lost["jobs"] += 1
            again.append(task)
        pending.extendleft(reversed(again))  # first in the line again, in their order

    while pending or running:
        check_signals()
        for number in places:
            while number in actors and pending and len(queued[number]) < IN_FLIGHT_PER_ACTOR:
                task = pending.popleft()
                ref = actors[number].run.remote(task)
                running[ref] = (number, task)
                queued[number].append(ref)
        if not running:
            if not actors:
                raise LavanyaError(f"every worker was lost ({_losses_line(report)}); "
                                   f"{report.already_done + len(report.results)} of {report.jobs} jobs are recorded in "
                                   f"{report.manifest}: run the same command again to resume", EXIT_USAGE)
            if time.monotonic() - last_progress > START_SECONDS:
                raise LavanyaError(f"no worker started within {START_SECONDS:.0f} s: each asks for {report.threads} "
                                   f"CPU{'s' if report.threads > 1 else ''} on one node, and the cluster has none "
                                   f"free (busy with other work?); free them, add a node or lower {option('threads')}",
                                   EXIT_USAGE)
        ready, _ = ray.wait([*running, *asked_where], num_returns=1, timeout=WAIT_SECONDS)
        for ref in ready:
            if ref in asked_where:
                number = asked_where.pop(ref)
                try:
                    places[number] = ray.get(ref)
                    last_progress = time.monotonic()
                except RayError as exc:  # it never started (lavanya missing there, the node gone)
                    yield from lose(number, exc)
                continue
            if ref not in running:  # its actor was lost while this was in the list
                continue
            number, task = running[ref]
            try:
                result = ray.get(ref)
            except RayActorError as exc:
                yield from lose(number, exc)
                continue
            except RayError as exc:  # the job's call failed, not the actor (jobs catch their own errors)
                result = job_result(task["id"], task["name"], error=f"{task['where']} ({task['output']}): "
                                                                     f"{one_line(exc, 200)}")
            del running[ref]
            queued[number].remove(ref)
            last_progress = time.monotonic()
            yield result


def _retire(ray: Any, actor: Any) -> None:
    """Stop an actor at once (it may still be writing a job that went to another worker)."""
    with contextlib.suppress(Exception):
        ray.kill(actor, no_restart=True)


def _why_lost(node_id: str | None, kind: str, error: str) -> str:
    """Why a worker was lost, in lavanya's words: its node left the cluster (Ray says so, or the
    node's raylet no longer answers), or its process died on a node still there (``kind``, the
    name of Ray's error; its text is RPC detail). Ray takes seconds to declare a node dead; its
    raylet's port answers at once. A worker that never started says why (``error``)."""
    if not node_id:
        return f"it did not start ({error})"
    import ray

    try:
        node = next((node for node in ray.nodes() if node["NodeID"] == node_id), None)
    except Exception:  # the cluster itself is gone: its nodes went with it
        node = None
    if node is None or not node.get("Alive"):
        return "its node left the cluster"
    try:
        socket.create_connection((node["NodeManagerAddress"], node["NodeManagerPort"]), timeout=1).close()
    except (OSError, KeyError, TypeError):
        return "its node left the cluster"
    return f"its process died ({kind})"


def _losses_line(report: BatchReport) -> str:
    """The lost workers in one phrase: where, and why."""
    return "; ".join(f"{entry['node'] or 'a node'}: {entry['why']}" for entry in report.lost) or "no answer"


class _Session:
    """The Ray session of one run, opened on first need (``open``, then the CPUs of each node)
    and closed with the run's ``ExitStack``."""

    def __init__(self, settings: RaySettings, stack: contextlib.ExitStack, output: "RayOutputApart"):
        self.settings, self.stack, self.output = settings, stack, output
        self.node_cpus: list[float] | None = None

    def open(self) -> list[float]:
        """Join Ray (Ray's messages kept apart from then on) and the CPUs of each node; a cluster
        that offers none is refused, since no actor could ever start on it."""
        if self.node_cpus is None:
            self.stack.enter_context(self.output)
            self.stack.enter_context(ray_session(self.settings, self.output))
            self.node_cpus = node_cpus()
            if sum(self.node_cpus) < 1:
                raise LavanyaError(f"{option('address', flag='--ray')} {self.settings.address}: the cluster offers no CPU (a head started "
                                   f"with --num-cpus 0 and no worker node yet?); add a node, or use {option('address', flag='--ray')} local")
        return self.node_cpus


def node_cpus() -> list[float]:
    """The CPUs each live node of the joined cluster offers."""
    import ray

    return [float(node.get("Resources", {}).get("CPU", 0.0)) for node in ray.nodes() if node.get("Alive")]


class RayOutputApart:
    """Ray's own messages kept out of lavanya's output while a run is joined to Ray: whatever
    Ray's threads print (a node's "Raylet is terminated" block), its loggers and its C++ core
    (20 lines of ``InvalidAuthToken``) go to a file, copied at the end into the session's log
    directory (``kept``); lavanya's own output is printed after. The progress bar writes to a
    copy of the terminal made before (``cli.synth_ray``). Signals are blocked while the streams
    are swapped, so a stop never leaves standard error pointing at the file."""

    # What a message about Ray's output reads of it: the end.
    TAIL_BYTES = 64 * KIB

    def __init__(self) -> None:
        self.kept: str | None = None
        self.logs_dir: str | None = None
        self._log: Any = None

    def __enter__(self) -> "RayOutputApart":
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with _signals_blocked():
            try:
                log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
            except OSError:
                return self  # nowhere to put Ray's output: it is shown
            try:
                self._saved_fd = os.dup(2)
            except OSError:
                log.close()
                return self
            self._log = log
            self._text = io.TextIOWrapper(log, encoding="utf-8", errors="backslashreplace", write_through=True)
            self._streams = sys.stdout, sys.stderr
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = self._text
        return self

    def text(self) -> str:
        """The end of what Ray printed so far, for a message."""
        if self._log is None:
            return ""
        size = self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, size - self.TAIL_BYTES))
        return self._log.read().decode("utf-8", "replace")

    def __exit__(self, *exc_info: object) -> None:
        if self._log is None:
            return
        with _signals_blocked():
            with contextlib.suppress(Exception):
                self._text.flush()
            sys.stdout, sys.stderr = self._streams
            os.dup2(self._saved_fd, 2)
            os.close(self._saved_fd)
        log, self._log = self._log, None
        if self.logs_dir is not None and log.seek(0, os.SEEK_END) > 0:
            path = os.path.join(self.logs_dir, f"lavanya-driver-{os.getpid()}.log")
            with contextlib.suppress(OSError), open(path, "ab") as kept:
                log.seek(0)
                shutil.copyfileobj(log, kept)
                self.kept = path
        self._text.detach()
        log.close()


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back for a few statements (delivered when the block ends)."""
    stops = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def ray_session(settings: RaySettings, output: RayOutputApart | None = None) -> Iterator[float]:
    """Ray, started or joined per ``settings.address``, and the CPUs it offers. A session the
    caller opened (``ray.is_initialized()``) is used as it is and left open.

    ``local`` starts a private Ray whose servers listen on 127.0.0.1 only, with no dashboard
    and no usage reporting, so nothing leaves the machine; Ray's own logs stay in its session
    directory. ``output``: where Ray's messages are being kept (a refused token is read there)."""
    _ray_settings(local=settings.address == "local")
    ray = import_optional("ray")
    if ray.is_initialized():
        yield float(ray.cluster_resources().get("CPU", 0.0))
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    arguments: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if settings.address == "local":
        arguments.update(address="local", num_cpus=settings.num_cpus or available_cpus(), include_dashboard=False)
    else:
        _require_answer(settings.address)
        arguments["address"] = settings.address
    try:
        with held_signals(), _handlers_kept():
            try:
                ray.init(**arguments)
            except BaseException:  # what it started so far (its agents) goes too
                with contextlib.suppress(Exception):
                    ray.shutdown()
                raise
    except (ConnectionError, ValueError, RuntimeError) as exc:
        said = output.text() if output is not None else ""
        if any(words in said or words in str(exc) for words in AUTH_FAILURE_WORDS):
            raise LavanyaError(f"{option('address', flag='--ray')} {settings.address}: the cluster refused the authentication token "
                               "(InvalidAuthToken); give the cluster's token: RAY_AUTH_MODE=token and "
                               "RAY_AUTH_TOKEN=<token>, or the token in ~/.ray/auth_token (`ray get-auth-token` "
                               "on the head prints it)") from None
        hint = (f"start one with `ray start --head`, or use {option('address', flag='--ray')} local" if settings.address == "auto"
                else "check the address `ray start --head` printed; a cluster with token authentication "
                     "also needs RAY_AUTH_MODE=token and its token (ray get-auth-token)")
        raise LavanyaError(f"{option('address', flag='--ray')} {settings.address}: cannot reach a Ray cluster ({one_line(exc, 200)}); {hint}")\
            from None
    if output is not None:
        output.logs_dir = _logs_dir()
    try:
        yield float(ray.cluster_resources().get("CPU", 0.0))
    finally:
        with held_signals():
            ray.shutdown()


@contextlib.contextmanager
def held_signals() -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM held while Ray's own calls run: a handler that raises inside one of
    them (``ray.wait``, ``ray.init``) makes Ray's Cython report a ``SystemError`` instead of the
    stop. The first signal is noted; ``check()`` (between Ray calls) and the end of the block
    hand it to the handler that was there before (``cli.main``'s: ``Stopped``, 130 or 143)."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    noted: list[int] = []
    restored: list[bool] = []

    def note(signum: int, _frame: object) -> None:
        noted.append(signum)

    def restore() -> None:
        if not restored:
            restored.append(True)
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def check() -> None:
        if noted:
            restore()
            handler = previous[noted[0]]
            if callable(handler):
                handler(noted[0], None)  # cli.main's: ignores further signals, raises Stopped
            signal.raise_signal(noted[0])  # a default or ignoring handler: as if it had come now

    for signum in previous:
        signal.signal(signum, note)
    stopping = False
    try:
        yield check
    except BaseException:
        stopping = True
        raise
    finally:
        restore()
        if noted and not stopping:
            check()


def _ray_settings(local: bool) -> None:
    """Settings Ray reads when it is imported (and the processes it starts inherit), made before
    it is, or its copies set where it was imported first:

    - no failure signal handler of Ray's C++ core in this process: it replaces the SIGTERM
      handler under Python's feet and puts the default back in ``ray.shutdown``, so a SIGTERM
      then killed lavanya before it could say what was recorded;
    - for a local Ray, 127.0.0.1 as this node's address, which is what makes its servers (GCS,
      raylet, workers, agents) listen on loopback only: Ray 2.60 does so where it believes
      clusters are off (Windows, macOS)."""
    os.environ[NO_FAILURE_HANDLER_VARIABLE] = "1"
    if local:
        os.environ[LOOPBACK_ONLY_VARIABLE] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
        if local:
            constants.ENABLE_RAY_CLUSTER = False


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """While ``ray.init`` runs, its attempts to install SIGINT and SIGTERM handlers are declined:
    it installs one that exits at once (``sys.exit`` with the signal number) while it is still
    starting, which left its agents running or aborted the process. ``held_signals`` notes a
    signal meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    install = signal.signal

    def declined(signum, handler):
        if signum in (signal.SIGINT, signal.SIGTERM):
            return signal.getsignal(signum)
        return install(signum, handler)

    signal.signal = declined
    try:
        yield
    finally:
        signal.signal = install


def _logs_dir() -> str | None:
    """The joined session's log directory on this machine, where Ray keeps its own logs."""
    with contextlib.suppress(Exception):
        import ray

        return ray._private.worker._global_node.get_logs_dir_path()
    return None


def _require_answer(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) that nothing answers at fails in seconds, not after
    the minutes Ray spends retrying its connection."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return  # not host:port: Ray words the problem
    if not host or not port:
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise LavanyaError(f"{option('address', flag='--ray')} {address}: nothing answers at {host}:{port} ({one_line(exc)}); "
                           f"give the address `ray start --head` printed, or {option('address', flag='--ray')} local") from None


def _voice_key(job: Job) -> str:
    return f"{job.language.lower()}/{job.gender.lower()}"


def _place(jobs: list[Job], target: OutputTarget) -> tuple[list[str], list[Job]]:
    """Each job's output as a name under the target (relative, no ``..``, a ``.wav``: the rule
    of a JSONL batch), and the job with that output located in the target and a ``where``
    (``job 3`` when it came from no file) to name it in messages."""
    names, placed = [], []
    for number, job in enumerate(jobs, start=1):
        where = job.where or f"job {number}"
        if job.output == STDOUT:
            raise LavanyaError(f"{where}: output - (standard output) is for one text, not a batch on Ray")
        name = batch_output(job.output, Path(), where)
        names.append(Path(name).as_posix())
        placed.append(replace(job, output=target.located(names[-1]), where=where))
    return names, placed


def _manifest_path(target: OutputTarget, manifest: Path | None) -> Path:
    """The manifest: as given, else beside the WAVs in a local output directory."""
    if manifest is not None:
        return Path(manifest)
    if not target.local:
        raise LavanyaError(f"{target.location}: the results manifest is written locally as results arrive; "
                           f"give {option('manifest')} FILE for an output directory on remote storage")
    return Path(target.located(RESULTS_NAME))


def _refuse_input_as_manifest(manifest: Path, inputs: Sequence[Path]) -> None:
    """The results manifest must not be a file the jobs came from: it would be rewritten with
    results, and the next run would read those as jobs."""
    if str(manifest) == STDOUT:
        raise LavanyaError(f"{option('manifest')} -: the results manifest is a file, appended as results arrive and read "
                           "by the next run; give a path")
    for source in inputs:
        if str(source) == STDOUT:
            continue
        same = os.path.realpath(manifest) == os.path.realpath(source)
        with contextlib.suppress(OSError):
            same = same or os.path.samefile(manifest, source)  # a hard link to it
        if same:
            raise LavanyaError(f"{manifest}: the results manifest would overwrite the job file {source}; "
                               f"give {option('manifest')} another file")


def _check_outputs(placed: list[Job], target: OutputTarget, manifest: Path, roots: list[Path]) -> None:
    """The checks of a single-process batch (``batch.outputs``), before anything is written: no
    output in a model root, each output once, inside the output directory (symlinks resolved),
    a regular file or a new path in a directory that takes files; on remote storage only the
    rules about names apply, and the local manifest gets the file checks."""
    if target.local:
        outputs = [job.output for job in placed] + [manifest]
        check_outside_roots([*outputs, target.base], roots)
        target.create()
        check_outputs(placed, inside=Path(target.base), extra={option("manifest"): manifest})
        check_directories_take_files(outputs)
        return
    check_outside_roots([manifest], roots)
    check_outputs(placed, local=False)
    check_output_target(manifest, "results manifest")
    check_directories_take_files([manifest])
    target.create()
