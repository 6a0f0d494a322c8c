"""The proof suite for one variant and geometry: conformance, initiation, consecution, bounded model checking.

Initiation covers a new chunk (symbolically, for every set of populated
pages) and the first chunk (exhaustively, for every admissible layout).

Consecution uses the conjunction of the invariants as the strengthening,
but only of those that hold: a Houdini loop drops every invariant whose
initiation or consecution fails until the rest is inductive, so a PROVED
never rests on an invariant the allocator breaks.  Each dropped invariant is
then searched for from the initial chunk by bounded model checking: a
reachable violation that replays on ``model/`` is VIOLATED; so is a known
trace (a witness) carried to this variant and geometry that replays; with
neither, random walks on ``model/`` look for one beyond that depth
(``row_search.py``, ``search_walks`` of them, seeded); then one breadth-first
search on ``model/`` serves every state invariant's row still open
(``breadth_first.py``, up to ``search_states`` states); then a row still open
is asked again with a closed set of block states (and of ``chunk_md``'s hints)
added to its strengthening (``block_states.py``, up to ``block_states`` of
each); with none of that settling it,
it stays NOT-INDUCTIVE with its counterexample to induction, and with where
Houdini dropped it (``houdini_drop``: the round, the operation, the invariants
dropped before it, and the counterexample to induction of that query, which
assumed all the others: what a lemma written for the row has to rule out).

State invariants are judged over steps that write nothing outside their
arrays: a stray write has undefined effects in C, and is itself reported by
``bitmap-access-in-bounds``.  Stray reads see zeros, as in ``model/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import z3

from pcpuverify.counterexamples import breadth_first
from pcpuverify.counterexamples.breadth_first import Obligation
from pcpuverify.counterexamples.explore import new_chunks
from pcpuverify.counterexamples.row_search import search, walk_states
from pcpuverify.counterexamples.witness import Witness, carry
from pcpuverify.invariants.base import Invariant
from pcpuverify.invariants.check import first_violation, invariants_for
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, Op, op_to_json
from pcpuverify.model.trace import Trace
from pcpuverify.model.reference import Reference
from pcpuverify.proofs import hint_reach, popcount_steps, run_bridge, scan_instances
from pcpuverify.proofs.block_states import (BlockState, Closure, HintState, block_fields, block_states_of,
                                           chunk_md_states_of, close, joined, within)
from pcpuverify.proofs.children import Later, run_all
from pcpuverify.proofs.conformance import model_fields, quick_conformance
from pcpuverify.proofs.initiation import first_chunk_initiation
from pcpuverify.proofs.obligations import (
    OPS,
    Transition,
    concrete_op,
    concrete_populated,
    concrete_state,
    initial_chunk,
    transition,
)
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.slicing import Cone
from pcpuverify.proofs.solver import Answer, SolverOptions, check, check_all
from pcpuverify.proofs.termination import stop_if_terminated, stopping
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.state import SymChunk
from pcpuverify.symbolic.subjects import subject

# Each level of depth unrolls one more transition into every bounded query: the deepest finding known is 8
# operations (3 blocks), depth 8 at 2x8 takes minutes per suite, and 100000 only ran out of memory.
MAX_DEPTH = 32
# random walks on model/ whose states seed the closed sets (block_states.py), beside the new chunks and the
# breadth-first search's: the solver finds each state missing from the seeds in a query of its own.  mainline at
# 2x8: 20,000 walks (21 s) meet 1,303 of the 3,114 block states and 2,676 of chunk_md's 4,259 hint states, and the
# closure took 1,195 s where it took 1,451 s without them; at 1x8 they take 16 s
SEED_WALKS = 20_000
# and, where block_states.py joins chunk_md's hints with the one block, a breadth-first search over the bits and
# hints (hint_reach.py) of at most this many states: mainline at 1x8 reaches its fixpoint at 341,068 (about 80 s),
# whose 18,063 joined states are the whole closed set; the walks above meet 2,168 of them
REACH_STATES = 1_000_000


@dataclass(frozen=True)
class SuiteOptions:
    solver: SolverOptions = field(default_factory=SolverOptions)
    depth: int = 4  # bounded model checking depth (operations from a new chunk)
    # random walks on model/ for a row bounded model checking and the witnesses leave NOT-INDUCTIVE (row_search.py).
    # mainline at 1x8, depth 3: four of its rows were found within 300 walks, a fifth only after 17,234; a
    # fruitless search of 2,000 walks takes about 2 s there
    search_walks: int = 2000
    # then one breadth-first search on model/ for the state invariants' rows still open, up to this many distinct
    # states (breadth_first.py); 0: none.  mainline at 1x8: 99,699 states in 154 s, every trace of 8 operations,
    # which finds gallery 15's five 8-operation rows from scratch
    search_states: int = 100_000
    # then the rows still open asked again under closed sets of at most this many block states and chunk_md hints
    # (block_states.py); 0: none.  mainline at 1x8: 2,829 block states and 18,063 joined with chunk_md's hints, seeded
    # by hint_reach.py (77 s) and closed in 187 s (one core): all 7 of its open rows PROVED
    block_states: int = 0
    conformance_steps: int = 60
    # consecution queries first with the strengthening sliced to their cone of influence (slicing.py); like
    # jobs, left out of to_json: it changes how long a suite takes, never a verdict
    slicing: bool = True

    def to_json(self) -> dict[str, object]:
        return {**self.solver.to_json(), "depth": self.depth, "search_walks": self.search_walks,
                "search_states": self.search_states, "block_states": self.block_states,
                "conformance_steps": self.conformance_steps}


Progress = Callable[[Result], None]


@dataclass(frozen=True)
class Breach:
    """How an invariant is broken by one transition, and how it is kept by a prefix of them."""

    inv: Invariant

    def at(self, pre: SymChunk, t: Transition) -> z3.BoolRef:
        """``t`` from ``pre`` breaks the invariant (a state one: in a state a stray write left meaningful)."""
        if self.inv.kind == "state":
            return z3.And(z3.Not(t.step.post.oob_write), z3.Not(self.inv.z3(t.step.post)))
        if self.inv.reads_post_state:
            return z3.And(z3.Not(t.step.post.oob_write), z3.Not(self.inv.z3(pre, t.op, t.step)))
        return z3.Not(self.inv.z3(pre, t.op, t.step))

    def kept(self, bmc: Bmc, steps: int) -> list[z3.BoolRef]:
        """The invariant holds through the first ``steps`` operations of ``bmc``."""
        if self.inv.kind == "state":
            return [self.inv.z3(state) for state in bmc.states[: steps + 1]]
        return [
            z3.Implies(sel == i, z3.Not(self.at(bmc.states[k], t)))
            for k, (sel, ts) in enumerate(bmc.choices[:steps])
            for i, t in enumerate(ts.values())
        ]


class Bmc:
    """Bounded model checking from a new chunk: a prefix of free operations, then one of a given kind."""

    def __init__(self, enc: SymPercpu, options: SuiteOptions) -> None:
        self.enc, self.options = enc, options
        self.populated = z3.BitVec("init.populated", enc.g.nr_pages)
        self.states: list[SymChunk] = [initial_chunk(enc, self.populated)]
        self.constraints: list[z3.BoolRef] = []
        self.choices: list[tuple[z3.BitVecRef, dict[str, Transition]]] = []  # step k: its kind, its transitions

    def _extend(self) -> None:
        k = len(self.states)
        pre = self.states[-1]
        kind = z3.BitVec(f"bmc{k}.kind", 2)
        ts = {name: transition(self.enc, name, pre, f"bmc{k}.{name}") for name in OPS}
        post = ts[OPS[0]].step.post
        for i, name in enumerate(OPS[1:], start=1):
            post = ts[name].step.post.merge(kind == i, post)
        self.constraints.append(
            z3.Or(*[z3.And(kind == i, t.precondition, z3.Not(t.step.post.oob_write), t.step.unrolled)
                    for i, t in enumerate(ts.values())])
        )
        self.states.append(post)
        self.choices.append((kind, ts))

    def search(self, kinds: list[str], breach: Breach, solver: SolverOptions | None = None) -> dict[str, Search]:
        """For each of ``kinds``, the shortest trace whose last operation, of that kind, first breaks.

        ``solver``: who answers (default: the suite's), e.g. one worker where searches run side by side.

        Iterative deepening with the last kind left open: one unsat query
        settles a depth for every kind still looked for.
        """
        solver = solver or self.options.solver
        remaining, found, seconds = list(kinds), {}, 0.0
        asked: list[dict[str, object]] = []  # who answered each query, in order
        for depth in range(1, self.options.depth + 1):
            while len(self.states) < depth:
                self._extend()
            pre = self.states[depth - 1]
            while remaining:
                sel = z3.BitVec(f"bmc{depth}.last.kind", 2)
                ts = {k: transition(self.enc, k, pre, f"bmc{depth}.last.{k}") for k in remaining}
                last = z3.Or(*[z3.And(sel == i, t.precondition, t.step.unrolled, breach.at(pre, t))
                               for i, t in enumerate(ts.values())])
                answer = check([*self.constraints[: depth - 1], *breach.kept(self, depth - 1), last], solver)
                seconds += answer.seconds
                asked.append({"depth": depth, **answer.to_json()})
                if answer.status == "unknown":
                    return {**found, **{k: Search(depth, None, (), answer, seconds, tuple(asked)) for k in remaining}}
                if answer.status == "unsat":
                    break
                model = answer.model
                assert model is not None
                kind = remaining[model.eval(sel, True).as_long()]
                ops = [concrete_op(model, choices[OPS[model.eval(k_sel, True).as_long()]].op)
                       for k_sel, choices in self.choices[: depth - 1]]
                ops.append(concrete_op(model, ts[kind].op))
                found[kind] = Search(depth, model, tuple(ops), None, seconds, tuple(asked))
                remaining.remove(kind)
        return {**found, **{k: Search(self.options.depth, None, (), None, seconds, tuple(asked)) for k in remaining}}


@dataclass(frozen=True)
class Search:
    """What bounded model checking found for one kind of last operation."""

    depth: int  # the depth of the trace, or the depth searched in vain
    model: z3.ModelRef | None
    ops: tuple[Op, ...]
    unknown: Answer | None  # the solver's unknown answer that stopped the search
    seconds: float
    solvers: tuple[dict[str, object], ...]  # who answered each of the search's queries


def run_suite(
    variant: str,
    geometry: Geometry,
    options: SuiteOptions | None = None,
    invariants: set[str] | None = None,
    ops: set[str] | None = None,
    progress: Progress | None = None,
    witnesses: Sequence[Witness] = (),
) -> list[Result]:
    """Every obligation for ``variant`` on ``geometry``; ``invariants``/``ops`` select which rows to report.

    ``witnesses`` are tried, carried to ``variant`` and ``geometry``, where
    bounded model checking finds no violation within its depth.

    With ``options.solver.jobs`` > 1, the work that needs no solver (conformance, the first chunk's
    initiation) runs in child processes beside the solver's from the start, and the invariants whose
    consecution needs more than the Houdini round (a dropped one, a step invariant) are settled in
    parallel, their rows reported (``progress``) as they settle.  The rows returned, and their order,
    are those of one worker.
    """
    options = options or SuiteOptions()
    background = options.solver.jobs > 1
    # the release variants port no first-chunk setup: no first-chunk initiation rows
    ports_first_chunk = subject(variant).model.ports_first_chunk
    started: list[Later[Any]] = []  # cancelled however we leave, even between the two forks
    try:
        conformance = Later(partial(quick_conformance, variant, geometry, options.conformance_steps,
                                    options.solver.seed), background)
        started.append(conformance)
        first_chunk: Later[list[Result]] = Later(
            partial(first_chunk_initiation, variant, geometry, invariants, options.solver.jobs) if ports_first_chunk
            else partial(list), background and ports_first_chunk)
        started.append(first_chunk)
        return _suite(variant, geometry, options, invariants, ops, progress, witnesses, conformance, first_chunk)
    finally:
        for later in started:
            later.cancel()


def _suite(variant: str, geometry: Geometry, options: SuiteOptions, invariants: set[str] | None,
           ops: set[str] | None, progress: Progress | None, witnesses: Sequence[Witness],
           conformance: Later[str | None], first_chunk: Later[list[Result]]) -> list[Result]:
    shown: set[Obligation] = set()  # the rows reported: a suite stopped reports those it held back, once

    def report(r: Result) -> None:
        stop_if_terminated()  # a row settled: where a SIGTERM whose exception was lost stops the suite
        shown.add((r.invariant, r.op))
        if progress is not None:
            progress(r)

    wanted_inv = (lambda name: invariants is None or name in invariants)
    wanted_ops = [k for k in OPS if ops is None or k in ops]
    results: list[Result] = []

    def emit(r: Result) -> None:
        results.append(r)
        report(r)

    def row(inv: str, op: str, verdict: Verdict, seconds: float, detail: str = "",
            cti: dict[str, object] | None = None, depth: int | None = None, answer: Answer | None = None) -> Result:
        return Result(variant, geometry.name, inv, op, verdict, seconds, detail=detail, cti=cti, depth=depth,
                      extra={} if answer is None else answer.to_json())

    encoding = subject(variant).require_encoding()
    # the invariants of the subject's chunk layout (invariants/applicability.py)
    layout_invs = invariants_for(encoding.chunk_layout)
    state_invs = [i for i in layout_invs if i.kind == "state" and i.z3 is not None]
    step_invs = [i for i in layout_invs if i.kind == "step"]

    def nonconformant() -> bool:
        """Every row NONCONFORMANT when the encoding disagrees with ``model/``: nothing is proved."""
        mismatch = conformance.result()
        if mismatch is not None:
            for inv in [*state_invs, *step_invs]:
                if wanted_inv(inv.name):
                    for op in ["init", *wanted_ops] if inv.kind == "state" else wanted_ops:
                        emit(row(inv.name, op, Verdict.NONCONFORMANT, 0.0, detail=mismatch))
        return mismatch is not None

    if not conformance.background and nonconformant():  # in the background, asked before the first row
        return results

    enc = encoding(geometry)
    bmc = Bmc(enc, options)
    init = bmc.states[0]

    # initiation
    held: list[Invariant] = []
    init_rows: dict[str, Result] = {}
    for inv, ans in zip(state_invs, check_all([[z3.Not(inv.z3(init))] for inv in state_invs], options.solver)):
        if ans.status == "unsat":
            init_rows[inv.name] = row(inv.name, "init", Verdict.PROVED, ans.seconds, answer=ans)
            held.append(inv)
        elif ans.status == "unknown":
            init_rows[inv.name] = row(inv.name, "init", Verdict.UNKNOWN, ans.seconds, detail=ans.reason, answer=ans)
        else:
            assert ans.model is not None
            g = concrete_populated(ans.model, bmc.populated, geometry)
            init_rows[inv.name] = _replayed(variant, g, inv.name, [], ans.seconds, "init", ans.to_json())

    def initiation() -> None:
        for inv in state_invs:
            if wanted_inv(inv.name):
                emit(init_rows[inv.name])
        for r in first_chunk.result():
            emit(r)

    if not conformance.background:  # conformance held: report them now, as far as a suite cut short gets
        initiation()

    # Houdini: drop invariants until the rest is inductive for every operation
    pre = enc.fresh_chunk("pre")
    trans = {kind: transition(enc, kind, pre, "op") for kind in OPS}

    on_pre: dict[str, z3.BoolRef] = {}  # each invariant's predicate on ``pre``, built once for every query
    well_formed = enc.well_formed(pre)

    def holds(inv: Invariant) -> z3.BoolRef:
        if inv.name not in on_pre:
            on_pre[inv.name] = inv.z3(pre)
        return on_pre[inv.name]

    def assumptions(kind: str, invs: list[Invariant]) -> list[z3.BoolRef]:
        t = trans[kind]
        return [well_formed, *[holds(i) for i in invs], t.precondition, t.step.unrolled]

    cone = Cone()

    def consecution_answers(asked: list[tuple[str, list[Invariant], list[z3.BoolRef], z3.BoolRef]],
                            solver: SolverOptions) -> list[Answer]:
        """Each (operation, strengthening, side conditions, target) query: first with the strengthening sliced
        to the target's cone of influence (``slicing.py``), then, where that is not unsat, with all of it."""
        slices = [cone.slice(target, invs, holds) if options.slicing else invs for _, invs, _, target in asked]
        answers = check_all([[*assumptions(kind, part), *side, target]
                             for (kind, _, side, target), part in zip(asked, slices)], solver)
        again = [i for i, (a, part) in enumerate(zip(answers, slices)) if a.status != "unsat" and part != asked[i][1]]
        for i, full in zip(again, check_all([[*assumptions(asked[i][0], asked[i][1]), *asked[i][2], asked[i][3]]
                                             for i in again], solver)):
            answers[i] = replace(full, seconds=answers[i].seconds + full.seconds,
                                 times={f"{k} (sliced)": v for k, v in answers[i].times.items()} | full.times)
        return answers

    def asked_whole(kind: str, invs: list[Invariant]) -> dict[str, Answer]:
        """Houdini's whole consecution queries of one operation under the invariants held, by invariant."""
        post = trans[kind].step.post
        return dict(zip([inv.name for inv in invs], consecution_answers(
            [(kind, held, [z3.Not(post.oob_write)], z3.Not(inv.z3(post))) for inv in invs], options.solver)))

    instance_parts: dict[str, list[scan_instances.Part]] = {}  # each operation's, built once

    def at_instances(kind: str, inv: Invariant) -> Answer | None:
        """``inv``'s unsat answer by ``scan_instances``' route, or None: ask it whole."""
        if not scan_instances.applies(inv, kind, pre):
            return None
        post = trans[kind].step.post
        if kind not in instance_parts:
            instance_parts[kind] = scan_instances.parts(pre, post)
        parts = instance_parts[kind]
        others = [h for h in held if h is not inv]
        return scan_instances.combined(parts, consecution_answers(
            [(kind, others, [z3.Not(post.oob_write), *p.given], p.negation) for p in parts], options.solver))

    fresh = (enc.fresh_chunk("popcount.before"), enc.fresh_chunk("popcount.after"))  # popcount_steps' own
    consecution: dict[tuple[str, str], Answer] = {}
    dropped: dict[str, dict[str, object]] = {}  # each dropped invariant: where Houdini dropped it (``_drop``)
    rounds = 0
    while True:
        again = False
        rounds += 1
        for kind in OPS:
            # one operation's queries share their assumptions, so they are independent: solved as one batch
            post = trans[kind].step.post
            batch = list(held)
            routed = {inv.name: a for inv in batch if (a := popcount_steps.prove(
                inv, kind, pre, trans[kind], [*assumptions(kind, held), z3.Not(post.oob_write)], fresh,
                options.solver)) is not None}
            routed |= {inv.name: a for inv in batch if (a := at_instances(kind, inv)) is not None}
            # the chunk's longest-run invariants over the blocks' metadata, once the blocks' own query is unsat
            bridged = [inv for inv in batch if inv.name not in routed and run_bridge.applies(inv, held)]
            whole = [inv for inv in batch if inv.name not in routed and inv not in bridged]
            asked = routed | asked_whole(kind, whole)
            if bridged and asked[run_bridge.BLOCKS_EXACT].status == "unsat":
                t = trans[kind]
                asked |= run_bridge.prove(bridged, held, pre, post, [well_formed, t.precondition, t.step.unrolled,
                                                                     z3.Not(post.oob_write)], holds, options.solver)
            asked |= asked_whole(kind, [inv for inv in bridged if inv.name not in asked])
            answers = [asked[inv.name] for inv in batch]
            without = list(dropped)  # what the whole batch did not assume
            for inv, ans in zip(batch, answers):
                consecution[(inv.name, kind)] = ans
                if ans.status != "unsat":
                    held.remove(inv)
                    dropped[inv.name] = _drop(rounds, kind, without, ans, pre, trans[kind])
                    again = True
        if not again:
            break

    # sanity of the assumptions under the final strengthening: satisfiable, unrolling sufficient
    sanity: dict[str, tuple[Verdict, str] | None] = {}
    pairs = check_all([q for kind in wanted_ops for q in
                       (assumptions(kind, held), [*assumptions(kind, held)[:-1], z3.Not(trans[kind].step.unrolled)])],
                      options.solver)
    for kind, vac, unroll in zip(wanted_ops, pairs[::2], pairs[1::2]):
        if vac.status != "sat":
            sanity[kind] = (Verdict.VACUOUS if vac.status == "unsat" else Verdict.UNKNOWN, "assumptions unsatisfiable")
        elif unroll.status != "unsat":
            sanity[kind] = (Verdict.UNKNOWN, "pcpu_find_block_fit unrolling bound not shown sufficient")
        else:
            sanity[kind] = None

    if conformance.background:  # computed beside Houdini: asked for before the first row is reported
        if nonconformant():
            return results
        initiation()

    def consecution_rows(inv: Invariant, strengthening: list[Invariant], solver: SolverOptions) -> list[Result]:
        """Consecution of ``inv`` per operation; each failure searched for from a new chunk."""
        breach = Breach(inv)
        asked = [kind for kind in wanted_ops if sanity[kind] is None]
        answers: dict[str, Answer] = dict(zip(asked, consecution_answers(
            [(kind, strengthening, [], breach.at(pre, trans[kind])) for kind in asked], solver)))
        failing = [k for k, a in answers.items() if a.status == "sat"]
        searched = bmc.search(failing, breach, solver) if failing else {}
        rows = []
        for kind in wanted_ops:
            bad = sanity[kind]
            if bad is not None:
                rows.append(row(inv.name, kind, bad[0], 0.0, detail=bad[1]))
                continue
            ans = answers[kind]
            if ans.status == "unsat":
                rows.append(row(inv.name, kind, Verdict.PROVED, ans.seconds, answer=ans))
                continue
            if ans.status == "unknown":
                rows.append(row(inv.name, kind, Verdict.UNKNOWN, ans.seconds, detail=ans.reason, answer=ans))
                continue
            assert ans.model is not None
            cti = _cti(ans.model, pre, trans[kind])
            found = searched[kind]
            seconds = ans.seconds + found.seconds
            extra = {**ans.to_json(), "bmc": list(found.solvers)}
            if inv.name in dropped:
                extra["houdini_drop"] = dropped[inv.name]
            if found.unknown is not None:
                rows.append(replace(row(inv.name, kind, Verdict.UNKNOWN, seconds, cti=cti,
                                        detail=f"bounded check at depth {found.depth}: {found.unknown.reason}"),
                                    extra=extra))
            elif found.model is None:
                rows.append(replace(_beyond_depth(variant, geometry, inv.name, kind, found.depth, seconds, cti,
                                                  witnesses, options), extra=extra))
            else:
                g = concrete_populated(found.model, bmc.populated, geometry)
                rows.append(_replayed(variant, g, inv.name, list(found.ops), seconds, kind, extra))
        return rows

    # each invariant's consecution rows: settled by Houdini, or by their own queries (``tail``)
    settled: list[list[Result]] = []
    tail: list[tuple[int, Invariant, list[Invariant]]] = []
    for inv in state_invs:
        if not wanted_inv(inv.name):
            continue
        if inv.name not in dropped and init_rows[inv.name].verdict is Verdict.PROVED:
            settled.append([])
            for kind in wanted_ops:
                bad = sanity[kind]
                seconds = consecution[(inv.name, kind)].seconds
                answer = consecution[(inv.name, kind)]
                settled[-1].append(row(inv.name, kind, bad[0], seconds, detail=bad[1]) if bad is not None
                                   else row(inv.name, kind, Verdict.PROVED, seconds, answer=answer))
                report(settled[-1][-1])
        else:
            tail.append((len(settled), inv, [*held, inv]))
            settled.append([])
    for inv in step_invs:
        if wanted_inv(inv.name):
            tail.append((len(settled), inv, held))
            settled.append([])

    # independent of each other: in parallel, one worker each (or, for fewer than the workers, all of them)
    jobs = min(options.solver.jobs, len(tail))
    each = replace(options.solver, jobs=1) if jobs > 1 else options.solver

    searchable = {inv.name for inv in state_invs}

    def searched_row(r: Result) -> bool:
        return r.verdict is Verdict.NOT_INDUCTIVE and r.invariant in searchable and options.search_states > 0

    def open_row(r: Result) -> bool:
        """Left to the breadth-first search or the block states: reported once they have run."""
        return searched_row(r) or r.verdict is Verdict.NOT_INDUCTIVE and options.block_states > 0

    def done(i: int, rows: list[Result]) -> None:
        settled[tail[i][0]] = rows
        for r in rows:
            if not open_row(r):
                report(r)

    seeds: set[BlockState] = set()  # the block states the model reached: where the closed set starts
    hint_seeds: set[HintState] = set()  # and chunk_md's hints there

    def seed_values(values: dict[str, Any]) -> None:
        seeds.update(block_states_of(values, geometry, block_fields(pre)))
        hint_seeds.update(chunk_md_states_of(values, geometry, block_fields(pre)))

    def seed(ref: Reference) -> None:
        seed_values(model_fields(ref))

    def houdini_under(inside: z3.BoolRef, kept: list[Invariant]) -> list[Invariant]:
        """Houdini from ``kept`` with the closed sets assumed: what it keeps of ``kept``.  ``held``
        is inductive with fewer assumptions, so it stays; only the others are asked."""
        while True:
            candidates = [inv for inv in kept if inv not in held]
            failing: set[str] = set()
            for kind in OPS:
                post = trans[kind].step.post
                answers = consecution_answers([(kind, kept, [z3.Not(post.oob_write), inside], z3.Not(inv.z3(post)))
                                               for inv in candidates], options.solver)
                failing |= {inv.name for inv, ans in zip(candidates, answers) if ans.status != "unsat"}
            if not failing:
                return kept
            kept = [inv for inv in kept if inv.name not in failing]

    def closed_together(broken: set[str]) -> tuple[Closure, list[Invariant]]:
        """A closed set of block states and a strengthening, inductive together: from every invariant whose
        initiation holds and that no trace breaks (``broken``), the set is grown relative to the invariants
        kept, then Houdini drops those not inductive under it; until Houdini drops none.  The set only grows
        and the invariants only shrink, so it ends; each closure starts from the last set."""
        kept = [*held, *[inv for inv in state_invs if inv.name in dropped and inv.name not in broken]]
        states, hints, added, seconds = set(seeds), set(hint_seeds), [], 0.0
        while True:
            steps = {kind: ([*assumptions(kind, kept), z3.Not(trans[kind].step.post.oob_write)],
                            trans[kind].step.post) for kind in OPS}
            closure = close(pre, steps, states, hints, options.block_states, options.solver.timeout)
            added += closure.added
            seconds += closure.seconds
            closure = replace(closure, added=tuple(added), seconds=seconds)
            if closure.failed:
                return closure, kept
            again = houdini_under(within(pre, closure.states, closure.hints), kept)
            if again == kept:
                return closure, kept
            kept, states, hints = again, set(closure.states), set(closure.hints)

    def under_block_states(rows: list[Result], broken: set[str]) -> dict[Obligation, Result]:
        """``rows`` asked again with the closed sets and the strengthening kept with them: PROVED
        where unsat, with the sets' initiation and every operation's assumptions shown satisfiable first."""
        for ref in new_chunks(variant, geometry):
            seed(ref)
        walked = time.perf_counter()
        steps = walk_states(variant, geometry, SEED_WALKS, options.solver.seed, seed)
        walks = {"walks": SEED_WALKS, "steps": steps, "seconds": round(time.perf_counter() - walked, 3)}
        reached: dict[str, object] = {}
        if joined(geometry) and hasattr(pre, "chunk_md"):  # the joined set is too large to grow from the walks
            started = time.perf_counter()
            searched = hint_reach.reach(variant, geometry, REACH_STATES,
                                        lambda key: seed_values(hint_reach.values(key)))
            reached = {**searched._asdict(), "seconds": round(time.perf_counter() - started, 3)}
        closure, kept = closed_together(broken)
        summary = {"states": len(closure.states), "chunk_md_hints": len(closure.hints), "added": list(closure.added),
                   "seconds": round(closure.seconds, 3), "seed_walks": walks, "seed_reach": reached,
                   "failed": closure.failed, "regained": [inv.name for inv in kept if inv not in held]}
        inside = within(pre, closure.states, closure.hints)
        why = closure.failed
        if not why:  # the sets hold every new chunk; each operation's unrolling suffices and its assumptions hold
            asked = [[z3.Not(within(init, closure.states, closure.hints))]]
            for kind in OPS:
                asked += [[*assumptions(kind, kept), inside],
                          [*assumptions(kind, kept)[:-1], inside, z3.Not(trans[kind].step.unrolled)]]
            initiated, *rest = check_all(asked, options.solver)
            if initiated.status != "unsat":
                why = f"a new chunk outside the set ({initiated.status})"
            for kind, vac, unroll in zip(OPS, rest[::2], rest[1::2]):
                if not why and (vac.status != "sat" or unroll.status != "unsat"):
                    why = f"{kind}: assumptions {vac.status}, unrolling bound {unroll.status}"
        if why:
            return {(r.invariant, r.op): replace(r, extra={**r.extra, "block_states": summary},
                                                 detail=_also(r.detail, f"no closed set of block states: {why}"))
                    for r in rows}
        by_name = {inv.name: inv for inv in [*state_invs, *step_invs]}
        answers = check_all([[*assumptions(r.op, [*kept, by_name[r.invariant]] if r.invariant in searchable
                                           else kept), inside, Breach(by_name[r.invariant]).at(pre, trans[r.op])]
                             for r in rows], options.solver)
        regained = summary["regained"]
        under = f"under {closure.describe()}" + (f", with {len(regained)} dropped invariants kept again under it"
                                                 if regained else "")
        out = {}
        for r, ans in zip(rows, answers):
            extra = {**r.extra, "block_states": summary, "under_block_states": ans.to_json()}
            out[(r.invariant, r.op)] = (
                replace(r, verdict=Verdict.PROVED, seconds=r.seconds + ans.seconds, extra=extra, cti=None,
                        detail=under) if ans.status == "unsat"
                else replace(r, extra=extra, detail=_also(r.detail, f"not {under} ({ans.status})"),
                             # the counterexample to induction the sets leave, not the one they were asked for
                             cti=_cti(ans.model, pre, trans[r.op]) if ans.model is not None else r.cti))
        return out

    final: dict[Obligation, Result] = {}  # the rows held back for the later stages, as those settle them
    stage = "before the breadth-first search and the closed sets had run"  # where a stop finds the rows

    def stopped() -> None:
        """Ctrl-C or SIGTERM: the rows held back for a later stage are reported as they stand, not lost."""
        if progress is None:
            return
        for rows in settled:
            for r in rows:
                if open_row(r) and (r.invariant, r.op) not in shown:
                    r = final.get((r.invariant, r.op), r)
                    progress(r if r.verdict is not Verdict.NOT_INDUCTIVE else
                             replace(r, detail=_also(r.detail, f"stopped {stage}")))

    try:
        run_all([partial(consecution_rows, inv, strengthening, each) for _, inv, strengthening in tail], jobs, done)
        left = [r for rows in settled for r in rows if open_row(r)]
        final |= {(r.invariant, r.op): r for r in left}
        bfs_rows = [r for r in left if searched_row(r)]
        if bfs_rows:
            stage = "during the breadth-first search"
            final |= _breadth_first(variant, geometry, bfs_rows, options.search_states,
                                    seed if options.block_states > 0 else None)
        still = [r for r in final.values() if r.verdict is Verdict.NOT_INDUCTIVE]
        if still and options.block_states > 0:
            stage = "while the closed sets were grown"
            final |= under_block_states(still, {r.invariant for r in [*(r for rows in settled for r in rows),
                                                                       *final.values()]
                                                if r.verdict is Verdict.VIOLATED})
        for r in left:
            report(final[(r.invariant, r.op)])
    except BaseException:
        if stopping():
            stopped()
        raise
    settled = [[final.get((r.invariant, r.op), r) for r in rows] for rows in settled]
    results += [r for rows in settled for r in rows]
    return results


def _breadth_first(variant: str, geometry: Geometry, rows: list[Result], max_states: int,
                   on_state: Callable[[Reference], None] | None = None) -> dict[Obligation, Result]:
    """``rows`` after a breadth-first search on ``model/`` of at most ``max_states`` states: VIOLATED where it
    breaks them; else still NOT-INDUCTIVE, saying how far it searched.  A search that saw every state a path
    keeping one of the rows' invariants reaches says so: the invariant holds at this geometry, but no solver has
    proved it (explicit states are not a proof here; a lemma that makes it inductive is still missing).  The
    search's time is given once per row in ``breadth_first`` (``--json``), not added to each row's time: one
    search served them all."""
    started = time.perf_counter()
    searched = breadth_first.search(variant, geometry, [(r.invariant, r.op) for r in rows], max_states, on_state)
    summary = {"states": searched.states, "depth": searched.depth, "complete": searched.complete,
               "seconds": round(time.perf_counter() - started, 3)}
    reach = (f"{searched.states:,} states, every trace of up to {searched.depth} operations" if not searched.complete
             else f"every state reached while an open row's invariant holds, {searched.states:,},"
             f" within {searched.depth} operations")
    settled: dict[Obligation, Result] = {}
    for r in rows:
        extra = {**r.extra, "breadth_first": summary}
        trace = searched.found.get((r.invariant, r.op))
        if trace is None:
            settled[(r.invariant, r.op)] = replace(
                r, extra=extra, detail=f"{r.detail or f'none within depth {r.depth}'}, nor in a breadth-first search"
                f" on model/ ({reach}{': it holds there, not proved' if searched.complete else ''})")
            continue
        assert first_violation(trace, r.invariant) == len(trace.ops) - 1
        settled[(r.invariant, r.op)] = replace(
            r, verdict=Verdict.VIOLATED, trace=trace.to_json(), depth=len(trace.ops), extra=extra,
            detail=f"none within depth {r.depth}; a breadth-first search on model/ broke it: {reach}")
    return settled


def _also(detail: str, more: str) -> str:
    return f"{detail}; {more}" if detail else more


def _drop(round_no: int, kind: str, without: list[str], ans: Answer, pre: SymChunk,
          t: Transition) -> dict[str, object]:
    """Where Houdini dropped an invariant: its round, the operation, the invariants already dropped then (the
    rest were assumed), and (for a sat answer) that counterexample to induction.  A row's own ``cti`` is asked
    under the final strengthening, which has lost every dropped invariant; the first drop's had all but
    ``without``, so its state shows which fact the invariant lacked."""
    record: dict[str, object] = {"round": round_no, "op": kind, "status": ans.status, "without": without}
    if ans.model is not None:
        record["cti"] = _cti(ans.model, pre, t)
    return record


def _cti(model: z3.ModelRef, pre: SymChunk, t: Transition) -> dict[str, object]:
    """A counterexample to induction in the dump's format: the state before, the operation, the state after."""
    return {"before": concrete_state(model, pre), "op": op_to_json(concrete_op(model, t.op)),
            "after": concrete_state(model, t.step.post)}


def _beyond_depth(variant: str, geometry: Geometry, invariant: str, kind: str, depth: int, seconds: float,
                  cti: dict[str, object], witnesses: Sequence[Witness], options: SuiteOptions) -> Result:
    """A failed consecution that bounded model checking does not reach within ``depth``: VIOLATED by a carried
    witness, else by a random search on ``model/``, else NOT-INDUCTIVE."""
    carried = carry(witnesses, variant, geometry, invariant, kind)
    if carried is not None:
        first = "in the initial state" if carried.first < 0 else f"at step {carried.first}"
        earlier = ("" if carried.first == len(carried.trace.ops) - 1 else
                   f"; its last operation breaks it from a state where it holds, after an earlier break {first}")
        return Result(variant, geometry.name, invariant, kind, Verdict.VIOLATED, seconds,
                      detail=f"none within depth {depth}; witness {carried.witness.source} carried here and replayed"
                             f" on model/{earlier}", trace=carried.trace.to_json(), cti=cti,
                      depth=len(carried.trace.ops))
    started = time.perf_counter()
    found = search(variant, geometry, invariant, kind, options.search_walks, options.solver.seed)
    seconds += time.perf_counter() - started
    if found is None:
        walked = f", nor in {options.search_walks:,} random walks on model/" if options.search_walks else ""
        return Result(variant, geometry.name, invariant, kind, Verdict.NOT_INDUCTIVE, seconds,
                      detail=f"none within depth {depth}{walked}", cti=cti, depth=depth)
    return Result(variant, geometry.name, invariant, kind, Verdict.VIOLATED, seconds,
                  detail=f"none within depth {depth}; random walk {found.walks} of {options.search_walks} on model/"
                         " broke it, minimised", trace=found.trace.to_json(), cti=cti, depth=len(found.trace.ops))


def _replayed(variant: str, geometry: Geometry, invariant: str, ops: list[Op], seconds: float, kind: str,
              extra: dict[str, object]) -> Result:
    """VIOLATED when the solver's trace breaks ``invariant`` at its last step on ``model/``, else SPURIOUS."""
    trace = Trace(variant, geometry, ChunkInit(), tuple(ops), invariant)
    try:
        at = first_violation(trace, invariant)
    except ValueError as e:  # the trace asks the reference for something its callers never do
        return Result(variant, geometry.name, invariant, kind, Verdict.SPURIOUS, seconds,
                      detail=f"replay refused: {e}", trace=trace.to_json(), extra=extra)
    expected = len(ops) - 1
    if at == expected:
        return Result(variant, geometry.name, invariant, kind, Verdict.VIOLATED, seconds,
                      trace=trace.to_json(), depth=len(ops), extra=extra)
    return Result(variant, geometry.name, invariant, kind, Verdict.SPURIOUS, seconds,
                  detail=f"replay breaks it at step {at}, the solver at step {expected}", trace=trace.to_json(),
                  extra=extra)
