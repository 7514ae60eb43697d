"""Imports go one way: nothing under asr/inference/ imports the modules that compose it
(the CLI, evaluation, tuning, the server, training)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INFERENCE = Path(__file__).resolve().parent.parent / "asr" / "inference"
# Modules above the inference wing, or beside it (training): by name prefix.
ABOVE = ("asr.cli", "asr.evaluate", "asr.tune", "asr.serve", "asr.training", "asr.transcribe")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports and TYPE_CHECKING too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return names


@pytest.mark.parametrize("path", sorted(INFERENCE.glob("*.py")), ids=lambda p: p.name)
def test_inference_imports_nothing_above_it(path):
    above = sorted(
        name
        for name in imported_modules(path)
        if any(name == top or name.startswith(top + ".") for top in ABOVE)
    )
    assert above == [], f"{path.name} imports {above}"


def test_the_check_sees_an_import_from_above(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from asr.serve.http import create_app\n")
    assert "asr.serve.http" in imported_modules(module)
