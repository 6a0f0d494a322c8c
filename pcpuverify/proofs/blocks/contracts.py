"""The block-level contracts: for each function (role), what it assumes of one block and what it guarantees.

A contract is proved when ``pre`` and the transition imply ``post`` (the
query ``pre and not post`` is unsat, and ``pre`` alone is satisfiable).  The
block invariant is the project's own ``block-hints-match-scan``, its Z3
predicate at block scope (``state.block_invariant``); the other
postconditions are the facts the chunk-level composition (``compose``) reads
off a block's metadata.  Each postcondition also has a concrete check, run
on the block that a solver's counterexample replays to on the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import z3

from pcpuverify.invariants.scan import bits_of, free_runs
from pcpuverify.model.percpu import ALIGN as ALIGN_INT
from pcpuverify.proofs.blocks.abstraction import FreeArea, consistent, freed_block
from pcpuverify.proofs.blocks.freed_run import Step, free_region_steps, freed_run, is_the_freed_run
from pcpuverify.proofs.blocks.instances import WITNESS, refutations, run_at, weak_invariant
from pcpuverify.proofs.blocks.instances import terms as instance_terms
from pcpuverify.proofs.blocks.roles import (
    ALLOC_ROLES,
    FREE_ROLES,
    REFRESH,
    Area,
    Role,
    area,
    area_mask,
    free_region,
    transition,
)
from pcpuverify.proofs.blocks.run_lemma import spec_at
from pcpuverify.proofs.blocks.state import (
    ConcreteBlock,
    block_invariant,
    block_violations,
    first_zero,
    fresh_block,
    md_in_range,
    md_of,
)
from pcpuverify.symbolic.bv import ALIGN, I, Int, low_mask, range_mask, run_starts
from pcpuverify.symbolic.longest_run import RunCut, RunCuts
from pcpuverify.symbolic.state import BLOCK_FIELDS, SymBlock, SymChunk

READ = Role("pcpu_find_block_fit", "", "read")  # what the block fit reads off a block's hints; writes nothing
METADATA = Role("pcpu_bitmap_md", "", "read")  # the block seen through its metadata alone (``abstraction``)
REFRESHING = ("same", "start", "end")  # the allocation's parts whose transition may refresh the block


@dataclass(frozen=True)
class Query:
    """One block before and after a role, with the role's arguments as Z3 variables."""

    block_bits: int
    pre: SymChunk
    post: SymChunk
    area: Area
    align: Int  # pcpu_find_block_fit's alignment
    size: Int  # pcpu_find_block_fit's bit_size
    cuts: tuple[RunCut, ...] = ()  # the longest-run circuits cut in ``post`` (``run_lemma``), if asked to
    region: tuple[Int, Int] | None = None  # a free inside the block: the free region it finds (``freed_run``)


@dataclass(frozen=True)
class Args:
    """The same arguments, concrete."""

    lo: int
    hi: int
    align: int
    size: int


ConcreteCheck = Callable[[ConcreteBlock, ConcreteBlock, Args], list[str]]
Refutation = tuple[str, z3.BoolRef, list[Int]]  # a conjunct's name, its negation, the witnesses it names


@dataclass(frozen=True)
class Contract:
    name: str  # the row's invariant column
    role: Role  # the row's op column is role.name
    pre: Callable[[Query], z3.BoolRef]
    post: Callable[[Query], z3.BoolRef]
    holds_before: Callable[[ConcreteBlock, Args], list[str]]  # pre, concretely: what a replay must satisfy
    broken_after: ConcreteCheck  # post, concretely: what is wrong after
    # asked the weaker way (``instances``): pre with the block invariant's universal claim stated at the
    # given positions only, implied by ``pre``; None: only the full query
    weak_pre: Callable[[Query, Sequence[Int]], z3.BoolRef] | None = None
    # the postcondition's conjuncts, each negated; None: the block invariant's (``instances.refutations``)
    refute: Callable[[Query], list[Refutation]] | None = None
    # facts proved in order before the weaker queries, which then assume them (``freed_run``); None: none
    steps: Callable[[Query], list[Step]] | None = None

    def weak_queries(self, q: Query) -> list[tuple[str, list[z3.BoolRef]]] | None:
        """The weaker queries: the steps, each assuming the ones before, then one per conjunct of the
        postcondition, assuming every step.  Their unsat proves it.

        Each states the invariant before, and what ``run_lemma`` proves of each cut circuit, at the instance
        terms, the cuts' starts and its own witnesses (a step: the witness a refutation names).
        """
        if self.weak_pre is None:
            return None
        at = [*instance_terms(md_of(q.pre), md_of(q.post), q.area.lo, q.area.hi, q.post.alloc_map, q.block_bits),
              *(cut.start for cut in q.cuts)]

        def given(witness: Sequence[Int]) -> list[z3.BoolRef]:
            return [self.weak_pre(q, [*at, *witness]), *(spec_at(cut, [*at, *witness]) for cut in q.cuts)]

        queries, facts = [], []
        for name, fact in self.steps(q) if self.steps is not None else []:
            queries.append((f"step: {name}", [*given([z3.BitVec(WITNESS, 16)]), *facts, z3.Not(fact)]))
            facts.append(fact)
        negations = self.refute(q) if self.refute is not None else refutations(q.post, md_of(q.post))
        return queries + [(name, [*given(witness), negation, *facts]) for name, negation, witness in negations]


def build_query(variant: str, role: Role, block_bits: int, cut: bool = False) -> Query:
    """The contract's query; ``cut``: with the refresh's longest-run circuit cut (``run_lemma``)."""
    pre = fresh_block(block_bits, "pre")
    a = area(role, block_bits)
    cuts = RunCuts() if cut else None
    post = transition(variant, role, pre, a, cuts) if role.kind != "read" else pre
    region = free_region(variant, pre, a) if role == FREE_ROLES[0] else None
    return Query(block_bits, pre, post, a, z3.BitVec("fit.align", 16), z3.BitVec("fit.bit_size", 16),
                 tuple(cuts.cuts) if cuts is not None else (), region)


# -- preconditions ----------------------------------------------------------------------------------


def _area_state(q: Query, role: Role) -> z3.BoolRef:
    """The caller's side of the area: an allocation takes free bits, a free releases allocated ones."""
    mask = area_mask(q.area, q.block_bits)
    if role.kind == "alloc":
        return q.pre.alloc_map & mask == 0
    if role.kind == "free":
        return q.pre.alloc_map & mask == mask
    return z3.BoolVal(True)


def invariant_pre(role: Role) -> Callable[[Query], z3.BoolRef]:
    def pre(q: Query) -> z3.BoolRef:
        return z3.And(md_in_range(md_of(q.pre), q.block_bits), block_invariant(q.pre), q.area.allowed,
                      _area_state(q, role))
    return pre


def weak_invariant_pre(role: Role) -> Callable[[Query, Sequence[Int]], z3.BoolRef]:
    def pre(q: Query, at: Sequence[Int]) -> z3.BoolRef:
        return z3.And(md_in_range(md_of(q.pre), q.block_bits), weak_invariant(q.pre, md_of(q.pre), at),
                      q.area.allowed, _area_state(q, role))
    return pre


def refresh_pre(q: Query) -> z3.BoolRef:
    """``pcpu_block_refresh_hint`` scans from ``first_free``: it needs only that no free bit lies below it."""
    md = md_of(q.pre)
    return z3.And(md_in_range(md, q.block_bits), md.first_free <= first_zero(q.pre.alloc_map, q.block_bits),
                  q.area.allowed)


def fit_pre(q: Query) -> z3.BoolRef:
    aligns = [1 << k for k in range(q.block_bits.bit_length()) if 1 << k <= q.block_bits]
    return z3.And(invariant_pre(READ)(q), z3.Or([q.align == a for a in aligns]), q.size >= 1, q.size <= q.block_bits)


def _concrete_area(role: Role, block: ConcreteBlock, args: Args) -> list[str]:
    mask = ((1 << (args.hi - args.lo)) - 1) << args.lo
    if role.kind == "alloc" and block.bits & mask:
        return [f"the area [{args.lo}, {args.hi}) is not free"]
    if role.kind == "free" and block.bits & mask != mask:
        return [f"the area [{args.lo}, {args.hi}) is not allocated"]
    return []


def invariant_before(role: Role) -> Callable[[ConcreteBlock, Args], list[str]]:
    return lambda block, args: block_violations(block) + _concrete_area(role, block, args)


def refresh_before(block: ConcreteBlock, args: Args) -> list[str]:
    first = next((i for i in range(block.block_bits) if not (block.bits >> i) & 1), block.block_bits)
    return [f"first_free {block.md.first_free} > first free bit {first}"] if block.md.first_free > first else []


# -- postconditions -----------------------------------------------------------------------------------


def refresh_pre_at(q: Query, at: Sequence[Int]) -> z3.BoolRef:
    """The refresh's precondition claims nothing universal: the same at every set of positions."""
    return refresh_pre(q)


def invariant_post(q: Query) -> z3.BoolRef:
    return block_invariant(q.post)


def invariant_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    return block_violations(after)


HINTS = ("contig_hint", "left_free", "right_free")


def monotone(shrink: bool) -> tuple[Callable[[Query], z3.BoolRef], ConcreteCheck]:
    """An allocation never raises a block's hints and a free never lowers them (what ``compose`` relies on)."""

    def post(q: Query) -> z3.BoolRef:
        a, b = md_of(q.pre), md_of(q.post)
        return z3.And([getattr(b, f) <= getattr(a, f) if shrink else getattr(b, f) >= getattr(a, f) for f in HINTS])

    def after(before: ConcreteBlock, after_: ConcreteBlock, args: Args) -> list[str]:
        wrong = [f for f in HINTS if (getattr(after_.md, f) > getattr(before.md, f)) == shrink
                 and getattr(after_.md, f) != getattr(before.md, f)]
        return [f"{f} {getattr(before.md, f)} -> {getattr(after_.md, f)}" for f in wrong]

    return post, after


def monotone_refutations(shrink: bool) -> Callable[[Query], list[Refutation]]:
    """``monotone``'s conjuncts, each negated (no witnesses: none is universal)."""
    def refute(q: Query) -> list[Refutation]:
        a, b = md_of(q.pre), md_of(q.post)
        return [(f, getattr(b, f) > getattr(a, f) if shrink else getattr(b, f) < getattr(a, f), []) for f in HINTS]
    return refute


def refresh_first_run_post(q: Query) -> z3.BoolRef:
    """The scan keeps ``first_free`` and, of equally long runs, keeps the first (``block->contig_hint < contig``)."""
    a, b = md_of(q.pre), md_of(q.post)
    B = q.block_bits
    earlier = run_starts(~q.post.alloc_map, B, b.contig_hint) & low_mask(b.contig_hint_start, B)
    return z3.And(b.first_free == a.first_free, z3.Or(b.contig_hint == 0, earlier == 0))


def refresh_first_run_refutations(q: Query) -> list[Refutation]:
    """``refresh_first_run_post``'s conjuncts, each negated; the earlier equal run named by a fresh witness."""
    a, b = md_of(q.pre), md_of(q.post)
    start = z3.BitVec(WITNESS, 16)
    earlier = z3.And(b.contig_hint > 0, start < b.contig_hint_start, run_at(q.post.alloc_map, start, b.contig_hint,
                                                                             q.block_bits))
    return [("first_free kept", b.first_free != a.first_free, []), ("no earlier run as long", earlier, [start])]


def refresh_first_run_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    wrong = [] if after.md.first_free == before.md.first_free else [
        f"first_free {before.md.first_free} -> {after.md.first_free}"]
    runs = free_runs(bits_of(after.bits, 0, after.block_bits))
    first = next((r.start for r in runs if r.length >= after.md.contig_hint), None)
    if after.md.contig_hint and first is not None and first < after.md.contig_hint_start:
        wrong.append(f"contig_hint_start {after.md.contig_hint_start}, an equal run starts at {first}")
    return wrong


def _is_free(bits: z3.BitVecRef, lo: Int, hi: Int, B: int) -> z3.BoolRef:
    return z3.And(lo >= 0, hi <= B, bits & range_mask(lo, hi, B) == 0)


def _free_concrete(block: ConcreteBlock, lo: int, hi: int) -> bool:
    return 0 <= lo and hi <= block.block_bits and not block.bits & (((1 << max(hi - lo, 0)) - 1) << lo)


def fit_hint_post(q: Query) -> z3.BoolRef:
    """When the hint fits at its aligned start, the block's bits there are free (the fit's ``block_off``)."""
    md = md_of(q.pre)
    at = ALIGN(md.contig_hint_start, q.align)
    fits = md.contig_hint >= at - md.contig_hint_start + q.size
    return z3.Implies(fits, _is_free(q.pre.alloc_map, at, at + q.size, q.block_bits))


def fit_hint_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    md = before.md
    at = ALIGN_INT(md.contig_hint_start, args.align)
    if md.contig_hint >= at - md.contig_hint_start + args.size and not _free_concrete(before, at, at + args.size):
        return [f"the hint fits {args.size} bits at {at} (align {args.align}) but they are not free"]
    return []


def fit_right_post(q: Query) -> z3.BoolRef:
    """The right edge's aligned start, if inside the block, begins free bits to the block's end."""
    at = ALIGN(I(q.block_bits) - md_of(q.pre).right_free, q.align)
    return z3.Implies(at < q.block_bits, _is_free(q.pre.alloc_map, at, I(q.block_bits), q.block_bits))


def fit_right_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    at = ALIGN_INT(before.block_bits - before.md.right_free, args.align)
    if at < before.block_bits and not _free_concrete(before, at, before.block_bits):
        return [f"right_free {before.md.right_free}: [{at}, {before.block_bits}) is not free"]
    return []


def fit_left_post(q: Query) -> z3.BoolRef:
    """The bits a run carried into the block may use, ``[0, left_free)``, are free."""
    return _is_free(q.pre.alloc_map, I(0), md_of(q.pre).left_free, q.block_bits)


def fit_left_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    return [] if _free_concrete(before, 0, before.md.left_free) else [
        f"left_free {before.md.left_free}: [0, {before.md.left_free}) is not free"]


def fit_first_free_post(q: Query) -> z3.BoolRef:
    """The fit's search starts at ``first_free``: not past the hint's start, so the hint stays in reach."""
    md = md_of(q.pre)
    return z3.Or(md.contig_hint == 0, md.first_free <= md.contig_hint_start)


def fit_first_free_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    md = before.md
    if md.contig_hint and md.first_free > md.contig_hint_start:
        return [f"first_free {md.first_free} is past contig_hint_start {md.contig_hint_start}"]
    return []


def abstraction_post(q: Query) -> z3.BoolRef:
    return consistent(md_of(q.pre), q.block_bits)


def abstraction_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    md = md_of(fresh_block(before.block_bits, "md"))
    values = [(getattr(md, f), I(getattr(before.md, f))) for f in vars(before.md)]
    held = z3.simplify(z3.substitute(consistent(md, before.block_bits), *values))
    return [] if z3.is_true(held) else ["the metadata is outside the abstraction compose reasons with"]


def free_steps(q: Query) -> list[Step]:
    """The steps (``freed_run``) for a free inside the query's block, about the region it finds."""
    assert q.region is not None, "a free inside the block names its free region"
    return free_region_steps(md_of(q.post), q.post.alloc_map, q.area.lo, q.area.hi, q.block_bits, q.region)


def free_runs_steps(q: Query) -> list[Step]:
    """The same, and that the region is the freed run ``free-same-block-runs`` states the metadata from."""
    assert q.region is not None, "a free inside the block names its free region"
    return [*free_steps(q), is_the_freed_run(q.region, q.post.alloc_map, q.area.lo, q.area.hi, q.block_bits)]


def _free_same_runs(q: Query) -> tuple[list[z3.BoolRef], list[z3.BoolRef]]:
    """The metadata after, field by field, from the freed run; and the run's place among the old runs."""
    start, end = freed_run(q.post.alloc_map, q.area.lo, q.area.hi, q.block_bits)
    after, holds = freed_block(md_of(q.pre), FreeArea(0, q.area.lo, q.area.hi, start, end), q.block_bits)
    b = md_of(q.post)
    return [getattr(b, f) == getattr(after, f) for f in BLOCK_FIELDS], conjuncts(holds)


def free_same_runs_post(q: Query) -> z3.BoolRef:
    """What ``compose`` reads of a same-block free: the new metadata from the freed run, and that run's
    place among the runs the old metadata shows (``abstraction.freed_block``)."""
    fields, holds = _free_same_runs(q)
    return z3.And(*fields, *holds)


def free_same_runs_refutations(q: Query) -> list[Refutation]:
    """``free_same_runs_post``'s conjuncts, each negated: a field after, or a fact of the run's place."""
    fields, holds = _free_same_runs(q)
    return [*((f, z3.Not(eq), []) for f, eq in zip(BLOCK_FIELDS, fields, strict=True)),
            *((f"the freed run's place, {i}", z3.Not(fact), []) for i, fact in enumerate(holds))]


def free_same_runs_after(before: ConcreteBlock, after: ConcreteBlock, args: Args) -> list[str]:
    """The same on concrete blocks: the run read off the bits after, the relation evaluated."""
    B = before.block_bits
    start = args.lo
    while start > 0 and not (after.bits >> (start - 1)) & 1:
        start -= 1
    end = args.hi
    while end < B and not (after.bits >> end) & 1:
        end += 1
    md = SymBlock(*(I(getattr(before.md, f)) for f in BLOCK_FIELDS))
    want, holds = freed_block(md, FreeArea(0, I(args.lo), I(args.hi), I(start), I(end)), B)
    wrong = [f"{f} {getattr(after.md, f)}, the freed run [{start}, {end}) gives {z3.simplify(getattr(want, f))}"
             for f in BLOCK_FIELDS if z3.simplify(getattr(want, f)).as_signed_long() != getattr(after.md, f)]
    if not z3.is_true(z3.simplify(holds)):
        wrong.append(f"the freed run [{start}, {end}) does not sit among the old metadata's runs as expected")
    return wrong


def conjuncts(post: z3.BoolRef) -> list[z3.BoolRef]:
    """A condition's top-level conjuncts (``prove`` asks one query per conjunct)."""
    if z3.is_and(post):
        return [part for child in post.children() for part in conjuncts(child)]
    return [post]


def _contracts() -> tuple[Contract, ...]:
    found = [Contract("block-hints-match-scan", REFRESH, refresh_pre, invariant_post, refresh_before,
                      invariant_after, refresh_pre_at),
             Contract("refresh-keeps-first-free-and-first-run", REFRESH, refresh_pre, refresh_first_run_post,
                      refresh_before, refresh_first_run_after, refresh_pre_at, refresh_first_run_refutations)]
    for roles, shrink, name in ((ALLOC_ROLES, True, "alloc-never-raises-hints"),
                                (FREE_ROLES, False, "free-never-lowers-hints")):
        post, after = monotone(shrink)
        for role in roles:
            found.append(Contract("block-hints-match-scan", role, invariant_pre(role), invariant_post,
                                  invariant_before(role), invariant_after, weak_invariant_pre(role),
                                  steps=free_steps if role is FREE_ROLES[0] else None))
            # the weaker way cost the monotone contracts more than it saved, except where it also cuts the
            # refresh's circuit (``run_lemma``): the allocation's refreshing parts
            weak = shrink and role.part in REFRESHING
            found.append(Contract(name, role, invariant_pre(role), post, invariant_before(role), after,
                                  weak_invariant_pre(role) if weak else None,
                                  monotone_refutations(shrink) if weak else None))
    for name, post, after in (("fit-hint-is-free", fit_hint_post, fit_hint_after),
                              ("fit-right-is-free", fit_right_post, fit_right_after),
                              ("fit-left-is-free", fit_left_post, fit_left_after),
                              ("fit-starts-at-or-before-hint", fit_first_free_post, fit_first_free_after)):
        found.append(Contract(name, READ, fit_pre, post, invariant_before(READ), after))
    found.append(Contract("free-same-block-runs", FREE_ROLES[0], invariant_pre(FREE_ROLES[0]), free_same_runs_post,
                          invariant_before(FREE_ROLES[0]), free_same_runs_after, weak_invariant_pre(FREE_ROLES[0]),
                          free_same_runs_refutations, free_runs_steps))
    found.append(Contract("md-abstraction-sound", METADATA, invariant_pre(METADATA), abstraction_post,
                          invariant_before(METADATA), abstraction_after))
    return tuple(found)


CONTRACTS = _contracts()
