"""Batch synthesis on Ray: the jobs of ``synth --lines/--jsonl`` spread over a laptop's cores or a cluster.

Ray Data carries the jobs to a pool of actors (``map_batches`` with ``ActorPoolStrategy``). Each
actor loads a voice once, on its first job for it, and writes each WAV itself into the output
directory: a local path, or a URI that ``pyarrow.fs`` understands, so a cluster can write to
shared or object storage. The driver appends every result to a JSONL manifest as it arrives, so
a stopped run resumes where it stopped: a job whose WAV is present with the sha256 the manifest
recorded, made from the same job (text, voice, rate), is skipped.

``job_wav`` is the one place that turns a job into WAV bytes; the rest is scheduling and files.
"""

from __future__ import annotations

import hashlib
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EXIT_USAGE, LavanyaError
from ..fileio import KIB, NotReadable, open_regular, replace_file
from .jobs import STDOUT, Job
from .voice import _one_line

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

    from .voice import Voice

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


@dataclass(frozen=True)
class RaySettings:
    """Where Ray runs and how the work is cut: ``address`` is ``local`` (a private Ray on this
    machine), ``auto`` (the cluster ``ray start`` made here) or a cluster address. ``threads`` is
    per actor; actors default to the cluster's CPUs divided by it, so actors never share cores."""

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

    def plan(self, cluster_cpus: float, jobs: int) -> tuple[int, int]:
        """``(actors, batch size)`` for ``jobs`` jobs on a cluster offering ``cluster_cpus`` CPUs."""
        actors = self.actors or max(1, int(cluster_cpus // self.threads))
        actors = max(1, min(actors, jobs))
        batch = self.batch_size or min(MAX_BATCH_SIZE, max(1, math.ceil(jobs / (actors * BATCHES_PER_ACTOR))))
        return actors, batch


# -- output directory ----------------------------------------------------------------------------


class OutputTarget:
    """The directory the WAVs go to: a local directory, or one on a pyarrow filesystem named by a
    URI (``file:///...``, ``s3://bucket/prefix``, ...). Names given to it are relative and never
    leave it. Pickled as its location, so each Ray actor opens the filesystem with its own node's
    credentials."""

    def __init__(self, location: str):
        self.location = location
        self._filesystem: FileSystem | None = None
        if "://" in location:
            self._filesystem, base = _filesystem_from_uri(location)
            self.local = self._filesystem.type_name == "local"
        else:
            base, self.local = os.path.abspath(location), True
        self.base = base.rstrip("/") or ("/" if self.local else "")

    def __reduce__(self):
        # A local directory travels as its absolute path (a relative one means nothing on a node).
        return OutputTarget, (self.base if self.local else self.location,)

    def __repr__(self) -> str:
        return f"OutputTarget({self.location!r})"

    @property
    def filesystem(self) -> "FileSystem":
        if self._filesystem is None:
            from pyarrow.fs import LocalFileSystem

            self._filesystem = LocalFileSystem()
        return self._filesystem

    def display(self, name: str) -> str:
        """A name as the user would write it: under the location they gave."""
        return f"{self.location.rstrip('/')}/{name}"

    def path(self, name: str) -> str:
        return posixpath.join(self.base, name) if not self.local else os.path.join(self.base, name)

    def create(self) -> None:
        """Make the directory (and its parents) if it is not there."""
        try:
            if self.local:
                os.makedirs(self.base, exist_ok=True)
            else:
                self.filesystem.create_dir(self.base, recursive=True)
        except (OSError, _arrow_error()) as exc:
            raise LavanyaError(f"{self.location}: cannot create the output directory ({_one_line(exc)})") from None

    def place(self, output: str) -> str:
        """A job's output as a normalised name under this directory; LavanyaError for a name that
        would leave it (``..``, an absolute path elsewhere) or for standard output."""
        if output == STDOUT:
            raise LavanyaError("output - (standard output) is for one text, not a batch on Ray")
        name = output
        if self.local and os.path.isabs(output):
            name = os.path.relpath(os.path.abspath(output), self.base)
        elif output.startswith("/"):
            raise LavanyaError(f"output {output}: an absolute path; on Ray every output is relative to "
                               f"{self.location}")
        name = posixpath.normpath(name.replace(os.sep, "/"))
        if name in (".", "") or name == ".." or name.startswith("../"):
            raise LavanyaError(f"output {output}: outside {self.location}; give a name inside the output directory")
        return name

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name``, atomically where the filesystem allows: a temporary name, then
        a rename (locally through ``fileio.replace_file``, with fsync), a direct write on an object store."""
        try:
            if self.local:
                self._write_local(name, data)
            else:
                self._write_remote(name, data)
        except (OSError, _arrow_error()) as exc:
            raise LavanyaError(f"{self.display(name)}: cannot write the WAV ({_one_line(exc)})") from None

    def _write_local(self, name: str, data: bytes) -> None:
        path = Path(self.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        # A symlinked directory inside the output directory must not carry a write outside it.
        real_base = os.path.realpath(self.base)
        if os.path.commonpath([real_base, os.path.realpath(path.parent)]) != real_base:
            raise LavanyaError(f"{self.display(name)}: its directory leads outside {self.location} "
                               "(a symbolic link); remove the link")
        replace_file(path, lambda handle: handle.write(data), mode=0o644)

    def _write_remote(self, name: str, data: bytes) -> None:
        filesystem, final = self.filesystem, self.path(name)
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
            try:
                filesystem.delete_file(temporary)
            except (OSError, _arrow_error()):
                pass
            raise

    def sha256(self, name: str) -> str | None:
        """The sha256 of the file ``name``, or None where there is no regular file to read."""
        try:
            if self.local:
                with open_regular(Path(self.path(name)), "WAV") as handle:
                    return hashlib.file_digest(handle, "sha256").hexdigest()
            from pyarrow.fs import FileType

            path = self.path(name)
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
        raise LavanyaError(f"{uri}: not a directory pyarrow can write to ({_one_line(exc)}); "
                           "give a local path or a URI such as file:///data/wavs or s3://bucket/wavs") from None


def _arrow_error() -> type[Exception]:
    from pyarrow import ArrowException

    return ArrowException


# -- one job ------------------------------------------------------------------------------------


def job_wav(voice: "Voice", job: Job, sentence_silence: float = 0.0) -> tuple[bytes, float, list[str]]:
    """A job's WAV file in memory, its length in seconds and the words it could not pronounce:
    the same bytes as the single-process ``synth`` writes."""
    from .audio import join_pcm, wav_bytes

    plan = voice.plan(job.text, job.alpha, sentence_silence)
    pcm = join_pcm(list(voice.render(plan)))
    unpronounced = list(dict.fromkeys(word for utterance in plan for word in utterance.unpronounced))
    return wav_bytes(pcm, voice.sample_rate), len(pcm) / voice.sample_rate, unpronounced


def job_fingerprint(job: Job, voice_root: str, sentence_silence: float, voice_options: Mapping[str, Any]) -> str:
    """The sha256 of what decides a job's audio (text, rate, voice and where it was found): a
    job whose fingerprint changed since the manifest recorded it is made again."""
    material = {
        "text": job.text, "lang": job.language.lower(), "gender": job.gender.lower(), "alpha": job.alpha,
        "sentence_silence": sentence_silence, "root": voice_root,
        **{key: str(voice_options[key]) for key in ("variant", "vocoder", "engine") if voice_options.get(key)},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def job_result(number: int, output: str, *, error: str | None = None, worker: str | None = None) -> dict[str, Any]:
    """A job's manifest entry before it is done (the driver adds ``job_sha256``)."""
    return {"id": number, "output": output, "audio_seconds": None, "sha256": None, "error": error,
            "unpronounced": [], "worker": worker, "load_seconds": 0.0, "synthesis_seconds": 0.0}


class SynthesisWorker:
    """A Ray actor: voices loaded on first use and kept for its lifetime, each job's WAV written
    by the actor itself. A failing job becomes an error in its result; the others go on."""

    def __init__(self, target: OutputTarget, voice_options: dict[str, Any], sentence_silence: float):
        self.target = target
        self.voice_options = voice_options
        self.sentence_silence = sentence_silence
        self.voices: dict[tuple[str, str, str], Voice] = {}
        self.broken: dict[tuple[str, str, str], str] = {}  # a voice that failed to load fails its jobs at once
        self.name = f"{socket.gethostname()}:{os.getpid()}"  # which node and process made a WAV

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[str]]:
        return {"result": [json.dumps(self.run(json.loads(str(task)))) for task in batch["task"]]}

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        result = job_result(task["id"], task["output"], worker=self.name)
        started = time.perf_counter()
        try:
            voice = self.voice(task["root"], task["lang"], task["gender"])
            loaded = time.perf_counter()
            result["load_seconds"] = round(loaded - started, 3)
            job = Job(task["text"], task["output"], task["lang"], task["gender"], task["alpha"])
            data, seconds, unpronounced = job_wav(voice, job, self.sentence_silence)
            self.target.write(task["output"], data)
            result.update(audio_seconds=round(seconds, 3), sha256=hashlib.sha256(data).hexdigest(),
                          unpronounced=unpronounced, synthesis_seconds=round(time.perf_counter() - loaded, 3))
        except LavanyaError as exc:
            result["error"] = exc.message
        except Exception as exc:  # a job must not take the actor (and the batch) down with it
            result["error"] = f"{type(exc).__name__}: {_one_line(exc)}"
        return result

    def voice(self, root: str, language: str, gender: str) -> "Voice":
        from .voice import Voice

        key = (root, language.lower(), gender.lower())
        if key in self.broken:
            raise LavanyaError(self.broken[key])
        if key not in self.voices:
            try:
                self.voices[key] = Voice.load(language, gender, models=Path(root), **self.voice_options)
            except LavanyaError as exc:
                self.broken[key] = exc.message
                raise
        return self.voices[key]


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
        raise LavanyaError(f"{path}: cannot read the results manifest ({exc.strerror or exc})") from None
    with handle:
        while line := handle.readline(MANIFEST_LINE_MAX_BYTES + 1):
            if len(line) > MANIFEST_LINE_MAX_BYTES or not line.endswith(b"\n"):
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
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
            self._handle = open(path, "ab")
        except OSError as exc:
            raise LavanyaError(f"{path}: cannot write the results manifest ({exc.strerror or exc})") from None

    def append(self, entry: dict[str, Any]) -> None:
        try:
            self._handle.write(_manifest_line(entry))
            self._handle.flush()
        except OSError as exc:
            raise LavanyaError(f"{self.path}: cannot write the results manifest ({exc.strerror or exc})") from None

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
            "wall_seconds": round(self.wall_seconds, 3), "cluster_cpus": self.cluster_cpus, "actors": self.actors,
            "threads_per_actor": self.threads, "batch_size": self.batch_size, "voices": self.voices,
            "failures": [{"id": r["id"], "output": r["output"], "error": r["error"]} for r in self.failed],
        }


def run_batch(jobs: list[Job], output_dir: str, *, settings: RaySettings = RaySettings(),
              voice_options: Mapping[str, Any] | None = None, sentence_silence: float = 0.0,
              manifest: Path | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> BatchReport:
    """Synthesize ``jobs`` on Ray into ``output_dir`` (a path or URI), skipping those a previous run
    finished. ``voice_options`` go to ``Voice.load`` (``variant``, ``vocoder``, ``strict``,
    ``engine``, ``models``); ``on_start(pending, total)`` and ``on_result(entry)`` feed a progress bar.
    A job that fails is an entry with an error; only a problem with the whole run raises."""
    started = time.perf_counter()
    import_optional("ray")
    if sentence_silence < 0:
        raise LavanyaError(f"sentence silence must be 0 or more seconds, not {sentence_silence}")
    options = _actor_voice_options(voice_options or {}, settings.threads)
    target = OutputTarget(output_dir)
    names = _placed_names(jobs, target)
    manifest_path = _manifest_path(target, manifest, names)
    target.create()

    specs, voice_errors, voices = _resolve_voices(jobs, voice_options or {})
    previous = read_manifest(manifest_path, set(names))
    kept, tasks, failed_here, fingerprints = [], [], [], {}
    for number, (job, name) in enumerate(zip(jobs, names), start=1):
        key = (job.language.lower(), job.gender.lower())
        if key in voice_errors:
            failed_here.append({**job_result(number, name, error=voice_errors[key]), "job_sha256": None})
            continue
        root = str(specs[key].root)
        fingerprints[name] = job_fingerprint(job, root, sentence_silence, options)
        entry = previous.get(name)
        if (entry and not entry.get("error") and entry.get("job_sha256") == fingerprints[name]
                and entry.get("sha256") and target.sha256(name) == entry["sha256"]):
            kept.append(entry)
            continue
        tasks.append({"id": number, "output": name, "text": job.text, "lang": job.language, "gender": job.gender,
                      "alpha": job.alpha, "root": root})

    report = BatchReport(output_dir=output_dir, manifest=str(manifest_path), jobs=len(jobs), skipped=len(kept),
                         threads=settings.threads, voices=voices)
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
                report.actors, report.batch_size = settings.plan(cluster_cpus, len(tasks))
                for result in _stream_results(tasks, target, options, sentence_silence, settings.threads,
                                              report.actors, report.batch_size, report):
                    result["job_sha256"] = fingerprints[result["output"]]
                    record(result)
    report.results.sort(key=lambda entry: entry["id"])
    report.wall_seconds = time.perf_counter() - started
    return report


def _stream_results(tasks: list[dict[str, Any]], target: OutputTarget, options: dict[str, Any],
                    sentence_silence: float, threads: int, actors: int, batch_size: int,
                    report: BatchReport) -> Iterator[dict[str, Any]]:
    """Each task's result as its batch finishes (in no particular order)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    progress_bars, context.enable_progress_bars = context.enable_progress_bars, False
    threads_env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    try:
        dataset = ray.data.from_items([{"task": json.dumps(task, ensure_ascii=False)} for task in tasks],
                                      override_num_blocks=math.ceil(len(tasks) / batch_size))
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
                fn_constructor_kwargs={"target": target, "voice_options": options,
                                       "sentence_silence": sentence_silence},
                batch_size=batch_size,
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=threads,
                runtime_env={"env_vars": threads_env},
                max_restarts=0,
            )
        for row in results.iter_rows():
            yield json.loads(row["result"])
    except LavanyaError:
        raise
    except Exception as exc:  # an actor lost, a node gone: what finished is in the manifest
        done = len(report.results)
        raise LavanyaError(f"Ray stopped the batch ({_one_line(exc)[:300]}); {report.skipped + done} of "
                           f"{report.jobs} jobs are recorded in {report.manifest}: run the same command "
                           "again to resume", EXIT_USAGE) from None
    finally:
        context.enable_progress_bars = progress_bars


@contextmanager
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
        arguments.update(address="local", num_cpus=settings.num_cpus or usable_cpus(), include_dashboard=False,
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
        raise LavanyaError(f"--ray {settings.address}: cannot reach a Ray cluster ({_one_line(exc)[:200]}); {hint}")\
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
        raise LavanyaError(f"--ray {address}: nothing answers at {host}:{port} ({exc.strerror or exc}); "
                           "give the address `ray start --head` printed, or --ray local") from None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, as a container's limit often shows)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def import_optional(module: str):
    """``ray`` or ``pyarrow``, or the one line that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LavanyaError(f"--ray needs Ray Data ({module.split('.')[0]} is not installed): {RAY_EXTRA}") from None


def _actor_voice_options(voice_options: Mapping[str, Any], threads: int) -> dict[str, Any]:
    """``Voice.load`` options for an actor: CPU, ``threads`` threads, ``engine`` only when set."""
    device = voice_options.get("device") or "cpu"
    if device != "cpu":
        raise LavanyaError(f"--ray runs voices on CPUs; --device {device} is for a single process")
    options = {key: voice_options[key] for key in ("variant", "vocoder", "strict", "engine")
               if voice_options.get(key) is not None}
    options["threads"] = threads
    return options


def _placed_names(jobs: list[Job], target: OutputTarget) -> list[str]:
    """Each job's output name under the target; two jobs writing one file is a mistake in the job file."""
    names, seen = [], {}
    for number, job in enumerate(jobs, start=1):
        try:
            name = target.place(job.output)
        except LavanyaError as exc:
            raise LavanyaError(f"job {number}: {exc.message}") from None
        if name in seen:
            raise LavanyaError(f"jobs {seen[name]} and {number} both write {name}; give each job its own output")
        seen[name] = number
        names.append(name)
    return names


def _manifest_path(target: OutputTarget, manifest: Path | None, names: list[str]) -> Path:
    """The manifest: as given, else beside the WAVs in a local output directory."""
    if manifest is None:
        if not target.local:
            raise LavanyaError(f"{target.location}: the results manifest is written locally as results arrive; "
                               "give --manifest FILE for an output directory on remote storage")
        if MANIFEST_NAME in names:
            raise LavanyaError(f"a job writes {MANIFEST_NAME}, the name of the results manifest; rename its output")
        return Path(target.path(MANIFEST_NAME))
    if target.local and os.path.abspath(manifest) in {os.path.abspath(target.path(name)) for name in names}:
        raise LavanyaError(f"{manifest}: a job writes this file; give the manifest another name")
    return Path(manifest)


def _resolve_voices(jobs: list[Job], voice_options: Mapping[str, Any]) -> tuple[dict, dict, list[dict[str, Any]]]:
    """Each voice the jobs use, found here as a single-process run would find it (``--models``,
    ``$LAVANYA_MODELS``, ``./Fastspeech2_HS``, the bundled demo), so every actor loads it from that
    one root: a node without it fails those jobs instead of quietly speaking with the demo voice."""
    from ..modeltree.layout import find_voice
    from .voice import require_weights

    specs, errors, skipped = {}, {}, {}
    for job in jobs:
        key = (job.language.lower(), job.gender.lower())
        if key in specs or key in errors:
            continue
        skipped[key] = []
        try:
            specs[key] = find_voice(job.language, job.gender, voice_options.get("variant"),
                                    voice_options.get("models"), vocoder=voice_options.get("vocoder"),
                                    require=require_weights, skipped=skipped[key])
        except LavanyaError as exc:
            errors[key] = exc.message
    described = [{"voice": spec.name, "root": str(spec.root), "model_dir": str(spec.model_dir),
                  "vocoder": str(spec.vocoder.directory), "bundled": spec.bundled, "demo": spec.demo,
                  "skipped": skipped[key]} for key, spec in specs.items()]
    return specs, errors, described
