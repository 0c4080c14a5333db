"""The package's structure as docs/design.md draws it: every import of every module (those inside
functions and under ``TYPE_CHECKING`` included) goes to a layer below its own or stays in its own
package, and no modules import each other in a loop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP_MODULES_MAX = 6


def layers(design: Path = REPO / "docs" / "design.md") -> dict[str, int]:
    """Each layer's packages and top-level modules, and its rank (lowest first), from the
    ``layers`` block of docs/design.md."""
    block = re.search(r"```layers\n(.*?)```", design.read_text(encoding="utf-8"), re.S)
    assert block, f"{design} has no ```layers block"
    rows = [line.split("#")[0].split() for line in block.group(1).splitlines()]
    return {unit: rank for rank, row in enumerate(row for row in rows if row) for unit in row}


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Every module of ``root/lavanya_cli`` and the package's modules it imports, anywhere in it."""
    paths = sorted((root / "lavanya_cli").rglob("*.py"))
    names = {path: _module_name(path, root) for path in paths}
    known = set(names.values())
    return {name: _imports(path, name, known) for path, name in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[str]:
    found, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                found.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def upward(graph: dict[str, set[str]], rank: dict[str, int]) -> list[str]:
    """Imports from one package (or top-level module) to another that is not in a lower layer."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if _unit(target) != _unit(module) and rank[_unit(target)] >= rank[_unit(module)])


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # ``from . import b`` imports the module b
                candidate = f"{module}.{alias.name}"
                found.add(candidate if candidate in known else module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def _unit(module: str) -> str:
    """What a layer names: a subpackage (``speech``), a top-level module (``errors``), or the
    package itself (``lavanya_cli``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_is_in_a_layer_and_imports_go_down():
    rank, graph = layers(), import_graph()
    unplaced = sorted({_unit(module) for module in graph} - set(rank))
    assert not unplaced, f"not in a layer of docs/design.md: {unplaced}"
    assert not (found := upward(graph, rank)), "imports that do not go to a lower layer:\n" + "\n".join(found)


def test_no_modules_import_each_other_in_a_loop():
    assert not (found := cycles(import_graph())), "import cycles:\n" + "\n".join(found)


def test_the_package_top_holds_at_most_six_modules():
    modules = sorted(path.name for path in (REPO / "lavanya_cli").glob("*.py"))
    assert len(modules) <= TOP_MODULES_MAX, modules


def test_the_checks_find_a_loop_through_a_function_level_import_and_an_upward_import(tmp_path):
    package = tmp_path / "lavanya_cli"
    for directory in (package / "speech", package / "cli"):
        directory.mkdir(parents=True)
        (directory / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "speech" / "a.py").write_text("def f():\n    from . import b\n")
    (package / "speech" / "b.py").write_text("from typing import TYPE_CHECKING\nfrom .a import f\n"
                                              "if TYPE_CHECKING:\n    from ..cli.main import run\n")
    (package / "cli" / "main.py").write_text("run = None\n")
    graph = import_graph(tmp_path)
    assert cycles(graph) == ["lavanya_cli.speech.a -> lavanya_cli.speech.b -> lavanya_cli.speech.a"]
    rank = {"speech": 0, "cli": 1, "lavanya_cli": 2}
    assert upward(graph, rank) == ["lavanya_cli.speech.b -> lavanya_cli.cli.main"]
