"""Witnesses: known violating traces carried to the variant and geometry of an obligation.

Bounded model checking settles a failed consecution only up to its depth;
some reachable violations are longer (a three-block run grown from both
sides takes eight operations).  A trace that already shows the violation
on as many pages or fewer, with blocks of the same size or a power-of-two
fraction of it, is carried there (``with_pages``: the pages it lacks are
appended, as the obligation's geometry populates them; ``scaled_up``: each
free frees what the same alloc returned) and replayed on ``model/``.  More
pages change where a fit is found and what ``chunk_md`` learns, so many
traces break nothing there; the replay decides.  A witness is evidence of
VIOLATED only, and only when an operation of the obligation's kind breaks
the same invariant from a state where it holds; the carried trace ends
there.  An earlier step may have broken it too (by another kind of
operation, after which it held again): the row's claim is consecution over
reachable states, and the state before the last operation is one.  A witness
can never make an obligation PROVED.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pcpuverify.counterexamples.minimize import REFUSED, scaled_up
from pcpuverify.invariants.check import replay
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, op_to_json
from pcpuverify.model.trace import Trace, load_trace


@dataclass(frozen=True)
class Witness:
    source: str  # the file it was read from
    trace: Trace


def load_witnesses(paths: Iterable[Path]) -> list[Witness]:
    """Every trace that names the invariant it violates, from files and directories (recursively, ``*.json``)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.rglob("*.json")) if path.is_dir() else [path]
    witnesses = [Witness(_shown(f), load_trace(f)) for f in files]
    return [w for w in witnesses if w.trace.violates is not None and isinstance(w.trace.init, ChunkInit)]


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the working directory when under it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def with_pages(trace: Trace, geometry: Geometry) -> Trace:
    """``trace`` on a chunk of ``geometry.nr_pages`` pages: its own pages as they were, the rest populated as in
    ``geometry`` (its blocks stay the trace's size)."""
    g = trace.geometry
    added = tuple(p for p in geometry.populated if p >= g.nr_pages)
    return replace(trace, geometry=Geometry(g.block_bits, geometry.nr_pages, (*g.populated, *added)))


@dataclass(frozen=True)
class Carried:
    witness: Witness
    trace: Trace  # on the obligation's variant and geometry, ending at the violating operation
    first: int  # the step that first breaks the invariant: the last one, or an earlier one of another kind


def carry(witnesses: Sequence[Witness], variant: str, geometry: Geometry, invariant: str, kind: str) -> Carried | None:
    """The shortest carried witness whose last op, of ``kind``, breaks ``invariant`` on ``variant`` from a state
    where it holds."""
    found: list[Carried] = []
    for w in witnesses:
        g = w.trace.geometry
        if w.trace.violates != invariant or g.nr_pages > geometry.nr_pages or geometry.block_bits % g.block_bits:
            continue
        try:
            trace = scaled_up(with_pages(w.trace, geometry), variant, geometry.block_bits)
            breaks = replay(trace).breaks(invariant)
        except REFUSED:
            continue
        at = next((i for i in breaks if i >= 0 and op_to_json(trace.ops[i])["op"] == kind), None)
        if at is None:
            continue
        found.append(Carried(w, Trace(variant, trace.geometry, trace.init, trace.ops[: at + 1], invariant), breaks[0]))
    return min(found, key=lambda c: (len(c.trace.ops), c.witness.source), default=None)
