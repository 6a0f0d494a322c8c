"""What the longest-run circuit computes, proved one step at a time, so that a block query can cut the circuit.

``pcpu_block_refresh_hint`` is encoded with ``symbolic/longest_run.py``: a
binary search over positions where runs of 2^k bits start.  Asked whole, the
question "is its answer the longest run?" is where the refresh's contracts
and the allocations' (whose transition holds the refresh) spent their time
at 1024 bits.  Here it is asked once per block size, in small queries, and
the contracts are then asked with a cut (``RunCuts``): a fresh length and
start constrained by ``spec_at``, the lemma stated at the query's positions.

The lemma, for the circuit's (length, start) on ``free``:
``0 <= length <= n``, a run of ``length`` bits starts at ``start`` (when
length > 0), no run of ``length + 1`` bits starts anywhere, and no run of
``length`` bits starts before ``start``.  Its queries, each unsat:

- **doubling k**: bit i of level k is set iff a run of 2^k bits starts at i,
  given the same of level k - 1 at i and at i + 2^(k-1) (``doubled``);
- **search start**: every position ends a run of no bits, and no run is
  longer than 2^(top+1) - 1 (``search_start``);
- **search step j**: bit e of ``ends`` is set iff a run of ``length`` bits
  ends at e, and no run of ``length + 2^j`` bits starts anywhere, given the
  same before the step with ``length + 2^(j+1)``, at the positions the step
  reads (``search_step``; ``ends`` and ``length`` before it are fresh);
- **result**: the lemma, from the claims after the last step
  (``search_result``).

Each "for every position" is proved for a fresh position and assumed only
at the positions the step needs (which the universal claim implies), so a
query's unsat proves its claim everywhere.  Only an unsat for every query
proves the lemma; anything else leaves the circuit in the contracts'
queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import z3

from pcpuverify.proofs.blocks.instances import run_at
from pcpuverify.proofs.solver import Answer, SolverOptions, check_all
from pcpuverify.symbolic.bv import I, Int, bit, lowest_set
from pcpuverify.symbolic import longest_run as circuit  # its steps by name: the encoder's, whatever they are
from pcpuverify.symbolic.longest_run import RunCut


def free_run(free: z3.BitVecRef, start: Int, length: Int, n: int) -> z3.BoolRef:
    """A run of ``length`` set bits of ``free`` starts at ``start`` (a run of no bits: anywhere)."""
    return run_at(~free, start, length, n)


def spec_at(cut: RunCut, at: Sequence[Int]) -> z3.BoolRef:
    """The lemma of ``cut``'s (length, start), its universal claims at ``at`` and at ``start - 1``."""
    free, n, length, start = cut.free, cut.n, cut.length, cut.start
    found = z3.Or(length == 0, free_run(free, start, length, n))
    parts = [length >= 0, length <= n, found]
    for t in [*at, start - 1]:
        parts += [z3.Not(free_run(free, t, length + 1, n)),
                  z3.Implies(z3.And(length > 0, t < start), z3.Not(free_run(free, t, length, n)))]
    return z3.And(parts)


def _starts_at(free: z3.BitVecRef, starts: z3.BitVecRef, i: Int, length: int, n: int) -> z3.BoolRef:
    """Bit i of ``starts`` is set iff a run of ``length`` bits starts at i (for i in [0, n))."""
    return z3.Implies(z3.And(i >= 0, i < n), bit(starts, i, n) == free_run(free, i, I(length), n))


def _ends_at(free: z3.BitVecRef, ends: z3.BitVecRef, length: Int, e: Int, n: int) -> z3.BoolRef:
    """Bit e of ``ends`` is set iff a run of ``length`` bits ends at e (for e in [0, n])."""
    return z3.Implies(z3.And(e >= 0, e <= n),
                      bit(ends, e, n + 1) == z3.And(e >= length, free_run(free, e - length, length, n)))


def lemma_queries(n: int) -> list[tuple[str, list[z3.BoolRef]]]:
    """The lemma's queries for ``n``-bit maps, named; each is unsat when its step does what the lemma needs."""
    free = z3.BitVec("lemma.free", n)
    i, e, s = (z3.BitVec(f"lemma.{name}", 16) for name in ("i", "e", "s"))
    top = circuit.levels(n)
    queries = [("doubling 0", [z3.Not(_starts_at(free, free, i, 1, n))])]
    for k in range(1, top + 1):
        below, h = z3.BitVec(f"lemma.starts{k - 1}", n), 1 << (k - 1)
        assumed = [_starts_at(free, below, i, h, n), _starts_at(free, below, i + h, h, n)]
        queries.append((f"doubling {k}", [*assumed, z3.Not(_starts_at(free, circuit.doubled(below, k), i, 2 * h, n))]))
    ends, length = circuit.search_start(n)
    queries.append(("search start", [z3.Or(z3.Not(_ends_at(free, ends, length, e, n)), ends == 0,
                                           free_run(free, s, length + (2 << top), n))]))
    for j in reversed(range(top + 1)):
        ends, length = z3.BitVec(f"lemma.ends{j + 1}", n + 1), z3.BitVec(f"lemma.length{j + 1}", 16)
        starts, step = z3.BitVec(f"lemma.starts{j}", n), 1 << j
        taken = lowest_set(ends & z3.ZeroExt(1, starts), n + 1)  # where a grown run ends, if one does
        assumed = [length >= 0, length <= n, ends != 0, z3.Not(free_run(free, s, length + 2 * step, n)),
                   *(_ends_at(free, ends, length, at, n) for at in (e, e - step, s + length, taken)),
                   *(_starts_at(free, starts, at, step, n) for at in (e - step, s + length, taken))]
        after, grown = circuit.search_step(ends, length, starts, j)
        wrong = z3.Or(z3.Not(_ends_at(free, after, grown, e, n)), after == 0, grown < 0, grown > n,
                      free_run(free, s, grown + step, n))
        queries.append((f"search step {j}", [*assumed, wrong]))
    ends, length = z3.BitVec("lemma.ends0", n + 1), z3.BitVec("lemma.length0", 16)
    found, start = circuit.search_result(ends, length, n)
    lowest = lowest_set(ends, n + 1)
    assumed = [length >= 0, length <= n, ends != 0,
               *(_ends_at(free, ends, length, at, n) for at in (lowest, lowest - 1, s + length)),
               *(z3.Not(free_run(free, at, length + 1, n)) for at in (s, start - 1))]
    queries.append(("result", [*assumed, z3.Not(spec_at(RunCut(free, n, found, start), [s]))]))
    return queries


@dataclass(frozen=True)
class LemmaProof:
    """The lemma's queries at one size, answered: proved when every one is unsat."""

    n: int
    answers: tuple[Answer, ...]
    names: tuple[str, ...]

    @property
    def proved(self) -> bool:
        return all(a.status == "unsat" for a in self.answers)

    @property
    def seconds(self) -> float:
        return sum(a.seconds for a in self.answers)

    def to_json(self) -> dict[str, object]:
        undecided = [name for name, a in zip(self.names, self.answers, strict=True) if a.status != "unsat"]
        return {"status": "proved" if self.proved else "not proved", "queries": len(self.answers),
                "seconds": round(self.seconds, 3), "not unsat": undecided}


_PROOFS: dict[tuple[int, SolverOptions], LemmaProof] = {}


def prove_lemma(n: int, options: SolverOptions) -> LemmaProof:
    """The lemma at ``n`` bits, asked once per process and options (every contract at that size reuses it)."""
    key = (n, options)
    if key not in _PROOFS:
        queries = lemma_queries(n)
        answers = check_all([query for _, query in queries], options)
        _PROOFS[key] = LemmaProof(n, tuple(answers), tuple(name for name, _ in queries))
    return _PROOFS[key]
