"""No module of vmm reaches into another package's private names: a ``_name`` is used
only inside the package (folder) that defines it. What crosses a package boundary is
public, so a package can change its insides without breaking another one."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VMM = ROOT / "vmm"

# Private names of other projects that vmm has no public way around, and why.
ALLOWED = {
    ("vmm/cpu/unicorn.py", "_uch"): "the engine handle the native glue needs; unicorn's binding has no public accessor",
}
NATIVE_MODULES = {"_uc_glue", "_kvm_ffi"}  # vmm's own extension modules, built from csrc/


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def package_of(path: Path) -> str:
    return str(path.parent.relative_to(ROOT))


def modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(VMM.rglob("*.py"))}


def defined_private_names(trees: dict[Path, ast.Module]) -> dict[str, set[str]]:
    """For each private name, the packages that define it (as a function, class, module
    global, class attribute or ``self._name`` attribute)."""
    defined: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees.items():
        package = package_of(path)
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.append(node.attr)
            elif isinstance(node, ast.arg):
                names.append(node.arg)
            for name in names:
                if private(name):
                    defined[name].add(package)
    return defined


def crossings() -> list[str]:
    trees = modules()
    defined = defined_private_names(trees)
    found = []
    for path, tree in trees.items():
        package, where = package_of(path), str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and private(node.attr):
                value = node.value
                if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                    continue
                if package in defined.get(node.attr, set()) or (where, node.attr) in ALLOWED:
                    continue
                found.append(f"{where}:{node.lineno}: {ast.unparse(value)}.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module:
                source = Path(*node.module.split("."))
                for alias in node.names:
                    if not private(alias.name) or alias.name in NATIVE_MODULES:
                        continue
                    source_package = str(source.parent) if (ROOT / source).with_suffix(".py").exists() else str(source)
                    if source_package != package:
                        found.append(f"{where}:{node.lineno}: from {node.module} import {alias.name}")
    return found


def test_no_module_uses_another_packages_private_names():
    assert crossings() == []


def test_the_check_sees_a_crossing(tmp_path, monkeypatch):
    # The rule itself, on two small packages: a private name used across the boundary.
    (tmp_path / "vmm" / "a").mkdir(parents=True)
    (tmp_path / "vmm" / "b").mkdir()
    (tmp_path / "vmm" / "a" / "m.py").write_text("class C:\n    def __init__(self):\n        self._x = 1\n")
    (tmp_path / "vmm" / "b" / "n.py").write_text("def f(c):\n    return c._x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["VMM"]), "VMM", tmp_path / "vmm")
    assert crossings() == ["vmm/b/n.py:2: c._x"]
