"""How many operations per second the Python reference replays, with and without checking every invariant after each step.

Not a test: run it by hand (``python bench/bench_reference.py``) to see
what a stateful search or a long trace costs at each geometry.  The op
sequences are random but seeded (the seed is printed), valid for the
allocator's callers (frees name live allocations, depopulation only empty
pages), generated once per row and then replayed on a fresh ``Reference``
for each timed column, so both columns run the same operations.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from typing import cast

from rich.console import Console, JustifyMethod
from rich.table import Table

from pcpuverify.invariants.check import check_step
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, Free, Op, Populate
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import MAX_ALLOC_BITS

GEOMETRIES = ("1x8", "2x8", "4x16", "4x64", "4x1024", "16x1024")
VARIANTS = ("v1", "v1-patch09")


def random_op(ref: Reference, rng: random.Random) -> Op:
    """One operation a caller could issue now: mostly small allocations and frees, some (de)population."""
    chunk, g = ref.chunks["dynamic"], ref.geometry
    B = g.block_bits
    live = sorted(chunk.allocations)
    r = rng.random()
    if r < 0.5 or (r < 0.8 and not live):
        # log-uniform sizes: percpu objects are mostly small, now and then a page or more
        largest = min(g.nr_bits, MAX_ALLOC_BITS)
        bits = max(1, min(largest, int(2 ** rng.uniform(0, math.log2(largest) + 0.5))))
        align = 1 << rng.randint(0, min(B.bit_length() - 1, 3 + rng.randint(0, 3)))
        return Alloc(bits, min(align, B), pop_only=rng.random() < 0.3)
    if r < 0.8:
        return Free(rng.choice(live))
    page_start = rng.randrange(g.nr_pages)
    page_end = rng.randint(page_start + 1, min(g.nr_pages, page_start + 2))
    mask = (1 << ((page_end - page_start) * B)) - 1
    holds_allocations = (chunk.alloc_map.value >> (page_start * B)) & mask
    if r < 0.9 or holds_allocations:
        return Populate(page_start, page_end)
    return Depopulate(page_start, page_end)


def random_sequences(variant: str, geometry: Geometry, nr_ops: int, length: int, rng: random.Random) -> list[list[Op]]:
    """Op sequences totalling ``nr_ops``, each from a fresh chunk and at most ``length`` long.

    A sequence also ends at a write outside a bitmap (``v1``'s search window
    can make one): what the reference does after that means nothing.
    """
    sequences: list[list[Op]] = []
    total = 0
    while total < nr_ops:
        ref = Reference(variant, geometry, ChunkInit())
        ops: list[Op] = []
        while len(ops) < min(length, nr_ops - total):
            op = random_op(ref, rng)
            try:
                ref.apply(op)
            except OpError:  # cannot happen for the ops above; skip rather than die in a benchmark
                continue
            ops.append(op)
            if getattr(ref, "corrupted_at", None) is not None:
                break
        sequences.append(ops)
        total += len(ops)
    return sequences


@dataclass(frozen=True)
class Timing:
    ops: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else float("inf")


def replay(variant: str, geometry: Geometry, sequences: list[list[Op]], checked: bool, budget: float) -> Timing:
    """Replay sequences on fresh references (construction not timed) until all are done or ``budget`` seconds pass."""
    ops = 0
    spent = 0.0
    for sequence in sequences:
        ref = Reference(variant, geometry, ChunkInit())
        start = time.perf_counter()
        if checked:
            for op in sequence:
                check_step(ref, op)
        else:
            for op in sequence:
                ref.apply(op)
        spent += time.perf_counter() - start
        ops += len(sequence)
        if spent >= budget:
            break
    return Timing(ops, spent)


def _rate(t: Timing) -> str:
    return f"{t.rate:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2017, help="seed of the op sequences (default 2017)")
    parser.add_argument("--ops", type=int, default=5000, help="operations generated per row (default 5000)")
    parser.add_argument("--length", type=int, default=200, help="longest sequence from one fresh chunk (default 200)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per timed cell at most (default 3)")
    parser.add_argument("--geometry", action="append", help=f"PAGESxBITS, repeatable (default {' '.join(GEOMETRIES)})")
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="repeatable (default both)")
    args = parser.parse_args()

    console = Console()
    if not console.is_terminal:  # piped into a file or a mail: don't squeeze the table into 80 columns
        console = Console(width=110)
    table = Table(
        title=f"Reference replay speed: seed {args.seed}, {args.ops} ops per row, {args.budget:g} s per cell at most",
        caption="apply = Reference.apply; checked = invariants.check.check_step (every invariant after every op)",
    )
    for name, justify in [
        ("geometry", "left"),
        ("bits", "right"),
        ("variant", "left"),
        ("apply ops/s", "right"),
        ("checked ops/s", "right"),
        ("slowdown", "right"),
        ("ops timed", "right"),
    ]:
        table.add_column(name, justify=cast(JustifyMethod, justify), no_wrap=True)

    for spec in args.geometry or GEOMETRIES:
        geometry = Geometry.parse(spec)
        for variant in args.variant or VARIANTS:
            rng = random.Random(f"{args.seed}/{spec}/{variant}")
            sequences = random_sequences(variant, geometry, args.ops, args.length, rng)
            plain = replay(variant, geometry, sequences, checked=False, budget=args.budget)
            checked = replay(variant, geometry, sequences, checked=True, budget=args.budget)
            table.add_row(
                spec,
                str(geometry.nr_bits),
                variant,
                _rate(plain),
                _rate(checked),
                f"x{plain.rate / checked.rate:,.1f}",
                f"{plain.ops}/{checked.ops}",
            )
    console.print(table)


if __name__ == "__main__":
    main()
