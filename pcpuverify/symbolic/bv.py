"""Bit-parallel Z3 builders for the bitmap primitives and run-length questions (pure QF_BV).

Scans are encoded with masks and shift-and doubling rather than per-bit
``If`` chains (DESIGN.md, "Proofs": 0.15 s instead of 26 s at 64 bits).
Scalars are C ``int``s: signed bit-vectors of ``INT_W`` bits.  A bitmap is
a bit-vector of its logical size; bits past the size read as zero, and each
primitive also returns whether it touched a bit past the size (the
``OutOfBounds`` record of ``model/bitmap.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry, GeometryError

INT_W = 16  # wide enough for every offset of a geometry up to MAX_ENCODED_BITS, with the v1 overshoots

# The largest scalar the encoding forms is a byte offset, PCPU_MIN_ALLOC_SIZE * (bit offset + allocation
# size + a block), each term at most the chunk's bits (v1 overshoots to twice that): under 4 * 4 * 1024 =
# 16384 here, half of INT_W's signed range.  Larger chunks are refused up front rather than left to wrap
# silently or to fail deep inside Z3 (the 2 * nr_bits-wide search windows pass Python's 4300-digit limit
# from 8x1024); geometries that large are for replay, not for proofs.
MAX_ENCODED_BITS = 1024
assert 4 * PCPU_MIN_ALLOC_SIZE * MAX_ENCODED_BITS <= 1 << (INT_W - 2)  # the factor of 2 to spare


def check_encodable(geometry: Geometry) -> None:
    """Refuse a geometry whose offsets ``INT_W``-bit ints cannot hold (``Geometry`` itself allows 64x1024)."""
    if geometry.nr_bits > MAX_ENCODED_BITS:
        raise GeometryError(
            f"{geometry.name} is {geometry.nr_bits} bits; the proofs encode chunks of at most {MAX_ENCODED_BITS}"
            f" bits ({INT_W}-bit C ints), e.g. 1x1024, 4x256 or 64x16 (replay and minimize take any geometry)"
        )

Int = z3.BitVecRef
Bool = z3.BoolRef


def I(value: int) -> Int:
    return z3.BitVecVal(value, INT_W)


def ones(n: int) -> z3.BitVecRef:
    return z3.BitVecVal((1 << n) - 1, n)


def zeros(n: int) -> z3.BitVecRef:
    return z3.BitVecVal(0, n)


def ite(c: Bool | bool, a: z3.ExprRef, b: z3.ExprRef) -> z3.ExprRef:
    if isinstance(c, bool):
        return a if c else b
    return z3.If(c, a, b)


def smin(a: Int, b: Int) -> Int:
    return z3.If(a < b, a, b)


def smax(a: Int, b: Int) -> Int:
    return z3.If(a > b, a, b)


def to_amount(k: Int, n: int) -> z3.BitVecRef:
    """``k`` (an int, 0 <= k) as an n-bit shift amount; anything >= n saturates to n."""
    if n > INT_W:
        return z3.ZeroExt(n - INT_W, k)
    if n == INT_W:
        return k
    return z3.If(z3.ULT(k, n), z3.Extract(n - 1, 0, k), z3.BitVecVal(n, n))


def low_mask(k: Int, n: int) -> z3.BitVecRef:
    """Bits ``[0, k)`` of an n-bit vector (none for k <= 0, all for k >= n)."""
    return z3.If(k <= 0, zeros(n), z3.If(k >= n, ones(n), ~(ones(n) << to_amount(k, n))))


def range_mask(lo: Int, hi: Int, n: int) -> z3.BitVecRef:
    """Bits ``[lo, hi)`` of an n-bit vector, clipped to ``[0, n)``."""
    return low_mask(hi, n) & ~low_mask(lo, n)


def _index_of_onehot(onehot: z3.BitVecRef, n: int) -> Int:
    index: z3.ExprRef = I(0)
    k = 0
    while (1 << k) < n:
        mask = sum(1 << p for p in range(n) if (p >> k) & 1)
        index = index + z3.If(onehot & z3.BitVecVal(mask, n) != 0, I(1 << k), I(0))
        k += 1
    return index


def lowest_set(x: z3.BitVecRef, n: int) -> Int:
    """Index of the lowest set bit of ``x`` (meaningful when x != 0)."""
    return _index_of_onehot(x & -x, n)


def highest_set(x: z3.BitVecRef, n: int) -> Int:
    """Index of the highest set bit of ``x`` (meaningful when x != 0)."""
    s = x
    shift = 1
    while shift < n:
        s = s | z3.LShR(s, shift)
        shift *= 2
    return _index_of_onehot(s ^ z3.LShR(s, 1), n)


def popcount(x: z3.BitVecRef, n: int) -> Int:
    """The number of set bits among the low ``n`` of ``x``, as an int.

    A tree of adders each only as wide as its sum can be (level k adds
    (k+1)-bit numbers), widened to an int once at the root: bit-blasting
    ``INT_W``-bit adders at every level cost Z3 most of the time of
    ``free-bits-count`` (measured in bench/bench_proofs.py).
    """
    if n == 0:
        return I(0)
    terms: list[z3.BitVecRef] = [z3.Extract(i, i, x) for i in range(n)]
    while len(terms) > 1:
        pairs = []
        for i in range(0, len(terms) - 1, 2):
            a, b = terms[i], terms[i + 1]
            w = max(a.size(), b.size()) + 1
            pairs.append(z3.ZeroExt(w - a.size(), a) + z3.ZeroExt(w - b.size(), b))
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    root = terms[0]
    return z3.ZeroExt(INT_W - root.size(), root) if root.size() < INT_W else z3.Extract(INT_W - 1, 0, root)


def one_bit(i: Int, n: int) -> z3.BitVecRef:
    """``1 << i`` in n bits; zero when i is outside ``[0, n)`` (a dropped write)."""
    return z3.BitVecVal(1, n) << to_amount(i, n)


def bit(x: z3.BitVecRef, i: Int, n: int) -> Bool:
    """Bit ``i`` of ``x`` (false past its size)."""
    return z3.And(i >= 0, i < n, z3.LShR(x, to_amount(i, n)) & 1 == 1)


def run_starts(free: z3.BitVecRef, n: int, length: Int) -> z3.BitVecRef:
    """Positions p with bits ``[p, p + length)`` all set in ``free`` (zeros shift in past the top).

    Shift-and doubling with constant shifts only: F_{2k} = F_k & (F_k >> k),
    and from the lowest binary digit of ``length`` up, R_{j+1} = F_{2^j} &
    (R_j >> 2^j) when digit j is set (a run of 2^j bits, then the run of the
    lower digits), R_0 = every position, n included.  Shifting by the symbolic length instead built a barrel
    shifter per digit: at 1024 bits the block contracts spent their time there.
    """
    powers = [free]
    while (1 << len(powers)) <= n:
        f, k = powers[-1], 1 << (len(powers) - 1)
        powers.append(f & z3.LShR(f, k))
    result = ones(n + 1)  # one bit more: a run of no bits also starts at n
    for j, f in enumerate(powers):
        digit = z3.Extract(j, j, length) == 1
        result = z3.If(digit, z3.ZeroExt(1, f) & z3.LShR(result, 1 << j), result)
    too_long = length > n
    return z3.If(length <= 0, ones(n), z3.If(too_long, zeros(n), z3.Extract(n - 1, 0, result)))


def has_run(free: z3.BitVecRef, n: int, length: Int) -> Bool:
    """Some run of at least ``length`` set bits exists (true for length <= 0)."""
    return z3.Or(length <= 0, run_starts(free, n, length) != 0)


def aligned_positions(align: Int, n: int, aligns: Sequence[int]) -> z3.BitVecRef:
    """Positions that are multiples of ``align`` (one of ``aligns``)."""
    out: z3.ExprRef = zeros(n)
    for a in aligns:
        out = z3.If(align == a, z3.BitVecVal(sum(1 << p for p in range(0, n, a)), n), out)
    return out


def sdiv(x: Int, d: int) -> Int:
    """C's ``x / d`` for an int ``x`` and a constant ``d`` > 0, rounding toward zero.

    By a power of two, an arithmetic shift, after adding ``d - 1`` to a
    negative ``x`` (the same quotient as ``bvsdiv`` for every ``x``): Z3 does
    not rewrite ``bvsdiv`` by a constant, and a bit-blasted 32-bit divider in
    each unrolled iteration of ``pcpu_find_block_fit`` cost more than the rest.
    """
    if d & (d - 1):
        return x / d
    return z3.If(x < 0, x + (d - 1), x) >> (d.bit_length() - 1)


def ALIGN(x: Int, a: Int) -> Int:
    """``ALIGN(x, a)`` for a power of two ``a``."""
    return (x + a - 1) & ~(a - 1)


class Bits:
    """A bitmap of ``n`` bits seen from bit ``base`` (``pcpu_index_alloc_map``), with Linux scan semantics.

    Each scan returns ``(value, oob)``: ``oob`` holds when the scan touched a
    bit outside ``[0, n)``, exactly when ``model/bitmap.py`` records it.
    """

    def __init__(self, term: z3.BitVecRef, n: int, base: Int | None = None) -> None:
        self.term, self.n = term, n
        self.base = I(0) if base is None else base

    def view(self, base: Int) -> Bits:
        return Bits(self.term, self.n, self.base + base)

    def _oob(self, start: Int, end: Int) -> Bool:
        lo, hi = self.base + start, self.base + end
        return z3.And(hi > lo, z3.Or(lo < 0, hi > self.n))

    def find_next_bit(self, size: Int, offset: Int) -> tuple[Int, Bool]:
        lo, hi = self.base + offset, self.base + size
        found = self.term & range_mask(lo, hi, self.n)
        value = z3.If(offset >= size, size, z3.If(found != 0, lowest_set(found, self.n) - self.base, size))
        return value, z3.And(offset < size, self._oob(offset, size))

    def find_next_zero_bit(self, size: Int, offset: Int) -> tuple[Int, Bool]:
        lo, hi = self.base + offset, self.base + size
        found = ~self.term & range_mask(lo, hi, self.n)
        past = z3.If(hi > self.n, smax(lo, I(self.n)) - self.base, size)  # bits past n read as zero
        value = z3.If(offset >= size, size, z3.If(found != 0, lowest_set(found, self.n) - self.base, past))
        return value, z3.And(offset < size, self._oob(offset, size))

    def find_last_bit(self, size: Int) -> tuple[Int, Bool]:
        found = self.term & range_mask(self.base, self.base + size, self.n)
        value = z3.If(size <= 0, size, z3.If(found != 0, highest_set(found, self.n) - self.base, size))
        return value, z3.And(size > 0, self._oob(I(0), size))

    def weight(self, size: Int) -> tuple[Int, Bool]:
        value = z3.If(size <= 0, I(0), popcount(self.term & range_mask(self.base, self.base + size, self.n), self.n))
        return value, z3.And(size > 0, self._oob(I(0), size))

    def with_range(self, start: Int, nr: Int, value: bool) -> tuple[z3.BitVecRef, Bool]:
        """``bitmap_set``/``bitmap_clear(map, start, nr)``: the new term; writes past n are dropped."""
        mask = range_mask(self.base + start, self.base + start + nr, self.n)
        term = self.term | mask if value else self.term & ~mask
        return z3.If(nr > 0, term, self.term), z3.And(nr > 0, self._oob(start, start + nr))
