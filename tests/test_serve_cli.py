"""``lavanya serve`` as a command: options, start-up errors, the bundled demo voice end to end,
and the voices it chooses."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.limits import checked_number
from lavanya_cli.limits import ALPHA_RANGE
from lavanya_cli.serve.limits import ServerLimits
from lavanya_cli.serve.voices import VoiceName, VoiceSet, choose_specs
from lavanya_cli.testing.scaffold import write_lfs_pointer
from _helpers import free_port
from synthkit import shared_voice, shared_voice_root

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 120


@pytest.mark.parametrize("args, words", [
    (["--voice", "hindi"], "write language/gender"),
    (["--voice", "tamil/male"], "no voice tamil/male"),
    (["--workers", "0"], "--workers must be 1 or more"),
    (["--queue", "-1"], "--queue must be 0 or more"),
    (["--timeout", "0"], "--timeout must be"),
    (["--max-chars", "0"], "--max-chars must be 1 or more"),
    (["--port", "70000"], "--port must be from 0 to 65535"),
])
def test_bad_options_are_one_line_and_exit_2(cli, args, words):
    code, out, err = cli("serve", "--models", shared_voice_root(), *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert words in err


def test_without_the_server_libraries_the_extra_is_named(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, "lavanya_cli.serve.server", raising=False)
    monkeypatch.delitem(sys.modules, "lavanya_cli.serve.app", raising=False)
    code, _, err = cli("serve", "--models", shared_voice_root())
    assert code == 2 and "lavanya[serve]" in err and err.count("\n") == 1


def test_the_command_module_stays_light():
    code = ("import sys; import lavanya_cli.cli\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'fastapi', 'uvicorn', 'starlette'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.slow  # a server in a subprocess
def test_serve_speaks_with_the_bundled_demo_voice_and_stops_on_sigterm(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", "import sys; from lavanya_cli.cli import main; sys.exit(main())",
             "serve", "--port", str(port)],
            cwd=REPO, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO), "LAVANYA_MODELS": ""})
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_SECONDS
            while True:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if httpx.get(url + "/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            voices = httpx.get(url + "/api/voices").json()["voices"]
            assert [(v["name"], v["demo"]) for v in voices] == [("hindi/male", True)]
            speech = httpx.get(url + "/api/tts", params={"text": "नमस्ते।", "lang": "hindi", "gender": "male"},
                               timeout=START_SECONDS)
            assert speech.status_code == 200 and speech.content[:4] == b"RIFF" and len(speech.content) > 44 + 4410
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(60)
    # uvicorn drains the requests and shuts down; the exit code says a signal stopped it (143)
    assert code == 143
    text = log.read_text()
    assert "loaded hindi/male (demo voice)" in text and "Application shutdown complete" in text
    assert "SIGTERM: taking no more requests; finishing" in text and "stopped by SIGTERM" in text
    assert "Traceback" not in text and "lavanya: error" not in text
    assert '"GET /api/tts HTTP/1.1" 200' in text and "text=" not in text  # the user's text stays out of the log


# -- choosing and finding voices ---------------------------------------------------------------

def test_voice_names_parse_with_an_optional_variant():
    assert VoiceName.parse("Hindi/Male") == VoiceName("hindi", "male")
    assert VoiceName.parse("malyalam/female/latest") == VoiceName("malayalam", "female", "latest")
    with pytest.raises(LavanyaError):
        VoiceName.parse("hindi//male")


def test_without_names_every_voice_with_weights_is_chosen_and_pointers_are_passed_over(tmp_path, caplog):
    root = shutil.copytree(shared_voice_root(), tmp_path / "Fastspeech2_HS")
    write_lfs_pointer(root / "hindi" / "female" / "model" / "model.pth", b"real weights elsewhere")
    specs = choose_specs([], root)
    assert [spec.name for spec in specs] == ["hindi/male"]
    assert "passed over hindi/female" in caplog.text and "LFS pointer" in caplog.text


def test_a_named_voice_that_is_only_a_pointer_is_an_error(tmp_path):
    root = shutil.copytree(shared_voice_root(), tmp_path / "Fastspeech2_HS")
    write_lfs_pointer(root / "hindi" / "female" / "model" / "model.pth", b"real weights elsewhere")
    with pytest.raises(LavanyaError, match="LFS pointer"):
        choose_specs([VoiceName("hindi", "female")], root)


def test_voice_set_finds_by_name_case_and_alias_insensitively():
    voices = VoiceSet([shared_voice()])
    assert voices.find("HINDI", "Male") == shared_voice().spec
    with pytest.raises(LookupError):
        voices.find("hindi", "male", "bilingual")


# -- numbers from users -------------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, "1.0", None, float("nan"), float("inf"), -float("inf"), 0.2, 4.01])
def test_a_user_number_must_be_a_finite_number_in_range(value):
    with pytest.raises(LavanyaError, match="alpha must be a number from 0.25 to 4"):
        checked_number(value, "alpha", *ALPHA_RANGE)


def test_a_user_number_may_be_an_int_or_a_float_in_range():
    assert checked_number(1, "alpha", *ALPHA_RANGE) == 1.0 and checked_number(4.0, "alpha", *ALPHA_RANGE) == 4.0


def test_body_bound_covers_the_longest_escaped_text():
    limits = ServerLimits(max_chars=100)
    assert limits.max_body_bytes >= 100 * len('"\\ud83d\\ude00"')


def test_the_engine_goes_to_voice_load_and_threads_are_shared_out():
    from lavanya_cli.serve.server import ServeConfig

    from lavanya_cli.limits import available_cpus
    from lavanya_cli.speech.options import LoadOptions

    assert ServeConfig().load_options.engine == "auto"
    assert ServeConfig(options=LoadOptions(engine="torch")).load_options.engine == "torch"
    cpus = available_cpus()
    assert ServeConfig(limits=ServerLimits(workers=2)).load_options.threads == max(1, cpus // 2)
    threads = min(3, cpus)  # more than the CPUs is lowered where the options are made
    assert ServeConfig(options=LoadOptions(threads=threads)).load_options.threads == threads


def test_json_logs_are_one_object_a_line_with_the_request_fields():
    from lavanya_cli.serve.server import JsonLines, logging_config

    assert {handler["formatter"] for handler in logging_config("json")["handlers"].values()} == {"json"}
    assert logging_config()["handlers"]["access"]["formatter"] == "access"  # text stays uvicorn's
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", "/api/tts", "1.1", 200), None)
    line = JsonLines().format(access)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "uvicorn.access"
    assert entry["message"] == '127.0.0.1:5000 - "POST /api/tts HTTP/1.1" 200'
    assert (entry["client"], entry["method"], entry["path"], entry["status"]) == ("127.0.0.1:5000", "POST", "/api/tts", 200)
    try:
        raise RuntimeError("two\nlines")
    except RuntimeError:
        failed = logging.LogRecord("lavanya.serve", logging.ERROR, __file__, 1, "speech failed", (), sys.exc_info())
    entry = json.loads(JsonLines().format(failed))
    assert entry["message"] == "speech failed" and "RuntimeError: two" in entry["exception"]
