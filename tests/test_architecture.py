"""The house rules of docs/ARCHITECTURE.md that a reader of one file cannot see: no table of
family names outside gan_core/archs, no private name imported across modules, and nodes that
are clients of gan_core's public API only. (Import direction and cycles are import-linter's
contracts in .importlinter, run by .ci/run.)"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import gan_core

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ROOT / "gan_core" / "archs"
SHARED_NODE_MODULES = {"bridge", "training_common", "widgets"}


def _sources(*folders: str):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_no_family_name_is_written_outside_archs():
    """A family is described once, in its folder: code elsewhere reads the ArchSpec, never a
    name (prose in docstrings and comments may mention families)."""
    names = gan_core.list_archs()
    assert len(names) >= 10
    word = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    found = []
    for path, tree in _sources("gan_core", "nodes"):
        if ARCHS in path.parents:
            continue
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                hit = word.search(node.value)
                if hit:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {hit.group(1)!r}")
    assert not found, "family names outside gan_core/archs:\n" + "\n".join(found)


def test_the_name_check_sees_names_in_strings(tmp_path):
    """The check above is not vacuous: the same scan finds a name planted in a string."""
    tree = ast.parse('TABLE = {"dcgan": 1}\nHELP = f"default: mlp {1}"\n')
    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert "dcgan" in values and any("mlp" in v for v in values)


def test_no_private_name_is_imported_across_modules():
    bad = []
    for path, tree in _sources("gan_core", "nodes"):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted((ROOT / "nodes").glob("*.py")), ids=lambda p: p.name)
def test_nodes_use_only_the_public_api_and_no_other_node_module(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if node.level == 2:  # from .. import gan_core (the pack root)
                assert node.module in (None, "gan_core"), f"{path.name}: from ..{node.module}"
                if node.module == "gan_core":
                    raise AssertionError(f"{path.name}: import gan_core itself, not its names")
            elif node.level == 1 and path.name != "__init__.py":
                mods = [node.module] if node.module else [a.name for a in node.names]
                for mod in mods:
                    assert mod.split(".")[0] in SHARED_NODE_MODULES, (
                        f"{path.name} imports the node module {mod!r}; shared code belongs in "
                        f"{sorted(SHARED_NODE_MODULES)} or in gan_core")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == "gan_core":
            assert node.attr in gan_core.__all__ or node.attr == "__version__", (
                f"{path.name}:{node.lineno}: gan_core.{node.attr} is not public API")
