"""The driver's loop over Ray actors (``batch.ray._dispatch``) against a stand-in for Ray whose
actors start or not, and die on a given job: who is charged for a lost worker, an actor that
never starts, every worker lost."""

from __future__ import annotations

import itertools
import time

import pytest

pytest.importorskip("ray", reason="the ray extra (lavanya[ray]) is not installed")

from ray.exceptions import ActorDiedError  # noqa: E402

from lavanya_cli.errors import LavanyaError  # noqa: E402
from lavanya_cli.batch import ray as ray_batch  # noqa: E402
from lavanya_cli.batch.ray import MAX_ATTEMPTS, BatchReport, _dispatch  # noqa: E402
from lavanya_cli.batch.results import job_result  # noqa: E402


class _Ref:
    numbers = itertools.count()

    def __init__(self, actor: "_Actor", kind: str, task: dict | None = None):
        self.actor, self.kind, self.task, self.number = actor, kind, task, next(self.numbers)

    def __hash__(self) -> int:
        return self.number


class _Method:
    def __init__(self, actor: "_Actor", kind: str):
        self.actor, self.kind = actor, kind

    def remote(self, task: dict | None = None) -> _Ref:
        return _Ref(self.actor, self.kind, task)


class _Actor:
    def __init__(self, number: int, starts: bool = True, dies_on: frozenset[str] = frozenset()):
        self.number, self.starts, self.dies_on, self.dead, self.ran = number, starts, dies_on, False, []
        self.place, self.run = _Method(self, "place"), _Method(self, "run")


class _Ray:
    """``wait``: the oldest ref whose actor has started; running a job in ``dies_on`` kills
    the actor (every ref of it then raises ActorDiedError)."""

    def wait(self, refs, num_returns=1, timeout=None):
        for ref in refs:
            if ref.actor.starts:
                if ref.kind == "run" and not ref.actor.dead:
                    ref.actor.ran.append(ref.task["name"])
                    ref.actor.dead = ref.task["name"] in ref.actor.dies_on
                return [ref], []
        time.sleep(timeout or 0)
        return [], refs

    def get(self, ref):
        if ref.actor.dead:
            raise ActorDiedError()
        if ref.kind == "place":
            return {"node": f"10.0.0.{ref.actor.number}", "node_id": None, "worker": f"w:{ref.actor.number}"}
        return job_result(ref.task["id"], ref.task["name"])

    def kill(self, actor, no_restart=True):
        actor.dead = True


def _tasks(*names: str) -> list[dict]:
    return [{"id": n, "name": name, "output": name, "where": f"j.jsonl:{n}", "text": "x"}
            for n, name in enumerate(names, start=1)]


def _run(actors: list[_Actor], tasks: list[dict]) -> tuple[list[dict], BatchReport]:
    report = BatchReport(output_dir="out", manifest="out/m.jsonl", jobs=len(tasks), actors=len(actors), threads=1)
    results = list(_dispatch(_Ray(), dict(enumerate(actors)), tasks, report, lambda: None))
    return results, report


def test_only_the_job_that_was_running_counts_a_lost_worker():
    poison = frozenset({"P.wav"})
    actors = [_Actor(n, dies_on=poison) for n in range(MAX_ATTEMPTS + 1)]
    results, report = _run(actors, _tasks("P.wav", "Q.wav"))
    by_name = {result["output"]: result for result in results}
    assert f"its worker was lost {MAX_ATTEMPTS} times" in by_name["P.wav"]["error"]
    assert by_name["Q.wav"]["error"] is None  # queued behind P each time, never charged
    assert len(report.lost) == MAX_ATTEMPTS and all(lost["node"] for lost in report.lost)
    assert [lost["jobs"] for lost in report.lost] == [2, 2, 1]  # the jobs each handed on


def test_jobs_go_only_to_actors_that_started(monkeypatch):
    actors = [_Actor(0), _Actor(1, starts=False)]
    results, report = _run(actors, _tasks("a.wav", "b.wav", "c.wav", "d.wav", "e.wav"))
    assert sorted(result["output"] for result in results) == ["a.wav", "b.wav", "c.wav", "d.wav", "e.wav"]
    assert actors[1].ran == [] and report.lost == []


def test_an_actor_that_never_starts_stops_the_run_with_a_line(monkeypatch):
    monkeypatch.setattr(ray_batch, "START_SECONDS", 0.3)
    monkeypatch.setattr(ray_batch, "WAIT_SECONDS", 0.05)
    with pytest.raises(LavanyaError, match=r"no worker started within 0 s: each asks for 1 CPU on one node"):
        _run([_Actor(0, starts=False)], _tasks("a.wav"))


def test_every_worker_lost_stops_the_run_with_what_was_recorded():
    with pytest.raises(LavanyaError, match=r"every worker was lost \(10\.0\.0\.0: .*\); 0 of 1 jobs are recorded"):
        _run([_Actor(0, dies_on=frozenset({"a.wav"}))], _tasks("a.wav"))
