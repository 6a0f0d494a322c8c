"""Delta debugging of a counterexample: the same invariant broken by fewer operations, smaller arguments, a smaller chunk.

``minimize(trace)`` keeps the invariant the trace ``violates`` names (or, if
it names none, the first one its replay breaks: the initial state's first,
else the first of the earliest step that breaks any) and applies these
reductions, in this order, repeating the whole round until a round changes
nothing:

1. Truncation: everything after the first step that breaks the invariant
   goes (after every accepted candidate, so the violation is the last step).
2. Removal of operations, ddmin style (Zeller and Hildebrandt, 2002): the
   operations are cut into 2 chunks and each chunk removed in turn, left to
   right; a success continues with one chunk fewer, a round of failures
   doubles the number of chunks, up to single operations.  It ends only
   after every single operation has been removed in vain.
3. Lowering of arguments, operation by operation from the first, each to
   the smallest value that still breaks the invariant (every smaller value
   is tried, smallest first): an alloc's ``bits`` (1 .. bits - 1), its
   ``align`` (every smaller power of two), ``pop_only`` true to false; a
   populate's or depopulate's page range narrowed (every strictly narrower
   range inside it, narrowest first, then leftmost).
4. Shrinking the geometry, each kind smallest first: fewer pages (the last
   pages go; page ranges are clipped and operations wholly past the end
   dropped); smaller ``block_bits`` (alignments clipped to the new block,
   first with the sizes kept, then with bits and alignments scaled by the
   same ratio); fewer initially populated pages (one removed, lowest first).
   A first-chunk trace instead shrinks its page (``block_bits``, the layout
   sizes scaled with it), its ``dyn_size`` by whole pages and its
   ``reserved_size`` by whole pages or to 0; ``static_size`` is kept (it
   places the reserved region, a layout the setup code checks).

Frees name allocations, not offsets.  A free in the input frees the
allocation some earlier alloc returned; candidates keep that link, and
each candidate is made concrete by replaying it on the reference: a free
gets the offset its alloc returned *in that candidate*, and is dropped
when its alloc was removed or failed (a caller frees only what it got;
``free_percpu(NULL)`` is a no-op).  So removing an alloc removes its free
with it, and lowering an earlier alloc moves the later frees along.

Every candidate is checked by replaying it on the reference
(``first_violation``); one the reference or the trace format refuses
(OpError, TraceError, LayoutError, GeometryError) is rejected.  The
result is 1-minimal: removing any single operation (with its free),
lowering any single argument to any smaller value, or any single
geometry reduction above no longer breaks the same invariant.  No
randomness: the same input gives the same output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Union

from pcpuverify.invariants.check import first_violation, invariant, replay
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import MIN_BLOCK_BITS, Geometry, GeometryError
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, FirstChunkInit, Free, Init, Op, Populate
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace, TraceError, trace_from_json

REFUSED = (OpError, TraceError, LayoutError, GeometryError)


class NotACounterexample(ValueError):
    """A trace whose replay does not break the invariant to minimise (or breaks none)."""


@dataclass(frozen=True)
class FreeOf:
    """A free of whatever the alloc with id ``alloc`` returned (in the candidate being replayed)."""

    alloc: int
    reserved: bool = False


Item = Union[Alloc, FreeOf, Populate, Depopulate]
Step = tuple[int, Item]  # (a stable id: the op's index in the input, the op)


@dataclass(frozen=True)
class Candidate:
    """A trace with its frees linked to their allocs."""

    geometry: Geometry
    init: Init
    steps: tuple[Step, ...]


def _linked(trace: Trace) -> Candidate:
    """The input with each free linked to the alloc whose allocation it frees (OpError if it frees none)."""
    ref = Reference(trace.variant, trace.geometry, trace.init)
    live: dict[tuple[bool, int], int] = {}
    steps: list[Step] = []
    for index, op in enumerate(trace.ops):
        try:
            result = ref.apply(op)
        except OpError as e:
            raise OpError(f"ops[{index}]: {e}") from None
        if isinstance(op, Free):
            steps.append((index, FreeOf(live.pop((op.reserved, op.bit_off)), op.reserved)))
            continue
        if isinstance(op, Alloc) and result.bit_off is not None:
            live[(op.reserved, result.bit_off)] = index
        steps.append((index, op))
    return Candidate(trace.geometry, trace.init, tuple(steps))


def _concrete(variant: str, candidate: Candidate) -> tuple[tuple[Op, ...], tuple[Step, ...]]:
    """The candidate's operations with the offsets its frees get, and the steps kept (frees of nothing dropped)."""
    ref = Reference(variant, candidate.geometry, candidate.init)
    returned: dict[int, int] = {}
    ops: list[Op] = []
    kept: list[Step] = []
    for sid, item in candidate.steps:
        if isinstance(item, FreeOf):
            off = returned.pop(item.alloc, None)
            if off is None:
                continue
            op: Op = Free(off, item.reserved)
        else:
            op = item
        result = ref.apply(op)
        if isinstance(op, Alloc) and result.bit_off is not None:
            returned[sid] = result.bit_off
        ops.append(op)
        kept.append((sid, item))
    return tuple(ops), tuple(kept)


def on_variant(trace: Trace, variant: str) -> Trace:
    """The same calls on another variant: each free frees what the same alloc returned there.

    A free whose alloc fails on ``variant`` is dropped; anything else the
    reference refuses there raises OpError.
    """
    ops, _ = _concrete(variant, _linked(trace))
    return Trace(variant, trace.geometry, trace.init, ops, trace.violates)


def scaled_up(trace: Trace, variant: str, block_bits: int) -> Trace:
    """The same calls on ``variant`` with blocks of ``block_bits`` bits, a multiple of the trace's.

    Sizes and alignments grow by the ratio (so a run of the trace's blocks
    keeps its shape in blocks), each free frees what the same alloc
    returned; pages and the populated set stay.  Raises OpError or
    GeometryError when the reference refuses the result.
    """
    old = trace.geometry.block_bits
    if block_bits % old or not isinstance(trace.init, ChunkInit):
        raise GeometryError(f"a {old}-bit-block chunk trace cannot be scaled to {block_bits}-bit blocks")
    linked = _linked(trace)
    geometry = Geometry(block_bits, trace.geometry.nr_pages, trace.geometry.populated)
    ops, _ = _concrete(variant, Candidate(geometry, trace.init, _rescaled(linked.steps, old, block_bits, True)))
    return Trace(variant, geometry, trace.init, ops, trace.violates)


def violated_invariant(trace: Trace) -> str | None:
    """The invariant ``minimize`` keeps: the trace's claim, else the first one its replay breaks."""
    if trace.violates is not None:
        return invariant(trace.violates).name
    return replay(trace).first_broken()


class Minimizer:
    """The reductions of the module docstring over one trace and one invariant; ``tried`` counts candidates."""

    def __init__(self, trace: Trace, name: str) -> None:
        self.variant = trace.variant
        self.name = name
        self.tried = 0
        at = first_violation(trace, name)
        if at is None:
            raise NotACounterexample(f"the replay does not violate {name!r}")
        self.best = self._truncated(_linked(trace), at)

    # -- checking a candidate ---------------------------------------------------

    def _truncated(self, candidate: Candidate, at: int) -> Candidate:
        return replace(candidate, steps=candidate.steps[: at + 1])

    def _try(self, candidate: Candidate) -> Candidate | None:
        """The candidate made concrete and truncated if it still breaks the invariant, else None."""
        self.tried += 1
        try:
            ops, kept = _concrete(self.variant, candidate)
            trace = trace_from_json(Trace(self.variant, candidate.geometry, candidate.init, ops, self.name).to_json())
            at = first_violation(trace, self.name)
        except REFUSED:
            return None
        if at is None:
            return None
        return self._truncated(replace(candidate, geometry=trace.geometry, steps=kept), at)

    def _first(self, candidates: Iterator[Candidate]) -> Candidate | None:
        for candidate in candidates:
            accepted = self._try(candidate)
            if accepted is not None:
                return accepted
        return None

    # -- the reductions -----------------------------------------------------------

    def remove_operations(self) -> bool:
        """ddmin: remove chunks of steps, halving the chunks' size until single steps fail."""
        changed = False
        n = 2
        while self.best.steps:
            steps = self.best.steps
            n = min(n, len(steps))
            bounds = [len(steps) * k // n for k in range(n + 1)]
            accepted = self._first(
                replace(self.best, steps=steps[: bounds[k]] + steps[bounds[k + 1] :]) for k in range(n)
            )
            if accepted is not None:
                self.best, changed = accepted, True
                n = max(n - 1, 2)
            elif n == len(steps):
                break
            else:
                n = min(2 * n, len(steps))
        return changed

    def lower_arguments(self) -> bool:
        """Each step's arguments, from the first step, to the smallest value that still breaks the invariant."""
        changed = False
        i = 0
        while i < len(self.best.steps):
            sid, item = self.best.steps[i]
            base = self.best
            accepted = self._first(
                replace(base, steps=base.steps[:i] + ((sid, lower),) + base.steps[i + 1 :])
                for lower in _lowerings(item)
            )
            if accepted is None:
                i += 1
            else:
                self.best, changed = accepted, True
        return changed

    def shrink_geometry(self) -> bool:
        """The geometry reductions, one at a time, until none is accepted."""
        changed = False
        while True:
            accepted = self._first(_smaller_geometries(self.best))
            if accepted is None:
                return changed
            self.best, changed = accepted, True

    def run(self) -> Trace:
        reductions: tuple[Callable[[], bool], ...] = (self.remove_operations, self.lower_arguments,
                                                      self.shrink_geometry)
        while True:
            changed = False
            for reduce in reductions:
                changed |= reduce()
            if not changed:
                break
        ops, _ = _concrete(self.variant, self.best)
        return Trace(self.variant, self.best.geometry, self.best.init, ops, self.name)


def _powers_below(n: int, least: int = 1) -> list[int]:
    out, p = [], least
    while p < n:
        out.append(p)
        p *= 2
    return out


def _lowerings(item: Item) -> Iterator[Item]:
    """Every single-argument lowering of one step, in the docstring's order."""
    if isinstance(item, Alloc):
        for bits in range(1, item.bits):
            yield replace(item, bits=bits)
        for align in _powers_below(item.align):
            yield replace(item, align=align)
        if item.pop_only:
            yield replace(item, pop_only=False)
    elif isinstance(item, (Populate, Depopulate)):
        s, e = item.page_start, item.page_end
        for width in range(1, e - s):
            for start in range(s, e - width + 1):
                yield replace(item, page_start=start, page_end=start + width)


def _clip_pages(steps: tuple[Step, ...], nr_pages: int) -> tuple[Step, ...]:
    out: list[Step] = []
    for sid, item in steps:
        if isinstance(item, (Populate, Depopulate)):
            if item.page_start >= nr_pages:
                continue
            item = replace(item, page_end=min(item.page_end, nr_pages))
        out.append((sid, item))
    return tuple(out)


def _rescaled(steps: tuple[Step, ...], old: int, new: int, scale: bool) -> tuple[Step, ...]:
    """Allocs for a block of ``new`` bits instead of ``old``: alignments clipped, sizes scaled if ``scale``."""
    out: list[Step] = []
    for sid, item in steps:
        if isinstance(item, Alloc):
            bits, align = item.bits, item.align
            if scale:
                bits, align = max(1, -(-bits * new // old)), max(1, align * new // old)
            item = replace(item, bits=bits, align=min(align, new))
        out.append((sid, item))
    return tuple(out)


def _smaller_geometries(c: Candidate) -> Iterator[Candidate]:
    """Every single geometry reduction of the docstring, in its order."""
    g = c.geometry
    if isinstance(c.init, FirstChunkInit):
        yield from _smaller_layouts(c, c.init)
        return
    for pages in range(1, g.nr_pages):
        yield Candidate(Geometry(g.block_bits, pages, tuple(p for p in g.populated if p < pages)), c.init,
                        _clip_pages(c.steps, pages))
    for bits in _powers_below(g.block_bits, MIN_BLOCK_BITS):
        for scale in (False, True):
            yield Candidate(Geometry(bits, g.nr_pages, g.populated), c.init,
                            _rescaled(c.steps, g.block_bits, bits, scale))
    for page in g.populated:
        yield Candidate(Geometry(g.block_bits, g.nr_pages, tuple(p for p in g.populated if p != page)),
                        c.init, c.steps)


def _smaller_layouts(c: Candidate, init: FirstChunkInit) -> Iterator[Candidate]:
    g = c.geometry
    page = g.page_size
    for bits in _powers_below(g.block_bits, MIN_BLOCK_BITS):
        sizes = [-(-size * bits // g.block_bits) for size in (init.static_size, init.reserved_size, init.dyn_size)]
        for scale in (False, True):
            yield Candidate(Geometry(bits, 1, (0,)), FirstChunkInit(*sizes),
                            _rescaled(c.steps, g.block_bits, bits, scale))
    for dyn in range(page, init.dyn_size, page):
        yield replace(c, init=replace(init, dyn_size=dyn))
    if init.reserved_size:
        for reserved in [0, *range(init.reserved_size % page or page, init.reserved_size, page)]:
            yield replace(c, init=replace(init, reserved_size=reserved))


def minimize(trace: Trace) -> Trace:
    """A 1-minimal trace breaking the same invariant as ``trace`` (see the module docstring for the order).

    Raises NotACounterexample when the replay does not break it (or, with no
    ``violates``, breaks nothing); OpError, LayoutError or UnknownInvariant
    when the input itself is not a valid trace.
    """
    name = violated_invariant(trace)
    if name is None:
        raise NotACounterexample("the replay violates no invariant: nothing to minimise")
    return Minimizer(trace, name).run()

