"""What a worker must share with the coordinator for its results to be the coordinator's: same sources, same solvers.

The cache key (keys.py) hashes the coordinator's sources and Z3's version.  A result computed by a
worker on another machine is only worth that key if the worker ran the same code: so before it runs
an item, a Dask worker compares its own environment with the coordinator's and refuses on any
difference, naming it.
"""

from __future__ import annotations

import hashlib
import sys
from importlib import metadata
from pathlib import Path

from pcpuverify.check.keys import PACKAGE_DIR, source_files

# The distributions a verdict depends on besides the package's own sources: the solvers and Hypothesis.
SOLVER_DISTRIBUTIONS = ("z3-solver", "bitwuzla", "cvc5", "hypothesis")


def environment(plugins: tuple[Path, ...] = ()) -> dict[str, str]:
    """This process's sources, plug-in files and solver versions, each part a short string to compare."""
    sources = hashlib.sha256()
    for file in source_files():
        sources.update(f"{file.relative_to(PACKAGE_DIR).as_posix()}\0".encode())
        sources.update(file.read_bytes())
    parts = {"pcpu-verify sources": sources.hexdigest()[:16],
             "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    for name in SOLVER_DISTRIBUTIONS:
        try:
            parts[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            parts[name] = "not installed"
    for plugin in plugins:
        try:
            parts[f"plug-in {plugin}"] = hashlib.sha256(plugin.read_bytes()).hexdigest()[:16]
        except OSError:
            parts[f"plug-in {plugin}"] = "missing"
    return parts


def difference(ours: dict[str, str], theirs: dict[str, str]) -> str | None:
    """The first part on which a worker's environment differs from the coordinator's, in words; None if none."""
    for part, value in ours.items():
        if theirs.get(part) != value:
            return f"{part} {theirs.get(part, 'absent')}, the coordinator's {value}"
    return None
