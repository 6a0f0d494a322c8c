"""Where the tests find the installed ``pcpu-verify`` command."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def pcpu_verify_exe() -> str:
    """The console script pip installed beside this interpreter (what an activated environment's shell runs),
    else the first ``pcpu-verify`` on PATH.

    Under pyenv, PATH finds a shim that resolves the interpreter again on every call: 0.7 s of the 1.4 s
    ``pcpu-verify --help`` took here, and the CLI tests start the command about two hundred times.
    """
    beside = Path(sys.executable).parent / "pcpu-verify"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("pcpu-verify")
    if found is None:
        pytest.fail("pcpu-verify is not installed: run pip install -e '.[test]' before the CLI tests")
    return found
