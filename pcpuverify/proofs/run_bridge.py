"""The chunk's longest free run read off its blocks' metadata, where a lemma proves that the same as its bits.

Three invariants of the 2017 chunk hint (``invariants.hints.CHUNK_RUN_INVARIANTS``) ask whether the whole bitmap
has a free run of some length, before and after an operation.  Asked whole, their consecution queries bit-blast
that run circuit over every bit of the chunk twice, beside the transition, and they were the suite's slowest
from 128 bits on (``fixed``, Bitwuzla: ``chunk-contig-hint-exact-below-a-block`` 144.4 s for a free at 4x32;
``chunk-contig-hint-not-above-free-run``/alloc 305.5 s at 4x64; docs/design.md, "Solvers").

While ``block-hints-match-scan`` holds (each block's ``contig_hint``, ``left_free`` and ``right_free`` are those
of its bits), a free run of at least L bits exists exactly when L is at most
``proofs.blocks.abstraction.longest_run`` of the blocks' metadata: a run lies in one block, or it is one block's
right edge, whole free blocks and the next one's left edge.  **The bridge** is that lemma, for every L, proved
once per geometry and process (Bitwuzla: 4.5 s at 4x32, 27.5 s at 4x64).  Then the query is asked over the metadata:

- before the operation, each of the three held is stated over the metadata (the same, by the bridge, since
  ``block-hints-match-scan`` is held too);
- after it, ``block-hints-match-scan`` is assumed, and the target is broken over the metadata, each of its
  conjuncts a query of its own (``conjuncts``).

Why proofs of those queries are a proof of the whole one: a model of the whole query satisfies the first point
through the bridge; it satisfies ``block-hints-match-scan`` after the operation because that invariant's own
query in the same Houdini round, asked under the same assumptions, was unsat, whole or by ``scan_instances``' parts
(the caller asks this only then); and by the bridge again the target is broken over the metadata, so one of its
conjuncts is.  So with the bridge proved, unsat answers here are one for the whole query.  Anything else, and the
whole query is asked: the bridge proves, it never refutes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from pcpuverify.invariants.base import Invariant
from pcpuverify.invariants.hints import CHUNK_RUN_INVARIANTS, Runs, map_runs
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.blocks.abstraction import longest_run
from pcpuverify.proofs.solver import Answer, SolverOptions, check_all
from pcpuverify.symbolic.bv import INT_W
from pcpuverify.symbolic.state import SymChunk, fresh_chunk

BLOCKS_EXACT = "block-hints-match-scan"  # what the bridge assumes of a chunk, before and after


@dataclass(frozen=True)
class Bridge:
    """Whether the bridge is proved at one geometry, in how long, and the solver's answer."""

    proved: bool
    seconds: float
    answer: Answer


_proved: dict[tuple[int, int, SolverOptions], Bridge] = {}


def metadata_runs(chunk: SymChunk) -> Runs:
    """Runs read off the blocks' metadata: at least ``length`` bits when ``length`` is at most their longest."""
    longest = longest_run(chunk.md_blocks, chunk.geometry.block_bits)
    return lambda length: length <= longest


def bridge(geometry: Geometry, blocks_exact: Invariant, solver: SolverOptions) -> Bridge:
    """For every chunk of ``geometry`` whose blocks match their bits, and every L: ``map_runs`` and
    ``metadata_runs`` agree on L.  Proved (unsat) or not, once per process."""
    key = (geometry.block_bits, geometry.nr_pages, solver)
    if key not in _proved:
        chunk = fresh_chunk(geometry, "bridge")
        length = z3.BitVec("bridge.length", INT_W)
        answer = check_all([[blocks_exact.z3(chunk),
                             map_runs(chunk)(length) != metadata_runs(chunk)(length)]], solver)[0]
        _proved[key] = Bridge(answer.status == "unsat", answer.seconds, answer)
    return _proved[key]


def applies(inv: Invariant, held: list[Invariant]) -> bool:
    """Whether ``inv``'s query may be asked over the metadata: one of the three, with the blocks' invariant held.

    At every width: the metadata's queries were the faster from 8 bits on (``fixed``, 1x8 and 2x8 suites)."""
    return inv.name in CHUNK_RUN_INVARIANTS and any(h.name == BLOCKS_EXACT for h in held)


def conjuncts(claim: z3.BoolRef) -> list[z3.BoolRef]:
    """``claim`` as the conjunction of the returned claims: an ``And`` by its parts, and ``a -> (b and c)`` as
    ``a -> b`` and ``a -> c``, all the way down."""
    if z3.is_and(claim):
        return [part for child in claim.children() for part in conjuncts(child)]
    if z3.is_implies(claim):
        guard, body = claim.children()
        return [z3.Implies(guard, part) for part in conjuncts(body)]
    return [claim]


def prove(invs: list[Invariant], held: list[Invariant], pre: SymChunk, post: SymChunk, side: list[z3.BoolRef],
          holds: Callable[[Invariant], z3.BoolRef], solver: SolverOptions) -> dict[str, Answer]:
    """The unsat answers of ``invs``' consecution queries (each one that ``applies``), asked over the metadata;
    an invariant left out is to be asked whole.

    Only for a round whose ``block-hints-match-scan`` query was unsat, under the same assumptions (the module's
    docstring says why).  ``side`` is the queries' assumptions but the invariants (well-formedness, the
    operation's precondition and unrolling, no stray write); ``holds(i)`` is invariant ``i`` on ``pre``.
    Each conjunct of a target is a query of its own (``conjuncts``): at 4x32, ``exact-below-a-block``'s three
    took 22.6 s together for an allocation, where the one query they replace took 45 to 65 s."""
    assert all(applies(inv, held) for inv in invs)
    if not invs:
        return {}
    blocks_exact = next(h for h in held if h.name == BLOCKS_EXACT)
    proved = bridge(pre.geometry, blocks_exact, solver)
    if not proved.proved:
        return {}
    runs = metadata_runs(pre)
    given = [*side, *[CHUNK_RUN_INVARIANTS[i.name](pre, runs) if i.name in CHUNK_RUN_INVARIANTS else holds(i)
                      for i in held], blocks_exact.z3(post)]
    after = metadata_runs(post)
    parts = {inv.name: conjuncts(CHUNK_RUN_INVARIANTS[inv.name](post, after)) for inv in invs}
    answers = iter(check_all([[*given, z3.Not(part)] for inv in invs for part in parts[inv.name]], solver))
    bridge_time = {"run bridge (once per geometry)": {"status": "unsat", "seconds": round(proved.seconds, 3)}}
    out = {}
    for inv in invs:
        each = [next(answers) for _ in parts[inv.name]]
        if all(a.status == "unsat" for a in each):
            times = {f"{name} (runs from the blocks, part {k + 1} of {len(each)})": t
                     for k, a in enumerate(each) for name, t in a.times.items()}
            out[inv.name] = Answer("unsat", sum(a.seconds for a in each), times=times | bridge_time,
                                   solver=f"{'+'.join(sorted({a.solver for a in each}))} (runs from the blocks)")
    return out
