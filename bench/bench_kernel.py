"""Benchmark: operations per second of a C build of mm/percpu.c against the model, from one run.

    python bench/bench_kernel.py [--source tests/kernels/seed-v1] [--variant v1] [--traces 200] [GEOMETRY ...]

The same seeded random traces (20 ops each, ``model.random_ops``) run on
the model variant (``Reference.apply`` and ``dump`` after every step) and
on the C build through the harness (``kernel.harness.run_traces``: the
driver under ASan and UBSan, every step's state printed, piped and
parsed, many traces per round trip).  Geometries: 2x8, 4x64 and 4x1024
(4 KiB pages: the kernel's own 1024-bit blocks).  The build is made (or
taken from the cache) before timing.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pcpuverify.kernel.build import build
from pcpuverify.kernel.harness import run_traces
from pcpuverify.kernel.source import load_source
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, Op
from pcpuverify.model.random_ops import random_walk
from pcpuverify.model.reference import Reference

LENGTH = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometries", nargs="*", default=["2x8", "4x64", "4x1024"])
    parser.add_argument("--source", default=str(Path(__file__).parent.parent / "tests" / "kernels" / "seed-v1"))
    parser.add_argument("--variant", default="v1")
    parser.add_argument("--traces", type=int, default=200)
    args = parser.parse_args()

    source = load_source(args.source)
    table = Table(title=f"{args.source} (layout {source.layout}) vs model {args.variant}:"
                        f" {args.traces} traces of {LENGTH} ops")
    for col in ("geometry", "model ops/s", "C ops/s", "C / model"):
        table.add_column(col, justify="left" if col == "geometry" else "right")
    for spec in args.geometries:
        g = Geometry.parse(spec)
        rng = random.Random(0)
        traces: list[list[Op]] = [random_walk(Reference(args.variant, g, ChunkInit()), rng, LENGTH)
                                  for _ in range(args.traces)]
        ops = sum(len(t) for t in traces)

        start = time.perf_counter()
        for trace in traces:
            ref = Reference(args.variant, g, ChunkInit())
            for op in trace:
                ref.apply(op)
                ref.dump()
        model_rate = ops / (time.perf_counter() - start)

        driver = build(source, g.block_bits, g.nr_pages)
        start = time.perf_counter()
        run_traces(driver, g, traces)
        c_rate = ops / (time.perf_counter() - start)
        table.add_row(spec, f"{model_rate:,.0f}", f"{c_rate:,.0f}", f"{c_rate / model_rate:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
