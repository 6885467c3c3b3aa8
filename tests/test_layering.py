"""The floors of the house: core -> diversity -> training / evaluation -> run.py, nothing reaching up.

Every import counts, including the lazy ones inside functions and `importlib.import_module("...")` with a literal
name, since a lazy import is still a dependency. The one sideways edge, evaluation -> training, is limited to the
modules named in `SIDEWAYS`: reference answers are scored through the training encoding and loss, so the score
and the training objective cannot drift apart (docs/CONTRACTS.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "core": {"diversity", "training", "evaluation", "run", "benchmarks"},
    "diversity": {"training", "evaluation", "run", "benchmarks"},
    "training": {"evaluation", "run", "benchmarks"},
    "evaluation": {"training", "run", "benchmarks"},  # but for SIDEWAYS
}
SIDEWAYS = {"evaluation": {"training.tokenization", "training.loss"}}
"""Imports from a sibling layer that are allowed, by module."""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, lazy ones and literal import_module calls too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                package = path.relative_to(REPO).with_suffix("").parts[: -node.level]
                found.append((node.lineno, ".".join((*package, *([node.module] if node.module else [])))))
            else:
                found.append((node.lineno, str(node.module)))
        elif _literal_import_module(node):
            found.append((node.lineno, node.args[0].value))
    return found


def _literal_import_module(node: ast.AST) -> bool:
    """`importlib.import_module("a.b")` with a literal name."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "import_module"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_reaches_up(layer):
    offending = []
    for path in sorted((REPO / layer).rglob("*.py")):
        for line, module in imported_modules(path):
            allowed = any(module == m or module.startswith(m + ".") for m in SIDEWAYS.get(layer, ()))
            if module.split(".")[0] in FORBIDDEN[layer] and not allowed:
                offending.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not offending, "\n".join(offending)


def test_the_checker_sees_lazy_imports(tmp_path):
    """A function-level import is found: a check that only read top-level imports would pass on a violation."""
    probe = tmp_path / "probe.py"
    probe.write_text("import json\n\ndef f():\n    from diversity.selectors import Selection\n    return Selection\n")
    assert imported_modules(probe) == [(1, "json"), (4, "diversity.selectors")]
