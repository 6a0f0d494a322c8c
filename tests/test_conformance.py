"""Conformance: every encoded function of pcpuverify/symbolic/encode.py, evaluated on concrete states, equals model/.

DESIGN.md ("Proofs"): "on states that satisfy the invariants, the encoded
transition evaluated concretely must equal what ``model/`` computes.  A proof
of an encoding that disagrees with the reference proves nothing."

States come from two Hypothesis strategies, both kept to states on which
every state invariant holds (``invariants.check.check_state``):

* ``walk`` -- a seeded sequence of ``model.random_ops.random_op`` applied to a
  new chunk with a drawn set of populated pages.  A step that writes outside
  an array (the state after it is undefined) or breaks a state invariant
  (the seed's code breaks several, mostly ``nr-empty-pop-pages-matches-
  bitmap``; states past such a step are not ones the proofs assume) is
  dropped and the walk goes on from the state before it, so every op kept
  is one a caller issues in a state the invariants accept.
* ``direct`` -- disjoint allocations and a populated page subset written into
  a fresh chunk's ``alloc_map``/``bound_map``/ghost, with every hint computed
  as the code computes it fresh (``pcpu_block_refresh_hint`` per block,
  ``pcpu_chunk_update_hint``, ``pcpu_chunk_relocate``).  ``test_states_satisfy_
  invariants`` holds the generators to the invariants.

Each ported function is called with the arguments its C callers pass, in the
state its caller leaves (e.g. ``pcpu_block_update_hint_alloc`` right after
``pcpu_alloc_area`` set the bits), on the model (a copy of the state) and as
its encoding builder, built once on a symbolic chunk and symbolic arguments
as the proofs build it and evaluated on the state's values (``encoded``);
every state field
(``model_fields`` vs ``evaluate``), the return value and the out-of-bounds
flags must agree.  After an out-of-bounds write the state is undefined and
only the flags are compared.  Whole operations go through ``compare_step``.

Everything runs for the three variants and the default geometry matrix, with
``derandomize=True`` so CI sees the same examples every run; the budget
(``EXAMPLES``) keeps this file to about a minute on two cores (the fast loop
runs the part ``FAST`` names).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import z3
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from pcpuverify.invariants.check import check_state
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, Free, Op, Populate
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import Reference
from pcpuverify.model.state import BITMAP_FIELDS, DUMP_FIELDS, dump_chunk
from pcpuverify.proofs.evaluator import Packed
from pcpuverify.proofs.conformance import (
    _value,
    compare_step,
    evaluate,
    model_fields,
    symbolic_of,
)
from pcpuverify.symbolic.bv import I
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.state import (
    BLOCK_FIELDS,
    CHUNK_FIELDS,
    GHOST_FIELDS,
    SymBlock,
    SymChunk,
    flat_names,
    vector_widths,
)
from pcpuverify.symbolic.subjects import subject

VARIANTS = ("v1", "v1-patch09", "fixed")
GEOMETRIES = ("1x8", "2x8", "3x8", "2x16")  # the default matrix of `pcpu-verify prove`
# The fast loop (`-m "not slow"`) takes 1x8 from both sources and 2x8 from walks; the full run takes everything.
FAST = {("1x8", "walk"), ("1x8", "direct"), ("2x8", "walk")}
SOURCES = ("walk", "direct")

# Hypothesis examples per (function, variant, geometry, source): more where an
# encoded step is cheap.  Each encoded function (``encoded``) and each whole
# operation (``compare_step``) is compiled once per variant and chunk size and
# evaluated by substitution, a few ms an example, growing with the blocks.
EXAMPLES = {"1x8": 30, "2x8": 20, "3x8": 12, "2x16": 15}
SCALE = float(os.environ.get("PCPU_CONFORMANCE_SCALE", "1"))  # e.g. 10 for a longer local hunt
WALK_STEPS = 32

# -- states --------------------------------------------------------------------------------------


class State:
    """A concrete state satisfying the invariants, and how to rebuild it (shown when a test fails)."""

    def __init__(self, ref: Reference, origin: str) -> None:
        self.ref = ref
        self.origin = origin

    def __repr__(self) -> str:
        return f"State({self.origin})\n{describe(self.ref)}"


def describe(ref: Reference) -> str:
    """The dynamic chunk's fields, bitmaps drawn bit 0 first and split into blocks."""
    chunk, B = ref.chunks["dynamic"], ref.geometry.block_bits

    def bits(value: int, n: int, group: int) -> str:
        s = "".join(str((value >> i) & 1) for i in range(n))
        return " ".join(s[i : i + group] for i in range(0, n, group))

    n = ref.geometry.nr_bits
    lines = [
        f"  variant {ref.variant}, geometry {ref.geometry.name}",
        f"  alloc_map  {bits(chunk.alloc_map.value, n, B)}",
        f"  bound_map  {bits(chunk.bound_map.value, n + 1, B)}",
        f"  populated  {bits(chunk.populated.value, chunk.nr_pages, chunk.nr_pages)}",
        f"  allocations {dict(sorted(chunk.allocations.items()))}",
    ]
    for i, b in enumerate(chunk.md_blocks):
        lines.append(
            f"  md_blocks[{i}] contig_hint={b.contig_hint} contig_hint_start={b.contig_hint_start}"
            f" left_free={b.left_free} right_free={b.right_free} first_free={b.first_free}"
        )
    lines.append(
        f"  free_bits={chunk.free_bits} contig_hint={chunk.contig_hint}"
        f" contig_hint_start={chunk.contig_hint_start} first_free_block={chunk.first_free_block}"
        f" nr_populated={chunk.nr_populated} nr_empty_pop_pages={chunk.nr_empty_pop_pages}"
        f" slot={chunk.slot} pcpu_nr_empty_pop_pages={ref.alloc.pcpu_nr_empty_pop_pages}"
    )
    return "\n".join(lines)


@st.composite
def walk_states(draw: st.DrawFn, variant: str, spec: str) -> State:
    """A random walk of ``random_op`` from a new chunk through states the invariants accept."""
    g = Geometry.parse(spec)
    populated = tuple(sorted(draw(st.sets(st.integers(0, g.nr_pages - 1)), label="populated")))
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    length = draw(st.integers(0, WALK_STEPS), label="length")
    geometry = Geometry(g.block_bits, g.nr_pages, populated)
    rng = random.Random(seed)
    ref = Reference(variant, geometry, ChunkInit())
    ops: list[Op] = []
    for _ in range(length):
        op = random_op(ref, rng)
        nxt = ref.copy()
        result = nxt.apply(op)
        if any(a.write for a in result.accesses) or check_state(nxt):
            continue  # the state after it is undefined or breaks an invariant: the walk goes on without it
        ref = nxt
        ops.append(op)
    origin = (
        f"walk: Reference({variant!r}, Geometry({g.block_bits}, {g.nr_pages}, {populated}), ChunkInit())"
        f" then apply each of {ops}"
    )
    return State(ref, origin)


def build_state(variant: str, geometry: Geometry, allocations: dict[int, int], stale_bounds: int = 0) -> Reference:
    """A fresh chunk holding ``allocations``, its hints computed as the code computes them from scratch.

    ``stale_bounds`` are extra ``bound_map`` bits outside the allocations'
    interiors: ``pcpu_free_area`` never clears the bits of a freed area.
    """
    ref = Reference(variant, geometry, ChunkInit())
    alloc, chunk = ref.alloc, ref.chunks["dynamic"]
    B, N, n = geometry.block_bits, geometry.nr_pages, geometry.nr_bits
    amap = bmap = 0
    for start, size in allocations.items():
        amap |= ((1 << size) - 1) << start
        bmap |= (1 << start) | (1 << (start + size))
    interior = 0
    for start, size in allocations.items():
        interior |= ((1 << (size - 1)) - 1) << (start + 1)
    chunk.alloc_map.value = amap
    chunk.bound_map.value = bmap | (stale_bounds & ~interior)
    chunk.allocations = dict(allocations)
    chunk.free_bits = n - bin(amap).count("1")
    full = (1 << B) - 1
    for i, block in enumerate(chunk.md_blocks):
        seg = (amap >> (i * B)) & full
        block.first_free = next((k for k in range(B) if not (seg >> k) & 1), B)
        alloc.pcpu_block_refresh_hint(chunk, i)
    chunk.first_free_block = next((i for i in range(N) if (amap >> (i * B)) & full != full), N)
    oslot = chunk.slot
    alloc.pcpu_chunk_update_hint(chunk)  # also sets nr_empty_pop_pages and the global by its delta
    alloc.pcpu_chunk_relocate(chunk, oslot)
    assert not chunk.log, chunk.log
    return ref


@st.composite
def direct_states(draw: st.DrawFn, variant: str, spec: str) -> State:
    """Disjoint allocations (the chunk cut into segments, each allocated or free) and populated pages."""
    g = Geometry.parse(spec)
    B, N, n = g.block_bits, g.nr_pages, g.nr_bits
    cuts = sorted(draw(st.sets(st.integers(1, n - 1)), label="cuts"))
    bounds = [0, *cuts, n]
    segments = list(zip(bounds, bounds[1:]))
    used = draw(st.lists(st.booleans(), min_size=len(segments), max_size=len(segments)), label="allocated")
    allocations = {s: e - s for (s, e), u in zip(segments, used) if u}
    # Pages holding an allocation are populated (allocations-on-populated-pages); others may be.
    pages = set(draw(st.sets(st.integers(0, N - 1)), label="more populated pages"))
    pages |= {p for s, size in allocations.items() for p in range(s // B, (s + size - 1) // B + 1)}
    stale = draw(st.integers(0, (1 << (n + 1)) - 1), label="stale bound_map bits")
    geometry = Geometry(B, N, tuple(sorted(pages)))
    ref = build_state(variant, geometry, allocations, stale)
    origin = (
        f"direct: build_state({variant!r}, Geometry({B}, {N}, {geometry.populated}),"
        f" {dict(sorted(allocations.items()))}, stale_bounds={stale:#x})"
    )
    return State(ref, origin)


def states(source: str, variant: str, spec: str) -> st.SearchStrategy[State]:
    return walk_states(variant, spec) if source == "walk" else direct_states(variant, spec)


def states_with_allocations(source: str, variant: str, spec: str) -> st.SearchStrategy[State]:
    """States with a live allocation: what a free needs."""
    return states(source, variant, spec).filter(lambda s: bool(s.ref.chunks["dynamic"].allocations))


def hypothesis(spec: str, weight: float = 1.0) -> Callable:
    """``@settings`` for one test: the geometry's budget, deterministic, no deadline (Z3 is slow to warm)."""
    return settings(
        max_examples=max(3, int(EXAMPLES[spec] * weight * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def tiered(spec: str, source: str) -> tuple[pytest.MarkDecorator, ...]:
    """No mark on the fast loop's part of the matrix, ``slow`` on the rest: all of it was half the loop's time."""
    return () if (spec, source) in FAST else (pytest.mark.slow,)


matrix = pytest.mark.parametrize(
    "variant,spec,source",
    [pytest.param(v, g, s, marks=tiered(g, s)) for v in VARIANTS for g in GEOMETRIES for s in SOURCES],
)


# -- comparing ------------------------------------------------------------------------------------


def mark(ref: Reference) -> int:
    return len(ref.chunks["dynamic"].log)


def compare(
    model: Reference,
    since: int,
    post: SymChunk | None,
    returns: dict[str, tuple[object, object]] | None = None,
    oob: z3.BoolRef | None = None,
    returns_survive_write: bool = False,
) -> None:
    """Assert the encoding's ``post`` (and returns, and oob flags) equal the model's after one call.

    ``model`` is the reference after the call and ``since`` the length of its
    access log before it; ``oob`` is the encoding's flag for builders that
    return it instead of a chunk.
    """
    accesses = model.chunks["dynamic"].log[since:]
    m_oob, m_write = bool(accesses), any(a.write for a in accesses)
    event("out-of-bounds write" if m_write else "out-of-bounds read" if m_oob else "in bounds")
    for name, (expected, _) in (returns or {}).items():
        event(f"{name}: {expected if isinstance(expected, bool) or expected in (None, -1) else '>= 0'}")
    problems = []
    seen = [a.describe() for a in accesses]
    assert (post is None) != (oob is None), "the encoding reports oob in its post state or separately"
    sym_oob = _value(post.oob if post is not None else oob)
    if sym_oob != m_oob:
        problems.append(f"oob: model {m_oob} {seen}, encoding {sym_oob}")
    if post is not None and _value(post.oob_write) != m_write:
        problems.append(f"oob_write: model {m_write} {seen}, encoding {_value(post.oob_write)}")
    if not m_write or returns_survive_write:
        for name, (expected, got) in (returns or {}).items():
            if expected != got:
                problems.append(f"{name}: model {expected}, encoding {got}")
    if post is not None and not m_write:
        expected, got = model_fields(model), evaluate(post)
        problems += [f"{f}: model {expected[f]}, encoding {got[f]}" for f in expected if expected[f] != got[f]]
    assert not problems, "encoding disagrees with model/:\n  " + "\n  ".join(problems)


def _leaves(value: object) -> list[z3.ExprRef]:
    """The terms of an encoded function's argument or result (chunks, blocks, tuples), in field order."""
    if isinstance(value, z3.ExprRef):
        return [value]
    if isinstance(value, tuple):
        return [t for v in value for t in _leaves(v)]
    if dataclasses.is_dataclass(value):
        return [t for f in dataclasses.fields(value) for t in _leaves(getattr(value, f.name))]
    return []  # Python constants


def _rebuilt(value: object, constants: Iterator[z3.ExprRef]) -> object:
    """``value`` with each of its terms (in ``_leaves`` order) replaced by the next of ``constants``."""
    if isinstance(value, z3.ExprRef):
        return next(constants)
    if isinstance(value, tuple):
        return tuple(_rebuilt(v, constants) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _rebuilt(getattr(value, f.name), constants)
                                             for f in dataclasses.fields(value) if f.init})
    return value


@dataclasses.dataclass(frozen=True)
class Compiled:
    """One encoded function on a symbolic chunk and symbolic arguments, its result's terms packed together."""

    pre: object  # the symbolic chunk
    args: tuple[z3.ExprRef, ...]
    result: object
    packed: Packed  # the result's terms, then the flags of the loops it unrolled

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def of(encoding: type[SymPercpu], block_bits: int, nr_pages: int, function: str, widths: tuple[int, ...]
           ) -> Compiled:
        enc = encoding(Geometry(block_bits, nr_pages, tuple(range(nr_pages))))
        pre = enc.fresh_chunk("pre")
        args = tuple(z3.Bool(f"arg{i}") if w == 0 else z3.BitVec(f"arg{i}", w) for i, w in enumerate(widths))
        result = getattr(enc, function)(pre, *args)
        terms = [*_leaves(result), *enc.unrolled]
        names = tuple(str(i) for i in range(len(terms)))
        return Compiled(pre, args, result, Packed.of(dict(zip(names, terms)), unsigned=frozenset(names)))


def encoded(ref: Reference, function: str, pre: object, *args: z3.ExprRef) -> tuple[Any, bool]:
    """``function`` of ``ref``'s encoding on ``pre`` (a chunk of constants) and constant ``args``: its result, as
    constants of the same shape, and whether every loop it unrolled finished.

    The function is built once per encoding, chunk size and argument sorts on symbolic values, as the proofs
    build it, and evaluated here by substitution: building it on the constants again cost 5-80 ms a call.
    """
    g = ref.geometry
    compiled = Compiled.of(subject(ref.variant).require_encoding(), g.block_bits, g.nr_pages, function,
                           tuple(0 if z3.is_bool(a) else a.size() for a in args))
    pairs = [*zip(_leaves(compiled.pre), _leaves(pre), strict=True), *zip(compiled.args, args, strict=True)]
    values = compiled.packed.at(pairs)
    constants = [z3.BoolVal(bool(values[name])) if width == 0 else z3.BitVecVal(values[name], width)
                 for name, width in zip(compiled.packed.names, compiled.packed.widths)]
    result_size = len(_leaves(compiled.result))
    unrolled = all(z3.is_true(c) for c in constants[result_size:])
    return _rebuilt(compiled.result, iter(constants[:result_size])), unrolled


def free_range(data: st.DataObject, ref: Reference, overrun: bool) -> tuple[int, int] | None:
    """A free ``[bit_off, bit_off + bit_size)`` as ``bitmap_find_next_zero_area`` can return it, or None.

    With ``overrun`` (v1's unclipped search window) a run reaching the end of
    the chunk may continue past it, as bits past the bitmap read as free.
    """
    chunk, g = ref.chunks["dynamic"], ref.geometry
    amap, n = chunk.alloc_map.value, g.nr_bits
    free = [b for b in range(n) if not (amap >> b) & 1]
    if not free:
        return None
    bit_off = data.draw(st.sampled_from(free), label="bit_off")
    end = next((b for b in range(bit_off, n) if (amap >> b) & 1), n)
    longest = min(end - bit_off + g.block_bits, n) if overrun and end == n else end - bit_off
    bit_size = data.draw(st.integers(1, longest), label="bit_size")
    return bit_off, bit_size


def prepare_alloc(ref: Reference, bit_off: int, bit_size: int) -> None:
    """What ``pcpu_alloc_area`` does before ``pcpu_block_update_hint_alloc``."""
    chunk = ref.chunks["dynamic"]
    chunk.alloc_map.bitmap_set(bit_off, bit_size)
    chunk.bound_map.set_bit(bit_off)
    chunk.bound_map.bitmap_clear(bit_off + 1, bit_size - 1)
    chunk.bound_map.set_bit(bit_off + bit_size)
    chunk.free_bits -= bit_size


def prepare_free(ref: Reference, bit_off: int) -> int:
    """What ``pcpu_free_area`` does before ``pcpu_block_update_hint_free``; returns ``bit_size``."""
    alloc, chunk = ref.alloc, ref.chunks["dynamic"]
    end = chunk.bound_map.find_next_bit(alloc.pcpu_nr_pages_to_bits(chunk), bit_off + 1)
    bit_size = end - bit_off
    chunk.alloc_map.bitmap_clear(bit_off, bit_size)
    chunk.free_bits += bit_size
    index = alloc.pcpu_off_to_block_index(bit_off)
    block = chunk.md_blocks[index]
    block.first_free = min(block.first_free, bit_off % alloc.PCPU_BITMAP_BLOCK_SIZE)
    chunk.first_free_block = min(chunk.first_free_block, index)
    return bit_size


def aligns(ref: Reference) -> st.SearchStrategy[int]:
    B = ref.geometry.block_bits
    return st.sampled_from([1 << k for k in range(B.bit_length()) if 1 << k <= B])


def sizes(ref: Reference) -> st.SearchStrategy[int]:
    """Request sizes: half of them within the chunk's contig hint (``pcpu_alloc`` skips a chunk otherwise)."""
    chunk = ref.chunks["dynamic"]
    return st.one_of(st.integers(1, max(1, chunk.contig_hint)), st.integers(1, ref.geometry.nr_bits))


def empty_page_ranges(ref: Reference) -> list[tuple[int, int]]:
    """``[page_start, page_end)`` holding no allocated bit: what the balance work may depopulate."""
    chunk, g = ref.chunks["dynamic"], ref.geometry
    B, N = g.block_bits, g.nr_pages
    empty = [not (chunk.alloc_map.value >> (p * B)) & ((1 << B) - 1) for p in range(N)]
    return [(s, e) for s in range(N) for e in range(s + 1, N + 1) if all(empty[s:e])]


# -- the generator is honest ---------------------------------------------------------------------


@matrix
def test_states_satisfy_invariants(variant: str, spec: str, source: str) -> None:
    """Every state the tests start from satisfies every state invariant (walks keep only such steps)."""

    @hypothesis(spec, weight=8 if source == "direct" else 2)
    @given(state=states(source, variant, spec))
    def run(state: State) -> None:
        violations = check_state(state.ref)
        assert not violations, "\n".join(v.describe() for v in violations)

    run()


# -- one test per ported function ----------------------------------------------------------------


@matrix
def test_pcpu_block_refresh_hint(variant: str, spec: str, source: str) -> None:
    """Any block, scanning from its ``first_free`` or from any lower start (``first_free`` is a lower bound)."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        chunk = ref.chunks["dynamic"]
        index = data.draw(st.integers(0, ref.geometry.nr_pages - 1), label="index")
        block = chunk.md_blocks[index]
        block.first_free = data.draw(st.integers(0, block.first_free), label="first_free")
        pre = symbolic_of(ref)
        since = mark(ref)
        ref.alloc.pcpu_block_refresh_hint(chunk, index)
        compare(ref, since, encoded(ref, "pcpu_block_refresh_hint", pre, I(index))[0])

    run()


@matrix
def test_pcpu_block_update_hint_alloc(variant: str, spec: str, source: str) -> None:
    """Right after ``pcpu_alloc_area`` set the bits of a free range (past the chunk only for v1)."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        picked = free_range(data, ref, overrun=variant == "v1")
        assume(picked is not None)
        bit_off, bit_size = picked
        prepare_alloc(ref, bit_off, bit_size)
        pre = symbolic_of(ref)
        since = mark(ref)
        update = ref.alloc.pcpu_block_update_hint_alloc(ref.chunks["dynamic"], bit_off, bit_size)
        (post, sym_update), _ = encoded(ref, "pcpu_block_update_hint_alloc", pre, I(bit_off), I(bit_size))
        compare(ref, since, post, {"update_chunk": (update, _value(sym_update))})

    run()


@matrix
def test_pcpu_block_update_hint_free(variant: str, spec: str, source: str) -> None:
    """Right after ``pcpu_free_area`` cleared a live allocation and lowered the first-free hints."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states_with_allocations(source, variant, spec), label="state")
        ref = state.ref.copy()
        bit_off = data.draw(st.sampled_from(sorted(ref.chunks["dynamic"].allocations)), label="bit_off")
        bit_size = prepare_free(ref, bit_off)
        pre = symbolic_of(ref)
        since = mark(ref)
        update = ref.alloc.pcpu_block_update_hint_free(ref.chunks["dynamic"], bit_off, bit_size)
        (post, sym_update), _ = encoded(ref, "pcpu_block_update_hint_free", pre, I(bit_off), I(bit_size))
        compare(ref, since, post, {"update_chunk": (update, _value(sym_update))})

    run()


@matrix
def test_pcpu_chunk_update_hint(variant: str, spec: str, source: str) -> None:
    """On the state itself, and where its callers run it: after a block update of an alloc or a free."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        chunk = ref.chunks["dynamic"]
        context = data.draw(st.sampled_from(["state", "after alloc", "after free"]), label="context")
        clean = mark(ref)
        if context == "after alloc":
            picked = free_range(data, ref, overrun=False)
            if picked is not None:
                prepare_alloc(ref, *picked)
                ref.alloc.pcpu_block_update_hint_alloc(chunk, *picked)
        elif context == "after free" and chunk.allocations:
            bit_off = data.draw(st.sampled_from(sorted(chunk.allocations)), label="bit_off")
            bit_size = prepare_free(ref, bit_off)
            ref.alloc.pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        assert mark(ref) == clean  # in-bounds ranges: the state before the refresh is defined
        pre = symbolic_of(ref)
        since = mark(ref)
        ref.alloc.pcpu_chunk_update_hint(chunk)
        compare(ref, since, encoded(ref, "pcpu_chunk_update_hint", pre)[0])

    run()


@matrix
def test_pcpu_find_block_fit(variant: str, spec: str, source: str) -> None:
    """The offset ``pcpu_alloc`` starts its search at (or -1) for a request size, alignment and atomicity."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        bits = data.draw(sizes(ref), label="bit_size")
        align = data.draw(aligns(ref), label="align")
        pop_only = data.draw(st.booleans(), label="pop_only")
        pre = symbolic_of(ref)
        since = mark(ref)
        off = ref.alloc.pcpu_find_block_fit(ref.chunks["dynamic"], bits, align, pop_only)
        (sym_off, oob), unrolled = encoded(ref, "pcpu_find_block_fit", pre, I(bits), I(align), z3.BoolVal(pop_only))
        assert unrolled, "the unrolled loop did not finish"
        compare(ref, since, None, {"offset": (off, _value(sym_off))}, oob=oob)

    run()


@matrix
def test_pcpu_is_populated(variant: str, spec: str, source: str) -> None:
    """``(populated, next_index)`` for what ``check_populated`` passes; ``next_index`` only when not populated."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        g = ref.geometry
        index = data.draw(st.integers(0, g.nr_pages - 1), label="index")
        block_off = data.draw(st.integers(0, g.block_bits - 1), label="block_off")
        bit_size = data.draw(st.integers(1, g.nr_bits), label="bit_size")
        pre = symbolic_of(ref)
        since = mark(ref)
        populated, next_index = ref.alloc.pcpu_is_populated(ref.chunks["dynamic"], index, block_off, bit_size)
        (sym_pop, sym_next, oob), _ = encoded(ref, "pcpu_is_populated", pre, I(index), I(block_off), I(bit_size))
        returns: dict[str, tuple[object, object]] = {"populated": (populated, _value(sym_pop))}
        if not populated:
            returns["next_index"] = (next_index, _value(sym_next))
        compare(ref, since, None, returns, oob=oob)

    run()


def _fit_start(data: st.DataObject, source: str, variant: str, spec: str
               ) -> tuple[Reference, PcpuChunk, int, int, int]:
    """A state, a request, and the start ``pcpu_find_block_fit`` returns for it (as ``pcpu_alloc`` calls them)."""
    state = data.draw(states(source, variant, spec), label="state")
    ref = state.ref.copy()
    chunk = ref.chunks["dynamic"]
    bits = data.draw(sizes(ref), label="bit_size")
    align = data.draw(aligns(ref), label="align")
    start = ref.alloc.pcpu_find_block_fit(chunk, bits, align, data.draw(st.booleans(), label="pop_only"))
    assume(start >= 0)
    return ref, chunk, bits, align, start


@matrix
def test_pcpu_alloc_area_search(variant: str, spec: str, source: str) -> None:
    """The search step of ``pcpu_alloc_area`` (PATCH 10 bounds its window) from a ``pcpu_find_block_fit`` start."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        ref, chunk, bits, align, start = _fit_start(data, source, variant, spec)
        pre = symbolic_of(ref)
        since = mark(ref)
        off = ref.alloc.pcpu_alloc_area_search(chunk, bits, align - 1, start)
        (found, sym_off, oob), _ = encoded(ref, "pcpu_alloc_area_search", pre, I(bits), I(align), I(start))
        sym = _value(sym_off) if _value(found) else -1
        compare(ref, since, None, {"bit_off": (off, sym)}, oob=oob)

    run()


@matrix
def test_pcpu_alloc_area(variant: str, spec: str, source: str) -> None:
    """``pcpu_alloc_area`` from the start ``pcpu_find_block_fit`` found: byte offset vs (found, bit_off)."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        ref, chunk, bits, align, start = _fit_start(data, source, variant, spec)
        pre = symbolic_of(ref)
        since = mark(ref)
        off = ref.alloc.pcpu_alloc_area(chunk, bits, align, start)
        (post, found, bit_off), _ = encoded(ref, "pcpu_alloc_area", pre, I(bits), I(align), I(start))
        sym = _value(bit_off) * PCPU_MIN_ALLOC_SIZE if _value(found) else -1
        # the offset is found before anything is written: compared even after a stray write
        compare(ref, since, post, {"byte offset": (off, sym)}, returns_survive_write=True)

    run()


@matrix
def test_pcpu_alloc_populate(variant: str, spec: str, source: str) -> None:
    """The ``if (!is_atomic)`` block of ``pcpu_alloc``, right after ``pcpu_alloc_area`` handed out ``off``."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        chunk = ref.chunks["dynamic"]
        bits = data.draw(sizes(ref), label="bit_size")
        align = data.draw(aligns(ref), label="align")
        start = ref.alloc.pcpu_find_block_fit(chunk, bits, align, False)
        assume(start >= 0)
        off = ref.alloc.pcpu_alloc_area(chunk, bits, align, start)
        assume(off >= 0)
        pre = symbolic_of(ref)
        since = mark(ref)
        ref.alloc.pcpu_alloc_populate(chunk, off, bits * PCPU_MIN_ALLOC_SIZE)
        compare(ref, since, encoded(ref, "pcpu_alloc_populate", pre, I(off), I(bits * PCPU_MIN_ALLOC_SIZE))[0])

    run()


@matrix
def test_pcpu_free_area(variant: str, spec: str, source: str) -> None:
    """``free_percpu`` of a live allocation: ``pcpu_free_area(chunk, bit_off * PCPU_MIN_ALLOC_SIZE)``."""

    @hypothesis(spec)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states_with_allocations(source, variant, spec), label="state")
        ref = state.ref.copy()
        chunk = ref.chunks["dynamic"]
        bit_off = data.draw(st.sampled_from(sorted(chunk.allocations)), label="bit_off")
        pre = symbolic_of(ref)
        since = mark(ref)
        ref.alloc.pcpu_free_area(chunk, bit_off * PCPU_MIN_ALLOC_SIZE)
        compare(ref, since, encoded(ref, "pcpu_free_area", pre, I(bit_off))[0])

    run()


@matrix
def test_pcpu_chunk_populated(variant: str, spec: str, source: str) -> None:
    """``populate_range``: ``pcpu_chunk_populated`` on each unpopulated region of a page range."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        chunk, N = ref.chunks["dynamic"], ref.geometry.nr_pages
        page_start = data.draw(st.integers(0, N - 1), label="page_start")
        page_end = data.draw(st.integers(page_start + 1, N), label="page_end")
        pre = symbolic_of(ref)
        since = mark(ref)
        for rs, re in ref.alloc.pcpu_unpop_regions(chunk, page_start, page_end):
            ref.alloc.pcpu_chunk_populated(chunk, rs, re)
        compare(ref, since, encoded(ref, "populate_range", pre, I(page_start), I(page_end))[0])

    run()


@matrix
def test_pcpu_chunk_depopulated(variant: str, spec: str, source: str) -> None:
    """``depopulate_range``: ``pcpu_chunk_depopulated`` on each populated region of a range of empty pages."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        with_empty_pages = states(source, variant, spec).filter(lambda s: bool(empty_page_ranges(s.ref)))
        state = data.draw(with_empty_pages, label="state")
        ref = state.ref.copy()
        chunk = ref.chunks["dynamic"]
        page_start, page_end = data.draw(st.sampled_from(empty_page_ranges(ref)), label="pages")
        pre = symbolic_of(ref)
        since = mark(ref)
        for rs, re in ref.alloc.pcpu_pop_regions(chunk, page_start, page_end):
            ref.alloc.pcpu_chunk_depopulated(chunk, rs, re)
        compare(ref, since, encoded(ref, "depopulate_range", pre, I(page_start), I(page_end))[0])

    run()


@matrix
def test_pcpu_chunk_relocate(variant: str, spec: str, source: str) -> None:
    """``pcpu_chunk_slot``, then ``pcpu_chunk_relocate`` after the free counts changed (as by an alloc or free)."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        ref = state.ref.copy()
        chunk, n = ref.chunks["dynamic"], ref.geometry.nr_bits
        oslot = ref.alloc.pcpu_chunk_slot(chunk)
        sym_oslot = _value(encoded(ref, "pcpu_chunk_slot", symbolic_of(ref))[0])
        chunk.free_bits = data.draw(st.integers(0, n), label="free_bits")
        chunk.contig_hint = data.draw(st.integers(0, chunk.free_bits), label="contig_hint")
        pre = symbolic_of(ref)
        since = mark(ref)
        ref.alloc.pcpu_chunk_relocate(chunk, oslot)
        compare(ref, since, encoded(ref, "pcpu_chunk_relocate", pre, I(oslot))[0], {"oslot": (oslot, sym_oslot)})

    run()


# -- whole operations ----------------------------------------------------------------------------


@st.composite
def operations(draw: st.DrawFn, ref: Reference) -> Op:
    """An operation a caller issues in ``ref``: ``random_op``'s choice, or one drawn field by field."""
    chunk, N = ref.chunks["dynamic"], ref.geometry.nr_pages
    kinds = ["random_op", "alloc", "populate"]
    if chunk.allocations:
        kinds.append("free")
    if empty_page_ranges(ref):
        kinds.append("depopulate")
    kind = draw(st.sampled_from(kinds), label="kind")
    if kind == "random_op":
        return random_op(ref, random.Random(draw(st.integers(0, 2**32 - 1), label="op seed")))
    if kind == "alloc":
        return Alloc(draw(sizes(ref)), draw(aligns(ref)), draw(st.booleans()))
    if kind == "free":
        return Free(draw(st.sampled_from(sorted(chunk.allocations))))
    if kind == "populate":
        page_start = draw(st.integers(0, N - 1))
        return Populate(page_start, draw(st.integers(page_start + 1, N)))
    return Depopulate(*draw(st.sampled_from(empty_page_ranges(ref))))


@matrix
def test_whole_operation(variant: str, spec: str, source: str) -> None:
    """``compare_step``: alloc, free, populate, depopulate as ``Reference.apply`` runs them."""

    @hypothesis(spec, weight=1.5)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        state = data.draw(states(source, variant, spec), label="state")
        op = data.draw(operations(state.ref), label="op")
        mismatches = compare_step(state.ref.copy(), op)
        assert not mismatches, "\n".join(m.describe() for m in mismatches)

    run()


# -- a wrong encoding is caught ------------------------------------------------------------------


class DropsRightFree(SymPercpu):
    """A mutant: ``pcpu_block_update_hint_free`` forgets to update the start block's ``right_free``."""

    def pcpu_block_update_hint_free(self, chunk: SymChunk, bit_off: z3.BitVecRef, bit_size: z3.BitVecRef
                                    ) -> tuple[SymChunk, z3.BoolRef]:
        post, update = super().pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        s_index = self.pcpu_off_to_block_index(bit_off)
        old, new = self.md(chunk, s_index), self.md(post, s_index)
        restored = SymBlock(**{**vars(new), "right_free": old.right_free})
        return self.put(post, s_index, restored), update


def test_wrong_encoding_is_caught() -> None:
    """Free the tail of a block: the block's right_free grows from 0 to 6; the mutant keeps 0."""
    g = Geometry.parse("1x8")
    ref = Reference("v1-patch09", g, ChunkInit())
    ref.apply(Alloc(2))  # bits [0, 2)
    ref.apply(Alloc(6))  # bits [2, 8)
    assert sorted(ref.chunks["dynamic"].allocations.items()) == [(0, 2), (2, 6)]
    assert compare_step(ref.copy(), Free(2)) == []
    mismatches = compare_step(ref.copy(), Free(2), encoding=DropsRightFree)
    assert [(m.field, m.model, m.encoding) for m in mismatches] == [("md_blocks[0].right_free", 6, 0)]


@pytest.mark.parametrize("spec", [pytest.param(g, marks=tiered(g, "direct")) for g in GEOMETRIES])
def test_wrong_encoding_is_caught_on_generated_states(spec: str) -> None:
    """The same mutant is caught by the conformance strategies, not only by a hand-picked free."""
    caught: list[str] = []

    @hypothesis(spec, weight=2)
    @given(state=states_with_allocations("direct", "v1-patch09", spec), data=st.data())
    def run(state: State, data: st.DataObject) -> None:
        bit_off = data.draw(st.sampled_from(sorted(state.ref.chunks["dynamic"].allocations)), label="bit_off")
        mismatches = compare_step(state.ref.copy(), Free(bit_off), encoding=DropsRightFree)
        caught.extend(m.field for m in mismatches if m.field.endswith(".right_free"))

    run()
    assert caught, "no free changed a right_free the mutant drops"


def test_symbolic_state_has_the_model_fields() -> None:
    """The field lists come from the model's dataclasses; the symbolic records must carry each of them."""
    assert [f.name for f in dataclasses.fields(SymBlock)] == list(BLOCK_FIELDS)
    assert set(CHUNK_FIELDS) <= {f.name for f in dataclasses.fields(SymChunk)}
    assert "first_free" in BLOCK_FIELDS and "first_free_block" in CHUNK_FIELDS
    assert set(vector_widths(Geometry.parse("2x8"))) == {*BITMAP_FIELDS, *GHOST_FIELDS}
    assert {*BITMAP_FIELDS, *CHUNK_FIELDS, *GHOST_FIELDS} <= {f.name for f in dataclasses.fields(SymChunk)}


@pytest.mark.parametrize("geometry", ["1x8", "3x4"])
def test_one_flat_schema_from_the_model_to_the_encoding_and_back(geometry: str) -> None:
    """Conformance flattens the model by ``flat_names``; ``constant_chunk`` and ``evaluate`` agree with it."""
    ref = Reference("v1", Geometry.parse(geometry), ChunkInit())
    ref.apply(Alloc(3, 1))
    values = model_fields(ref)
    assert list(values) == list(flat_names(ref.geometry))
    assert evaluate(symbolic_of(ref)) == values


def test_the_dump_keeps_its_published_order() -> None:
    """``replay --json`` and a CTI print the chunk's fields in these orders (derived from the dataclass)."""
    dump = dump_chunk(Reference("v1", Geometry.parse("1x8"), ChunkInit()).chunks["dynamic"])
    assert list(dump) == ["nr_pages", "alloc_map", "bound_map", "populated", "md_blocks", "free_bits",
                          "contig_hint", "contig_hint_start", "first_free_block", "nr_populated",
                          "nr_empty_pop_pages", "has_reserved", "immutable", "slot", "allocations"]
    assert list(DUMP_FIELDS) == list(dump)
    assert list(dump["md_blocks"][0]) == list(BLOCK_FIELDS)  # type: ignore[index]
