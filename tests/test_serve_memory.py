"""A server's voices within a memory budget: listed without loading, loaded on first use, evicted
least recently used first before a load (so the peak stays within the budget), one load per cold
voice however many ask, pinned and in-use voices kept, vocoders shared, a budget too small refused
at start, and the metrics and listing that say so."""

from __future__ import annotations

import gc
import shutil
import threading
import time
import weakref
from pathlib import Path

import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.serve.memory import (LOAD_MARGIN_BYTES, RESIDENT_PER_GRAPH_BYTE, Footprint, cgroup_limit,
                                      estimate_footprint, parse_size)

# -- sizes and the cgroup ---------------------------------------------------------------------


@pytest.mark.parametrize("text, size", [("450M", 450 << 20), ("1.5G", 3 << 29), ("512MiB", 512 << 20),
                                        ("300000000", 300_000_000), ("64k", None), ("2 GB", 2 << 30)])
def test_sizes_are_read_in_powers_of_1024(text, size):
    if size is None:
        with pytest.raises(LavanyaError, match="from 1M"):
            parse_size(text)
    else:
        assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-5M", "5X", "1e9", "nanM"])
def test_a_size_that_is_not_one_names_the_option(text):
    with pytest.raises(LavanyaError, match="max_memory .*write a size such as 450M"):
        parse_size(text)


def _cgroup(tmp_path: Path, proc_line: str, files: dict[str, str]) -> int | None:
    tmp_path.mkdir()
    proc = tmp_path / "cgroup"
    proc.write_text(proc_line + "\n")
    for relative, text in files.items():
        path = tmp_path / "fs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return cgroup_limit(proc, tmp_path / "fs")


def test_the_cgroup_limit_is_read_from_v2_and_v1(tmp_path):
    assert _cgroup(tmp_path / "a", "0::/system.slice/tts.service",
                   {"system.slice/tts.service/memory.max": "536870912"}) == 512 << 20
    assert _cgroup(tmp_path / "b", "0::/", {"memory.max": "max"}) is None
    assert _cgroup(tmp_path / "c", "5:memory:/docker/abc", {"memory/docker/abc/memory.limit_in_bytes": "1073741824"}) \
        == 1 << 30
    assert _cgroup(tmp_path / "d", "5:memory:/", {"memory/memory.limit_in_bytes": str(2**63 - 4096)}) is None
    assert cgroup_limit(tmp_path / "missing", tmp_path) is None
    assert _cgroup(tmp_path / "e", "0::/system.slice/tts.service",  # the unit has none, its slice has
                   {"system.slice/tts.service/memory.max": "max", "system.slice/memory.max": "1073741824",
                    "memory.max": "max"}) == 1 << 30


# -- voices in a budget ---------------------------------------------------------------------------

VOICES = ("hindi/male", "hindi/female", "marathi/male", "marathi/female")

@pytest.fixture(scope="module")
def deploy_root(tmp_path_factory):
    """Four tiny voices in a deploy root: hindi and marathi, male and female; the two of one
    gender share its vocoder, as upstream's voices do."""
    from onnxkit import shared_cache
    from synthkit import shared_voice_root

    from lavanya_cli.modeltree.layout import ModelRoot
    from lavanya_cli.speech.export import write_deploy_root

    out = tmp_path_factory.mktemp("deploy") / "Fastspeech2_HS"
    write_deploy_root(list(ModelRoot(shared_voice_root()).voices()), out, cache=shared_cache())
    for gender in ("male", "female"):  # the same graphs under another language: another voice
        shutil.copytree(out / "hindi" / gender, out / "marathi" / gender)
    for name in ("phone_dict", "numToText"):
        for source in sorted((out / name).glob("hindi*")) if (out / name).is_dir() else []:
            target = out / name / source.name.replace("hindi", "marathi")
            if not target.exists():
                shutil.copyfile(source, target)
    return out


@pytest.fixture
def loads(monkeypatch):
    """Every Voice.load the server makes, by voice name."""
    from lavanya_cli.speech.voice import Voice

    made: list[str] = []
    real = Voice.load.__func__

    def counted(cls, voice, *args, **kwargs):
        made.append(voice.name)
        return real(cls, voice, *args, **kwargs)

    monkeypatch.setattr(Voice, "load", classmethod(counted))
    return made


def _served(root: Path, room_for: float, pinned: tuple[str, ...] = (), measured=lambda: 0, vocoders: int = 1):
    """A VoiceSet over ``root`` whose budget leaves room for ``room_for`` voices and ``vocoders``
    vocoders."""
    from lavanya_cli.modeltree.layout import ModelRoot
    from lavanya_cli.serve.voices import MemoryPlan, VoiceSet
    from lavanya_cli.speech.options import LoadOptions

    specs = list(ModelRoot(root).voices())
    one = estimate_footprint(specs[0])
    room = int(one.vocoder * vocoders + one.acoustic * room_for) + (16 << 20)  # LOAD_MARGIN_BYTES
    voices = VoiceSet()
    voices.serve(specs, [spec for spec in specs if spec.name in pinned],
                 LoadOptions(engine="onnx", threads=1), MemoryPlan(room + 1000, 1000, measured=measured))
    return voices, {spec.name: spec for spec in specs}


class Watch:
    """An observer that checks the budget at every load and eviction."""

    def __init__(self, voices):
        self.voices = voices
        self.events: list[tuple[str, str]] = []

    def loaded(self, name, seconds):
        self.events.append(("load", name))
        assert self.voices.resident_bytes() <= self.voices.memory.for_voices

    def evicted(self, name):
        self.events.append(("evict", name))



@pytest.mark.slow
def test_voices_are_listed_without_loading_and_loaded_on_first_use(deploy_root, loads):
    voices, specs = _served(deploy_root, room_for=4)
    assert voices.ready and loads == []
    assert [(v["name"], v["state"], v["engine"]) for v in voices.describe()] == [
        (name, "cold", None) for name in ("hindi/female", "hindi/male", "marathi/female", "marathi/male")]
    voice, waited = voices.acquire(specs["hindi/male"])
    voices.release(specs["hindi/male"])
    assert waited and loads == ["hindi/male"]
    assert voices.acquire(specs["hindi/male"]) == (voice, False) and loads == ["hindi/male"]
    states = {v["name"]: v["state"] for v in voices.describe()}
    assert states["hindi/male"] == "resident" and states["marathi/male"] == "cold"


@pytest.mark.slow
def test_the_least_recently_used_idle_voice_is_evicted_before_a_load(deploy_root, loads):
    voices, specs = _served(deploy_root, room_for=2)  # two male voices, or one of each gender
    watch = voices.observer = Watch(voices)
    first, _ = voices.acquire(specs["hindi/male"])
    voices.release(specs["hindi/male"])
    voices.acquire(specs["marathi/male"])
    voices.release(specs["marathi/male"])
    gone = weakref.ref(first)
    del first
    voices.acquire(specs["hindi/female"])  # a second vocoder too: both male voices must go
    voices.release(specs["hindi/female"])
    assert watch.events == [("load", "hindi/male"), ("load", "marathi/male"), ("evict", "hindi/male"),
                            ("evict", "marathi/male"), ("load", "hindi/female")]
    gc.collect()
    assert gone() is None  # nothing keeps an evicted voice: its memory is the allocator's again
    assert voices.resident_count() == 1


@pytest.mark.slow
def test_voices_of_one_vocoder_share_it_and_it_is_counted_once(deploy_root, loads):
    voices, specs = _served(deploy_root, room_for=2)
    hindi, _ = voices.acquire(specs["hindi/male"])
    marathi, _ = voices.acquire(specs["marathi/male"])  # both fit: one vocoder, two acoustic models
    assert hindi.backend.vocoder is marathi.backend.vocoder
    one = estimate_footprint(specs["hindi/male"])
    assert voices.resident_bytes() == one.vocoder + 2 * one.acoustic


@pytest.mark.slow
def test_concurrent_requests_for_a_cold_voice_share_one_load(deploy_root, loads):
    voices, specs = _served(deploy_root, room_for=4)
    results, barrier = [], threading.Barrier(6)

    def ask():
        barrier.wait()
        results.append(voices.acquire(specs["marathi/female"])[0])

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert loads == ["marathi/female"]
    assert len(results) == 6 and all(voice is results[0] for voice in results)


@pytest.mark.slow
def test_a_voice_in_use_is_not_evicted_and_the_newcomer_is_told_to_wait(deploy_root, loads):
    from lavanya_cli.serve.voices import VoiceMemoryBusy

    voices, specs = _served(deploy_root, room_for=1)
    voices.acquire(specs["hindi/male"])  # held: a request is speaking with it
    with pytest.raises(VoiceMemoryBusy, match="marathi/male needs .* every loaded voice is in use or pinned"):
        voices.acquire(specs["marathi/male"])
    assert {v["name"]: v["state"] for v in voices.describe()}["marathi/male"] == "cold"
    voices.release(specs["hindi/male"])
    voices.acquire(specs["marathi/male"])
    assert loads == ["hindi/male", "marathi/male"] and voices.resident_count() == 1


@pytest.mark.slow
def test_pinned_voices_stay_while_others_come_and_go(deploy_root, loads):
    voices, specs = _served(deploy_root, room_for=2, pinned=("hindi/male",), vocoders=2)
    assert not voices.ready
    voices.load_pinned()
    assert voices.ready
    for name in ("marathi/male", "hindi/female", "marathi/female", "marathi/male"):
        voices.acquire(specs[name])
        voices.release(specs[name])
        assert voices.is_resident(specs["hindi/male"])
    assert loads.count("hindi/male") == 1 and loads.count("marathi/male") == 2


@pytest.mark.slow
def test_a_newcomer_that_cannot_fit_evicts_nothing(deploy_root, loads):
    from lavanya_cli.serve.voices import VoiceMemoryBusy

    voices, specs = _served(deploy_root, room_for=2, vocoders=1)
    voices.acquire(specs["hindi/male"])
    voices.release(specs["hindi/male"])  # idle
    voices.acquire(specs["marathi/male"])  # in use: hindi/female's vocoder and model cannot fit beside it
    watch = voices.observer = Watch(voices)
    with pytest.raises(VoiceMemoryBusy):
        voices.acquire(specs["hindi/female"])
    assert watch.events == [] and voices.is_resident(specs["hindi/male"])  # evicting it would not have helped


@pytest.mark.slow
def test_a_request_that_stops_during_a_load_leaves_the_voice_loadable(deploy_root):
    """The load runs to its end whatever the request's stop switch says (a client that left, a
    deadline), and a voice that failed for good says so in the listing."""
    from lavanya_cli.serve.voices import VoiceUnavailable
    from lavanya_cli.speech.cancel import StopSwitch, stoppable

    voices, specs = _served(deploy_root, room_for=4)
    switch = StopSwitch()
    switch.stop()
    with stoppable(switch):
        voice, _ = voices.acquire(specs["marathi/male"])
    assert voice is not None and voices.is_resident(specs["marathi/male"])
    broken = deploy_root.parent / "broken"
    shutil.copytree(deploy_root, broken / "Fastspeech2_HS")
    (broken / "Fastspeech2_HS" / "hindi" / "male" / "model" / "acoustic_encoder.onnx").write_bytes(b"not a graph")
    voices, specs = _served(broken / "Fastspeech2_HS", room_for=4)
    for _ in range(2):
        with pytest.raises(VoiceUnavailable, match="hindi/male cannot be loaded"):
            voices.acquire(specs["hindi/male"])
    assert {v["name"]: v["state"] for v in voices.describe()}["hindi/male"] == "failed"


@pytest.mark.slow
def test_what_the_process_really_holds_makes_more_room(deploy_root, loads):
    """An estimate that was low: the measured resident memory evicts idle voices too."""
    held = {"bytes": 0}
    voices, specs = _served(deploy_root, room_for=4, measured=lambda: held["bytes"])
    voices.acquire(specs["hindi/male"])
    voices.release(specs["hindi/male"])
    held["bytes"] = voices.memory.budget  # the process is already at the budget
    voices.acquire(specs["marathi/male"])
    assert not voices.is_resident(specs["hindi/male"]) and voices.is_resident(specs["marathi/male"])


@pytest.mark.slow
def test_a_budget_too_small_is_refused_at_start_naming_what_it_needs(deploy_root):
    from lavanya_cli.modeltree.layout import ModelRoot
    from lavanya_cli.serve.voices import MemoryPlan, VoiceSet
    from lavanya_cli.speech.options import LoadOptions

    specs = list(ModelRoot(deploy_root).voices())
    one = estimate_footprint(specs[0])
    with pytest.raises(LavanyaError, match=r"max_memory .* is too small: .* needs .*; give at least"):
        VoiceSet().serve(specs, [], LoadOptions(engine="onnx"), MemoryPlan(1000 + one.acoustic, 1000))
    with pytest.raises(LavanyaError, match=r"the pinned voices \(hindi/female, hindi/male\) need"):
        VoiceSet().serve(specs, specs[:2], LoadOptions(engine="onnx"),
                         MemoryPlan(1000 + (16 << 20) + one.acoustic * 2 + one.vocoder, 1000))


def test_a_voice_costs_its_graphs_and_its_vocoder_apart(tmp_path):
    from lavanya_cli.modeltree.layout import VocoderSpec, VoiceSpec

    model = tmp_path / "hindi" / "male" / "model"
    vocoder = tmp_path / "vocoder" / "male" / "aryan" / "hifigan"
    model.mkdir(parents=True)
    vocoder.mkdir(parents=True)
    (model / "model.pth").write_bytes(b"w" * 1000)
    (vocoder / "generator").write_bytes(b"g" * 400)
    spec = VoiceSpec(root=tmp_path, language="hindi", gender="male", variant="", model_dir=model,
                     vocoder=VocoderSpec(directory=vocoder, name="aryan"))
    weights = estimate_footprint(spec)
    assert weights == Footprint(int(1000 * RESIDENT_PER_GRAPH_BYTE), int(400 * RESIDENT_PER_GRAPH_BYTE),
                                str(vocoder.resolve()), 500, 400)
    assert weights.loading() == LOAD_MARGIN_BYTES  # at least this, for small voices
    assert estimate_footprint(spec, "int8").acoustic < weights.acoustic / 3
    (model / "acoustic_encoder.onnx").write_bytes(b"e" * 100)
    (model / "acoustic_decoder.onnx").write_bytes(b"d" * 100)
    assert estimate_footprint(spec).acoustic == int(200 * RESIDENT_PER_GRAPH_BYTE)  # the graphs, not the weights
    (model / "acoustic_encoder.onnx").write_bytes(b"e" * (LOAD_MARGIN_BYTES + 1))
    assert estimate_footprint(spec).loading() == LOAD_MARGIN_BYTES + 1  # the largest graph is parsed whole
    (vocoder / "generator.onnx").write_bytes(b"v" * (LOAD_MARGIN_BYTES + 2))
    assert estimate_footprint(spec).loading() == LOAD_MARGIN_BYTES + 2
    assert estimate_footprint(spec).loading(with_vocoder=False) == LOAD_MARGIN_BYTES + 1  # it is loaded already


# -- the server around them ---------------------------------------------------------------------

def _text_for(name: str) -> dict:
    language, gender = name.split("/")
    return {"text": "नमस्ते। आप कैसे हैं?", "lang": language, "gender": gender}


@pytest.mark.slow
def test_a_server_in_a_budget_answers_every_voice_under_concurrent_requests(deploy_root, loads):
    import httpx
    from servekit import WAIT_SECONDS, start_server
    from _helpers import metric

    from lavanya_cli.serve.limits import ServerLimits

    voices, specs = _served(deploy_root, room_for=1.5, vocoders=1)  # one voice at a time, with its vocoder
    peaks = []
    real_loaded = None

    class Watching(Watch):
        def loaded(self, name, seconds):
            peaks.append(voices.resident_bytes())
            real_loaded(name, seconds)

    running = start_server(None, ServerLimits(workers=2, queue=16, timeout=30), voice_set=voices)
    real_loaded = voices.observer.loaded
    watch = Watching(voices)
    watch.evicted = voices.observer.evicted
    voices.observer = watch
    try:
        with httpx.Client(base_url=running.url, timeout=WAIT_SECONDS) as client:
            listed = client.get("/api/voices").json()
            assert [v["state"] for v in listed["voices"]] == ["cold"] * 4
            assert listed["memory"]["budget_bytes"] == voices.memory.budget
            results: list[tuple[str, int, str]] = []

            def speak(name: str) -> None:
                with httpx.Client(base_url=running.url, timeout=WAIT_SECONDS) as own:
                    answered = 0
                    for _ in range(200):  # a 503 is tried again soon (sooner than Retry-After says)
                        response = own.post("/api/tts", json=_text_for(name))
                        results.append((name, response.status_code, response.headers.get("x-voice-loaded", "")))
                        if response.status_code == 503:
                            assert response.json()["error"] == "voice_memory"
                            assert 1 <= int(response.headers["retry-after"]) <= 60
                            time.sleep(0.02)
                        elif (answered := answered + 1) == 2:
                            return

            threads = [threading.Thread(target=speak, args=(name,)) for name in VOICES * 2]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT_SECONDS * 2)
            assert {status for _, status, _ in results} <= {200, 503}
            assert {name for name, status, _ in results if status == 200} == set(VOICES)
            assert all(peak <= voices.memory.for_voices for peak in peaks)
            assert metric(client, "lavanya_voice_loads_total", voice="hindi/male") >= 1
            assert sum(metric(client, "lavanya_voice_loads_total", voice=name) for name in VOICES) == len(loads)
            evictions = sum(metric(client, "lavanya_voice_evictions_total", voice=name) for name in VOICES)
            assert evictions == len(loads) - voices.resident_count() >= 3
            assert metric(client, "lavanya_memory_budget_bytes") == voices.memory.budget
            assert metric(client, "lavanya_resident_voices") == voices.resident_count() == 1
            assert metric(client, "lavanya_voice_load_seconds_count") == len(loads)
            assert {loaded for _, status, loaded in results if status == 200} <= {"cold", "warm"}
            again = [client.post("/api/tts", json=_text_for("hindi/female")).headers["x-voice-loaded"]
                     for _ in range(2)]
            assert again[1] == "warm"
    finally:
        running.stop()


@pytest.mark.slow
def test_the_audio_of_a_voice_loaded_on_demand_is_synth_s(deploy_root, tmp_path, cli):
    import httpx
    from servekit import WAIT_SECONDS, start_server

    voices, _ = _served(deploy_root, room_for=1)
    running = start_server(None, voice_set=voices)
    try:
        response = httpx.post(running.url + "/api/tts", json=_text_for("marathi/female"), timeout=WAIT_SECONDS)
    finally:
        running.stop()
    assert response.status_code == 200 and response.headers["x-voice-loaded"] == "cold"
    out = tmp_path / "synth.wav"
    code, _out, err = cli("synth", "--models", deploy_root, "--lang", "marathi", "--gender", "female",
                          "--engine", "onnx", "--threads", "1", "--text", _text_for("marathi/female")["text"],
                          "--output", out)
    assert code == 0, err
    assert response.content[44:] == out.read_bytes()[44:]


def test_serve_refuses_a_budget_that_is_not_a_size(cli):
    code, _out, err = cli("serve", "--max-memory", "half")
    assert code == 2
    assert "--max-memory 'half': write a size such as 450M" in err


@pytest.mark.slow
def test_an_int8_voice_served_on_demand_speaks_as_synth_at_int8(tmp_path, cli, monkeypatch):
    """The bundled demo voice at int8 (made once into the cache by the first load): the server's
    audio is ``synth --precision int8``'s, and both are int8."""
    import httpx
    from servekit import WAIT_SECONDS, start_server

    from lavanya_cli.modeltree.layout import BUNDLED_ROOT, ModelRoot
    from lavanya_cli.serve.voices import MemoryPlan, VoiceSet
    from lavanya_cli.speech.options import LoadOptions

    monkeypatch.setenv("LAVANYA_CACHE", str(tmp_path / "cache"))
    specs = list(ModelRoot(BUNDLED_ROOT).voices())
    voices = VoiceSet()
    voices.serve(specs, [], LoadOptions(engine="onnx", threads=1, precision="int8"),
                 MemoryPlan(1 << 30, 0, measured=lambda: 0))
    running = start_server(None, voice_set=voices)
    text = "नमस्ते। आप कैसे हैं?"
    try:
        response = httpx.post(running.url + "/api/tts", json={"text": text, "lang": "hindi", "gender": "male"},
                              timeout=WAIT_SECONDS * 4)
        (voice,) = voices.voices
        assert voice.backend.acoustic_precision == "int8"
    finally:
        running.stop()
    assert response.status_code == 200
    out = tmp_path / "synth.wav"
    code, _out, err = cli("synth", "--models", BUNDLED_ROOT, "--lang", "hindi", "--gender", "male", "--engine", "onnx",
                          "--threads", "1", "--precision", "int8", "--text", text, "--output", out)
    assert code == 0, err
    assert response.content[44:] == out.read_bytes()[44:]


@pytest.mark.slow
def test_named_voices_are_served_alone_unless_the_others_are_asked_for_too(deploy_root):
    from lavanya_cli.serve.voices import VoiceName, served_specs

    named = [VoiceName("hindi", "male")]
    specs, pinned = served_specs(named, deploy_root)
    assert [spec.name for spec in specs] == [spec.name for spec in pinned] == ["hindi/male"]
    specs, pinned = served_specs(named, deploy_root, on_demand=True)
    assert sorted(spec.name for spec in specs) == sorted(VOICES) and [spec.name for spec in pinned] == ["hindi/male"]
    specs, pinned = served_specs([], deploy_root)
    assert sorted(spec.name for spec in specs) == sorted(VOICES) and pinned == []
