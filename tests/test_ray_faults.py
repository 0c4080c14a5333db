"""A Ray batch under faults (``scripts/ray_faults.py``) on the tiny voices: a worker node of a
two-node cluster on this machine killed mid-run, the driver stopped by a signal, a cluster that
refuses the token or does not answer, and what a local Ray listens on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers import free_port
from synthkit import shared_voice_root

pytest.importorskip("ray", reason="the ray extra (lavanya[ray]) is not installed")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import ray_faults  # noqa: E402

from lavanya_cli.batch.ray import IN_FLIGHT_PER_ACTOR  # noqa: E402

pytestmark = pytest.mark.slow  # Ray clusters and lavanya in subprocesses, signals and lost nodes: minutes


def test_a_lost_node_loses_no_finished_work_and_the_run_carries_on(tmp_path):
    figures = ray_faults.lose_a_node(shared_voice_root(), tmp_path, jobs=60, sentences=3, after=4)
    first, rerun = figures["first"], figures["rerun"]
    assert first["code"] == 0, first["stderr"]
    assert first["workers_at_kill"] == 2, "the node was lost before its actor had done any work"
    summary = first["summary"]
    assert summary is not None, "stdout must be exactly the JSON summary"
    assert (summary["done"], summary["failed"]) == (60, 0)
    # the lost worker is named in lavanya's words, with its node's address
    [lost] = summary["lost_workers"]
    assert lost["why"] == "its node left the cluster" and lost["node"] and lost["jobs"] >= 1
    assert not [line for line in first["stderr"].splitlines() if "RpcError" in line or "Raylet" in line]
    assert first["foreign_stderr"] == []
    # every WAV is recorded, nothing is left half-written, and the rerun has nothing to do
    assert first["wavs"] == first["recorded"] == 60 and first["temporaries"] == []
    assert (rerun["code"], rerun["summary"]["skipped"], rerun["summary"]["done"]) == (0, 60, 0)


def test_a_signal_loses_at_most_the_jobs_in_flight_and_prints_the_summary(tmp_path):
    figures = ray_faults.stop_by_signal(shared_voice_root(), tmp_path, jobs=40, sentences=3, after=3,
                                        signum=signal.SIGTERM)
    first, rerun = figures["first"], figures["rerun"]
    assert first["code"] == 143, first["stderr"]
    summary = first["summary"]
    assert summary is not None and summary["error"] == "terminated (SIGTERM)"
    assert summary["done"] >= 3 and summary["done"] == first["recorded"]
    assert first["stderr"].rstrip().splitlines()[-1] == "lavanya: error: terminated (SIGTERM)"
    assert first["foreign_stderr"] == [] and first["temporaries"] == []
    # written but not recorded: at most what the actors held when the signal came
    assert first["wavs"] - first["recorded"] <= summary["actors"] * IN_FLIGHT_PER_ACTOR
    assert rerun["code"] == 0
    assert rerun["summary"]["skipped"] == first["recorded"]
    assert rerun["summary"]["done"] == 40 - first["recorded"] and rerun["recorded"] == 40


def test_a_local_ray_listens_on_loopback_only():
    script = """
import json, os
from pathlib import Path
from lavanya_cli.batch.ray import RaySettings, ray_session

def descendants(root):
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found

def listening():
    inodes = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                inodes[fields[9]] = fields[1]
    return inodes

with ray_session(RaySettings(num_cpus=1)):
    import ray
    ray.get(ray.remote(lambda: 1).remote())
    inodes, seen = listening(), []
    for pid in descendants(os.getpid()):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        seen += [inodes[link[8:-1]] for link in links if link.startswith("socket:[") and link[8:-1] in inodes]
print(json.dumps(seen))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-2000:]
    addresses = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(addresses) >= 3  # the GCS, the raylet and a worker at least
    # 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net writes them
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    assert {address.split(":")[0] for address in addresses} <= loopback, addresses


def _synth(tmp_path: Path, ray: str, env: dict | None = None) -> subprocess.CompletedProcess:
    jobs = tmp_path / "jobs.jsonl"
    ray_faults.write_jobs(jobs, 2, 1)
    command = [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "synth", "--models",
               str(shared_voice_root()), "--jsonl", str(jobs), "--output-dir", str(tmp_path / "out"), "--ray", ray]
    return subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_an_unreachable_cluster_creates_nothing(tmp_path):
    run = _synth(tmp_path, f"127.0.0.1:{free_port()}")
    assert run.returncode == 2 and "nothing answers at 127.0.0.1" in run.stderr
    assert len(run.stderr.splitlines()) == 1 and run.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_refused_token_says_so_in_one_line(tmp_path):
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, capture_output=True, check=True, timeout=60)
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--port", str(port), "--num-cpus", "1",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and head.poll() is None, "the head did not start"
                time.sleep(0.2)
        run = _synth(tmp_path, f"127.0.0.1:{port}", {"HOME": str(home), "RAY_AUTH_MODE": "token",
                                                      "RAY_AUTH_TOKEN": "0" * 64})
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.splitlines()
    assert "refused the authentication token" in line and "RAY_AUTH_TOKEN" in line
    assert run.stdout == "" and not (tmp_path / "out").exists()


def test_ray_leaves_the_sigterm_handler_where_python_put_it():
    """Ray's C++ failure handler replaced SIGTERM's handler under Python's feet and put the
    default back in ray.shutdown: a SIGTERM then killed lavanya without a word (-15)."""
    script = """
import ctypes, json, signal
from lavanya_cli.batch.ray import RaySettings, ray_session

class Action(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                ("restorer", ctypes.c_void_p)]

def installed():
    action = Action()
    ctypes.CDLL(None).sigaction(signal.SIGTERM, None, ctypes.byref(action))
    return action.handler

import threading

signal.signal(signal.SIGTERM, lambda *_: None)
first, seen, done = installed(), set(), threading.Event()

def watch():  # every moment of the session, its start and its shutdown included
    while not done.is_set():
        seen.add(installed())

watcher = threading.Thread(target=watch)
watcher.start()
with ray_session(RaySettings(num_cpus=1)):
    import ray
    ray.get(ray.remote(lambda: 1).remote())
done.set()
watcher.join()
print(json.dumps([first, sorted(handler or 0 for handler in seen)]))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-2000:]
    first, seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert first and seen == [first]  # Python's handler throughout: never Ray's, never the default


def _processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(directory):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("delay", [1.5, 2.0, 2.5])
def test_sigterm_while_ray_starts_exits_143_and_leaves_no_ray_process(tmp_path, delay):
    """Seconds after the start, while Ray starts its processes (ray.init's own SIGTERM handler
    once exited at once here, leaving Ray's agents running, or aborted the process)."""
    jobs = tmp_path / "jobs.jsonl"
    ray_faults.write_jobs(jobs, 4, 1)
    process = ray_faults.start_batch(jobs, tmp_path / "out", shared_voice_root(), "local")
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    finished = ray_faults.finish(process, timeout=120)
    assert finished["code"] == 143, finished["stderr"]
    assert finished["stderr"].rstrip().splitlines()[-1] == "lavanya: error: terminated (SIGTERM)"
    assert finished["foreign_stderr"] == []
    time.sleep(3)  # what would be left has had time to show it stays
    assert _processes_in(tmp_path) == []
