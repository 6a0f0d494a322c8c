"""Issue 13, "Hard to break, plain to read": one test per fault a new user found.

Each test drives the tool the way the fault was found (mostly a subprocess
of ``pcpu-verify`` on the smallest geometry), and failed before its fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pcpuverify

PACKAGE = Path(pcpuverify.__file__).parent
TESTS = Path(__file__).parent
HINT_OVERLAP = TESTS / "traces" / "v1_hint_overlap.json"


def run_python(code: str, cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter in ``cwd`` (first on its sys.path); its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            cwd=cwd, timeout=timeout, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# -- fault 1: the cache key covers every source a result depends on ----------------------------------------


def test_cache_key_changes_with_every_source_a_result_depends_on(tmp_path: Path) -> None:
    """Append a line to each module of a copy of the package, one at a time: the suite key must change.

    Only the modules that present results (the command line, the reports,
    the drawings) may leave it unchanged, and nothing else imports them.
    """
    copy = tmp_path / "pcpuverify"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    out = run_python(f"""
        import json, pathlib, pcpuverify
        from pcpuverify.check import source_digest
        package = pathlib.Path(pcpuverify.__file__).parent
        assert package == pathlib.Path({str(copy)!r}), package  # the copy, not the installed tree
        before = source_digest("v1")
        unchanged = []
        for path in sorted(package.rglob("*.py")):
            text = path.read_text()
            path.write_text(text + "\\nEDITED = 1\\n")
            if source_digest("v1") == before:
                unchanged.append(path.relative_to(package).as_posix())
            path.write_text(text)
        assert source_digest("v1") == before
        print(json.dumps(unchanged))
    """, tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    unchanged = set(json.loads(out))
    presentation = {"cli.py", "check_cli.py", "report.py", "reports.py", "draw.py"}
    assert unchanged <= presentation, f"editing these leaves the cache key unchanged: {sorted(unchanged - presentation)}"


def test_no_result_depends_on_a_presentation_module() -> None:
    """What the cache key leaves out (the presenters) must be imported by no module it hashes."""
    from pcpuverify.check import PRESENTATION_MODULES

    presenters = {"pcpuverify." + m.removesuffix(".py") for m in PRESENTATION_MODULES}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() in PRESENTATION_MODULES:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.name} imports {p}" for p in presenters if f"{p} import" in text or f"import {p}" in text]
    assert not offenders
