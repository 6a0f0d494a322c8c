"""Initiation for the first chunk: every layout ``pcpu_setup_first_chunk`` accepts, set up and checked.

The layouts of a scaled geometry form a finite set once the sizes are
bounded (a static region of up to two pages, a reserved region the setup
code accepts, a dynamic region of one to three pages, every byte count in
between), so initiation is decided by running the reference's setup on each
and checking every state invariant: exhaustive, not sampled.  The 64-bit
arithmetic of the same code, for all sizes, is proved in ``proofs/layout.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from pcpuverify.invariants.check import STATE_INVARIANTS, check_state
from pcpuverify.model.first_chunk import LayoutError, check_layout
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.reference import Reference
from pcpuverify.model.trace import Trace
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


def first_chunk_initiation(variant: str, geometry: Geometry, wanted: set[str] | None = None) -> list[Result]:
    """One row per state invariant: PROVED when no admissible layout breaks it, else VIOLATED with the first."""
    start = time.perf_counter()
    first_broken: dict[str, FirstChunkInit] = {}
    count = 0
    for layout in admissible_layouts(geometry.page_size):
        count += 1
        for v in check_state(Reference(variant, geometry, layout)):
            first_broken.setdefault(v.invariant, layout)
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
