"""A Hypothesis stateful machine on a C build, in the manner of tests/test_stateful.py's machine on the model.

It drives a ``KernelChunk`` with the operations a caller issues (alloc,
atomic alloc, free of a live allocation, populate from an unpopulated
page, depopulate of a run of empty pages), holds every step to the
invariants of the build's layout (``kernel_search``'s step and state invariants) and
records, without asserting, the first trace of each broken invariant and
of each sanitizer report or WARN_ON into a ``CSearch``.  It starts over
from a new chunk when the state went wrong (a state invariant broke) or
the driver ended (a sanitizer report), as the model's machine does.
Hypothesis draws the sizes and alignments (half of the sizes fit a
block), which reaches the edge values a uniform random walk rarely does.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import (
    RuleBasedStateMachine,
    run_state_machine_as_test,
)

from pcpuverify.counterexamples.caller_rules import caller_machine
from pcpuverify.counterexamples.kernel_search import (
    CSearch,
    note,
    snapshots,
    state_violations,
    step_only_violations,
)
from pcpuverify.counterexamples.seeded import without_local_constants
from pcpuverify.kernel.build import Build
from pcpuverify.kernel.harness import DriverGone, KernelChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Op
from pcpuverify.model.state import dynamic_chunk


def machine_for(build: Build, geometry: Geometry, result: CSearch) -> type[RuleBasedStateMachine]:
    """A state machine over ``KernelChunk(build, geometry)`` that records what it breaks into ``result``."""
    nr_pages, B = geometry.nr_pages, geometry.block_bits

    class KernelMachine(caller_machine(geometry)):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.chunk = KernelChunk(build, geometry)
            self.ops: list[Op] = []

        def restart(self) -> None:
            self.chunk.close()
            self.chunk = KernelChunk(build, geometry)
            self.ops = []

        def teardown(self) -> None:
            self.chunk.close()

        def step(self, op: Op) -> None:
            before = self.chunk.dump()
            mark = len(self.chunk.findings)
            self.ops.append(op)
            try:
                done = self.chunk.apply(op)
            except DriverGone:
                note(result, build, geometry, tuple(self.ops), [], self.chunk.findings[mark:])
                self.restart()
                return
            result.random_steps += 1
            after = self.chunk.dump()
            broken_state = state_violations(build.layout, after, geometry)
            steps = step_only_violations(build.layout, snapshots(before, geometry), done, after, geometry)
            note(result, build, geometry, tuple(self.ops), steps + broken_state, self.chunk.findings[mark:])
            if broken_state:
                self.restart()

        def _chunk_state(self) -> dict:
            return dynamic_chunk(self.chunk.dump())

        def live_allocations(self) -> list[int]:
            return list(self.chunk.allocations)

        def unpopulated_pages(self) -> list[int]:
            return [p for p, c in enumerate(self._chunk_state()["populated"]) if c == "0"]

        def empty_pages(self) -> list[int]:
            c = self._chunk_state()
            return [p for p in range(nr_pages)
                    if c["populated"][p] == "1" and "1" not in c["alloc_map"][p * B:(p + 1) * B]]

    return KernelMachine


def hypothesis_c(build: Build, geometry: Geometry, examples: int, seed: int, result: CSearch) -> CSearch:
    """Run ``examples`` Hypothesis examples of the machine (seeded by ``seed``, no database, nothing to shrink)."""
    if examples == 0:  # Hypothesis refuses max_examples=0
        return result
    machine = hypothesis_seed(seed)(machine_for(build, geometry, result))
    options = settings(max_examples=examples, stateful_step_count=30, database=None, deadline=None,
                       phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    with without_local_constants():
        run_state_machine_as_test(machine, settings=options)
    return result
