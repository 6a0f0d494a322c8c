"""Chunk geometry: bits per metadata block (one page, as in v1), pages, populated pages.

PATCH 09 defines ``PCPU_BITMAP_BLOCK_SIZE = PAGE_SIZE >> PCPU_MIN_ALLOC_SHIFT``:
one metadata block per page.  Shrinking the page keeps every ratio of the
kernel's geometry while making the bitmaps small enough to reason about.
"""

from __future__ import annotations

from dataclasses import dataclass

PCPU_MIN_ALLOC_SHIFT = 2
PCPU_MIN_ALLOC_SIZE = 1 << PCPU_MIN_ALLOC_SHIFT  # bytes per bitmap bit
PCPU_MIN_UNIT_SIZE = 32 << 10  # include/linux/percpu.h: PFN_ALIGN(32 << 10)
KERNEL_BLOCK_BITS = 4096 >> PCPU_MIN_ALLOC_SHIFT  # 4 KiB pages: 1024 bits per block

MIN_BLOCK_BITS = 4
MAX_BLOCK_BITS = 1024
MAX_PAGES = 64


class GeometryError(ValueError):
    """A geometry the allocator could not have; the message says what to use instead."""


def _is_power_of_2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _is_int(value: object) -> bool:
    """An int that is not a bool (JSON ``true`` must not pass for 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_nr_pages(nr_pages: object) -> None:
    """Refuse a page count out of range -- before anything of that size (the default ``populated``) is built."""
    if isinstance(nr_pages, bool) or not isinstance(nr_pages, int) or not 1 <= nr_pages <= MAX_PAGES:
        raise GeometryError(f"nr_pages must be between 1 and {MAX_PAGES} (got {nr_pages!r})")


@dataclass(frozen=True)
class Geometry:
    """``block_bits`` bits per page/block, ``nr_pages`` pages, ``populated`` pages at creation."""

    block_bits: int
    nr_pages: int
    populated: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (
            _is_int(self.block_bits)
            and _is_power_of_2(self.block_bits)
            and MIN_BLOCK_BITS <= self.block_bits <= MAX_BLOCK_BITS
        ):
            raise GeometryError(
                f"block_bits must be a power of two between {MIN_BLOCK_BITS} and"
                f" {MAX_BLOCK_BITS} (got {self.block_bits!r})"
            )
        check_nr_pages(self.nr_pages)
        bad = [p for p in self.populated if not (_is_int(p) and 0 <= p < self.nr_pages)]
        if bad:
            raise GeometryError(
                f"populated pages must lie in 0..{self.nr_pages - 1} (got {bad[0]!r})"
            )
        if len(set(self.populated)) != len(self.populated):
            raise GeometryError("populated pages must not repeat")
        object.__setattr__(self, "populated", tuple(sorted(self.populated)))

    @classmethod
    def parse(cls, spec: str, populated: tuple[int, ...] | None = None) -> Geometry:
        """``"2x8"`` = 2 blocks (pages) of 8 bits, all populated unless told otherwise."""
        try:
            pages_s, bits_s = spec.lower().split("x")
            nr_pages, block_bits = int(pages_s), int(bits_s)
        except ValueError:
            raise GeometryError(
                f"geometry must be PAGESxBITS, e.g. 2x8 for 2 pages of 8 bits (got {spec!r})"
            ) from None
        check_nr_pages(nr_pages)
        pop = tuple(range(nr_pages)) if populated is None else populated
        return cls(block_bits=block_bits, nr_pages=nr_pages, populated=pop)

    @property
    def page_size(self) -> int:
        """PAGE_SIZE in bytes."""
        return self.block_bits * PCPU_MIN_ALLOC_SIZE

    @property
    def nr_bits(self) -> int:
        return self.nr_pages * self.block_bits

    @property
    def name(self) -> str:
        return f"{self.nr_pages}x{self.block_bits}"

    def to_json(self) -> dict[str, object]:
        return {
            "block_bits": self.block_bits,
            "nr_pages": self.nr_pages,
            "populated": list(self.populated),
        }
