"""The encoding's longest-run circuit, in the steps its proof (``proofs/blocks/run_lemma.py``) names one by one.

``longest_run`` is a binary search on the length that tracks where the runs
found so far *end* (bit e of ``ends``: bits [e - length, e) set, e up to n),
so that growing them by 2^j is a shift by the constant 2^j, not a barrel
shifter by the length found so far.  ``doubled`` gives the positions where
runs of 2^k bits start, each level from the one below.

With ``RunCuts`` the encoder asks for a cut instead of the circuit: a fresh
length and start, which a query may constrain by what the lemma proves of
the circuit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from pcpuverify.symbolic.bv import I, Int, lowest_set, ones


def doubled(starts: z3.BitVecRef, k: int) -> z3.BitVecRef:
    """Where runs of 2^k set bits start, from ``starts``, where runs of 2^(k-1) start."""
    return starts & z3.LShR(starts, 1 << (k - 1))


def levels(n: int) -> int:
    """The largest k with 2^k <= n: the search's first step adds 2^k."""
    k = 0
    while (1 << (k + 1)) <= n:
        k += 1
    return k


def search_start(n: int) -> tuple[z3.BitVecRef, Int]:
    """Before any step: every position 0..n ends a run of no bits."""
    return ones(n + 1), I(0)


def search_step(ends: z3.BitVecRef, length: Int, starts: z3.BitVecRef, j: int) -> tuple[z3.BitVecRef, Int]:
    """Grow the runs ending in ``ends`` by the 2^j-bit runs that start there (``starts``), if any does."""
    grown = (ends & z3.ZeroExt(1, starts)) << (1 << j)
    take = grown != 0
    return z3.If(take, grown, ends), length + z3.If(take, I(1 << j), I(0))


def search_result(ends: z3.BitVecRef, length: Int, n: int) -> tuple[Int, Int]:
    """(length, where the first run of that length starts): the lowest end, less the length."""
    return length, lowest_set(ends, n + 1) - length


def longest_run(free: z3.BitVecRef, n: int) -> tuple[Int, Int]:
    """(length of the longest run of set bits, where the first such run starts; meaningful for length > 0)."""
    top = levels(n)
    starts = [free]
    for k in range(1, top + 1):
        starts.append(doubled(starts[-1], k))
    ends, length = search_start(n)
    for j in reversed(range(top + 1)):
        ends, length = search_step(ends, length, starts[j], j)
    return search_result(ends, length, n)


@dataclass(frozen=True)
class RunCut:
    """A fresh (length, start) standing for ``longest_run(free, n)``."""

    free: z3.BitVecRef
    n: int
    length: Int
    start: Int


@dataclass
class RunCuts:
    """The cuts an encoder made while building one query, in order."""

    cuts: list[RunCut] = field(default_factory=list)

    def cut(self, free: z3.BitVecRef, n: int) -> tuple[Int, Int]:
        name = f"run_cut{len(self.cuts)}"
        made = RunCut(free, n, z3.BitVec(f"{name}.length", 16), z3.BitVec(f"{name}.start", 16))
        self.cuts.append(made)
        return made.length, made.start
