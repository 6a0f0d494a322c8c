"""The layers point one way: a module imports only from its own layer or the layers below it.

Bottom to top: ``model`` < ``kernel`` (the C build, which imports only ``model``) < ``symbolic`` < ``invariants`` < ``counterexamples``
< ``proofs`` < the application (``pcpuverify``'s own modules).  The test
reads every import statement of the package, so it also catches an import
inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pcpuverify

PACKAGE = Path(pcpuverify.__file__).parent
LAYERS = ("model", "kernel", "symbolic", "invariants", "counterexamples", "proofs")
APPLICATION = len(LAYERS)


def layer_of(module: str) -> int:
    """The rank of a ``pcpuverify...`` module name; the package's own modules are the application."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return APPLICATION


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of a ``pcpuverify`` module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names if name.startswith("pcpuverify")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("pcpuverify")]
    return found


def module_name(path: Path) -> str:
    return ".".join(("pcpuverify", *path.relative_to(PACKAGE).with_suffix("").parts))


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    own = layer_of(module_name(path))
    upward = [
        f"line {line}: {name} ({LAYERS[layer_of(name)] if layer_of(name) < APPLICATION else 'application'})"
        for line, name in imports_of(path)
        if layer_of(name) > own
    ]
    assert not upward, f"{module_name(path)} imports from a layer above its own:\n  " + "\n  ".join(upward)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The detector itself: an ``invariants`` module importing ``proofs`` is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pcpuverify.proofs.suite import Bmc\n", encoding="utf-8")
    assert [layer_of(name) for _, name in imports_of(bad)] == [LAYERS.index("proofs")] * 2
    assert layer_of("pcpuverify.invariants.hints") < layer_of("pcpuverify.proofs.suite")
