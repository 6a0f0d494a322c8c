"""Initiation for the first chunk: every layout ``pcpu_setup_first_chunk`` accepts, set up and checked.

The layouts of a scaled geometry form a finite set once the sizes are
bounded (a static region of up to two pages, a reserved region the setup
code accepts, a dynamic region of one to three pages, every byte count in
between), so initiation is decided by running the reference's setup on each
and checking every state invariant: exhaustive, not sampled.  The 64-bit
arithmetic of the same code, for all sizes, is proved in ``proofs/layout.py``.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from functools import partial

from pcpuverify.invariants.check import STATE_INVARIANTS, check_state
from pcpuverify.model.first_chunk import LayoutError, check_layout
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.reference import Reference
from pcpuverify.model.trace import Trace
from pcpuverify.proofs.children import run_all
from pcpuverify.proofs.results import Result, Verdict

OP = "init-first-chunk"


def admissible_layouts(page_size: int) -> Iterator[FirstChunkInit]:
    """Every layout with static < 2 pages, dyn in [1, 3] pages, reserved 0 or ending on a page."""
    for static_size in range(1, 2 * page_size):
        reserved_sizes = [0] + [
            end - static_size for end in range(page_size, 4 * page_size, page_size) if end > static_size
        ]
        for reserved_size in reserved_sizes:
            for dyn_size in range(page_size, 3 * page_size + 1):
                layout = FirstChunkInit(static_size, reserved_size, dyn_size)
                try:
                    check_layout(layout, page_size)
                except LayoutError:
                    continue
                yield layout


def first_chunk_initiation(variant: str, geometry: Geometry, wanted: set[str] | None = None,
                           jobs: int = 1) -> list[Result]:
    """One row per state invariant: PROVED when no admissible layout breaks it, else VIOLATED with the first.

    With ``jobs`` > 1 the layouts are dealt out to that many child processes; each reports the first
    layout (in enumeration order) that breaks each invariant, so the rows are those of one process.
    """
    start = time.perf_counter()
    layouts = list(admissible_layouts(geometry.page_size))
    shares = max(1, min(jobs, len(layouts)))
    found = run_all([partial(_first_broken, variant, geometry, layouts, k, shares) for k in range(shares)], shares)
    first_broken = {inv: layouts[min(f[inv] for f in found if inv in f)] for f in found for inv in f}
    count = len(layouts)
    seconds = time.perf_counter() - start
    results = []
    for inv in STATE_INVARIANTS:
        if wanted is not None and inv.name not in wanted:
            continue
        layout = first_broken.get(inv.name)
        if layout is None:
            results.append(Result(variant, geometry.name, inv.name, OP, Verdict.PROVED, seconds,
                                  detail=f"all {count} admissible layouts"))
        else:
            trace = Trace(variant, Geometry(geometry.block_bits, 1, (0,)), layout, (), inv.name)
            results.append(Result(variant, geometry.name, inv.name, OP, Verdict.VIOLATED, seconds,
                                  detail=f"static_size={layout.static_size} reserved_size={layout.reserved_size}"
                                         f" dyn_size={layout.dyn_size}",
                                  trace=trace.to_json(), depth=0))
    return results


def _first_broken(variant: str, geometry: Geometry, layouts: list[FirstChunkInit], share: int,
                  shares: int) -> dict[str, int]:
    """Of every ``shares``-th layout from ``share`` on: the index of the first that breaks each invariant."""
    first: dict[str, int] = {}
    seen: set[bytes] = set()
    for i in range(share, len(layouts), shares):
        ref = Reference(variant, geometry, layouts[i])
        # Many layouts set up the same allocator: 20,000 layouts at 64-bit blocks gave 194 states.  check_state
        # reads only the allocator and its chunks, and equal pickles are equal states, so a state is checked
        # once, at its first (lowest) index, which is the one a violation is reported at.
        state = pickle.dumps((ref.alloc, ref.chunks), protocol=pickle.HIGHEST_PROTOCOL)
        if state in seen:
            continue
        seen.add(state)
        for v in check_state(ref):
            first.setdefault(v.invariant, i)
    return first
