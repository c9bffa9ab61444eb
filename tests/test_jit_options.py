"""Every numba kernel uses the project's JIT options (airspace/_jit.py), no exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _njit_decorators(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                name = dec.func if isinstance(dec, ast.Call) else dec
                if (
                    isinstance(name, ast.Name)
                    and name.id in ("njit", "jit")
                    or isinstance(name, ast.Attribute)
                    and name.attr in ("njit", "jit")
                ):
                    yield node.name, dec


def test_every_njit_uses_jit_options():
    bad, seen = [], 0
    for folder in ("airspace", "planner", "live"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for fname, dec in _njit_decorators(tree):
                seen += 1
                ok = isinstance(dec, ast.Call) and any(
                    kw.arg is None
                    and isinstance(kw.value, ast.Name)
                    and kw.value.id == "JIT"
                    for kw in dec.keywords
                )
                if not ok:
                    bad.append(f"{path.relative_to(ROOT)}:{fname}")
    assert seen > 10  # the check really looked at the kernels
    assert bad == [], f"@njit without **JIT: {bad}"
