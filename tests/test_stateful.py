"""Stateful exploration of the reference: which invariants each variant of the seed's code breaks, and how fast.

A Hypothesis ``RuleBasedStateMachine`` drives ``Reference`` with the
operations a caller of the allocator issues (alloc, free of a live
allocation, populate, depopulate of empty pages) and checks every invariant
after every step with ``invariants.check.check_step``.

``v1`` and ``v1-patch09`` are the code of the seed and break several of the
seed's own claims (DESIGN.md: "Never fix v1. If the seed's code breaks a
claim, that is the finding").  So the machine does not assert the
invariants: it *records* each broken invariant with the shortest operation
sequence that showed it, as a ``pcpu-verify-trace/1`` counterexample, and
starts over from a fresh chunk -- a state that already violates one claim
says nothing about the others.  The tests then compare, per variant, the
set of broken invariants with ``KNOWN_BROKEN`` (the manifest, as the TLA+
examples ship their expected results): a newly broken invariant fails, and
so does a known one that the fixed, seeded budget no longer finds.

``PCPU_SAVE_TRACES=1 pytest tests/test_stateful.py`` writes the shortest
trace of every broken invariant to ``tests/traces/found/<variant>__<invariant>.json``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from pcpuverify.invariants.check import INVARIANTS, check_state, check_step, first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, Free, Op, Populate
from pcpuverify.model.reference import Reference
from pcpuverify.model.trace import Trace, load_trace, save_trace

FOUND_DIR = Path(__file__).parent / "traces" / "found"

VARIANTS = ("v1", "v1-patch09")

# Small geometries: every ratio of the kernel's (one block per page) with bitmaps
# a reader can draw.  The last one starts with pages 0 and 2 unpopulated, the
# state a chunk is in after pcpu_create_chunk() and before the balance work.
GEOMETRIES = (
    Geometry.parse("1x8"),
    Geometry.parse("2x8"),
    Geometry.parse("3x8"),
    Geometry.parse("2x16"),
    Geometry(block_bits=8, nr_pages=3, populated=(1,)),
)

# The exploration budget: Hypothesis examples per (variant, geometry), each a run
# of STEPS operations (restarted from a fresh chunk after every violation).
SEED = 20170724  # the week the series was posted; reported in every failure message
EXAMPLES = 60
STEPS = 40

# The manifest: invariants each variant is known to break within the budget above.
KNOWN_BROKEN: dict[str, frozenset[str]] = {
    "v1": frozenset(),
    "v1-patch09": frozenset(),
}

ALL_INVARIANTS = tuple(inv.name for inv in INVARIANTS)


@dataclass
class Findings:
    """What the exploration of one variant saw: the shortest counterexample per broken invariant."""

    variant: str
    shortest: dict[str, Trace] = field(default_factory=dict)
    first_found: dict[str, tuple[str, int]] = field(default_factory=dict)  # invariant -> (geometry, example)
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0

    def record(self, invariant: str, trace: Trace, geometry_index: int, example: int) -> None:
        old = self.shortest.get(invariant)
        if old is None:
            self.first_found[invariant] = (trace.geometry.name, example)
        if old is None or _size(trace) < _size(old):
            self.shortest[invariant] = trace


def _size(trace: Trace) -> tuple[int, int]:
    """Shorter first, then the smaller bitmap: the trace a reader can follow fastest."""
    return (len(trace.ops), trace.geometry.nr_bits)


def _powers_of_two(limit: int) -> list[int]:
    return [1 << k for k in range(limit.bit_length()) if 1 << k <= limit]


def machine_for(variant: str, geometry: Geometry, geometry_index: int, findings: Findings) -> type[RuleBasedStateMachine]:
    """A state machine over ``Reference(variant, geometry)`` that records into ``findings``."""
    nr_pages, nr_bits = geometry.nr_pages, geometry.nr_bits

    class ReferenceMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            findings.examples += 1
            self.example = findings.examples
            self.restart()

        def restart(self) -> None:
            self.ref = Reference(variant, geometry, ChunkInit())
            self.ops: list[Op] = []
            for v in check_state(self.ref):
                self.record(v.invariant)

        def record(self, invariant: str) -> None:
            trace = Trace(variant, geometry, ChunkInit(), tuple(self.ops), violates=invariant)
            findings.record(invariant, trace, geometry_index, self.example)

        def step(self, op: Op) -> None:
            """Apply ``op``, check every invariant; after a violation start over from a fresh chunk."""
            _, violations = check_step(self.ref, op)
            self.ops.append(op)
            findings.steps += 1
            if violations:
                for name in dict.fromkeys(v.invariant for v in violations):
                    self.record(name)
                self.restart()

        @property
        def chunk(self):  # noqa: ANN201 - PcpuChunk
            return self.ref.chunks["dynamic"]

        def empty_pages(self) -> list[int]:
            B = geometry.block_bits
            amap = self.chunk.alloc_map.value
            return [p for p in range(nr_pages) if not (amap >> (p * B)) & ((1 << B) - 1)]

        # -- the operations a caller of the allocator issues -----------------

        @rule(
            bits=st.integers(1, nr_bits + 2),
            align=st.sampled_from(_powers_of_two(geometry.block_bits)),
            pop_only=st.booleans(),
        )
        def alloc(self, bits: int, align: int, pop_only: bool) -> None:
            self.step(Alloc(bits, align, pop_only))

        @precondition(lambda self: bool(self.chunk.allocations))
        @rule(data=st.data())
        def free(self, data: st.DataObject) -> None:
            bit_off = data.draw(st.sampled_from(sorted(self.chunk.allocations)), label="bit_off")
            self.step(Free(bit_off))

        @rule(page_start=st.integers(0, nr_pages - 1), nr=st.integers(1, nr_pages))
        def populate(self, page_start: int, nr: int) -> None:
            self.step(Populate(page_start, min(page_start + nr, nr_pages)))

        # Reference raises OpError for a depopulation of pages holding allocated
        # bits (the balance work only frees empty pages): draw only empty runs.
        @precondition(lambda self: bool(self.empty_pages()))
        @rule(data=st.data())
        def depopulate(self, data: st.DataObject) -> None:
            empty = self.empty_pages()
            page_start = data.draw(st.sampled_from(empty), label="page_start")
            page_end = page_start + 1
            while page_end in empty:
                page_end += 1
            page_end = data.draw(st.integers(page_start + 1, page_end), label="page_end")
            self.step(Depopulate(page_start, page_end))

    ReferenceMachine.__name__ = ReferenceMachine.__qualname__ = (
        f"ReferenceMachine_{variant.replace('-', '_')}_{geometry.name}"
    )
    return ReferenceMachine


EXPLORE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    database=None,
    deadline=None,
    phases=(Phase.generate,),  # the machine never fails: nothing to shrink
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@cache
def explore(variant: str) -> Findings:
    """Run the machine over every geometry with the fixed, seeded budget."""
    findings = Findings(variant)
    start = time.perf_counter()
    for index, geometry in enumerate(GEOMETRIES):
        machine = hypothesis_seed(SEED + index)(machine_for(variant, geometry, index, findings))
        run_state_machine_as_test(machine, settings=EXPLORE_SETTINGS)
    findings.seconds = time.perf_counter() - start
    return findings


def _describe(trace: Trace) -> str:
    return json.dumps(trace.to_json())


# -- (a) the broken set equals the manifest ------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_broken_invariants_match_manifest(variant: str) -> None:
    findings = explore(variant)
    found = set(findings.shortest)
    if os.environ.get("PCPU_SAVE_TRACES") == "1":
        _save(findings)
    new = sorted(found - KNOWN_BROKEN[variant])
    lost = sorted(KNOWN_BROKEN[variant] - found)
    report = "\n".join(
        f"  {name}: {len(findings.shortest[name].ops)} ops, first in {findings.first_found[name]}"
        for name in sorted(found)
    )
    assert not new and not lost, (
        f"{variant} (seed {SEED}, {EXAMPLES} examples x {STEPS} steps per geometry):"
        f" newly broken {new}, no longer found {lost}\nfound:\n{report}"
        + "".join(f"\n{name}: {_describe(findings.shortest[name])}" for name in new)
    )


# -- (b) every other invariant holds on every step -------------------------------


@pytest.mark.parametrize(
    ("variant", "invariant"),
    [(v, name) for v in VARIANTS for name in ALL_INVARIANTS if name not in KNOWN_BROKEN[v]],
)
def test_invariant_holds(variant: str, invariant: str) -> None:
    findings = explore(variant)
    trace = findings.shortest.get(invariant)
    assert trace is None, (
        f"{invariant} broken on {variant} by {len(trace.ops)} ops (seed {SEED});"
        f" save with PCPU_SAVE_TRACES=1, or replay:\n{_describe(trace)}"
    )


# -- the saved counterexamples ---------------------------------------------------


def _save(findings: Findings) -> None:
    FOUND_DIR.mkdir(parents=True, exist_ok=True)
    for stale in FOUND_DIR.glob(f"{findings.variant}__*.json"):
        if stale.stem.split("__", 1)[1] not in findings.shortest:
            stale.unlink()
    for name, trace in findings.shortest.items():
        save_trace(trace, FOUND_DIR / f"{findings.variant}__{name}.json")


@pytest.mark.parametrize("path", sorted(FOUND_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_saved_trace_breaks_its_invariant_at_its_last_step(path: Path) -> None:
    trace = load_trace(path)
    variant, invariant = path.stem.split("__", 1)
    assert (trace.variant, trace.violates) == (variant, invariant)
    assert first_violation(trace, invariant) == len(trace.ops) - 1
