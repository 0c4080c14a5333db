"""Batch synthesis on Ray: the jobs of ``synth --lines/--jsonl`` spread over a laptop's cores or a cluster.

The driver does what a single-process batch does before any audio is made, with the same
functions (``speech.jobs``): each job's output checked (``batch_output``, ``check_outputs``),
each voice found (``VoiceCache``) and its ONNX export made once where it is missing
(``engines.prepare_exports``), each text segmented. A job whose voice or text fails is recorded
as failed; the others go to Ray Data, which carries them to a pool of actors (``map_batches``
with ``ActorPoolStrategy``). Each actor loads a voice once, on its first job for it, through the
engine asked for (default ``auto``: an ONNX engine, so an actor never imports torch unless told
to), and writes each WAV itself with the one WAV writer (``jobs.render_job``) into the output
directory: a local path, or a URI that ``pyarrow.fs`` understands, so a cluster can write to
shared or object storage. The driver appends every result to a JSONL manifest as it arrives, so
a stopped run resumes where it stopped: a job whose WAV is present with the sha256 the manifest
recorded, made from the same job (text, voice, rate, engine), is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import posixpath
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EXIT_USAGE, LavanyaError, one_line
from ..fileio import KIB, NotReadable, check_output_target, digest_regular, open_regular, replace_file
from ..limits import available_cpus, checked_pause
from .jobs import (REPORTED_WORDS, STDOUT, Job, PlannedJob, batch_output, check_directories_take_files, check_outputs,
                   check_outside_roots, describe_voice, render_job, segment_jobs)
from .voice import Voice, find_usable_voice

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

    from ..modeltree.layout import VoiceSpec
    from .audio import WavWriter

RAY_EXTRA = "python3 -m pip install 'lavanya[ray]'"
MANIFEST_NAME = "lavanya-results.jsonl"
# A manifest line is a few hundred bytes; a longer one is damage (or not our file) and is ignored.
MANIFEST_LINE_MAX_BYTES = 64 * KIB
# Batches are small so results (and the progress bar) arrive often and a stopped run loses
# little; at least this many batches per actor keep actors busy when job lengths differ.
MAX_BATCH_SIZE = 16
BATCHES_PER_ACTOR = 4
# Object stores publish an object only once its upload completes: a direct write is atomic there,
# and a rename would be a second full copy.
OBJECT_STORES = frozenset({"s3", "gcs"})
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
    batch_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_cpus", "threads", "actors", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise LavanyaError(f"Ray {name.replace('_', ' ')} must be a whole number of 1 or more, not {value!r}")
        if not self.address.strip():
            raise LavanyaError("--ray needs local, auto or a cluster address (host:port)")
        if self.num_cpus is not None and self.address != "local":
            raise LavanyaError("a CPU count is for --ray local; a cluster has the CPUs its nodes offer")

    def plan(self, cluster_cpus: float, jobs: int) -> tuple[int, int, int]:
        """``(actors, threads per actor, batch size)`` for ``jobs`` jobs on a cluster offering
        ``cluster_cpus`` CPUs: actors x threads never more than the CPUs (an actor asking for
        more CPUs than there are would never be scheduled), at least one actor, never more
        actors than jobs."""
        cpus = max(1, int(cluster_cpus))
        threads = min(self.threads, cpus)
        actors = max(1, min(self.actors or cpus, cpus // threads, jobs))
        batch = self.batch_size or min(MAX_BATCH_SIZE, max(1, math.ceil(jobs / (actors * BATCHES_PER_ACTOR))))
        return actors, threads, batch


# -- output directory ----------------------------------------------------------------------------


class OutputTarget:
    """The directory the WAVs go to: a local directory (a path, or a ``file://`` URI), or one on
    a pyarrow filesystem named by a URI (``s3://bucket/prefix``, ``hdfs://...``). Names given to
    it are relative (``jobs.batch_output``). Pickled as its location, so each Ray actor opens
    the filesystem with its own node's credentials."""

    def __init__(self, location: str):
        self.location = location
        self.filesystem: FileSystem | None = None  # remote storage only
        if "://" in location:
            filesystem, base = _filesystem_from_uri(location)
            self.local = filesystem.type_name == "local"
            if not self.local:
                self.filesystem = filesystem
        else:
            base, self.local = os.path.abspath(location), True
        self.base = base.rstrip("/") or ("/" if self.local else "")

    def __reduce__(self):
        # A local directory travels as its absolute path (a relative one means nothing on a node).
        return OutputTarget, (self.base if self.local else self.location,)

    def __repr__(self) -> str:
        return f"OutputTarget({self.location!r})"

    def located(self, name: str) -> str:
        """Where ``name`` is, as a job's output and in messages: a path, or a URI on remote storage."""
        return os.path.join(self.base, name) if self.local else f"{self.location.rstrip('/')}/{name}"

    def create(self) -> None:
        """Make the directory (and its parents) if it is not there."""
        try:
            if self.local:
                os.makedirs(self.base, exist_ok=True)
            else:
                self.filesystem.create_dir(self.base, recursive=True)
        except FileExistsError:
            raise LavanyaError(f"{self.location}: --output-dir is not a directory") from None
        except (OSError, _arrow_error()) as exc:
            raise LavanyaError(f"{self.location}: cannot create the output directory ({one_line(exc)})") from None

    def wav(self, name: str, sample_rate: int) -> contextlib.AbstractContextManager["WavWriter"]:
        """A ``WavWriter`` for ``name``: locally ``audio.wav_output`` (a temporary file, then a
        rename); on remote storage the WAV in memory, then ``upload``."""
        from .audio import wav_output

        if self.local:
            return wav_output(self.located(name), sample_rate)
        return self._remote_wav(name, sample_rate)

    @contextlib.contextmanager
    def _remote_wav(self, name: str, sample_rate: int) -> Iterator["WavWriter"]:
        from .audio import WavWriter

        buffer = io.BytesIO()
        writer = WavWriter(buffer, sample_rate, self.located(name), seekable=True)
        yield writer
        writer.finish()
        self.upload(name, buffer.getvalue())

    def upload(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name`` on remote storage, atomically where the filesystem allows:
        a direct write on an object store, else a temporary name, then a move."""
        filesystem, final = self.filesystem, posixpath.join(self.base, name)
        try:
            if filesystem.type_name in OBJECT_STORES:
                with filesystem.open_output_stream(final) as stream:
                    stream.write(data)
                return
            parent = posixpath.dirname(final)
            filesystem.create_dir(parent, recursive=True)
            temporary = posixpath.join(parent, f".{posixpath.basename(final)}.{uuid.uuid4().hex}.tmp")
            try:
                with filesystem.open_output_stream(temporary) as stream:
                    stream.write(data)
                filesystem.move(temporary, final)
            except BaseException:
                with contextlib.suppress(OSError, _arrow_error()):
                    filesystem.delete_file(temporary)
                raise
        except (OSError, _arrow_error()) as exc:
            raise LavanyaError(f"{self.located(name)}: cannot write the WAV ({one_line(exc)})") from None

    def sha256(self, name: str) -> str | None:
        """The sha256 of the file ``name``, or None where there is no regular file to read."""
        try:
            if self.local:
                return digest_regular(Path(self.located(name)), what="WAV")[0]["sha256"]
            from pyarrow.fs import FileType

            path = posixpath.join(self.base, name)
            if self.filesystem.get_file_info(path).type != FileType.File:
                return None
            with self.filesystem.open_input_stream(path) as stream:
                return hashlib.file_digest(stream, "sha256").hexdigest()
        except (OSError, NotReadable, _arrow_error()):
            return None


def _filesystem_from_uri(uri: str) -> tuple["FileSystem", str]:
    pyarrow_fs = import_optional("pyarrow.fs")
    try:
        return pyarrow_fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise LavanyaError(f"{uri}: not a directory pyarrow can write to ({one_line(exc)}); "
                           "give a local path or a URI such as file:///data/wavs or s3://bucket/wavs") from None


def _arrow_error() -> type[Exception]:
    from pyarrow import ArrowException

    return ArrowException


# -- one job ------------------------------------------------------------------------------------


def job_fingerprint(job: Job, spec: "VoiceSpec", engine: str, sentence_silence: float) -> str:
    """The sha256 of what decides a job's audio (text, rate, the voice's files and the engine):
    a job whose fingerprint changed since the manifest recorded it is made again."""
    material = {
        "text": job.text, "alpha": job.alpha, "sentence_silence": sentence_silence, "voice": spec.name,
        "model_dir": str(spec.model_dir), "vocoder": str(spec.vocoder.directory), "engine": engine,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def job_result(number: int, name: str, *, error: str | None = None, worker: str | None = None) -> dict[str, Any]:
    """A job's manifest entry before it is done (the actor adds ``jobs.render_job``'s summary,
    the driver ``job_sha256``)."""
    return {"id": number, "output": name, "voice": None, "audio_seconds": None, "sha256": None, "error": error,
            "sentences": 0, "skipped_sentences": 0, **{kind: [] for kind in REPORTED_WORDS}, "problems": [],
            "worker": worker, "load_seconds": 0.0, "synthesis_seconds": 0.0}


class SynthesisWorker:
    """A Ray actor: voices loaded on first use and kept for its lifetime, each job's WAV written
    by the actor itself. A failing job becomes an error in its result; the others go on."""

    def __init__(self, target: OutputTarget, specs: dict[str, "VoiceSpec"], load_options: dict[str, Any],
                 sentence_silence: float):
        self.target = target
        self.specs = specs
        self.load_options = load_options
        self.sentence_silence = sentence_silence
        self.voices: dict[str, Voice | LavanyaError] = {}  # a voice that failed to load fails its jobs at once
        self.name = f"{socket.gethostname()}:{os.getpid()}"  # which node and process made a WAV

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[str]]:
        return {"result": [json.dumps(self.run(json.loads(str(task)))) for task in batch["task"]]}

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        result = job_result(task["id"], task["name"], worker=self.name)
        job = Job(task["text"], task["output"], task["lang"], task["gender"], task["alpha"], where=task["where"])
        started = time.perf_counter()
        try:
            voice = self.voice(task["voice"])
            result["load_seconds"] = round(time.perf_counter() - started, 3)
            plan = voice.plan(job.text, job.alpha, self.sentence_silence)
            spoken = render_job(PlannedJob(job, voice, plan), output=self.target.wav(task["name"], voice.sample_rate))
            result.update(spoken, output=task["name"], sha256=self.target.sha256(task["name"]))
        except LavanyaError as exc:
            result["error"] = job.failed(exc).message
        except Exception as exc:  # a job must not take the actor (and the batch) down with it
            result["error"] = job.failed(LavanyaError(f"{type(exc).__name__}: {one_line(exc)}")).message
        return result

    def voice(self, key: str) -> Voice:
        if key not in self.voices:
            try:
                self.voices[key] = Voice.load(self.specs[key], **self.load_options)
            except LavanyaError as exc:
                self.voices[key] = exc
        loaded = self.voices[key]
        if isinstance(loaded, LavanyaError):
            raise loaded
        return loaded


# -- manifest -----------------------------------------------------------------------------------


def read_manifest(path: Path, outputs: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """The latest entry per output from a results manifest (only ``outputs``, when given, so memory
    follows the job file, not the manifest); an absent file is an empty one, a damaged line (an
    interrupted write, a hand edit) is skipped."""
    entries: dict[str, dict[str, Any]] = {}
    try:
        handle = open_regular(path, "results manifest")
    except FileNotFoundError:
        return entries
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot read the results manifest ({one_line(exc)})") from None
    with handle:
        while line := handle.readline(MANIFEST_LINE_MAX_BYTES + 1):
            if len(line) > MANIFEST_LINE_MAX_BYTES or not line.endswith(b"\n"):
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # deep nesting is damage too
                continue
            if isinstance(entry, dict) and isinstance(entry.get("output"), str) and (
                    outputs is None or entry["output"] in outputs):
                entries[entry["output"]] = entry
    return entries


class ManifestWriter:
    """The results manifest being written: restarted with the entries still valid, then one line
    appended and flushed per result, so an interrupted run loses at most the line being written."""

    def __init__(self, path: Path, kept: list[dict[str, Any]]):
        self.path = path
        try:
            replace_file(path, lambda handle: handle.writelines(_manifest_line(entry) for entry in kept))
            self._handle = open(path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise LavanyaError(f"{path}: cannot write the results manifest ({one_line(exc)})") from None

    def append(self, entry: dict[str, Any]) -> None:
        try:
            self._handle.write(_manifest_line(entry))
            self._handle.flush()
        except OSError as exc:
            raise LavanyaError(f"{self.path}: cannot write the results manifest ({one_line(exc)})") from None

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _manifest_line(entry: dict[str, Any]) -> bytes:
    return (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")


# -- the run ------------------------------------------------------------------------------------


@dataclass
class BatchReport:
    """What a run did, for the summary line and ``--format json``."""

    output_dir: str
    manifest: str
    jobs: int
    engine: str = ""
    skipped: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    voices: list[dict[str, Any]] = field(default_factory=list)
    cluster_cpus: float = 0.0
    actors: int = 0
    threads: int = 0
    batch_size: int = 0
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
            "skipped": self.skipped, "failed": len(self.failed), "audio_seconds": round(self.audio_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3), "engine": self.engine, "cluster_cpus": self.cluster_cpus,
            "actors": self.actors, "threads_per_actor": self.threads, "batch_size": self.batch_size,
            "voices": self.voices,
            "failures": [{"id": r["id"], "output": r["output"], "error": r["error"]} for r in self.failed],
        }


def run_batch(jobs: list[Job], output_dir: str, *, settings: RaySettings = RaySettings(),
              voice_options: Mapping[str, Any] | None = None, sentence_silence: float = 0.0,
              manifest: Path | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> BatchReport:
    """Synthesize ``jobs`` on Ray into ``output_dir`` (a path or URI), skipping those a previous
    run finished. Each job's output is a name relative to ``output_dir``, as
    ``jobs_from_lines``/``jobs_from_jsonl`` make it for ``Path()``. ``voice_options``: ``models``,
    ``variant``, ``vocoder`` (which voice), ``engine``, ``strict``, ``cache`` (how it loads;
    ``device`` only ``cpu``). ``on_start(pending, total)`` and ``on_result(entry)`` feed a
    progress bar. A job that fails is an entry with an error; a problem with the whole run (an
    output, the manifest, the cluster) raises."""
    from .engines import prepare_exports

    started = time.perf_counter()
    import_optional("ray")
    sentence_silence = checked_pause(sentence_silence, "sentence silence")
    engine, load_options = _load_options(voice_options or {}, settings.threads)
    target = OutputTarget(output_dir)
    names, placed = _place(jobs, target)
    manifest_path = _manifest_path(target, manifest)

    find = {key: (voice_options or {}).get(key) for key in ("models", "variant", "vocoder")}
    specs, skipped, voice_errors = {}, {}, {}
    for job in jobs:
        key = _voice_key(job)
        if key not in specs and key not in voice_errors:
            try:
                specs[key], skipped[key] = find_usable_voice(job.language, job.gender, **find)
            except LavanyaError as exc:
                voice_errors[key] = exc
    _check_outputs(placed, target, manifest_path, [spec.root for spec in specs.values()])

    # Each voice's export made here, once, before any actor needs it.
    described = []
    for key, spec in list(specs.items()):
        try:
            notes = prepare_exports(spec, engine=engine, cache=load_options.get("cache"))
        except LavanyaError as exc:
            voice_errors[key] = exc
            del specs[key]
            continue
        described.append(describe_voice(spec, engine, skipped[key], notes))

    previous = read_manifest(manifest_path, set(names))
    kept, tasks, failed_here, fingerprints = [], [], [], {}
    for number, (job, name) in enumerate(zip(placed, names), start=1):
        key = _voice_key(job)
        try:
            if key in voice_errors:
                raise job.failed(voice_errors[key])
            segment_jobs([job], sentence_silence)  # a malformed tag, a number out of range: names the job
        except LavanyaError as exc:
            failed_here.append({**job_result(number, name, error=exc.message), "job_sha256": None})
            continue
        fingerprints[name] = job_fingerprint(job, specs[key], engine, sentence_silence)
        entry = previous.get(name)
        if (entry and not entry.get("error") and entry.get("job_sha256") == fingerprints[name]
                and entry.get("sha256") and target.sha256(name) == entry["sha256"]):
            kept.append(entry)
            continue
        tasks.append({"id": number, "name": name, "output": job.output, "where": job.where, "text": job.text,
                      "lang": job.language, "gender": job.gender, "alpha": job.alpha, "voice": key})

    report = BatchReport(output_dir=output_dir, manifest=str(manifest_path), jobs=len(jobs), engine=engine,
                         skipped=len(kept), voices=described)
    if on_start is not None:
        on_start(len(tasks) + len(failed_here), len(jobs))
    with ManifestWriter(manifest_path, kept) as writer:
        def record(entry: dict[str, Any]) -> None:
            writer.append(entry)
            report.results.append(entry)
            if on_result is not None:
                on_result(entry)

        for entry in failed_here:
            record(entry)
        if tasks:
            with ray_session(settings) as cluster_cpus:
                report.cluster_cpus = cluster_cpus
                report.actors, report.threads, report.batch_size = settings.plan(cluster_cpus, len(tasks))
                worker = {"target": target, "specs": specs, "sentence_silence": sentence_silence,
                          "load_options": {**load_options, "threads": report.threads}}
                for result in _stream_results(tasks, worker, engine, report):
                    result["job_sha256"] = fingerprints[result["output"]]
                    record(result)
    report.results.sort(key=lambda entry: entry["id"])
    report.wall_seconds = time.perf_counter() - started
    return report


def _stream_results(tasks: list[dict[str, Any]], worker: dict[str, Any], engine: str,
                    report: BatchReport) -> Iterator[dict[str, Any]]:
    """Each task's result as its batch finishes (in no particular order)."""
    import ray.data

    from .engines import TORCH

    with warnings.catch_warnings():
        # Ray 2.60's DataContext warns of its own deprecated fields when it is first made.
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    progress_bars, context.enable_progress_bars = context.enable_progress_bars, False
    # torch's libraries read their threads from the environment; ONNX Runtime is told in Voice.load.
    environment = ({"runtime_env": {"env_vars": {name: str(report.threads) for name in TORCH_THREAD_VARIABLES}}}
                   if engine == TORCH else {})
    try:
        dataset = ray.data.from_items([{"task": json.dumps(task, ensure_ascii=False)} for task in tasks],
                                      override_num_blocks=math.ceil(len(tasks) / report.batch_size))
        with warnings.catch_warnings():
            # ``max_restarts`` has no named parameter yet (Ray 2.60 warns that the remote-args
            # catch-all goes in 2.64; the extra pins below that). Ray Data restarts actors by default,
            # which Ray cannot do reliably when constructor arguments live in the object store
            # (ray-project/ray#53727) and says so on stderr for every actor; a lost actor stops the
            # run instead, and the next run resumes from the manifest. That also keeps a job that
            # kills its actor (out of memory) from being retried without end.
            warnings.simplefilter("ignore", DeprecationWarning)
            results = dataset.map_batches(
                SynthesisWorker,
                fn_constructor_kwargs=worker,
                batch_size=report.batch_size,
                compute=ray.data.ActorPoolStrategy(size=report.actors),
                num_cpus=report.threads,
                max_restarts=0,
                **environment,
            )
        for row in results.iter_rows():
            yield json.loads(row["result"])
    except LavanyaError:
        raise
    except Exception as exc:  # an actor lost, a node gone: what finished is in the manifest
        done = len(report.results)
        raise LavanyaError(f"Ray stopped the batch ({one_line(exc)}); {report.skipped + done} of "
                           f"{report.jobs} jobs are recorded in {report.manifest}: run the same command "
                           "again to resume", EXIT_USAGE) from None
    finally:
        context.enable_progress_bars = progress_bars


@contextlib.contextmanager
def ray_session(settings: RaySettings) -> Iterator[float]:
    """Ray, started or joined per ``settings.address``, and the CPUs it offers. A session the
    caller opened (``ray.is_initialized()``) is used as it is and left open.

    ``local`` starts a private Ray bound to 127.0.0.1 with no dashboard and no usage reporting,
    so nothing leaves the machine; Ray's own logs stay in its session directory."""
    ray = import_optional("ray")
    if ray.is_initialized():
        yield float(ray.cluster_resources().get("CPU", 0.0))
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    arguments: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if settings.address == "local":
        arguments.update(address="local", num_cpus=settings.num_cpus or available_cpus(), include_dashboard=False,
                         _node_ip_address="127.0.0.1")
    else:
        _require_answer(settings.address)
        arguments["address"] = settings.address
    try:
        ray.init(**arguments)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        hint = ("start one with `ray start --head`, or use --ray local" if settings.address == "auto"
                else "check the address `ray start --head` printed; a cluster with token authentication "
                     "also needs RAY_AUTH_MODE=token and its token (ray get-auth-token)")
        raise LavanyaError(f"--ray {settings.address}: cannot reach a Ray cluster ({one_line(exc, 200)}); {hint}")\
            from None
    import ray.data  # noqa: F401  (it sets up its loggers on import; quieten them after)

    if not os.environ.get("RAY_DATA_LOG_LEVEL"):
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield float(ray.cluster_resources().get("CPU", 0.0))
    finally:
        ray.shutdown()


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
        raise LavanyaError(f"--ray {address}: nothing answers at {host}:{port} ({one_line(exc)}); "
                           "give the address `ray start --head` printed, or --ray local") from None


def import_optional(module: str):
    """``ray`` or ``pyarrow``, or the one line that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LavanyaError(f"--ray needs Ray Data ({module.split('.')[0]} is not installed): {RAY_EXTRA}") from None


def _load_options(voice_options: Mapping[str, Any], threads: int) -> tuple[str, dict[str, Any]]:
    """The engine the actors speak through (``auto`` resolved) and their other ``Voice.load``
    options (threads are added once the cluster's CPUs are known)."""
    from .engines import AUTO, checked_engine

    device = voice_options.get("device") or "cpu"
    if device != "cpu":
        raise LavanyaError(f"--ray runs voices on CPUs; --device {device} is for a single process")
    engine = checked_engine(voice_options.get("engine") or AUTO, device)
    options = {"engine": engine, "strict": bool(voice_options.get("strict"))}
    if voice_options.get("cache") is not None:
        options["cache"] = Path(voice_options["cache"])
    return engine, options


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
                           "give --manifest FILE for an output directory on remote storage")
    return Path(target.located(MANIFEST_NAME))


def _check_outputs(placed: list[Job], target: OutputTarget, manifest: Path, roots: list[Path]) -> None:
    """The checks of a single-process batch (``speech.jobs``), before anything is written: no
    output in a model root, each output once, inside the output directory (symlinks resolved),
    a regular file or a new path in a directory that takes files; on remote storage only the
    rules about names apply, and the local manifest gets the file checks."""
    if target.local:
        outputs = [job.output for job in placed] + [manifest]
        check_outside_roots([*outputs, target.base], roots)
        target.create()
        check_outputs(placed, inside=Path(target.base), extra={"--manifest": manifest})
        check_directories_take_files(outputs)
        return
    check_outside_roots([manifest], roots)
    check_outputs(placed, local=False)
    check_output_target(manifest, "results manifest")
    check_directories_take_files([manifest])
    target.create()
