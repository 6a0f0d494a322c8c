"""Cache keys: a hash of everything an item's result depends on."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import z3

from pcpuverify.check.config import Config
from pcpuverify.check.obligation import LAYOUT_PAGE_SIZE, LAYOUT_SETS
from pcpuverify.check.outcomes import CACHE_FORMAT
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.symbolic.subjects import SUBJECTS

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # pcpuverify/

# Modules that only print, draw or parse the command line: no module the key hashes imports them
# (tests/test_faults.py holds that), so a result cannot depend on them and editing them keeps the cache.
# Every other module counts, including ones added later: forgetting a folder can no longer serve a stale verdict.
PRESENTATION_MODULES = frozenset({"cli.py", "check_cli.py", "report.py", "reports.py", "draw.py"})


def source_files() -> list[Path]:
    """Every .py file of the package a result may depend on (all but ``PRESENTATION_MODULES``)."""
    return sorted(p for p in PACKAGE_DIR.rglob("*.py")
                  if p.relative_to(PACKAGE_DIR).as_posix() not in PRESENTATION_MODULES)


def _without_other_variants(path: Path, text: str, keep: set[type]) -> str:
    """``text`` of ``path`` less the source of every registered variant class not in ``keep``.

    So that editing the ``fixed`` variant re-checks ``fixed`` only; anything
    else in the file (helpers, the registry) still counts for every variant.
    """
    lines = text.splitlines(keepends=True)
    cut: list[tuple[int, int]] = []
    for cls in {c for s in SUBJECTS.values() for c in (s.model, s.encoding, s.layout) if c is not None} - keep:
        try:
            if Path(inspect.getsourcefile(cls) or "").resolve() != path.resolve():
                continue
            source, start = inspect.getsourcelines(cls)
        except (OSError, TypeError):
            continue
        cut.append((start - 1, start - 1 + len(source)))
    for a, b in sorted(cut, reverse=True):
        del lines[a:b]
    return "".join(lines)


def source_digest(variant: str, plugins: tuple[Path, ...] = ()) -> str:
    """A hash of the sources the results for ``variant`` depend on: ``source_files()`` and the plugins."""
    keep: set[type] = set()
    if variant in SUBJECTS:
        parts = SUBJECTS[variant]
        for cls in (parts.model, parts.encoding, parts.layout):
            keep |= set(cls.__mro__) if cls is not None else set()
    h = hashlib.sha256()
    for file in source_files():
        text = file.read_text(encoding="utf-8")
        h.update(f"{file.relative_to(PACKAGE_DIR).as_posix()}\0".encode())
        h.update(_without_other_variants(file, text, keep).encode())
    for plugin in sorted(plugins):
        h.update(f"plugin\0{plugin.name}\0".encode())
        h.update(plugin.read_bytes())
    return h.hexdigest()


def _digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def suite_key(config: Config, variant: str, geometry: Geometry | BlockLabel) -> str:
    """Everything a suite's results depend on: sources, geometry, variant, Z3's version, the options, the filters."""
    invariants, ops = config.suite_filters or (None, None)
    return _digest({
        "format": CACHE_FORMAT,
        "kind": "suite",
        "sources": source_digest(variant, config.plugins),
        "variant": variant,
        "geometry": geometry.to_json(),
        "z3": z3.get_version_string(),
        "options": config.suite_options.to_json(),
        "invariants": sorted(invariants) if invariants is not None else None,
        "ops": sorted(ops) if ops is not None else None,
        "witnesses": traces_digest(config),
    })


def traces_digest(config: Config) -> str:
    """A hash of every regression trace file: the suites carry them to rows left NOT-INDUCTIVE."""
    h = hashlib.sha256()
    for folder in config.traces:
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
            h.update(f"{path.relative_to(folder).as_posix()}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def layout_key(config: Config, variant: str) -> str:
    """Everything a layout suite's results depend on: sources, variant, page size, sets, Z3, the solver options.

    No filter: the layout suite always proves every property, the filters
    only choose which rows are reported, so every filter shares one entry.
    """
    return _digest({
        "format": CACHE_FORMAT,
        "kind": "layout",
        "sources": source_digest(variant, config.plugins),
        "variant": variant,
        "page_size": LAYOUT_PAGE_SIZE,
        "sets": list(LAYOUT_SETS),
        "z3": z3.get_version_string(),
        "options": config.suite_options.solver.to_json(),
    })


def stateful_key(config: Config, variant: str) -> str:
    import hypothesis

    return _digest({
        "format": CACHE_FORMAT,
        "kind": "stateful",
        "sources": source_digest(variant, config.plugins),
        "variant": variant,
        "examples": config.stateful_examples,
        "hypothesis": hypothesis.__version__,
    })


def minimise_key(suite: str, invariant_name: str, op: str) -> str:
    return _digest({"format": CACHE_FORMAT, "kind": "minimise", "suite": suite, "invariant": invariant_name, "op": op})
