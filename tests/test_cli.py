"""The command's own behaviour: one-line errors and the hint for a light (maintenance-only) install."""

from __future__ import annotations

import sys


def test_a_missing_synthesis_library_names_the_extra(clean_root, cli, monkeypatch):
    # None in sys.modules makes ``import torch`` fail as it does where torch is not installed.
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, err = cli("synth", "--models", clean_root, "--lang", "hindi", "--gender", "male", "--engine", "torch",
                         "--text", "नमस्ते", "-o", clean_root.parent / "out.wav")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "lavanya[torch]" in err and "torch" in err


def test_an_internal_error_is_one_line_without_a_traceback(clean_root, cli, monkeypatch):
    import lavanya_cli.checks.verify as verify_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(verify_module, "verify_report", broken)
    code, _, err = cli("verify", clean_root)
    assert code == 2 and err.count("\n") == 1
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err
