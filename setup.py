"""The wheel carries the repository's own model tree, ``Fastspeech2_HS/``, as package data at
``lavanya_cli/Fastspeech2_HS``, so an installed lavanya speaks its demo voice. The tree stays at
the repository's top level, where ``lavanya verify`` and ``lavanya lfs-track --check`` see it as
users' trees are seen; an editable install finds it there (``modeltree.layout.BUNDLED_ROOT``)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TREE = "Fastspeech2_HS"


class build_py_with_tree(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the source tree is used in place
        source = Path(__file__).resolve().parent / TREE
        for path in sorted(source.rglob("*")):
            if path.is_file():
                target = Path(self.build_lib, "lavanya_cli", TREE, path.relative_to(source))
                self.mkpath(str(target.parent))
                self.copy_file(str(path), str(target))


setup(cmdclass={"build_py": build_py_with_tree})
