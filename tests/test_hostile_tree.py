"""A hostile tree must never hurt the machine: links and hard links out of the root, FIFOs and
devices where files belong, read-only and unreadable directories, names that would forge lines,
roots that do not exist. Each test builds the tree in a temporary directory, runs the command,
and checks the exit code, the line it prints, and that nothing outside the root changed."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import pwd
import shutil
import signal
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from lavanya_cli.checks.permissions import plan_permissions
from lavanya_cli.modeltree.stats import PICKLED, inspect_stats
from lavanya_cli.checks.verify import CODES, verify_root
from lavanya_cli.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, LavanyaError
from lavanya_cli.fileio import NotReadable, read_regular
from lavanya_cli.modeltree.lfs_pointer import FileState, probe, read_pointer, require_content
from lavanya_cli.testing.scaffold import build_root
from _helpers import snapshot

HINDI = Path("hindi/male/model")


def pickle_stats(path: Path) -> None:
    """Replace a stats file by the same arrays pickled (what fix-stats rewrites)."""
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    with open(path, "wb") as handle:
        pickle.dump(arrays, handle)


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """A guard, not a timing assertion: a command that blocks (a FIFO read) fails the test
    instead of hanging the whole suite."""
    def expire(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def output_lines(text: str) -> list[str]:
    return text.splitlines()


# --- staying inside the tree -------------------------------------------------------------------

@pytest.fixture
def linked_out(tmp_path: Path) -> tuple[Path, Path]:
    """A root whose hindi voice directory is a symlink to a voice outside it (pickled stats and
    upstream stats paths there, so every repair would have work to do)."""
    outside = build_root(tmp_path / "outside", voices=(("hindi", "male"),))
    pickle_stats(outside / HINDI / "feats_stats.npz")
    root = build_root(tmp_path / "models", voices=(("tamil", "female"),))
    (root / "hindi").symlink_to(outside / "hindi")
    return root, outside


@pytest.mark.parametrize("args", [["fix-stats"], ["fix-config"], ["verify", "--write-manifest"]])
def test_writers_never_follow_a_voice_directory_out_of_the_root(linked_out, cli, args):
    root, outside = linked_out
    before = snapshot(outside)
    code, out, err = cli(*args, root)
    assert code == EXIT_PROBLEMS
    assert snapshot(outside) == before
    refused = [line for line in output_lines(out + err) if "[refused]" in line and "hindi/" in line]
    assert refused and all(f"{root / 'hindi'} is a symlink to {outside / 'hindi'}, outside the model root"
                           in line for line in refused)


def test_verify_and_fix_perms_agree_on_a_link_out_of_the_root(linked_out, cli):
    root, outside = linked_out
    (root / "tamil" / "female" / "model" / "notes").symlink_to("/etc/hostname")
    problems = {(p.path, p.message) for p in verify_root(root) if p.code == "outside-root"}
    plan = plan_permissions(root)
    from_perms = {(Path(p.path).relative_to(root).as_posix(), p.message) for p in plan.problems
                  if p.code == "outside-root"}
    assert problems == from_perms
    assert {path for path, _ in problems} == {"hindi", "tamil/female/model/notes"}
    assert "outside-root" in CODES
    before = snapshot(outside)
    code, out, _ = cli("fix-perms", "--loosen-private", root)
    assert code == EXIT_PROBLEMS and out.count("[outside-root]") == 2
    assert snapshot(outside) == before


def test_a_hard_link_to_a_file_outside_is_not_chmod_ed(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    key = tmp_path / "secret.key"
    key.write_text("private")
    os.chmod(key, 0o600)
    os.link(key, root / HINDI / "linked.key")
    code, out, _ = cli("fix-perms", "--loosen-private", root)
    assert code == EXIT_PROBLEMS
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    (line,) = [line for line in output_lines(out) if "linked.key" in line]
    assert "[hard-links] has 2 hard links, 1 of them outside this tree" in line
    (problem,) = [p for p in verify_root(root) if p.path.endswith("linked.key")]
    assert "2 hard links" in problem.message  # verify says what fix-perms will do


def test_hard_links_wholly_inside_the_tree_are_fixed(tmp_path):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    weights = root / HINDI / "model.pth"
    os.chmod(weights, 0o666)
    os.link(weights, root / HINDI / "copy.pth")
    plan = plan_permissions(root)
    assert not plan.problems
    assert {c.path.name for c in plan.changes} == {"model.pth", "copy.pth"}


def test_a_rewrite_of_a_hard_linked_file_says_the_other_name_keeps_the_old_content(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    stats = root / HINDI / "feats_stats.npz"
    pickle_stats(stats)
    elsewhere = tmp_path / "backup.npz"
    os.link(stats, elsewhere)
    before = elsewhere.read_bytes()
    code, out, _ = cli("fix-stats", stats)
    assert code == EXIT_OK
    assert "fixed (" in out and "1 other hard link, which keeps the old content" in out
    assert elsewhere.read_bytes() == before
    assert inspect_stats(stats).ok and inspect_stats(elsewhere).state == PICKLED


def test_writable_directories_say_what_they_loosen_and_keep_private_files(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    out_dir = tmp_path / "out"
    (out_dir / "shared").mkdir(parents=True)
    os.chmod(out_dir / "shared", 0o1777)
    key = out_dir / "token.key"
    key.write_text("secret")
    os.chmod(key, 0o600)
    report = out_dir / "report.txt"
    report.write_text("r")
    os.chmod(report, 0o644)
    code, out, err = cli("fix-perms", "--writable", out_dir, root)
    assert code == EXIT_OK
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"lavanya: warning: {key}: [private] mode 0600 is private to its owner; kept so; " \
           "fix: pass --loosen-private to make it 0664" in err
    assert f"{report}: 0644 -> 0664 (loosens: group may now write)" in out
    assert stat.S_IMODE((out_dir / "shared").stat().st_mode) == 0o3775  # sticky kept, others lose write
    assert f"{out_dir / 'shared'}: 1777 -> 3775\n" in out  # nothing loosened, so nothing said
    code, out, _ = cli("fix-perms", "--writable", out_dir, "--loosen-private", root)
    assert code == EXIT_OK and stat.S_IMODE(key.stat().st_mode) == 0o664
    assert f"{key}: 0600 -> 0664 (loosens: group may now read and write, others may now read)" in out


# --- only regular files are read ---------------------------------------------------------------

def test_fifos_where_files_belong_are_one_line_each_and_never_block(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False)
    tamil = root / "tamil" / "female" / "model"
    for name in ("config.yaml", "model.pth", "pitch_stats.npz"):
        (tamil / name).unlink()
        os.mkfifo(tamil / name)
    (root / "vocoder/female/dravidian/hifigan/config.json").unlink()
    os.mkfifo(root / "vocoder/female/dravidian/hifigan/config.json")
    with no_hang():
        problems = {(p.path, p.code): p for p in verify_root(root)}
        code, out, _ = cli("voices", "--format", "json", root)
        fix_code, fix_out, _ = cli("fix-config", root)
        stats_code, stats_out, _ = cli("fix-stats", root)
        assert probe(tamil / "model.pth").state is FileState.NOT_REGULAR
        assert read_pointer(tamil / "model.pth") is None
    for name in ("config.yaml", "model.pth", "pitch_stats.npz"):
        problem = problems[(f"tamil/female/model/{name}", "unreadable")]
        assert problem.message.endswith("is a FIFO, not a regular file")
        assert problem.fix == "replace it with the real file"
    assert ("vocoder/female/dravidian/hifigan/config.json", "unreadable") in problems
    tamil_row = next(row for row in json.loads(out) if row["language"] == "tamil")
    assert code == EXIT_OK and tamil_row["weights"] == "not-regular" and tamil_row["vocoder_state"] == "not-regular"
    assert fix_code == EXIT_PROBLEMS and f"{tamil / 'config.yaml'}: [refused] it is a FIFO, not a regular file; " \
                                          "fix: replace it with the real file" in fix_out
    assert stats_code == EXIT_PROBLEMS and f"{tamil / 'pitch_stats.npz'}: [refused] " in stats_out


def test_a_link_to_dev_zero_is_never_read(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    weights = root / HINDI / "model.pth"
    weights.unlink()
    weights.symlink_to("/dev/zero")
    with no_hang():
        (problem,) = [p for p in verify_root(root) if p.path == "hindi/male/model/model.pth"]
        assert problem.code == "outside-root" and "/dev/zero" in problem.message
        assert probe(weights).state is FileState.NOT_REGULAR  # without a root: a device, not data
        with pytest.raises(NotReadable, match="character device"):
            read_regular(weights, 1 << 20, "model.pth")
        with pytest.raises(LavanyaError, match="model.pth is a character device, not a regular file"):
            require_content(weights, "model.pth")
        code, out, _ = cli("voices", root)
    assert code == EXIT_OK and "outside-root" in out


# --- read-only and unreadable directories ------------------------------------------------------

@pytest.fixture
def world():
    """A directory every user can reach (pytest's tmp_path is private to root), removed after."""
    top = Path(tempfile.mkdtemp(prefix="lavanya-hostile-"))
    os.chmod(top, 0o755)
    yield top
    for dirpath, dirnames, _ in os.walk(top):
        for name in dirnames:
            os.chmod(Path(dirpath) / name, 0o755)
    shutil.rmtree(top)


@contextlib.contextmanager
def unprivileged():
    """Run the block as a user without rights over the tree: ``nobody`` when the tests run as root
    (root ignores permission bits), else the current user, who the modes already bind."""
    if os.geteuid() != 0:
        yield
        return
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to drop privileges to")
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def run_unprivileged(cli, build, *args):
    """Run ``lavanya ARGS ROOT`` as an unprivileged user on the tree ``build("real")`` makes.
    The same command first runs on ``build("scratch")`` as the current user, so that every
    module it imports lazily is loaded (the interpreter's own files may be unreadable to
    ``nobody``). Returns the real tree's root, what it held before, and (code, out, err)."""
    cli(*args, build("scratch"))
    root = build("real")
    before = snapshot(root.parent)
    with unprivileged():
        result = cli(*args, root)
    return root, before, result


def read_only_tree(world: Path):
    def build(name: str) -> Path:
        root = build_root(world / name / "models")
        pickle_stats(root / HINDI / "feats_stats.npz")
        for dirpath, dirnames, filenames in os.walk(root):
            os.chmod(dirpath, 0o555)
            for file in filenames:
                os.chmod(Path(dirpath) / file, 0o444)
        return root
    return build


@pytest.mark.parametrize("args, files", [
    (["fix-stats"], ["hindi/male/model/feats_stats.npz"]),
    (["fix-config"], ["hindi/male/model/config.yaml", "tamil/female/model/config.yaml"]),
    (["lfs-track", "--write"], [".gitattributes"]),
])
def test_a_read_only_tree_gets_a_refused_line_per_file_and_exit_1(world, cli, args, files):
    root, before, (code, out, err) = run_unprivileged(cli, read_only_tree(world), *args)
    assert code == EXIT_PROBLEMS, err
    assert "internal error" not in err
    for rel in files:
        shown = rel if args[0] == "lfs-track" else root / rel  # lfs-track names files relative to ROOT
        (line,) = [line for line in output_lines(out) if line.startswith(f"{shown}: ")]
        assert line == f"{shown}: [refused] cannot write {(root / rel).parent} (Permission denied); " \
                       "fix: make it writable, or run as the owner"
    assert snapshot(root.parent) == before


def test_verify_write_manifest_on_a_read_only_tree_refuses_each_directory(world, cli):
    root, before, (code, out, err) = run_unprivileged(cli, read_only_tree(world), "verify", "--write-manifest")
    assert code == EXIT_PROBLEMS and "internal error" not in err
    assert "wrote 0 manifests, refused 4" in err
    assert out.count("/MD5SUMS: [refused] cannot write") == 4
    assert snapshot(root.parent) == before


def unreadable_voice_tree(world: Path):
    def build(name: str) -> Path:
        root = build_root(world / name / "models", absolute_stats_paths=False)
        os.chmod(root / "hindi", 0o311)  # searchable, not listable
        return root
    return build


@pytest.mark.parametrize("args, code, expected", [
    (["verify"], EXIT_PROBLEMS, "hindi: [unreadable] cannot list this directory (Permission denied); nothing in it is checked"),
    (["voices"], EXIT_PROBLEMS, "/hindi: [unreadable] cannot list this directory (Permission denied); voices in it are not listed"),
    (["lfs-track"], EXIT_PROBLEMS, "hindi: [unreadable] cannot list this directory (Permission denied)"),
    (["fix-stats"], EXIT_PROBLEMS, "/hindi: [refused] cannot list this directory (Permission denied)"),
    (["fix-config"], EXIT_PROBLEMS, "/hindi: [refused] cannot list this directory (Permission denied)"),
])
def test_an_unreadable_directory_is_a_problem_line_naming_it(world, cli, args, code, expected):
    _, _, (got, out, err) = run_unprivileged(cli, unreadable_voice_tree(world), *args)
    assert got == code, out + err
    assert "internal error" not in err and "no voices found" not in err
    assert sum(expected in line for line in output_lines(out + err)) == 1


def test_a_root_with_only_an_unreadable_directory_is_not_called_empty(world, cli):
    def build(name):
        root = build_root(world / name / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
        os.chmod(root / "hindi", 0o311)
        return root
    _, _, (code, out, err) = run_unprivileged(cli, build, "verify")
    assert code == EXIT_PROBLEMS and "no voices found" not in err
    assert "hindi: [unreadable]" in out


# --- names that would forge lines --------------------------------------------------------------

FORGED = "evil\n*.npz filter=lfs diff=lfs merge=lfs -text\nx.bin"


def test_a_name_with_a_newline_never_becomes_a_gitattributes_rule(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    (root / HINDI / FORGED).write_bytes(b"x" * 5000)
    code, out, err = cli("lfs-track", "--threshold", "1kB", root)
    assert code == EXIT_PROBLEMS
    rules = [line for line in output_lines(out) if line and not line.startswith("#")]
    assert "*.npz filter=lfs diff=lfs merge=lfs -text" not in output_lines(out)
    assert all(line.endswith(("filter=lfs diff=lfs merge=lfs -text", "-filter -diff -merge -text"))
               for line in rules)
    (line,) = output_lines(err)
    assert "unsafe-name" in line and "evil\\n*.npz" in line
    code, out, _ = cli("lfs-track", "--write", "--threshold", "1kB", root)
    assert code == EXIT_PROBLEMS and "updated" in out
    written = (root / ".gitattributes").read_text()
    assert "*.npz filter=lfs" not in written and "evil" not in written


def test_text_output_escapes_names_so_no_line_is_forged(tmp_path, cli):
    root = build_root(tmp_path / "models", absolute_stats_paths=False, voices=(("hindi", "male"),))
    odd = root / HINDI / FORGED
    odd.write_bytes(b"x")
    os.chmod(odd, 0o666)
    code, out, _ = cli("verify", root)
    lines = output_lines(out)
    assert code == EXIT_PROBLEMS and len(lines) == 2  # the problem and the summary
    assert lines[0].startswith("hindi/male/model/evil\\n*.npz filter=lfs diff=lfs merge=lfs -text\\nx.bin: [permissions]")
    code, out, _ = cli("fix-perms", "--check", root)
    assert code == EXIT_PROBLEMS and len(output_lines(out)) == 1 and "evil\\n*.npz" in out
    undecodable = root / HINDI / os.fsdecode(b"bad\xff\x1b[2J.bin")
    undecodable.write_bytes(b"y")
    os.chmod(undecodable, 0o666)
    code, out, _ = cli("verify", root)
    assert code == EXIT_PROBLEMS and "bad\\xff\\x1b[2J.bin: [permissions]" in out and "\x1b" not in out


# --- lines that say what is true ----------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["verify", "--models", "/nonexistent/models"], "/nonexistent/models: no such directory (--models)"),
    (["voices", "/nonexistent/models"], "/nonexistent/models: no such directory (ROOT)"),
    (["fix-stats", "--models", "/nonexistent/models"], "/nonexistent/models: no such directory (--models)"),
    (["lfs-track", "/nonexistent/models"], "/nonexistent/models: no such directory"),
])
def test_a_root_that_does_not_exist_is_named_as_such(cli, args, expected):
    code, _, err = cli(*args)
    assert code == EXIT_USAGE and err.startswith(f"lavanya: error: {expected}") and err.count("\n") == 1
    assert "pass --models PATH" not in err


def test_an_environment_variable_naming_no_directory_is_an_error(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("LAVANYA_MODELS", str(tmp_path / "gone"))
    for args in (["voices"], ["text", "--lang", "hindi", "--gender", "male", "नमस्ते"]):
        code, _, err = cli(*args)
        assert code == EXIT_USAGE
        assert err == f"lavanya: error: {tmp_path / 'gone'}: no such directory ($LAVANYA_MODELS); " \
                      "point it at a model root or unset it\n"


def test_voices_on_a_root_without_voices_is_a_usage_error(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    code, out, err = cli("voices", tmp_path / "empty")
    assert code == EXIT_USAGE and out == "" and "no voices found" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", ["model\n", "10epoch.pth\n"])
def test_a_name_with_a_final_newline_is_not_taken_for_a_voice_part(tmp_path, name):
    """Name patterns match whole names: ``$`` would also match before a final newline."""
    from lavanya_cli.modeltree.layout import ModelRoot

    root = build_root(tmp_path / "root", (("hindi", "male"),))
    model = root / "hindi" / "male" / "model"
    if name.startswith("model"):
        model.rename(model.with_name(name))
        assert ModelRoot(root).voices() == []
    else:
        (model / "model.pth").rename(model / name)
        assert ModelRoot(root).voices()[0].weights_path is None
