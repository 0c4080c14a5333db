"""lavanya fix-perms: model files 644, directories 755, output directories 2775, nothing world-writable."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from lavanya_cli.cli import main
from lavanya_cli.checks.permissions import apply_permissions, mode_problem, plan_permissions

SHARED = Path(os.environ.get("LAVANYA_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "iitm-fs2hs"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def make(path: Path, file_mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.chmod(path, file_mode)
    return path


@pytest.fixture
def model_tree(tmp_path: Path) -> Path:
    """Modes as deployments get them wrong: private, world-writable, setuid, an 0777 directory."""
    root = tmp_path / "models"
    make(root / "hindi" / "male" / "model" / "model.pth", 0o600)
    make(root / "hindi" / "male" / "model" / "config.yaml", 0o666)
    make(root / "hindi" / "male" / "model" / "feats_stats.npz", 0o444)
    make(root / "tools" / "convert.sh", 0o4775)
    os.chmod(root / "hindi" / "male", 0o777)
    os.chmod(root / "hindi", 0o700)
    return root


def every_entry(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        yield Path(dirpath)
        for name in filenames:
            yield Path(dirpath) / name


def test_fix_sets_model_modes_and_is_idempotent(model_tree: Path, capsys):
    assert main(["fix-perms", "--loosen-private", str(model_tree)]) == 0
    out = capsys.readouterr().out
    assert (f"{model_tree / 'hindi' / 'male' / 'model' / 'model.pth'}: 0600 -> 0644 "
            "(loosens: group may now read, others may now read)") in out
    assert f"{model_tree / 'hindi'}: 0700 -> 0755 (loosens: group may now list and enter" in out
    assert f"{model_tree / 'hindi' / 'male' / 'model' / 'config.yaml'}: 0666 -> 0644\n" in out  # tightening only
    model = model_tree / "hindi" / "male" / "model"
    assert {mode(model / n) for n in ("model.pth", "config.yaml", "feats_stats.npz")} == {0o644}
    assert mode(model_tree / "tools" / "convert.sh") == 0o755  # runnable, but no setuid, no group write
    assert {mode(p) for p in every_entry(model_tree) if p.is_dir()} == {0o755}
    assert all(mode_problem(p) is None for p in every_entry(model_tree))
    assert plan_permissions(model_tree).changes == []
    assert main(["fix-perms", str(model_tree)]) == 0
    assert "permissions already right" in capsys.readouterr().out


def test_a_private_file_stays_private_unless_asked(model_tree: Path, capsys, cli):
    key = model_tree / "hindi" / "male" / "model" / "model.pth"
    os.chmod(key, 0o4700)
    code, out, err = cli("fix-perms", model_tree)
    assert code == 0
    assert mode(key) == 0o700  # setuid dropped (tightening), nothing opened up
    assert f"lavanya: warning: {key}: [private] mode 4700 is private to its owner; kept so; " \
           "fix: pass --loosen-private to make it 0755" in err
    assert f"{key}: 4700 -> 0700\n" in out
    assert mode(model_tree / "hindi" / "male" / "model" / "config.yaml") == 0o644  # the rest is fixed
    from lavanya_cli.checks.verify import verify_root
    (problem,) = [p for p in verify_root(model_tree) if p.path == "hindi/male/model/model.pth"]
    assert "--loosen-private" in problem.fix  # verify names the option fix-perms needs


def test_check_changes_nothing_and_exits_1(model_tree: Path, capsys):
    before = {p: mode(p) for p in every_entry(model_tree)}
    assert main(["fix-perms", "--check", str(model_tree)]) == 1
    assert "would change" in capsys.readouterr().out
    assert {p: mode(p) for p in every_entry(model_tree)} == before
    assert main(["fix-perms", str(model_tree)]) == 0
    assert main(["fix-perms", "--check", str(model_tree)]) == 0


def test_writable_directories_get_group_write_and_setgid(model_tree: Path, tmp_path: Path):
    inside = model_tree / "cache"
    make(inside / "old.wav", 0o666)
    outside = tmp_path / "srv" / "out"
    changes = plan_permissions(model_tree, [inside, outside], loosen_private=True).changes
    assert not outside.exists()  # planning touches nothing
    assert apply_permissions(changes) == []
    assert mode(inside) == mode(outside) == 0o2775
    assert mode(inside / "old.wav") == 0o664
    assert mode(model_tree) == 0o755  # the rest of the tree keeps the model modes
    assert not any(mode(p) & stat.S_IWOTH for p in every_entry(tmp_path))
    assert plan_permissions(model_tree, [inside, outside]).changes == []


def test_writable_must_be_a_directory(model_tree: Path):
    target = model_tree / "hindi" / "male" / "model" / "config.yaml"
    assert main(["fix-perms", "--writable", str(target), str(model_tree)]) == 2


def test_symlinks_and_hidden_directories_are_left_alone(model_tree: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    make(outside / "secret.key", 0o600)
    os.chmod(outside, 0o700)
    (model_tree / "linked").symlink_to(outside)
    (model_tree / "linked.key").symlink_to(outside / "secret.key")
    make(model_tree / ".git" / "objects" / "ab" / "cd", 0o444)
    plan = plan_permissions(model_tree, loosen_private=True)
    assert apply_permissions(plan.changes) == []
    assert mode(outside) == 0o700 and mode(outside / "secret.key") == 0o600
    assert {(Path(p.path).name, p.code) for p in plan.problems} == {("linked", "outside-root"),
                                                                    ("linked.key", "outside-root")}
    assert mode(model_tree / ".git" / "objects" / "ab" / "cd") == 0o444


@pytest.mark.skipif(not (SHARED / "main" / "hindi").is_dir(), reason="shared upstream tree absent")
def test_read_only_upstream_copy_becomes_readable_and_owner_writable(tmp_path: Path):
    """The shared tree is 555/444 (read-only); a copy of it gets the model modes."""
    root = tmp_path / "main"
    shutil.copytree(SHARED / "main" / "hindi", root / "hindi")
    shutil.copytree(SHARED / "main" / "vocoder", root / "vocoder")
    os.chmod(root, 0o555)
    changes = plan_permissions(root).changes
    assert {c.new for c in changes if c.path.is_dir()} == {0o755}
    assert {c.new for c in changes if c.path.is_file()} == {0o644}
    assert apply_permissions(changes) == []
    assert all(mode(p) == (0o755 if p.is_dir() else 0o644) for p in every_entry(root))
