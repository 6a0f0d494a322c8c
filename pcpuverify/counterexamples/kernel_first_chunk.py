"""Initiation of the first chunk on a C build: every layout its callers give, set up by the C and held to the invariants.

The C counterpart of ``proofs/initiation.py``'s first-chunk rows.  The
layouts are what ``pcpu_build_alloc_info`` hands ``pcpu_setup_first_chunk``
(see ``proofs/layout/preconditions.py``, the ``callers`` set): the static
region any byte count up to two pages, the reserved region a multiple of
``PCPU_MIN_ALLOC_SIZE`` up to two pages, and the dynamic region what makes
the unit end on a page, one to three pages -- "size_sum =
PFN_ALIGN(static_size + reserved_size + dyn_size)", with
``dyn_size = size_sum - static_size - reserved_size``.  Each layout's first
chunk (and reserved chunk) is made by the C (kernel/first_chunk.py,
shim/driver.c's ``I``) and every state invariant of the layout runs on it:
exhaustive over the bounded set, not sampled.  A sanitizer report during
the setup is a finding of the layout.

Each finding is a ``CTrace`` with the layout as its init and no ops: it
replays with ``replay --source`` and minimises with ``minimize --source``.
The 2017 posting's first chunk is not built (kernel/first_chunk.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pcpuverify.counterexamples.kernel_search import CTrace, state_violations
from pcpuverify.kernel.build import build
from pcpuverify.kernel.first_chunk import c_first_chunk
from pcpuverify.kernel.harness import init_command, make_dump, parse_reply
from pcpuverify.kernel.process import DriverProcess, summarize
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.ops import FirstChunkInit

OP = "init-first-chunk"  # the operation of its rows, as proofs/initiation.py names it


def caller_layouts(page_size: int) -> Iterator[FirstChunkInit]:
    """The layouts of the module docstring, smallest first."""
    for static_size in range(1, 2 * page_size):
        for reserved_size in range(0, 2 * page_size + 1, PCPU_MIN_ALLOC_SIZE):
            for pages in range(1, 8):
                dyn_size = pages * page_size - static_size - reserved_size
                if page_size <= dyn_size <= 3 * page_size:
                    yield FirstChunkInit(static_size, reserved_size, dyn_size)


@dataclass
class FirstChunkRun:
    """What the initiation saw: how many layouts, and the first layout breaking each invariant (or finding)."""

    layouts: int = 0
    found: dict[str, CTrace] = field(default_factory=dict)


def first_chunk_c(source: KernelSource, block_bits: int) -> FirstChunkRun:
    """Every caller layout at ``block_bits`` bits a page, set up by the C build of ``source``, held to the invariants."""
    geometry = Geometry(block_bits, 1, (0,))  # a first-chunk trace's geometry: the layout decides the pages
    by_pages: dict[int, list[FirstChunkInit]] = {}
    for init in caller_layouts(geometry.page_size):
        try:
            by_pages.setdefault(c_first_chunk(init, geometry.page_size).unit_pages, []).append(init)
        except LayoutError:
            continue
    run = FirstChunkRun()
    for pages, inits in sorted(by_pages.items()):
        build_ = build(source, block_bits, pages)
        while inits:
            process = DriverProcess(build_.executable, symbolize=False)
            replies, crash = process.run([init_command(geometry, init) for init in inits])
            process.close()
            for init, reply in zip(inits, replies):
                run.layouts += 1
                first = c_first_chunk(init, geometry.page_size)
                parsed = parse_reply(build_.layout, reply)
                dump = make_dump(build_.layout, parsed, first.hidden["dynamic"], first.hidden.get("reserved"))
                for v in state_violations(build_.layout, dump, geometry):
                    run.found.setdefault(v.invariant, CTrace(geometry, (), v.invariant, v.describe(), init))
                for warning in parsed.warnings:
                    run.found.setdefault("warning", CTrace(geometry, (), "warning", warning, init))
            if crash is None:
                break
            init = inits[len(replies)]
            run.layouts += 1
            if "sanitizer" not in run.found:
                report = DriverProcess(build_.executable)
                _, symbolized = report.run([init_command(geometry, init)])
                report.close()
                summary = summarize(symbolized.report) if symbolized is not None else crash.summary()
                run.found["sanitizer"] = CTrace(geometry, (), "sanitizer", summary, init)
            inits = inits[len(replies) + 1:]
    return run
