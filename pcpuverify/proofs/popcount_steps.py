"""``free-bits-count`` across an allocation or a free, in steps: no query holds both the transition and a popcount.

Asked whole, the invariant's consecution query (``free_bits == nr_bits - popcount(alloc_map)`` before, broken
after) bit-blasts the alloc (or free) transition and two popcounts of the whole bitmap together, and it was the
suite's slowest query from 64 bits on (``fixed``, Bitwuzla: 97 s at 2x32, unfinished after 37 minutes at 4x32;
docs/design.md, "Solvers").  Given to that query as extra assumptions, the facts below did not help (95 s at
2x32): the solver still bit-blasts everything at once.  So they replace it, as three kinds of query, each unsat:

1. **The shape**, under the query's own assumptions: the invariant held before, and the operation either left
   ``alloc_map`` and ``free_bits`` alone, or set (cleared) one range ``[off, off + size)`` of bits that were all
   free (allocated), with ``free_bits`` down (up) by ``size``.  No popcount: 2.5 to 3.9 s at 4x32, 9.7 s at 4x64.
2. **The lemmas**, once per width and process: a popcount of two disjoint bitmaps is the sum of theirs
   (``disjoint``), and a range's popcount is its length (``range_count``).  The first, asked at once, took 90 s at
   64 bits and 492 s at 128; it is proved instead by splitting the width where ``bv.popcount``'s adder tree does
   (the lemma at both parts assumed, which the solver joins through the tree: 0.8 s at 256 bits), down to 8 bits.
3. **The step**, over two fresh chunks: the shape and the lemmas' instances, the invariant before, and the
   invariant broken after (0.1 s at 4x32).

A model of the whole query would give a model of the step (its chunks' values), so with all three unsat the
whole query is unsat: a proof.  If any is not unsat (a shape the operation does not have, a solver that gives
up), the whole query is asked as before: these steps can prove a row, never refute one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import z3

from pcpuverify.invariants.base import Invariant
from pcpuverify.proofs.obligations import Transition
from pcpuverify.proofs.solver import Answer, SolverOptions, check_all
from pcpuverify.symbolic.bv import INT_W, Int, popcount, range_mask
from pcpuverify.symbolic.state import SymChunk

INVARIANT = "free-bits-count"
KINDS = ("alloc", "free")
DIRECT = 8  # widths up to this are proved at once; wider ones split
# narrower chunks ask the whole query, a second or less there.  At 32 bits (fixed, 2x16) the steps took 0.3 s and
# 0.2 s against 7.8 s and 6.4 s for the whole alloc and free queries with Z3, 0.6 s against 5.6 s for alloc with
# Bitwuzla; the gate's 1x8 is left as it was
FROM_BITS = 32


@dataclass(frozen=True)
class Lemmas:
    """Whether both lemmas are proved at one width (every query unsat), in how long, and each query's answer."""

    proved: bool
    seconds: float
    answers: tuple[Answer, ...]


_proved: dict[tuple[int, SolverOptions], Lemmas] = {}


def _split(n: int) -> int:
    """Where ``bv.popcount``'s tree over ``n`` bits makes its last addition: the largest power of two below n."""
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def disjoint(x: z3.BitVecRef, d: z3.BitVecRef, n: int) -> z3.BoolRef:
    """Bitmaps with no bit in common: the popcount of their union is the sum of theirs."""
    return z3.Implies(x & d == 0, popcount(x | d, n) == popcount(x, n) + popcount(d, n))


def range_count(lo: Int, hi: Int, n: int) -> z3.BoolRef:
    """A range's popcount is its length."""
    return z3.Implies(z3.And(lo >= 0, lo <= hi, hi <= n), popcount(range_mask(lo, hi, n), n) == hi - lo)


def _disjoint_queries(n: int, into: dict[int, list[z3.BoolRef]]) -> dict[int, list[z3.BoolRef]]:
    """``disjoint`` for every ``n``-bit pair, one query per width: at once up to ``DIRECT`` bits, else from its
    two parts, each proved by the queries of its own width (added too, each width once)."""
    if n in into:
        return into
    x, d = z3.BitVec(f"popcount.x{n}", n), z3.BitVec(f"popcount.d{n}", n)
    if n <= DIRECT:
        into[n] = [z3.Not(disjoint(x, d, n))]
        return into
    k = _split(n)
    _disjoint_queries(n - k, _disjoint_queries(k, into))
    low = disjoint(z3.Extract(k - 1, 0, x), z3.Extract(k - 1, 0, d), k)
    high = disjoint(z3.Extract(n - 1, k, x), z3.Extract(n - 1, k, d), n - k)
    into[n] = [low, high, z3.Not(disjoint(x, d, n))]
    return into


def lemmas(n: int, solver: SolverOptions) -> Lemmas:
    """``disjoint`` and ``range_count`` at ``n`` bits, proved (every query unsat) or not; once per process."""
    key = (n, solver)
    if key not in _proved:
        lo, hi = z3.BitVec("popcount.lo", INT_W), z3.BitVec("popcount.hi", INT_W)
        answers = check_all([*_disjoint_queries(n, {}).values(), [z3.Not(range_count(lo, hi, n))]], solver)
        _proved[key] = Lemmas(all(a.status == "unsat" for a in answers), sum(a.seconds for a in answers),
                              tuple(answers))
    return _proved[key]


def _range(off: Int, size: Int, n: int) -> tuple[z3.BitVecRef, z3.BoolRef]:
    """The mask of ``size`` bits at ``off``, and that it lies within the ``n`` bits (no wrap of the sum)."""
    return range_mask(off, off + size, n), z3.And(size <= n, off >= 0, off <= n, off + size <= n)


def _shape(kind: str, pre: SymChunk, post: SymChunk, off: Int) -> z3.BoolRef:
    """What the operation did to ``alloc_map`` and ``free_bits``: nothing, or set (cleared) the range of
    ``|change of free_bits|`` bits at ``off``, all free (allocated) before."""
    change = post.free_bits - pre.free_bits
    size = -change if kind == "alloc" else change
    mask, inside = _range(off, size, pre.nr_bits)
    if kind == "alloc":
        moved = z3.And(pre.alloc_map & mask == 0, post.alloc_map == pre.alloc_map | mask)
    else:
        moved = z3.And(mask & ~pre.alloc_map == 0, post.alloc_map == pre.alloc_map & ~mask)
    unchanged = z3.And(post.alloc_map == pre.alloc_map, change == 0)
    return z3.Or(unchanged, z3.And(size > 0, inside, moved))


def _step(kind: str, inv: Invariant, fresh: tuple[SymChunk, SymChunk]) -> list[z3.BoolRef]:
    """The step's query over ``fresh``: the range's ``size`` bits at ``off`` (none: unchanged) join the smaller
    bitmap (the allocation's before, the free's after) to make the larger, and the invariant goes from before to
    after.  The larger bitmap is the term ``small | mask`` itself, the one ``disjoint`` speaks of, so the
    solver does not have to see two popcount circuits of equal inputs as equal."""
    before, after = fresh
    n = before.nr_bits
    off, size = z3.BitVec("popcount.off", INT_W), z3.BitVec("popcount.size", INT_W)
    small = before.alloc_map if kind == "alloc" else after.alloc_map
    mask, inside = _range(off, size, n)
    if kind == "alloc":
        after = after.set(alloc_map=small | mask)
    else:
        before = before.set(alloc_map=small | mask)
    change = after.free_bits - before.free_bits
    return [size >= 0, inside, small & mask == 0, change == (-size if kind == "alloc" else size),
            disjoint(small, mask, n), range_count(off, off + size, n), inv.z3(before), z3.Not(inv.z3(after))]


def prove(inv: Invariant, kind: str, pre: SymChunk, t: Transition, assumptions: list[z3.BoolRef],
          fresh: tuple[SymChunk, SymChunk], solver: SolverOptions) -> Answer | None:
    """The unsat answer of ``[*assumptions, not inv(post)]`` by the three steps, or None: ask it whole.

    ``fresh`` are two chunks of the encoding that no other term holds, the step's own.  A model of the whole
    query gives one of the step: the shape's range (or, unchanged, none at 0), and the chunks' bitmaps and
    ``free_bits``."""
    if inv.name != INVARIANT or kind not in KINDS or pre.nr_bits < FROM_BITS:
        return None
    proved = lemmas(pre.nr_bits, solver)
    if not proved.proved:
        return None
    off = t.step.bit_off if kind == "alloc" else t.op.bit_off
    shape_answer, step_answer = check_all([
        [*assumptions, z3.Not(z3.And(_shape(kind, pre, t.step.post, off), inv.z3(pre)))],
        _step(kind, inv, fresh),
    ], solver)
    if shape_answer.status != "unsat" or step_answer.status != "unsat":
        return None
    times = {f"{k} (popcount shape)": v for k, v in shape_answer.times.items()}
    times |= {f"{k} (popcount step)": v for k, v in step_answer.times.items()}
    times["popcount lemmas (once per width)"] = {"status": "unsat", "seconds": round(proved.seconds, 3)}
    return replace(shape_answer, seconds=shape_answer.seconds + step_answer.seconds,
                   solver=f"{shape_answer.solver} (popcount steps)", times=times)
