"""The operations a caller of the allocator issues, as Hypothesis rules: one set for every state machine.

The model's machine (``stateful.py``) and the C's (``kernel_machine.py``)
subclass ``caller_machine(geometry)`` and say how to apply an op and what the
chunk holds; the rules, and so what Hypothesis draws, are the same for both.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, Depopulate, Free, Op, Populate


def _powers_of_two(limit: int) -> list[int]:
    return [1 << k for k in range(limit.bit_length()) if 1 << k <= limit]


def caller_machine(geometry: Geometry) -> type[RuleBasedStateMachine]:
    """A machine whose rules are ``geometry``'s calls; a subclass defines ``step`` and the three queries."""
    nr_pages, B = geometry.nr_pages, geometry.block_bits

    class CallerMachine(RuleBasedStateMachine):
        def step(self, op: Op) -> None:
            raise NotImplementedError

        def live_allocations(self) -> list[int]:
            """The bit offsets a free may name."""
            raise NotImplementedError

        def unpopulated_pages(self) -> list[int]:
            raise NotImplementedError

        def empty_pages(self) -> list[int]:
            """Populated pages with no allocated bit: what the balance work may depopulate."""
            raise NotImplementedError

        # pcpu_alloc() with GFP_KERNEL populates what it hands out; an atomic
        # request (pop_only) takes only populated pages.  Two rules rather than
        # a flag give allocations two shares of the rule choice: at the start
        # of a walk only allocation and depopulation are possible, and a walk
        # of mostly depopulations ends before the hints get interesting.
        # Half of the sizes fit a block: most multi-block requests just fail
        # once a chunk holds a few allocations.
        sizes = st.one_of(st.integers(1, B + 2), st.integers(1, geometry.nr_bits + 2))
        aligns = st.sampled_from(_powers_of_two(B))

        @rule(bits=sizes, align=aligns)
        def alloc(self, bits: int, align: int) -> None:
            self.step(Alloc(bits, align, pop_only=False))

        @rule(bits=sizes, align=aligns)
        def alloc_atomic(self, bits: int, align: int) -> None:
            self.step(Alloc(bits, align, pop_only=True))

        @precondition(lambda self: bool(self.live_allocations()))
        @rule(data=st.data())
        def free(self, data: st.DataObject) -> None:
            bit_off = data.draw(st.sampled_from(sorted(self.live_allocations())), label="bit_off")
            self.step(Free(bit_off))

        # Population starts at an unpopulated page (else it is a no-op step).
        @precondition(lambda self: bool(self.unpopulated_pages()))
        @rule(data=st.data())
        def populate(self, data: st.DataObject) -> None:
            page_start = data.draw(st.sampled_from(self.unpopulated_pages()), label="page_start")
            page_end = data.draw(st.integers(page_start + 1, nr_pages), label="page_end")
            self.step(Populate(page_start, page_end))

        # The allocator only depopulates empty pages (Reference refuses the rest): draw a run of them.
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

    return CallerMachine
