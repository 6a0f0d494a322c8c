"""Linux bitmap primitives (lib/find_bit.c, lib/bitmap.c) over a bounds-checked bitmap.

The allocator's correctness hinges on the exact return conventions of these
helpers (``find_last_bit`` returns ``size`` when nothing is found,
``bitmap_find_next_zero_area`` returns a value past ``size`` on failure), so
they are reproduced exactly.  Every read or write is checked against the
bitmap's logical size: an access outside it is *recorded* in an access log
(a finding, not a crash), reads there see zeros as the kernel's zeroed
padding would, and writes there are dropped.  A write outside is marked as
such: it corrupts memory, after which the allocator's state means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutOfBounds:
    """One access that left its array: ``[start, end)`` against ``nbits``; a write corrupts memory."""

    bitmap: str
    function: str
    start: int
    end: int
    nbits: int
    write: bool = False

    def describe(self) -> str:
        verb = "writes" if self.write else "reads"
        unit = "entries" if self.bitmap == "md_blocks" else "bits"
        return (
            f"{self.function} on {self.bitmap} {verb} {unit} [{self.start}, {self.end})"
            f" but {self.bitmap} has {self.nbits} {unit}"
        )


BITS_PER_LONG = 64


def _mask(nbits: int) -> int:
    return (1 << nbits) - 1 if nbits > 0 else 0


class Bitmap:
    """An ``unsigned long *`` of ``nbits`` bits, with an access log shared by its chunk.

    ``base`` lets a view start inside a larger bitmap, as
    ``pcpu_index_alloc_map()`` returns a pointer into ``chunk->alloc_map``.
    """

    __slots__ = ("name", "nbits", "_store", "log", "base")

    def __init__(self, name: str, nbits: int, log: list[OutOfBounds]) -> None:
        self.name = name
        self.nbits = nbits
        self._store = [0]  # one cell so that views share the value
        self.log = log
        self.base = 0

    # -- views and raw value -------------------------------------------------

    def view(self, base: int) -> Bitmap:
        """``addr + base / BITS_PER_LONG``: the same storage seen from bit ``base``."""
        v = Bitmap.__new__(Bitmap)
        v.name, v.nbits, v._store, v.log = self.name, self.nbits, self._store, self.log
        v.base = self.base + base
        return v

    @property
    def value(self) -> int:
        """The whole bitmap as an integer, bit i = bit i of the map."""
        return self._store[0]

    @value.setter
    def value(self, bits: int) -> None:
        self._store[0] = bits & _mask(self.nbits)

    def copy(self, log: list[OutOfBounds]) -> Bitmap:
        b = Bitmap(self.name, self.nbits, log)
        b.value = self.value
        return b

    # -- bounds ---------------------------------------------------------------

    def _check(self, function: str, start: int, end: int, write: bool = False) -> None:
        """Record the access ``[base+start, base+end)`` if it leaves the bitmap."""
        lo, hi = self.base + start, self.base + end
        if hi > lo and (lo < 0 or hi > self.nbits):
            self.log.append(OutOfBounds(self.name, function, lo, hi, self.nbits, write))

    def _bits_from(self, offset: int, size: int) -> int:
        """Bits ``[offset, size)`` of the view, shifted down to bit 0."""
        return (self._store[0] >> (self.base + offset)) & _mask(size - offset)

    # -- single bits ----------------------------------------------------------

    def test_bit(self, nr: int) -> bool:
        self._check("test_bit", nr, nr + 1)
        return bool((self._store[0] >> (self.base + nr)) & 1)

    def set_bit(self, nr: int) -> None:
        self._check("set_bit", nr, nr + 1, write=True)
        self.value = self._store[0] | (1 << (self.base + nr))

    def clear_bit(self, nr: int) -> None:
        self._check("clear_bit", nr, nr + 1, write=True)
        self.value = self._store[0] & ~(1 << (self.base + nr))

    # -- scans (lib/find_bit.c) ----------------------------------------------

    def find_next_bit(self, size: int, offset: int) -> int:
        """First set bit in ``[offset, size)``; ``size`` if there is none."""
        if offset >= size:
            return size
        self._check("find_next_bit", offset, size)
        w = self._bits_from(offset, size)
        return offset + (w & -w).bit_length() - 1 if w else size

    def find_next_zero_bit(self, size: int, offset: int) -> int:
        """First clear bit in ``[offset, size)``; ``size`` if there is none."""
        if offset >= size:
            return size
        self._check("find_next_zero_bit", offset, size)
        w = ~self._bits_from(offset, size) & _mask(size - offset)
        return offset + (w & -w).bit_length() - 1 if w else size

    def find_first_bit(self, size: int) -> int:
        return self.find_next_bit(size, 0)

    def find_first_zero_bit(self, size: int) -> int:
        return self.find_next_zero_bit(size, 0)

    def find_last_bit(self, size: int) -> int:
        """Last set bit in ``[0, size)``; ``size`` (not -1) if there is none."""
        if size <= 0:
            return size
        self._check("find_last_bit", 0, size)
        w = self._bits_from(0, size)
        return w.bit_length() - 1 if w else size

    # -- range operations (lib/bitmap.c) --------------------------------------

    def bitmap_set(self, start: int, nr: int) -> None:
        if nr <= 0:
            return
        self._check("bitmap_set", start, start + nr, write=True)
        self.value = self._store[0] | (_mask(nr) << (self.base + start))

    def bitmap_clear(self, start: int, nr: int) -> None:
        if nr <= 0:
            return
        self._check("bitmap_clear", start, start + nr, write=True)
        self.value = self._store[0] & ~(_mask(nr) << (self.base + start))

    def bitmap_fill(self, nbits: int) -> None:
        """include/linux/bitmap.h: whole words of ones, then the last word *assigned* its mask.

        So bits ``[nbits, round_up(nbits, BITS_PER_LONG))`` are cleared too.
        """
        self.bitmap_set(0, nbits)
        tail_end = -(-nbits // BITS_PER_LONG) * BITS_PER_LONG
        self.value = self._store[0] & ~(_mask(max(tail_end - nbits, 0)) << (self.base + nbits))

    def bitmap_weight(self, nbits: int) -> int:
        """Number of set bits in ``[0, nbits)``."""
        if nbits <= 0:
            return 0
        self._check("bitmap_weight", 0, nbits)
        return bin(self._bits_from(0, nbits)).count("1")

    def bitmap_find_next_zero_area(self, size: int, start: int, nr: int, align_mask: int) -> int:
        """``bitmap_find_next_zero_area_off(map, size, start, nr, align_mask, 0)``.

        Returns the first ``align_mask``-aligned index >= ``start`` with ``nr``
        clear bits below ``size``; on failure a value greater than ``size``
        (the would-be end of the area), exactly as lib/bitmap.c does.
        """
        while True:
            index = self.find_next_zero_bit(size, start)
            index = (index + align_mask) & ~align_mask  # __ALIGN_MASK
            end = index + nr
            if end > size:
                return end
            i = self.find_next_bit(end, index)
            if i < end:
                start = i + 1
                continue
            return index

    # -- display ----------------------------------------------------------------

    def bits(self) -> list[int]:
        """The bits ``[0, nbits)`` as a list of 0/1, bit 0 first."""
        v = self._store[0]
        return [(v >> i) & 1 for i in range(self.nbits)]
