"""The invariant object: a stable name, the seed sentence it encodes, and its predicates.

A *state* invariant is a predicate over one chunk of the allocator (with
the allocator's globals); a *step* invariant relates the state before an
operation, what the operation returned, and the state after.  The Z3
predicate over a symbolic state is attached to the same object by the
proofs layer (``Invariant.z3``), so each invariant is defined once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.reference import StepResult


@dataclass(frozen=True)
class Violation:
    """One broken invariant: on which chunk, which field is wrong, and by how much."""

    invariant: str
    chunk: str
    field: str
    message: str

    def describe(self) -> str:
        return f"{self.invariant}: {self.chunk} chunk: {self.message}"


@dataclass(frozen=True)
class ChunkSnapshot:
    """What a step invariant needs of a chunk before the operation."""

    alloc_map: int
    populated: int
    free_bits: int
    allocations: dict[int, int]

    @classmethod
    def of(cls, chunk: PcpuChunk) -> ChunkSnapshot:
        return cls(chunk.alloc_map.value, chunk.populated.value, chunk.free_bits, dict(chunk.allocations))


# A state check yields (field, message) pairs for what is wrong.
StateCheck = Callable[[PcpuAllocator, PcpuChunk], Iterator[tuple[str, str]]]
StepCheck = Callable[[PcpuAllocator, ChunkSnapshot, StepResult, PcpuChunk], Iterator[tuple[str, str]]]


@dataclass
class Invariant:
    """One claim about the allocator, defined once."""

    name: str
    patch: str  # where the claim (or the code relying on it) is
    seed: str  # the sentence of the seed it encodes, quoted
    kind: str  # "state" or "step"
    check: Callable[..., Iterator[tuple[str, str]]]
    reads_post_state: bool  # whether it looks at the state after the op (meaningless after a stray write)
    z3: Any = field(default=None)  # the symbolic predicate, attached by pcpuverify.proofs

    def symbolic(self, predicate: Callable[..., Any]) -> Invariant:
        """Attach the Z3 side: ``predicate(chunk)`` for a state invariant, ``predicate(pre, op, step)`` for a step one."""
        self.z3 = predicate
        return self

    def violations(self, *args: Any) -> list[Violation]:
        chunk: PcpuChunk = args[-1]
        return [Violation(self.name, chunk.name, f, m) for f, m in self.check(*args)]


REGISTRY: dict[str, Invariant] = {}


def _register(
    kind: str, name: str, patch: str, seed: str, reads_post_state: bool
) -> Callable[[Callable[..., Any]], Invariant]:
    def decorate(check: Callable[..., Iterator[tuple[str, str]]]) -> Invariant:
        if name in REGISTRY:
            raise ValueError(f"invariant {name!r} defined twice")
        inv = Invariant(
            name=name,
            patch=patch,
            seed=" ".join(seed.split()),
            kind=kind,
            check=check,
            reads_post_state=reads_post_state,
        )
        REGISTRY[name] = inv
        return inv

    return decorate


def state_invariant(name: str, *, patch: str, seed: str) -> Callable[[StateCheck], Invariant]:
    """Register ``check(alloc, chunk)`` as a state invariant."""
    return _register("state", name, patch, seed, reads_post_state=True)


def step_invariant(
    name: str, *, patch: str, seed: str, reads_post_state: bool = False
) -> Callable[[StepCheck], Invariant]:
    """Register ``check(alloc, before, step, chunk)`` as a step invariant."""
    return _register("step", name, patch, seed, reads_post_state)
