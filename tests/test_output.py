"""The one output layer: every checking mode in text, json and github; the fix as its own field;
shared options with one help text; exit codes only by name; voices' roots and verify's counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

from lavanya_cli.checks.problems import Problem
from lavanya_cli.cli.app import app
from lavanya_cli.cli.output import annotation
from lavanya_cli.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, one_line
from lavanya_cli.testing.scaffold import build_root

PACKAGE = Path(__file__).resolve().parents[1] / "lavanya_cli"
PROBLEM_KEYS = {"path", "code", "message", "fix"}


def _broken_root(tmp_path: Path) -> Path:
    """A root every checking mode finds something wrong with: upstream's absolute stats_file
    paths (verify, fix-config), a pickled stats file (fix-stats), a private file (fix-perms),
    no .gitattributes (lfs-track)."""
    import numpy as np

    root = build_root(tmp_path / "models")
    with open(root / "hindi" / "male" / "model" / "pitch_stats.npz", "wb") as handle:
        np.save(handle, {"count": np.array([3]), "sum": np.array([1.0]), "sum_square": np.array([2.0])},
                allow_pickle=True)
    (root / "tamil" / "female" / "model" / "config.yaml").chmod(0o640)
    return root


CHECKING_MODES = [
    ("verify",),
    ("lfs-track", "--check"),
    ("fix-stats", "--check"),
    ("fix-config", "--check"),
    ("fix-perms", "--check"),
]


@pytest.mark.parametrize("mode", CHECKING_MODES, ids=lambda mode: " ".join(mode))
def test_every_checking_mode_reports_problems_alike_in_three_formats(mode, tmp_path, cli, monkeypatch):
    root = _broken_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)

    code, out, _ = cli(*mode, "--format", "json", root)
    document = json.loads(out)
    problems = document["problems"]
    assert code == EXIT_PROBLEMS and problems
    assert all(set(problem) == PROBLEM_KEYS and problem["fix"] for problem in problems)
    assert all(not problem["message"].endswith(problem["fix"]) for problem in problems)

    code, out, _ = cli(*mode, root)
    lines = [f"{p['path']}: [{p['code']}] {p['message']}; fix: {p['fix']}" for p in problems]
    assert code == EXIT_PROBLEMS and all(line in out.splitlines() for line in lines)

    code, out, err = cli(*mode, "--format", "github", root)
    annotations = out.splitlines()
    assert code == EXIT_PROBLEMS and len(annotations) == len(problems)
    for line, problem in zip(annotations, problems):
        assert line.startswith("::error file=") and f"title=lavanya {mode[0]}%3A {problem['code']}::" in line
        assert line.endswith(f"; fix: {problem['fix']}".replace("%", "%25"))
        file = line.split("file=", 1)[1].split(",", 1)[0]
        assert file.startswith("models/") and (tmp_path / file).parent.is_dir()
    assert "lavanya: error" not in err


def test_add_voice_reports_a_failed_step_as_a_problem_in_every_format(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False)
    (tmp_path / "empty").mkdir()
    args = ("add-voice", tmp_path / "empty", "--lang", "odia", "--gender", "male", "--models", root)

    code, out, _ = cli(*args, "--format", "json")
    (problem,) = json.loads(out)["problems"]
    assert code == EXIT_PROBLEMS and problem["code"] == "source" and "config.yaml" in problem["message"]
    assert set(problem) == PROBLEM_KEYS and problem["fix"]

    code, out, _ = cli(*args, "--format", "github")
    assert code == EXIT_PROBLEMS and out.startswith("::error file=") and "title=lavanya add-voice%3A source::" in out
    assert f"; fix: {problem['fix']}" in out

    code, out, _ = cli(*args)
    assert code == EXIT_PROBLEMS and "✗ source" in out and f"fix: {problem['fix']}" in out


def test_a_problem_is_one_line_with_its_fix_apart():
    problem = Problem("hindi/male/model/model.pth", "lfs-pointer", "is a Git LFS pointer", "git lfs pull")
    assert problem.line() == "hindi/male/model/model.pth: [lfs-pointer] is a Git LFS pointer; fix: git lfs pull"
    assert Problem("x", "code", "message").line() == "x: [code] message"
    assert problem.as_dict() == {"path": "hindi/male/model/model.pth", "code": "lfs-pointer",
                                 "message": "is a Git LFS pointer", "fix": "git lfs pull"}


def test_an_annotation_escapes_what_would_end_its_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    problem = Problem("a,b:c.txt", "odd", "100% wrong\nsecond line", "rename it: now")
    line = annotation(problem, "verify", tmp_path)
    assert line == ("::error file=a%2Cb%3Ac.txt,title=lavanya verify%3A odd::"
                    "100%25 wrong%0Asecond line; fix: rename it: now")
    outside = annotation(Problem("x", "odd", "m"), "verify", tmp_path.parent / "elsewhere")
    assert f"file={(tmp_path.parent / 'elsewhere' / 'x').as_posix().replace(':', '%3A')}," in outside


def test_a_warning_becomes_a_warning_annotation_and_a_stderr_line(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False)
    private = root / "hindi" / "male" / "model" / "config.yaml"
    private.chmod(0o600)
    code, out, err = cli("fix-perms", "--format", "github", root)
    assert code == EXIT_OK and out.startswith("::warning file=") and "private" in out
    code, out, err = cli("fix-perms", root)
    assert code == EXIT_OK and f"lavanya: warning: {private}: [private] mode 0600" in err
    assert "; fix: pass --loosen-private" in err


def _option_helps() -> dict[str, dict[str, str]]:
    """``{option: {command: help}}`` for every option of every command."""
    group = typer.main.get_command(app)
    helps: dict[str, dict[str, str]] = {}
    for name, command in group.commands.items():
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    helps.setdefault(opt, {})[name] = param.help
    return helps


@pytest.mark.parametrize("option", ["--models", "--lang", "--gender", "--variant", "--text", "--input",
                                    "--threads", "--max-input", "--check"])
def test_a_shared_option_reads_the_same_in_every_command(option):
    by_command = _option_helps()[option]
    assert len(by_command) >= 2 and len(set(by_command.values())) == 1, by_command


CHECKING = {"verify", "lfs-track", "fix-stats", "fix-config", "fix-perms", "add-voice"}


def test_every_command_takes_format_with_one_help_per_kind():
    helps = _option_helps()["--format"]
    assert set(helps) == set(typer.main.get_command(app).commands)
    assert len({helps[name] for name in CHECKING}) == 1 and "github" in helps["verify"]
    assert len({help for name, help in helps.items() if name not in CHECKING and name != "serve"}) == 1
    assert "log" in helps["serve"] and "stdout" not in helps["serve"]  # a server's output is its log, on stderr


@pytest.mark.parametrize("command", ["voices", "text", "synth", "bench", "serve"])
def test_github_is_only_for_commands_with_problems_to_annotate(command, cli):
    code, out, err = cli(command, "--format", "github")
    assert code == EXIT_USAGE and out == "" and "'github' is not one of 'text', 'json'" in err


# Exit statuses written as numbers: sys.exit(1), typer.Exit(2), exit_code=1, return 0 ...
BARE_EXIT = re.compile(r"(?:\bexit|Exit|SystemExit|_exit)\(\s*-?\d|exit_code\s*=\s*-?\d|returncode\s*[!=]=\s*-?\d"
                       r"|^\s*return\s+-?\d+\s*$", re.MULTILINE)


def test_no_exit_status_is_a_bare_number_in_the_package():
    found = [f"{path.relative_to(PACKAGE)}: {match.group(0).strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) for match in BARE_EXIT.finditer(path.read_text())]
    assert found == []


def test_the_scan_for_bare_exit_numbers_finds_them():
    sample = "raise typer.Exit(1)\nsys.exit(2)\n    return 0\nerror = LavanyaError(m, exit_code=2)\n"
    assert len(BARE_EXIT.findall(sample)) == 4
    assert BARE_EXIT.findall("raise typer.Exit(EXIT_PROBLEMS)\nreturn 10 * x\n") == []


def test_voices_names_the_root_of_each_voice(tmp_path, cli, monkeypatch):
    root = build_root(tmp_path / "models", absolute_stats_paths=False)
    code, out, _ = cli("voices", "--format", "json", root)
    assert code == EXIT_OK and {row["root"] for row in json.loads(out)} == {str(root)}
    code, out, _ = cli("voices", root)
    header, *rows = out.splitlines()
    assert header.split()[-1] == "root" and all(row.rstrip().endswith(str(root)) for row in rows)

    # Without a root named, every root synth looks in is listed, in its order.
    monkeypatch.setenv("LAVANYA_MODELS", str(root))
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("voices", "--format", "json")
    roots = [row["root"] for row in json.loads(out)]
    assert code == EXIT_OK and roots[0] == str(root) and roots[-1].endswith("Fastspeech2_HS") and len(set(roots)) == 2


def test_verify_says_what_it_checked_when_it_finds_nothing(clean_root, cli):
    from lavanya_cli.modeltree.layout import ModelRoot

    voices = ModelRoot(clean_root).voices()
    directories = {voice.model_dir for voice in voices} | {voice.vocoder.directory for voice in voices}
    files = sum(1 for directory in directories for path in directory.iterdir() if path.is_file())
    code, out, _ = cli("verify", clean_root)
    assert code == EXIT_OK and out == f"{clean_root}: no problems found in 2 voice(s), {files} file(s)\n"
    code, out, _ = cli("verify", "--format", "json", clean_root)
    assert json.loads(out) == {"ok": True, "root": str(clean_root), "voices": 2, "files": files, "problems": []}


def test_an_exception_becomes_one_line():
    assert one_line(PermissionError(13, "Permission denied", "/x")) == "Permission denied"
    assert one_line(RuntimeError("Error(s) in loading:\n\tMissing key(s): a,\n\tb")) == \
        "Error(s) in loading: Missing key(s): a, b"
    assert one_line(ValueError()) == "ValueError"
    assert len(one_line(ValueError("x" * 1000))) == 300

    import yaml

    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load("a: [b\n")
    assert one_line(caught.value) == "expected ',' or ']', but got '<stream end>' (line 2, column 1)"
