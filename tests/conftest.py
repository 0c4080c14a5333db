"""Fixtures shared by the test modules: the real upstream trees and small scaffolded roots."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# ONNX exports made while testing go to a cache of the session's own, never the user's, and
# subprocesses inherit it.
if "LAVANYA_CACHE" not in os.environ:
    os.environ["LAVANYA_CACHE"] = tempfile.mkdtemp(prefix="lavanya-test-cache-")
    atexit.register(shutil.rmtree, os.environ["LAVANYA_CACHE"], ignore_errors=True)

from lavanya_cli.testing.scaffold import build_root

SHARED = Path(os.environ.get("LAVANYA_SHARED") or Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs")


@pytest.fixture
def shared_tree() -> Path:
    """``../shared/iitm-fs2hs`` (read-only real data); tests using it skip where it is absent."""
    if not (SHARED / "main").is_dir():
        pytest.skip(f"real upstream trees not found at {SHARED}")
    return SHARED


@pytest.fixture
def clean_root(tmp_path: Path) -> Path:
    """A two-voice root in the main layout with nothing wrong (bare stats_file names)."""
    return build_root(tmp_path / "models", absolute_stats_paths=False)


@pytest.fixture
def only_bundled(tmp_path, monkeypatch):
    """No --models, no $LAVANYA_MODELS, no ./Fastspeech2_HS: the bundled tree is all there is."""
    monkeypatch.delenv("LAVANYA_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(capsys):
    """Run ``lavanya ARGS...`` in-process: returns (exit code, stdout, stderr)."""
    from lavanya_cli.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
