"""A kernel's own mm/percpu.c as a subject of the check: the search on its C build, rows per invariant, a baseline.

A C subject is a source folder (``sources`` in the config, ``check
--source PATH``) named by its path relative to the config file (a patch to
the file keeps the name, so its rows are held to the same baseline rows).
For every configured geometry one item (``CItem``) runs, in a worker:

- ``search``: the breadth-first search on the C build from every new chunk
  to ``source-depth`` operations, then ``stateful-examples`` seeded random
  walks and as many Hypothesis stateful examples
  (``counterexamples/kernel_search.py``, ``kernel_machine.py``); every state
  held to the invariants of the source's layout;
- ``init-first-chunk`` (4.14 on): every first-chunk layout its callers give,
  at the geometry's page, held to the state invariants
  (``counterexamples/kernel_first_chunk.py``).

Each owes one row per invariant of the layout and per finding of the C
itself (``sanitizer``, ``warning``): VIOLATED, with the trace that breaks it
on the C (shrunk there), or HOLDS-TO-DEPTH -- never PROVED: a search is
not a proof.  The search is deterministic (a fixed seed, no Hypothesis
database, the local constants pinned), so a row held to its baseline row
is compared as strictly as a proof's.  The result is cached under a key of
the source's hash, the package, the shim and driver, gcc's version and
the search's settings.  A new violation is minimised on the C
(``kernel_shrink.minimize_on_c``, every reduction of ``minimize.py``) and
written as a C trace that ``replay --source`` replays.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pcpuverify.check.keys import PACKAGE_DIR, source_files
from pcpuverify.check.obligation import Obligation, SourceSetting
from pcpuverify.check.outcomes import CACHE_FORMAT, CheckError, Row
from pcpuverify.counterexamples.kernel_first_chunk import OP as FIRST_CHUNK_OP
from pcpuverify.counterexamples.kernel_search import INVARIANTS_BY_LAYOUT, CTrace, c_trace_file
from pcpuverify.counterexamples.kernel_shrink import FINDING_KINDS, minimize_on_c
from pcpuverify.counterexamples.minimize import NotACounterexample
from pcpuverify.kernel.build import SHIM_DIR
from pcpuverify.kernel.source import KernelSource, SourceError, load_source
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.trace import write_atomically

SEARCH_OP = "search"
VIOLATED = "VIOLATED"
HOLDS = "HOLDS-TO-DEPTH"


def subject_name(path: Path, root: Path) -> str:
    """``c:`` and the source's path relative to the config file (absolute when it lies elsewhere)."""
    try:
        return "c:" + path.resolve().relative_to(root).as_posix()
    except ValueError:
        return "c:" + path.resolve().as_posix()


def load_c_source(path: Path) -> KernelSource:
    """The source, its layout known, or one CheckError line."""
    try:
        source = load_source(path)
        _ = source.layout
    except SourceError as e:
        raise CheckError(f"sources: {e}") from None
    return source


def c_ops(source: KernelSource) -> tuple[str, ...]:
    """The operations of a C subject's rows: the search, and the first chunk from 4.14 on."""
    return (SEARCH_OP,) if source.layout == "seed" else (SEARCH_OP, FIRST_CHUNK_OP)


def c_rows(source: KernelSource) -> list[tuple[str, str]]:
    """Every (invariant, op) row a C item owes, in order."""
    names = [*INVARIANTS_BY_LAYOUT[source.layout], *FINDING_KINDS]
    return [(name, op) for op in c_ops(source) for name in names]


@dataclass(frozen=True)
class CItem:
    """The search and the first chunk of one C source at one geometry."""

    subject: str
    path: Path
    geometry: Geometry
    depth: int
    examples: int
    seed: int
    key: str
    estimate: float

    @property
    def variant(self) -> str:
        """The subject, under the name every item gives it."""
        return self.subject

    @property
    def label(self) -> str:
        return f"{self.subject} {self.geometry.name}"


def c_items(sources: tuple[Path, ...], root: Path, geometries: list[Geometry], depth: int, examples: int,
            seed: int) -> list[CItem]:
    """One item per source and geometry; a source that is missing or of no known layout is one CheckError line."""
    items = []
    for path in sources:
        source = load_c_source(path)
        subject = subject_name(path, root)
        for g in geometries:
            items.append(CItem(subject, path, g, depth, examples, seed, c_key(source, g, depth, examples, seed),
                               estimate=2.0 * g.nr_bits * depth + 0.2 * examples))
    return items


def _gcc_version() -> str:
    try:
        return subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def c_key(source: KernelSource, geometry: Geometry, depth: int, examples: int, seed: int) -> str:
    """Everything a C item's rows depend on: the source's hash, the package, the shim and driver, gcc, the settings."""
    import hypothesis

    shim = hashlib.sha256()
    for path in sorted(p for p in SHIM_DIR.rglob("*") if p.is_file()):
        shim.update(path.relative_to(SHIM_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    package = hashlib.sha256()
    for path in source_files():  # whole: the C's rows read the release chunks and allocators of every layout
        package.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    parts = {"format": CACHE_FORMAT, "kind": "c", "source": source.sha256, "package": package.hexdigest(),
             "shim": shim.hexdigest(), "gcc": _gcc_version(), "geometry": geometry.to_json(), "depth": depth,
             "examples": examples, "seed": seed, "hypothesis": hypothesis.__version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def run_c_item(item: CItem) -> dict[str, Any]:
    """The search and the first chunk on the C build (in a worker): the first trace breaking each row, shrunk."""
    from pcpuverify.counterexamples.kernel_first_chunk import first_chunk_c
    from pcpuverify.counterexamples.kernel_machine import hypothesis_c
    from pcpuverify.counterexamples.kernel_search import explore_c, random_c
    from pcpuverify.counterexamples.kernel_shrink import shrink
    from pcpuverify.kernel.build import build

    start = time.perf_counter()
    source = load_source(item.path)
    g = item.geometry
    result = explore_c(source, g, item.depth)
    random_c(source, g, item.examples, 20, item.seed, result)
    driver = build(source, g.block_bits, g.nr_pages)
    hypothesis_c(driver, g, item.examples, item.seed, result)
    found: dict[str, dict[str, Any]] = {SEARCH_OP: {n: shrink(driver, t).to_json() for n, t in result.found.items()}}
    layouts = 0
    if FIRST_CHUNK_OP in c_ops(source):
        first = first_chunk_c(source, g.block_bits)
        layouts = first.layouts
        found[FIRST_CHUNK_OP] = {n: t.to_json() for n, t in first.found.items()}
    return {"seconds": time.perf_counter() - start, "sha256": source.sha256, "layout": source.layout,
            "states": result.states, "steps": result.random_steps, "layouts": layouts, "found": found}


def c_payload(payload: Any) -> dict[str, Any]:
    """A cache entry of a C item, checked (ValueError when it is not one)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("found"), dict):
        raise ValueError("a C entry is an object with 'found'")
    for traces in payload["found"].values():
        for trace in traces.values():
            CTrace.from_json(trace)
    return payload


def c_obligations(item: CItem) -> list[Obligation]:
    """Every row ``item`` owes, in order."""
    setting = SourceSetting(item.geometry)
    return [Obligation(item.subject, setting, name, op) for name, op in c_rows(load_c_source(item.path))]


def c_answers(item: CItem, payload: dict[str, Any]) -> dict[Obligation, tuple[str, float, str, dict[str, Any] | None]]:
    """What the item found for each row: its verdict, seconds, detail and (VIOLATED) C trace file."""
    source = load_c_source(item.path)
    owed = c_obligations(item)
    out = {}
    for key in owed:
        trace = payload["found"].get(key.op, {}).get(key.invariant)
        if key.op == SEARCH_OP:
            detail = (f"{payload['states']} states to depth {item.depth}, {payload['steps']} random and Hypothesis"
                      " steps on the C build")
        else:
            detail = f"{payload['layouts']} first-chunk layouts set up by the C"
        if trace is not None:
            detail = f"{trace['message']}; {detail}"
        out[key] = (VIOLATED if trace is not None else HOLDS, payload["seconds"] / max(len(owed), 1), detail,
                    None if trace is None else c_trace_file(trace, source))
    return out


def minimise_c_row(row: Row, path: Path, directory: Path | None) -> Row:
    """A new violation on the C, minimised there; the trace written to ``directory`` (if any) for ``replay --source``.

    A trace that no longer breaks its invariant on the C is said in the
    row's detail (a failure of ours: the search found it there).
    """
    assert row.trace is not None
    source = load_source(path)
    try:
        minimized = minimize_on_c(source, CTrace.from_json(row.trace))
    except NotACounterexample:
        return replace(row, detail=row.detail + "; its trace did not break the invariant again on the C: not minimised")
    data = c_trace_file(minimized.to_json(), source)
    detail = row.detail
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{row.variant.removeprefix('c:').replace('/', '_')}__{row.geometry}__{row.op}__{row.invariant}.json"
        written = directory / name
        write_atomically(written, json.dumps(data, indent=2) + "\n")
        detail += f"; minimised: {written} (replay it with `pcpu-verify replay {written} --source {path}`)"
    return replace(row, minimised=data, detail=detail)
