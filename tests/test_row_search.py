"""The random search on the model that settles a row bounded model checking leaves NOT-INDUCTIVE (row_search.py)."""

from __future__ import annotations

import pytest

from pcpuverify.counterexamples.minimize import NotACounterexample
from pcpuverify.counterexamples.row_search import RowMinimizer, search
from pcpuverify.invariants.check import first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Free, op_name
from pcpuverify.model.trace import Trace

ONE_BLOCK = Geometry.parse("1x8")
# mainline's scan_hint, gallery 15's mechanism: NOT-INDUCTIVE at depth 3 in the baseline, found by the walks
LARGEST_BEFORE = "scan-hint-largest-before"


@pytest.mark.parametrize("kind", ["alloc", "free"])
def test_a_walk_breaks_the_row_first_with_its_kind_and_is_minimised_at_its_geometry(kind: str) -> None:
    found = search("mainline", ONE_BLOCK, LARGEST_BEFORE, kind, walks=1000, seed=0)
    assert found is not None and 1 <= found.walks <= 1000
    trace = found.trace
    assert (trace.variant, trace.violates, trace.geometry.nr_pages, trace.geometry.block_bits) == (
        "mainline", LARGEST_BEFORE, 1, 8)
    assert first_violation(trace, LARGEST_BEFORE) == len(trace.ops) - 1
    assert op_name(trace.ops[-1]) == kind
    # 1-minimal under the same condition: no single operation can go
    for i in range(len(trace.ops) - 1):
        shorter = Trace("mainline", trace.geometry, ChunkInit(), trace.ops[:i] + trace.ops[i + 1:], LARGEST_BEFORE)
        try:
            at = first_violation(shorter, LARGEST_BEFORE)
        except ValueError:  # a free of what is no longer allocated: the reference refuses it
            continue
        assert at != len(shorter.ops) - 1 or op_name(shorter.ops[-1]) != kind, i


def test_the_search_is_deterministic_and_seeded() -> None:
    first = search("mainline", ONE_BLOCK, LARGEST_BEFORE, "free", walks=1000, seed=0)
    again = search("mainline", ONE_BLOCK, LARGEST_BEFORE, "free", walks=1000, seed=0)
    other = search("mainline", ONE_BLOCK, LARGEST_BEFORE, "free", walks=1000, seed=1)
    assert first is not None and again is not None and other is not None
    assert (first.walks, first.trace) == (again.walks, again.trace)
    assert other.walks != first.walks


def test_no_walks_or_a_claim_the_variant_keeps_find_nothing() -> None:
    assert search("mainline", ONE_BLOCK, LARGEST_BEFORE, "free", walks=0, seed=0) is None
    # mainline-fixed keeps it (its 1x8 suite is all PROVED): nothing to find, however long the search
    assert search("mainline-fixed", ONE_BLOCK, LARGEST_BEFORE, "free", walks=300, seed=0) is None


def test_the_minimiser_keeps_the_kind_of_the_first_breaking_operation() -> None:
    """linux-4.14's accurate-in-one-block breaks first at an alloc (4 ops): as a row of kind alloc it minimises,
    as a row of kind free it is no counterexample at all."""
    ops = (Alloc(1, 8), Alloc(3, 1), Free(0), Alloc(4, 4))
    trace = Trace("linux-4.14", Geometry.parse("1x8"), ChunkInit(), ops, "chunk-hint-accurate-in-one-block")
    assert first_violation(trace, trace.violates) == 3
    kept = RowMinimizer(trace, "chunk-hint-accurate-in-one-block", "alloc").run()
    assert op_name(kept.ops[-1]) == "alloc" and kept.geometry == trace.geometry
    with pytest.raises(NotACounterexample):
        RowMinimizer(trace, "chunk-hint-accurate-in-one-block", "free")
