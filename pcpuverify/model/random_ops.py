"""Random operations a caller of the allocator could issue in a given state, from a seeded generator."""

from __future__ import annotations

import random
from collections.abc import Callable

from pcpuverify.model.ops import Alloc, Depopulate, Free, Op, Populate
from pcpuverify.model.reference import Reference

# an allocation's size in bits, from the generator and the chunk's size in bits
Sizes = Callable[[random.Random, int], int]


def uniform_size(rng: random.Random, nr_bits: int) -> int:
    return rng.randint(1, nr_bits)


def random_op(ref: Reference, rng: random.Random, size: Sizes = uniform_size) -> Op:
    """An op valid in ``ref``'s dynamic chunk: frees name live allocations, depopulation only free pages."""
    chunk, g = ref.chunks["dynamic"], ref.geometry
    B = g.block_bits
    r = rng.random()
    live = sorted(chunk.allocations)
    if r < 0.5 or (r < 0.8 and not live):
        align = 1 << rng.randrange(B.bit_length())
        return Alloc(size(rng, g.nr_bits), min(align, B), rng.random() < 0.3)
    if r < 0.8:
        return Free(rng.choice(live))
    page = rng.randrange(g.nr_pages)
    end = rng.randint(page + 1, g.nr_pages)
    free_pages = [p for p in range(page, end) if not (chunk.alloc_map.value >> (p * B)) & ((1 << B) - 1)]
    if r < 0.9 or len(free_pages) != end - page:
        return Populate(page, end)
    return Depopulate(page, end)


def random_walk(ref: Reference, rng: random.Random, length: int) -> list[Op]:
    """Apply ``length`` random ops to ``ref`` and return them."""
    ops = []
    for _ in range(length):
        op = random_op(ref, rng)
        ref.apply(op)
        ops.append(op)
    return ops
