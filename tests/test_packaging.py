"""A wheel built from the repository carries the bundled demo voice and speaks from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lavanya_cli.modeltree.layout import BUNDLED_ROOT

pytestmark = pytest.mark.slow  # builds a wheel and runs lavanya from it

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(REPO)],
                   check=True, capture_output=True)
    (built,) = out.glob("lavanya-*.whl")
    return built


def test_the_wheel_holds_every_file_of_the_bundled_tree(wheel):
    with zipfile.ZipFile(wheel) as archive:
        packed = {info.filename: info.file_size for info in archive.infolist()}
    for path in BUNDLED_ROOT.rglob("*"):
        if path.is_file():
            name = "lavanya_cli/Fastspeech2_HS/" + path.relative_to(BUNDLED_ROOT).as_posix()
            assert packed.get(name) == path.stat().st_size, name


def test_lavanya_installed_from_the_wheel_speaks_through_its_bundled_voice(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    work = tmp_path / "work"  # no ./Fastspeech2_HS here, and no $LAVANYA_MODELS
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "LAVANYA_MODELS"}
    env["PYTHONPATH"] = str(site)
    script = "import lavanya_cli, sys; print(lavanya_cli.__file__); from lavanya_cli.cli import run; run()"
    result = subprocess.run([sys.executable, "-c", script, "synth", "--lang", "hindi", "--gender", "male",
                             "--text", "नमस्ते", "-o", "hello.wav"], cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(site / "lavanya_cli"))
    bundled = site / "lavanya_cli" / "Fastspeech2_HS"
    assert f"(bundled demo voice) from {bundled}" in result.stderr
    wav = (work / "hello.wav").read_bytes()
    assert wav[:4] == b"RIFF" and len(wav) > 44 + 2 * 2205  # at least 0.1 s of audio
