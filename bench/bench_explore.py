"""Benchmark: reachable states of the reference on tiny geometries, and the shortest violation per invariant.

    python bench/bench_explore.py [--depth 4] [--variant v1 ...] [GEOMETRY ...]

Breadth-first over every operation with every argument, from a new chunk
with every set of populated pages (counterexamples/explore.py).
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from pcpuverify.counterexamples.explore import explore
from pcpuverify.model.geometry import Geometry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometries", nargs="*", default=["1x4", "1x8", "2x4", "3x4"])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--variant", action="append", dest="variants")
    args = parser.parse_args()

    states = Table(title=f"reachable states, breadth first to depth {args.depth}")
    for col in ("variant", "geometry", "states by depth", "states", "seconds", "states/s"):
        states.add_column(col, justify="left" if col in ("variant", "geometry", "states by depth") else "right")
    shortest = Table(title="shortest violation per invariant (ops)")
    for col in ("variant", "geometry", "invariant", "length", "trace"):
        shortest.add_column(col)
    for variant in args.variants or ["v1", "v1-patch09", "fixed"]:
        for spec in args.geometries:
            g = Geometry.parse(spec, populated=())
            start = time.perf_counter()
            found = explore(variant, g, args.depth)
            seconds = time.perf_counter() - start
            states.add_row(variant, spec, " ".join(map(str, found.states_by_depth)), str(found.states),
                           f"{seconds:.1f}", f"{found.states / seconds:,.0f}")
            for name, trace in sorted(found.shortest.items()):
                shortest.add_row(variant, spec, name, str(len(trace.ops)), "; ".join(o.describe() for o in trace.ops))
    console = Console()
    console.print(states)
    console.print(shortest)


if __name__ == "__main__":
    main()
