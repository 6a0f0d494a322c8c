"""Stateful exploration of the reference with Hypothesis: which invariants a variant breaks, with the shortest traces.

A ``RuleBasedStateMachine`` drives ``Reference`` with the operations a
caller of the allocator issues (alloc, free of a live allocation, populate,
depopulate of empty pages) and checks every invariant after every step with
``invariants.check.check_step``.

``v1`` and ``v1-patch09`` are the seed's code and break several of the
seed's own claims.  So the machine does not assert the invariants: it
*records* every broken invariant with the shortest operation sequence that
showed it (a ``pcpu-verify-trace/1`` counterexample).

It starts over from a fresh chunk when the state itself went wrong -- a
state invariant broke, or a write left its bitmap -- since what follows
is a consequence of that first violation, not a finding of its own.  A
step that broke only step invariants and wrote nothing out of bounds (an
out-of-bounds *read* of PATCH 10's search window, an atomic allocation on
an unpopulated page) leaves a state the state invariants accept, and the
walk goes on: on ``v1`` nearly every allocation reaching the last page
reads past the bitmap, and stopping there would hide the PATCH 09 bugs
behind it.  So a counterexample's earlier steps may break step invariants.

``tests/test_stateful.py`` holds each variant to its manifest of expected
results; ``pcpu-verify check`` runs the same machines with its own budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from pcpuverify.counterexamples.caller_rules import caller_machine
from pcpuverify.counterexamples.seeded import without_local_constants
from pcpuverify.invariants.check import INVARIANTS, STATE_INVARIANTS, check_state, check_step
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, Op
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace

# Small geometries keep every ratio of the kernel's (one metadata block per
# page) with bitmaps a reader can draw.  The last starts with pages 0 and 2
# unpopulated, as a chunk from pcpu_create_chunk() before the balance work.
GEOMETRIES = (
    Geometry.parse("1x8"),
    Geometry.parse("2x8"),
    Geometry.parse("3x8"),
    Geometry.parse("2x16"),
    Geometry(block_bits=8, nr_pages=3, populated=(1,)),
)

# The budget: Hypothesis examples per (variant, geometry), each a run of STEPS
# operations.  With this seed and with seeds 1 to 5, every known-broken
# invariant of tests/test_stateful.py's manifest first broke within the first 100 examples of some geometry
# and broke in at least two geometries (PCPU_EXPLORE_REPORT=1 prints where).  Changing the seed or the budget is a
# change of the manifest: re-check both sets.
SEED = 20170724  # the series was posted in the week of 24 July 2017
EXAMPLES = 200
STEPS = 40

ALL_INVARIANTS = tuple(inv.name for inv in INVARIANTS)
_STATE_NAMES = frozenset(inv.name for inv in STATE_INVARIANTS)


def state_went_wrong(ref: Reference, broken: list[str]) -> bool:
    """Whether exploring on from ``ref`` would only show consequences: a state invariant broke or memory was overwritten."""
    return ref.corrupted_at is not None or any(name in _STATE_NAMES for name in broken)


def _geometry_label(geometry: Geometry) -> str:
    if len(geometry.populated) == geometry.nr_pages:
        return geometry.name
    return f"{geometry.name} populated {list(geometry.populated)}"


def _trace_size(trace: Trace) -> tuple[int, int, int]:
    """Fewer operations first, then fewer steps breaking something else, then the smaller bitmap."""
    walk = counterexample_walk(trace)
    noisy = walk.noisy_steps if walk is not None else len(trace.ops)
    return (len(trace.ops), noisy, trace.geometry.nr_bits)


@dataclass
class Findings:
    """What exploring one variant saw: per broken invariant, the shortest trace and where it first broke."""

    variant: str
    # (invariant, geometry index) -> the shortest trace the machine saw break it
    seen: dict[tuple[str, int], Trace] = field(default_factory=dict)
    # invariant -> geometry label -> the example (1-based, per geometry) that first broke it
    first_found: dict[str, dict[str, int]] = field(default_factory=dict)
    shortest: dict[str, Trace] = field(default_factory=dict)  # filled by finish()
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0

    def record(self, invariant: str, trace: Trace, geometry_index: int, example: int) -> None:
        self.first_found.setdefault(invariant, {}).setdefault(_geometry_label(trace.geometry), example)
        old = self.seen.get((invariant, geometry_index))
        if old is None or len(trace.ops) < len(old.ops):
            self.seen[(invariant, geometry_index)] = trace

    def finish(self) -> None:
        """Shorten every trace seen and keep the shortest per invariant (ties: the earlier geometry)."""
        for (invariant, _), trace in sorted(self.seen.items(), key=lambda item: item[0][1]):
            short = shorten(trace)
            if invariant not in self.shortest or _trace_size(short) < _trace_size(self.shortest[invariant]):
                self.shortest[invariant] = short

    def report(self) -> str:
        return "\n".join(
            f"  {name}: {len(self.shortest[name].ops)} ops on {_geometry_label(self.shortest[name].geometry)};"
            f" first broken at example {self.first_found[name]}"
            for name in sorted(self.shortest)
        )


def machine_for(variant: str, geometry: Geometry, geometry_index: int, findings: Findings) -> type[RuleBasedStateMachine]:
    """A state machine over ``Reference(variant, geometry)`` that records what it breaks into ``findings``."""
    nr_pages, B = geometry.nr_pages, geometry.block_bits
    page_mask = (1 << B) - 1
    examples_before = findings.examples

    class ReferenceMachine(caller_machine(geometry)):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            findings.examples += 1
            self.example = findings.examples - examples_before
            self.restart()

        def restart(self) -> None:
            self.ref = Reference(variant, geometry, ChunkInit())
            self.ops: list[Op] = []
            for name in dict.fromkeys(v.invariant for v in check_state(self.ref)):
                self.record(name)

        def record(self, invariant: str) -> None:
            trace = Trace(variant, geometry, ChunkInit(), tuple(self.ops), violates=invariant)
            findings.record(invariant, trace, geometry_index, self.example)

        def step(self, op: Op) -> None:
            """Apply ``op``, check every invariant, record what broke; start over once the state went wrong."""
            _, violations = check_step(self.ref, op)
            self.ops.append(op)
            findings.steps += 1
            broken = list(dict.fromkeys(v.invariant for v in violations))
            for name in broken:
                self.record(name)
            if state_went_wrong(self.ref, broken):
                self.restart()

        @property
        def chunk(self) -> PcpuChunk:
            return self.ref.chunks["dynamic"]

        def live_allocations(self) -> list[int]:
            return list(self.chunk.allocations)

        def unpopulated_pages(self) -> list[int]:
            populated = self.chunk.populated.value
            return [p for p in range(nr_pages) if not (populated >> p) & 1]

        def empty_pages(self) -> list[int]:
            amap, populated = self.chunk.alloc_map.value, self.chunk.populated.value
            return [p for p in range(nr_pages) if (populated >> p) & 1 and not (amap >> (p * B)) & page_mask]

    ReferenceMachine.__name__ = ReferenceMachine.__qualname__ = (
        f"ReferenceMachine_{variant.replace('-', '_')}_{geometry.name}"
    )
    return ReferenceMachine


EXPLORE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    database=None,  # no replay of earlier runs' examples: the same budget everywhere
    deadline=None,
    phases=(Phase.generate,),  # the machine never fails, so there is nothing to shrink
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@dataclass(frozen=True)
class Walk:
    """How a counterexample replays: the step that first breaks its invariant, and how many break others before."""

    end: int
    noisy_steps: int


def counterexample_walk(trace: Trace) -> Walk | None:
    """Replay ``trace`` as the machine walks: None unless it breaks ``trace.violates`` before its state goes wrong."""
    ref = Reference(trace.variant, trace.geometry, trace.init)
    if check_state(ref):
        return None
    noisy = 0
    for index, op in enumerate(trace.ops):
        try:
            _, violations = check_step(ref, op)
        except OpError:  # e.g. a free of an allocation made by an op that was dropped
            return None
        broken = list(dict.fromkeys(v.invariant for v in violations))
        if trace.violates in broken:
            return Walk(index, noisy)
        if state_went_wrong(ref, broken):
            return None
        noisy += bool(broken)
    return None


def shorten(trace: Trace) -> Trace:
    """Drop operations one at a time while the trace still breaks its invariant first.

    Hypothesis generates noisy sequences (failed allocations, frees that do
    not matter); this greedy pass leaves a trace in which every operation is
    needed.  A stand-in until the project's minimiser (``pcpu-verify
    minimize``) exists.
    """
    ops, changed = trace.ops, True
    while changed:
        changed = False
        for i in reversed(range(len(ops))):
            if i >= len(ops):
                continue
            candidate = trace.with_ops(ops[:i] + ops[i + 1 :])
            walk = counterexample_walk(candidate)
            if walk is not None:
                ops, changed = candidate.ops[: walk.end + 1], True
    return trace.with_ops(ops)


def run_machines(variant: str, examples: int = EXAMPLES) -> Findings:
    """Run the machine on every geometry with the seeded budget of ``examples`` per geometry."""
    findings = Findings(variant)
    budget = settings(EXPLORE_SETTINGS, max_examples=examples)
    start = time.perf_counter()
    with without_local_constants():
        for index, geometry in enumerate(GEOMETRIES):
            machine = hypothesis_seed(SEED + index)(machine_for(variant, geometry, index, findings))
            run_state_machine_as_test(machine, settings=budget)
    findings.finish()
    findings.seconds = time.perf_counter() - start
    return findings

