"""A seeded Hypothesis run draws the same values whichever of the project's modules are loaded.

Without ``without_local_constants`` the stateful machines' findings moved
with any literal added anywhere in pcpuverify, and with the modules a
``check`` worker happened to have loaded (issue 13's review: the gate's
verdict depended on its cache state).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DRAW = """
import json, sys
from hypothesis import given, seed, settings, strategies as st, Phase
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "with-literal":
    import local_literals  # a module of the project's kind: not in site-packages, so Hypothesis reads its literals
from pcpuverify.counterexamples.seeded import without_local_constants
drawn = []
@seed(7)
@settings(max_examples=300, database=None, phases=[Phase.generate], deadline=None)
@given(st.integers(0, 10**6))
def draw(n):
    drawn.append(n)
if sys.argv[3] == "pinned":
    with without_local_constants():
        draw()
else:
    draw()
print(json.dumps(drawn))
"""


def draws(tmp_path: Path, literal: bool, pinned: bool) -> list[int]:
    (tmp_path / "local_literals.py").write_text("MAGIC = 777777\n", encoding="utf-8")
    args = [str(tmp_path), "with-literal" if literal else "none", "pinned" if pinned else "free"]
    proc = subprocess.run([sys.executable, "-c", DRAW, *args], capture_output=True, text=True, check=True,
                          cwd=tmp_path, timeout=300)
    return list(json.loads(proc.stdout))


def test_a_loaded_literal_changes_what_hypothesis_draws(tmp_path: Path) -> None:
    """The hazard itself, so that the next test can fail: unpinned, the module's literal is drawn."""
    assert 777777 in draws(tmp_path, literal=True, pinned=False)


def test_pinned_draws_do_not_depend_on_loaded_modules(tmp_path: Path) -> None:
    pinned = draws(tmp_path, literal=True, pinned=True)
    assert 777777 not in pinned
    assert pinned == draws(tmp_path, literal=False, pinned=True)
